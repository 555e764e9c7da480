// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace unit tests of xt_traffic's pure logic (kernel/xt_traffic_core.h):
 * mask and name checks, bucket math, wire bytes of GSO packets, flow keys.
 * Prints "N passed, N failed" and exits non-zero on any failure.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;

/* the kernel's hash_32() (include/linux/hash.h) */
#define GOLDEN_RATIO_32 0x61C88647
static inline u32 hash_32(u32 val, unsigned int bits)
{
	return (val * GOLDEN_RATIO_32) >> (32 - bits);
}

#include <linux/netfilter/xt_traffic.h>
#include "../../kernel/xt_traffic_core.h"

static int passed, failed;

#define CHECK_EQ(what, got, want) do {					\
	unsigned long long g_ = (unsigned long long)(got);		\
	unsigned long long w_ = (unsigned long long)(want);		\
	if (g_ == w_) {							\
		passed++;						\
	} else {							\
		failed++;						\
		printf("FAIL %s:%d %s: got %llu, want %llu\n",		\
		       __FILE__, __LINE__, what, g_, w_);		\
	}								\
} while (0)

static u32 ip(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return ntohl(a.s_addr);
}

static enum xtt_name_err name(const char *s)
{
	char buf[XT_TRAFFIC_NAME_LEN];

	memset(buf, 0, sizeof(buf));
	memcpy(buf, s, strlen(s) < sizeof(buf) ? strlen(s) : sizeof(buf));
	return xtt_name_check(buf);
}

static void test_masks(void)
{
	CHECK_EQ("/20 valid", xtt_mask_valid(ip("255.255.240.0")), true);
	CHECK_EQ("/32 valid", xtt_mask_valid(ip("255.255.255.255")), true);
	CHECK_EQ("/1 valid", xtt_mask_valid(ip("128.0.0.0")), true);
	CHECK_EQ("/0 invalid", xtt_mask_valid(0), false);
	CHECK_EQ("255.0.255.0 invalid", xtt_mask_valid(ip("255.0.255.0")), false);
	CHECK_EQ("0.255.255.255 invalid", xtt_mask_valid(ip("0.255.255.255")), false);
	CHECK_EQ("255.255.255.254 valid", xtt_mask_valid(ip("255.255.255.254")), true);
	CHECK_EQ("255.255.255.253 invalid", xtt_mask_valid(ip("255.255.255.253")), false);
	for (unsigned int p = 1; p <= 32; p++) {
		u32 m = p == 32 ? 0xffffffffU : ~(0xffffffffU >> p);

		CHECK_EQ("every prefix valid", xtt_mask_valid(m), true);
		CHECK_EQ("prefix length", xtt_prefix_len(m), p);
	}
	CHECK_EQ("aligned", xtt_base_aligned(ip("193.11.176.0"), ip("255.255.240.0")), true);
	CHECK_EQ("not aligned", xtt_base_aligned(ip("193.11.177.0"), ip("255.255.240.0")), false);
	CHECK_EQ("/32 host aligned", xtt_base_aligned(ip("10.1.2.3"), 0xffffffffU), true);
}

static void test_names(void)
{
	CHECK_EQ("RSN ok", name("RSN"), XTT_NAME_OK);
	CHECK_EQ("dots and dashes ok", name("a.b-c_d"), XTT_NAME_OK);
	CHECK_EQ("31 chars ok", name("abcdefghijabcdefghijabcdefghij1"), XTT_NAME_OK);
	CHECK_EQ("32 chars too long", name("abcdefghijabcdefghijabcdefghij12"), XTT_NAME_TOO_LONG);
	CHECK_EQ("empty", name(""), XTT_NAME_EMPTY);
	CHECK_EQ("slash", name("a/b"), XTT_NAME_BAD_CHAR);
	CHECK_EQ("space", name("a b"), XTT_NAME_BAD_CHAR);
	CHECK_EQ("dot", name("."), XTT_NAME_DOTS);
	CHECK_EQ("dotdot", name(".."), XTT_NAME_DOTS);
	CHECK_EQ("three dots ok", name("..."), XTT_NAME_OK);
	CHECK_EQ("_ipconn", name("x_ipconn"), XTT_NAME_RESERVED_SUFFIX);
	CHECK_EQ("_portconn", name("x_portconn"), XTT_NAME_RESERVED_SUFFIX);
	CHECK_EQ("_info", name("x_info"), XTT_NAME_RESERVED_SUFFIX);
	CHECK_EQ("ipconn alone ok", name("ipconn"), XTT_NAME_OK);
	CHECK_EQ("_info alone", name("_info"), XTT_NAME_RESERVED_SUFFIX);
}

