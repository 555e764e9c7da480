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
		h = xtt_flow_hash(&k, seed, 16);
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
	CHECK_EQ("reply same set", xtt_flow_hash(&k1, 42, 12), xtt_flow_hash(&k2, 42, 12));
	CHECK_EQ("index below 2^bits", xtt_flow_hash(&k1, 42, 10) < 1024, true);
	CHECK_EQ("32 bits", xtt_flow_hash(&k1, 42, 32) == xtt_flow_hash(&k1, 43, 32), false);
	for (p = 0; p < 3; p++) {
		unsigned int over = flows_beyond_ways(p, 0x0123456789abcdefULL * (p + 1));

		if (over >= 655)
			printf("pattern %d: %u of 65536 flows beyond the ways\n", p, over);
		CHECK_EQ("under 1% of flows beyond the ways", over < 655, true);
	}
}

int main(void)
{
	test_flow_hash();
	test_count_sides();
	test_masks();
	test_names();
	test_buckets();
	test_wire_bytes();
	test_gso_segs();
	test_flow_keys();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