static void test_buckets(void)
{
	CHECK_EQ("/20 -> 4096", xtt_ip_buckets(ip("255.255.240.0"), 0), 4096);
	CHECK_EQ("/24 -> 256", xtt_ip_buckets(ip("255.255.255.0"), 0), 256);
	CHECK_EQ("/30 -> min 16", xtt_ip_buckets(ip("255.255.255.252"), 0), 16);
	CHECK_EQ("/32 -> min 16", xtt_ip_buckets(0xffffffffU, 0), 16);
	CHECK_EQ("/16 -> 65536", xtt_ip_buckets(ip("255.255.0.0"), 0), 65536);
	CHECK_EQ("/8 clamped", xtt_ip_buckets(ip("255.0.0.0"), 0), 65536);
	CHECK_EQ("hashsize 1000 -> 1024", xtt_ip_buckets(ip("255.0.0.0"), 1000), 1024);
	CHECK_EQ("hashsize 1 -> 2 (hash_32 needs bits >= 1)", xtt_ip_buckets(ip("255.0.0.0"), 1), 2);
	CHECK_EQ("hashsize 2 -> 2", xtt_ip_buckets(ip("255.0.0.0"), 2), 2);
	CHECK_EQ("hashsize 3 -> 4", xtt_ip_buckets(ip("255.0.0.0"), 3), 4);
	/* every hashed bucket index of a 2-bucket map is 0 or 1 */
	for (u32 k = 0; k < 1000; k++)
		if (xtt_bucket(k * 7919, xtt_ilog2(xtt_ip_buckets(ip("255.0.0.0"), 1)), false) > 1)
			CHECK_EQ("2-bucket index in range", k, 0xffffffff);
	CHECK_EQ("hashsize max", xtt_ip_buckets(ip("255.0.0.0"), XT_TRAFFIC_HASHSIZE_MAX),
		 XT_TRAFFIC_HASHSIZE_MAX);
	CHECK_EQ("ilog2 4096", xtt_ilog2(4096), 12);
	CHECK_EQ("flow slots min", xtt_flow_slots(16), XTT_FLOW_SLOTS_MIN);
	CHECK_EQ("flow slots 4x", xtt_flow_slots(16384), 65536);
	CHECK_EQ("flow slots 4x clamped", xtt_flow_slots(65536), XTT_FLOW_SLOTS_MAX);
	CHECK_EQ("flow slots max", xtt_flow_slots(1U << 22), XTT_FLOW_SLOTS_MAX);
	CHECK_EQ("flow slots multiple of ways", xtt_flow_slots(4096) % XTT_FLOW_WAYS, 0);

	/* direct index: the offset itself, every key of a /24 in its own bucket */
	CHECK_EQ("direct", xtt_bucket(200, 8, true), 200);
	/* hashed: stays in range; a /16 spread over 4096 buckets is balanced */
	{
		static unsigned int count[4096];
		unsigned int max = 0;

		for (u32 k = 0; k < 65536; k++) {
			u32 b = xtt_bucket(k, 12, false);

			if (b >= 4096) {
				CHECK_EQ("hashed bucket in range", b < 4096, true);
				return;
			}
			count[b]++;
		}
		for (int i = 0; i < 4096; i++)
			if (count[i] > max)
				max = count[i];
		/* 16 keys a bucket on average; a multiplicative hash of a range stays within 15..18 */
		CHECK_EQ("longest chain of a /16 in 4096 buckets", max, 18);
	}
}

static void test_wire_bytes(void)
{
	CHECK_EQ("plain", xtt_wire_bytes(1500, 0, 52), 1500);
	CHECK_EQ("one segment", xtt_wire_bytes(1500, 1, 52), 1500);
	/* 3 segments of 1448 payload + 20 IP + 32 TCP: merged 20+32+4344 = 4396 */
	CHECK_EQ("gso 3 segs", xtt_wire_bytes(4396, 3, 52), 3 * 1500);
	CHECK_EQ("gso 45 segs", xtt_wire_bytes(20 + 32 + 45 * 1448, 45, 52), 45 * 1500ULL);
}

/* Segments recomputed from lengths (issue 12, defect 1): forged values never wrap. */
static void test_gso_segs(void)
{
	CHECK_EQ("3 x 1448", xtt_gso_segs(4396, 52, 1448), 3);
	CHECK_EQ("last segment short", xtt_gso_segs(52 + 2 * 1448 + 1, 52, 1448), 3);
	CHECK_EQ("fits one segment", xtt_gso_segs(1500, 52, 1448), 1);
	CHECK_EQ("no gso_size", xtt_gso_segs(4396, 52, 0), 1);
	/* the packet: 42 bytes, doff 15 (80 header bytes), gso_size 1 */
	CHECK_EQ("header beyond the packet", xtt_gso_segs(42, 80, 1), 1);
	CHECK_EQ("header == packet", xtt_gso_segs(80, 80, 1), 1);
	/* 70-byte packet, doff 8 (52 header bytes), gso_size 2: 18 payload bytes */
	CHECK_EQ("doff 8 gso_size 2", xtt_gso_segs(70, 52, 2), 9);
	CHECK_EQ("doff 8 gso_size 2 bytes",
		 xtt_wire_bytes(70, xtt_gso_segs(70, 52, 2), 52), 70 + 8 * 52);
	CHECK_EQ("clamped to GSO_MAX_SEGS", xtt_gso_segs(200000, 40, 1), 65535);
	CHECK_EQ("huge len, no wrap", xtt_gso_segs(0xffffffffU, 0, 0x20000U),
		 0x8000);
}

static void test_flow_keys(void)
{
	struct xtt_flow_key k1, k2, k3;

	xtt_flow_key_make(&k1, 17, ip("10.0.0.1"), 5000, ip("10.0.0.2"), 53);
	xtt_flow_key_make(&k2, 17, ip("10.0.0.2"), 53, ip("10.0.0.1"), 5000);
	CHECK_EQ("reply same flow", memcmp(&k1, &k2, sizeof(k1)), 0);
	xtt_flow_key_make(&k3, 17, ip("10.0.0.1"), 5001, ip("10.0.0.2"), 53);
	CHECK_EQ("other port other flow", xtt_flow_key_pa(&k1) == xtt_flow_key_pa(&k3) &&
		 xtt_flow_key_pb(&k1) == xtt_flow_key_pb(&k3), false);
	xtt_flow_key_make(&k3, 6, ip("10.0.0.1"), 5000, ip("10.0.0.2"), 53);
	CHECK_EQ("other proto other flow", xtt_flow_key_proto(&k1) == xtt_flow_key_proto(&k3), false);
	/* same address both sides: ordered by port */
	xtt_flow_key_make(&k1, 17, ip("10.0.0.1"), 9, ip("10.0.0.1"), 7);
	xtt_flow_key_make(&k2, 17, ip("10.0.0.1"), 7, ip("10.0.0.1"), 9);
	CHECK_EQ("loopback flow symmetric", memcmp(&k1, &k2, sizeof(k1)), 0);

	/* ICMP echo request and reply share a flow by id */
	xtt_icmp_flow_key(&k1, ip("10.0.0.1"), ip("10.0.0.2"), 8, 0, 4242);
	xtt_icmp_flow_key(&k2, ip("10.0.0.2"), ip("10.0.0.1"), 0, 0, 4242);
	CHECK_EQ("echo reply same flow", memcmp(&k1, &k2, sizeof(k1)), 0);
	xtt_icmp_flow_key(&k3, ip("10.0.0.1"), ip("10.0.0.2"), 8, 0, 4243);
	CHECK_EQ("other echo id other flow", memcmp(&k1, &k3, sizeof(k1)) != 0, true);
	/* a port unreachable is keyed by type/code, never equal to an echo flow */
	xtt_icmp_flow_key(&k3, ip("10.0.0.1"), ip("10.0.0.2"), 3, 3, 0);
	CHECK_EQ("unreach proto", xtt_flow_key_proto(&k3), XTT_FLOW_ICMP_MSG);
	CHECK_EQ("unreach port", xtt_flow_key_pa(&k3), 0x0303);
	xtt_icmp_flow_key(&k2, ip("10.0.0.1"), ip("10.0.0.2"), 8, 0, 0x0303);
	CHECK_EQ("echo id 0x0303 differs from unreach", memcmp(&k2, &k3, sizeof(k2)) != 0, true);
}

/*
 * The packet path's UDP key (xtt_flow_key_make_ports(): the port word as it
 * is in the header, unswapped) must group packets into flows exactly as
 * xtt_flow_key_make() does: every pair of tuples over small domains (equal
 * addresses, equal ports, byte-swapped port values), both directions.
 */
static u32 ports_word(u16 sport, u16 dport)
{
	return (u32)htons(sport) | (u32)htons(dport) << 16;
}

static void test_flow_keys_ports(void)
{
	static const u32 addrs[] = { 0x0a000001, 0x0a000002, 0x01000000 };
	static const u16 ports[] = { 53, 0x3500, 5000, 53 + 256 };
	struct { struct xtt_flow_key o, n; } t[3 * 3 * 4 * 4];
	unsigned int i, j, n = 0, asym = 0, differ = 0;

	for (i = 0; i < 3 * 3; i++)
		for (j = 0; j < 4 * 4; j++) {
			u32 s = addrs[i / 3], d = addrs[i % 3];
			u16 sp = ports[j / 4], dp = ports[j % 4];
			struct xtt_flow_key r;

			xtt_flow_key_make(&t[n].o, 17, s, sp, d, dp);
			xtt_flow_key_make_ports(&t[n].n, 17, s, d, ports_word(sp, dp));
			xtt_flow_key_make_ports(&r, 17, d, s, ports_word(dp, sp));
			asym += memcmp(&r, &t[n].n, sizeof(r)) != 0;
			n++;
		}
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			differ += !memcmp(&t[i].o, &t[j].o, sizeof(t[i].o)) !=
				  !memcmp(&t[i].n, &t[j].n, sizeof(t[i].n));
	CHECK_EQ("port-word key: reply makes the same key", asym, 0);
	CHECK_EQ("port-word key: same flows as xtt_flow_key_make", differ, 0);
	CHECK_EQ("port-word key: proto", xtt_flow_key_proto(&t[0].n), 17);
}

/* bit (s_in | d_in << 1) of xtt_count_sides(): which packets a table counts */
static void test_count_sides(void)
{
	u8 all = xtt_count_sides(0);
	u8 noint = xtt_count_sides(XT_TRAFFIC_NOINTERNAL);
	u8 onlyint = xtt_count_sides(XT_TRAFFIC_ONLYINTERNAL);

	CHECK_EQ("all: neither side in the net", all & 1, 0);
	CHECK_EQ("all: source in", !!(all & 2), 1);
	CHECK_EQ("all: destination in", !!(all & 4), 1);
	CHECK_EQ("all: internal", !!(all & 8), 1);
	CHECK_EQ("--nointernal", noint, 2 | 4);
	CHECK_EQ("! --nointernal", onlyint, 8);
	CHECK_EQ("other flags do not matter",
		 xtt_count_sides(XT_TRAFFIC_TRAFFIC | XT_TRAFFIC_IPCONN |
				 XT_TRAFFIC_CLEARONREAD | XT_TRAFFIC_NOINTERNAL), noint);
}

/*
 * The flow cache's set index spreads the patterns real traffic has: many
 * hosts to one server port, one host on many source ports, a mix. 65,536
 * flows over 65,536 sets of 4 ways (the sizing of a /16 with one flow per
 * host): flows whose set is already full must stay under 1%.
 */
static unsigned char sets[1 << 16];

static unsigned int flows_beyond_ways(int pattern, u64 seed)
{
	unsigned int over = 0;
	u32 i;

	memset(sets, 0, sizeof(sets));
	for (i = 0; i < 65536; i++) {
		struct xtt_flow_key k;
		u32 h;

		if (pattern == 0)
			xtt_flow_key_make(&k, 17, ip("10.50.0.0") + i, 9, ip("10.60.0.1"), 9);
		else if (pattern == 1)
			xtt_flow_key_make(&k, 17, ip("10.50.0.5"), (u16)i, ip("8.8.8.8"), 53);
		else
			xtt_flow_key_make(&k, 17, ip("10.50.0.0") + (i >> 4), 1024 + (i & 15),
					  ip("8.8.8.8"), 53);
		h = xtt_flow_hash(&k, seed, 64 - 16);
		if (sets[h] == XTT_FLOW_WAYS)
			over++;
		else
			sets[h]++;
	}
	return over;
}

static void test_flow_hash(void)
{
	struct xtt_flow_key k1, k2;
	int p;

	xtt_flow_key_make(&k1, 17, ip("10.0.0.1"), 5000, ip("10.0.0.2"), 53);
	xtt_flow_key_make(&k2, 17, ip("10.0.0.2"), 53, ip("10.0.0.1"), 5000);
	CHECK_EQ("reply same set", xtt_flow_hash(&k1, 42, 64 - 12), xtt_flow_hash(&k2, 42, 64 - 12));
	CHECK_EQ("index below 2^bits", xtt_flow_hash(&k1, 42, 64 - 10) < 1024, true);
	CHECK_EQ("32 bits", xtt_flow_hash(&k1, 42, 64 - 32) == xtt_flow_hash(&k1, 43, 64 - 32), false);
	for (p = 0; p < 3; p++) {
		unsigned int over = flows_beyond_ways(p, 0x0123456789abcdefULL * (p + 1));

		if (over >= 655)
			printf("pattern %d: %u of 65536 flows beyond the ways\n", p, over);
		CHECK_EQ("under 1% of flows beyond the ways", over < 655, true);
	}
}

/* Revision 1: IPv6 masks, RFC 5952 zero runs, bucket counts per host prefix. */
static void test_ipv6(void)
{
	static const struct {
		u16 g[8];
		unsigned int len, start;
	} runs[] = {
		{ { 0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 }, 5, 2 },
		{ { 0x2001, 0xdb8, 0, 1, 0, 0, 0, 0 }, 4, 4 },
		{ { 0x2001, 0, 0, 1, 0, 0, 1, 1 }, 2, 1 },	/* the first of equal runs */
		{ { 0x2001, 0xdb8, 0, 1, 1, 1, 1, 1 }, 0, 8 },	/* one zero group: none */
		{ { 0, 0, 0, 0, 0, 0, 0, 0 }, 8, 0 },
		{ { 0xfe80, 0, 0, 0, 0, 0x5efe, 0xc000, 0x201 }, 4, 1 },
	};
	struct xtt_k6 m, a;
	struct xtt_flow_key k1, k2;
	unsigned int i, start;

	m = xtt_k6_mask(0);
	CHECK_EQ("mask /0 hi", m.hi, 0);
	CHECK_EQ("mask /0 lo", m.lo, 0);
	m = xtt_k6_mask(48);
	CHECK_EQ("mask /48 hi", m.hi, 0xffffffffffff0000ULL);
	CHECK_EQ("mask /48 lo", m.lo, 0);
	m = xtt_k6_mask(64);
	CHECK_EQ("mask /64", m.hi == ~0ULL && m.lo == 0, 1);
	m = xtt_k6_mask(65);
	CHECK_EQ("mask /65 lo", m.lo, 0x8000000000000000ULL);
	m = xtt_k6_mask(128);
	CHECK_EQ("mask /128", m.hi == ~0ULL && m.lo == ~0ULL, 1);
	for (i = 0; i <= 128; i++) {
		m = xtt_k6_mask(i);
		CHECK_EQ("prefix len of mask", xtt_k6_prefix_len(&m), i);
	}
	m.hi = 0xffff0000ffff0000ULL;
	m.lo = 0;
	CHECK_EQ("not contiguous", xtt_k6_prefix_len(&m), -1);
	m.hi = 0;
	m.lo = 1;
	CHECK_EQ("::1 not a mask", xtt_k6_prefix_len(&m), -1);
	m.hi = ~0ULL;
	m.lo = 1;
	CHECK_EQ("hole", xtt_k6_prefix_len(&m), -1);
	for (i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		CHECK_EQ("zero run length", xtt_ip6_zero_run(runs[i].g, &start), runs[i].len);
		CHECK_EQ("zero run start", start, runs[i].start);
	}
	a.hi = 0;
	a.lo = 0xffff0a000001ULL;
	CHECK_EQ("v4-mapped", xtt_ip6_v4mapped(&a), 1);
	a.lo = 0x0a000001ULL;
	CHECK_EQ("v4-compatible is not mapped", xtt_ip6_v4mapped(&a), 0);
	a.hi = 1;
	a.lo = 0xffff0a000001ULL;
	CHECK_EQ("mapped needs hi 0", xtt_ip6_v4mapped(&a), 0);
	CHECK_EQ("cmp", xtt_k6_cmp(&(struct xtt_k6){ 1, 0 }, &(struct xtt_k6){ 0, ~0ULL }), 1);
	CHECK_EQ("cmp lo", xtt_k6_cmp(&(struct xtt_k6){ 1, 2 }, &(struct xtt_k6){ 1, 3 }), -1);
	CHECK_EQ("cmp eq", xtt_k6_cmp(&(struct xtt_k6){ 1, 2 }, &(struct xtt_k6){ 1, 2 }), 0);
	CHECK_EQ("buckets /8 per /24", xtt_ip_buckets_bits(24 - 8, 0), 65536);
	CHECK_EQ("buckets /20 per /24", xtt_ip_buckets_bits(4, 0), XTT_BUCKETS_MIN);
	CHECK_EQ("buckets /48 per /56", xtt_ip_buckets_bits(8, 0), 256);
	CHECK_EQ("buckets /1 per /128", xtt_ip_buckets_bits(127, 0), XTT_BUCKETS_DEFAULT_MAX);
	CHECK_EQ("buckets = rev 0", xtt_ip_buckets_bits(12, 0), xtt_ip_buckets(0xfffff000U, 0));
	xtt_icmp6_flow_key(&k1, 5, 9, 128, 0, 77);
	xtt_icmp6_flow_key(&k2, 9, 5, 129, 0, 77);
	CHECK_EQ("echo request/reply share a flow", k1.w0 == k2.w0 && k1.w1 == k2.w1, 1);
	CHECK_EQ("echo proto 58", xtt_flow_key_proto(&k1), 58);
	xtt_icmp6_flow_key(&k2, 5, 9, 1, 4, 0);
	CHECK_EQ("unreachable keyed by type/code", xtt_flow_key_proto(&k2), XTT_FLOW_ICMP_MSG);
	CHECK_EQ("type/code in the port", xtt_flow_key_pa(&k2), 0x104);
}

int main(void)
{
	test_ipv6();
	test_flow_hash();
	test_count_sides();
	test_masks();
	test_names();
	test_buckets();
	test_wire_bytes();
	test_gso_segs();
	test_flow_keys();
	test_flow_keys_ports();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
