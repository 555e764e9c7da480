/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pure logic of xt_traffic: option checks, index and hash math, flow keys.
 * No kernel state here, so test/c/ compiles it in userspace and tests it.
 * The includer provides u8/u16/u32/u64, bool, hash_32() and the uapi header.
 */
#ifndef _XT_TRAFFIC_CORE_H
#define _XT_TRAFFIC_CORE_H

/* Buckets of an IP map: derived from the net size unless --hashsize. */
#define XTT_BUCKETS_MIN		16U
#define XTT_BUCKETS_DEFAULT_MAX	65536U
/* The port map always has this many buckets (65536 possible keys). */
#define XTT_PORT_BUCKETS	8192U
/* Flow cache: ways per set, and the bounds of its size in slots. */
#define XTT_FLOW_WAYS		4U
#define XTT_FLOW_SLOTS_MIN	4096U
#define XTT_FLOW_SLOTS_MAX	262144U

enum xtt_name_err {
	XTT_NAME_OK = 0,
	XTT_NAME_EMPTY,
	XTT_NAME_TOO_LONG,
	XTT_NAME_BAD_CHAR,
	XTT_NAME_DOTS,
	XTT_NAME_RESERVED_SUFFIX,
};

/* Host-order mask: non-zero and contiguous ones from the top. */
static inline bool xtt_mask_valid(u32 mask)
{
	u32 inv = ~mask;

	return mask != 0 && (inv & (inv + 1)) == 0;
}

/* Prefix length of a valid mask. */
static inline unsigned int xtt_prefix_len(u32 mask)
{
	unsigned int n = 0;

	while (mask & 0x80000000U) {
		n++;
		mask <<= 1;
	}
	return n;
}

static inline bool xtt_base_aligned(u32 base, u32 mask)
{
	return (base & ~mask) == 0;
}

static inline bool xtt_ends_with(const char *s, size_t len, const char *suffix)
{
	size_t sl = 0;

	while (suffix[sl])
		sl++;
	if (len < sl)
		return false;
	for (size_t i = 0; i < sl; i++)
		if (s[len - sl + i] != suffix[i])
			return false;
	return true;
}

/*
 * A table name becomes a file name under /proc/net/xt_traffic/: 1..31 chars
 * of [A-Za-z0-9_.-], not "." or "..", not ending in a reserved suffix.
 * @name points to XT_TRAFFIC_NAME_LEN bytes that need not be terminated.
 */
static inline enum xtt_name_err xtt_name_check(const char *name)
{
	size_t len = 0;

	while (len < XT_TRAFFIC_NAME_LEN && name[len])
		len++;
	if (len == 0)
		return XTT_NAME_EMPTY;
	if (len == XT_TRAFFIC_NAME_LEN)
		return XTT_NAME_TOO_LONG;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return XTT_NAME_BAD_CHAR;
	}
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return XTT_NAME_DOTS;
	if (xtt_ends_with(name, len, XT_TRAFFIC_SUFFIX_IPCONN) ||
	    xtt_ends_with(name, len, XT_TRAFFIC_SUFFIX_PORTCONN) ||
	    xtt_ends_with(name, len, XT_TRAFFIC_SUFFIX_INFO))
		return XTT_NAME_RESERVED_SUFFIX;
	return XTT_NAME_OK;
}

static inline u32 xtt_roundup_pow2(u32 v)
{
	u32 p = 1;

	while (p < v && p < 0x80000000U)
		p <<= 1;
	return p;
}

static inline unsigned int xtt_ilog2(u32 v)
{
	unsigned int n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/*
 * Buckets of an IP map: --hashsize rounded up to a power of two (at least 2:
 * hash_32() needs a bit to shift to), or the number of addresses in the net
 * clamped to [XTT_BUCKETS_MIN, XTT_BUCKETS_DEFAULT_MAX].
 */
static inline u32 xtt_ip_buckets_bits(unsigned int keybits, u32 hashsize)
{
	u32 hosts;

	if (hashsize)
		return hashsize < 2 ? 2 : xtt_roundup_pow2(hashsize);
	if (keybits >= 16)
		return XTT_BUCKETS_DEFAULT_MAX;
	hosts = 1U << keybits;
	return hosts < XTT_BUCKETS_MIN ? XTT_BUCKETS_MIN : hosts;
}

static inline u32 xtt_ip_buckets(u32 mask, u32 hashsize)
{
	return xtt_ip_buckets_bits(32 - xtt_prefix_len(mask), hashsize);
}

/*
 * An IPv6 address or mask as two host-order words: hi = bits 0..63 (the
 * first on the wire), lo = bits 64..127. Compares as the numeric address.
 */
struct xtt_k6 {
	u64 hi;
	u64 lo;
};

/* The mask of a prefix of @len bits, 0..128. */
static inline struct xtt_k6 xtt_k6_mask(unsigned int len)
{
	struct xtt_k6 m;

	m.hi = len == 0 ? 0 : len >= 64 ? ~0ULL : ~0ULL << (64 - len);
	m.lo = len <= 64 ? 0 : len >= 128 ? ~0ULL : ~0ULL << (128 - len);
	return m;
}

/* Prefix length of a contiguous mask, or -1 when the mask is not one. */
static inline int xtt_k6_prefix_len(const struct xtt_k6 *m)
{
	unsigned int n = 0;
	struct xtt_k6 want;

	while (n < 128 && ((n < 64 ? m->hi >> (63 - n) : m->lo >> (127 - n)) & 1))
		n++;
	want = xtt_k6_mask(n);
	return want.hi == m->hi && want.lo == m->lo ? (int)n : -1;
}

static inline int xtt_k6_cmp(const struct xtt_k6 *a, const struct xtt_k6 *b)
{
	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return 0;
}

/*
 * RFC 5952 section 4.2: the longest run of two or more zero groups of @g
 * (the first of equal runs). Returns its length (0: none) and its start.
 */
static inline unsigned int xtt_ip6_zero_run(const u16 g[8], unsigned int *start)
{
	unsigned int best = 0, i, j;

	*start = 8;
	for (i = 0; i < 8; i = j + 1) {
		j = i;
		while (j < 8 && g[j] == 0)
			j++;
		if (j - i >= 2 && j - i > best) {
			best = j - i;
			*start = i;
		}
	}
	return best;
}

/*
 * RFC 5952 section 5: the mixed notation is used for IPv4-mapped addresses
 * (::ffff:0:0/96) only; ISATAP and IPv4-compatible ones are pure hex.
 */
static inline bool xtt_ip6_v4mapped(const struct xtt_k6 *a)
{
	return a->hi == 0 && (a->lo >> 32) == 0xffff;
}

/*
 * Flow cache slots: four times the IP buckets (one flow per host then
 * leaves 3/4 of the slots free: under 1% of flows find their set full),
 * clamped, a multiple of the ways.
 */
static inline u32 xtt_flow_slots(u32 ip_buckets)
{
	u32 slots = ip_buckets * 4;

	if (slots < XTT_FLOW_SLOTS_MIN)
		slots = XTT_FLOW_SLOTS_MIN;
	if (slots > XTT_FLOW_SLOTS_MAX)
		slots = XTT_FLOW_SLOTS_MAX;
	return slots;
}

/*
 * Bucket of a key: a host's offset in the net (or a port). When every
 * possible key has a bucket of its own the offset is the index (no collision,
 * no hashing); else a multiplicative hash. Keys come only from the net itself,
 * so an outsider cannot pick colliding keys beyond that net's own addresses.
 */
static inline u32 xtt_bucket(u32 key, unsigned int bits, bool direct)
{
	/* bits >= 1 always: a shift by 32 in hash_32() would index out of range */
	if (direct)
		return key;
	return hash_32(key, bits);
}

/*
 * Bytes of a packet as it was on the wire: a GSO/GRO packet of @segs segments
 * carried its headers (@hdrlen: IP + transport) once per segment.
 */
static inline u64 xtt_wire_bytes(u32 len, u32 segs, u32 hdrlen)
{
	if (segs <= 1)
		return len;
	return (u64)len + (u64)(segs - 1) * hdrlen;
}

/* The most segments one GSO packet may become (GSO_MAX_SEGS). */
#define XTT_GSO_MAX_SEGS	65535U

/*
 * Segments of a GSO packet as segmentation cuts it (tcp_gso_segment,
 * __udp_gso_segment, UFO), from validated lengths only, never from the
 * packet's own gso_segs (a guest or a packet socket forges it): @len the IP
 * total length, @hdrlen the headers every segment repeats (IP + transport),
 * @gso_size the payload per segment. A header longer than the packet, no
 * gso_size or a payload that fits in one segment: one segment. Signed, so a
 * forged header never makes the payload wrap.
 */
static inline u32 xtt_gso_segs(u32 len, u32 hdrlen, u32 gso_size)
{
	s64 payload = (s64)len - (s64)hdrlen;
	u32 segs;

	if (!gso_size || payload <= (s64)gso_size)
		return 1;
	/* 0 < payload < 2^32 here */
	segs = ((u32)payload - 1) / gso_size + 1;
	return segs > XTT_GSO_MAX_SEGS ? XTT_GSO_MAX_SEGS : segs;
}

/*
 * Which packets a table counts, as a bit set indexed by where the packet's
 * addresses are: bit (s_in | d_in << 1). Bit 0 (neither in the net) is never
 * set; bit 3 (both in: internal traffic) unless --nointernal; bits 1 and 2
 * (one side in) unless ! --nointernal (only internal).
 */
static inline u8 xtt_count_sides(u32 flags)
{
	u8 sides = 0;

	if (!(flags & XT_TRAFFIC_ONLYINTERNAL))
		sides |= 1 << 1 | 1 << 2;
	if (!(flags & XT_TRAFFIC_NOINTERNAL))
		sides |= 1 << 3;
	return sides;
}

/*
 * Direction-less flow key: the lower (address, port) pair first (a, pa),
 * packed into two words, w0 = a | b << 32 and w1 = pa | pb << 16 |
 * proto << 32 (proto: the IP protocol, or XTT_FLOW_ICMP_MSG). Plain words
 * so that a key lives in registers and compares in two steps.
 */
struct xtt_flow_key {
	u64 w0;
	u64 w1;
};

#define xtt_flow_key_a(k)	((u32)(k)->w0)
#define xtt_flow_key_b(k)	((u32)((k)->w0 >> 32))
#define xtt_flow_key_pa(k)	((u16)(k)->w1)
#define xtt_flow_key_pb(k)	((u16)((k)->w1 >> 16))
#define xtt_flow_key_proto(k)	((u16)((k)->w1 >> 32))

/* Flow "protocol" of ICMP messages other than echo: keyed by type and code. */
#define XTT_FLOW_ICMP_MSG	0x101

static inline void xtt_flow_key_make(struct xtt_flow_key *k, u16 proto,
				     u32 src, u16 sport, u32 dst, u16 dport)
{
	if (src > dst || (src == dst && sport > dport)) {
		u32 t = src;
		u16 tp = sport;

		src = dst;
		sport = dport;
		dst = t;
		dport = tp;
	}
	k->w0 = src | (u64)dst << 32;
	k->w1 = sport | (u32)dport << 16 | (u64)proto << 32;
}

/*
 * The same key, with the ports as one word as they are in the header
 * (@ports: the value of the source port's bytes | the destination port's
 * << 16, unswapped): no byte swaps on the packet path. A key only has to be
 * the same for both directions, never readable: swapping the ends rotates
 * the word, and equal addresses put the lower half-word first.
 */
static inline void xtt_flow_key_make_ports(struct xtt_flow_key *k, u16 proto,
					   u32 src, u32 dst, u32 ports)
{
	if (src > dst || (src == dst && (u16)ports > (u16)(ports >> 16))) {
		u32 t = src;

		src = dst;
		dst = t;
		ports = ports >> 16 | ports << 16;
	}
	k->w0 = src | (u64)dst << 32;
	k->w1 = ports | (u64)proto << 32;
}

/*
 * Set of a flow in a cache of 2^bits sets (1 <= bits <= 32), @shift being
 * 64 - bits (kept by the cache: no subtract per packet): the top bits of a
 * keyed multiplicative hash of both key words. @seed is random per table, so
 * outsiders cannot tell which set their flows use.
 */
static inline u64 xtt_flow_hash(const struct xtt_flow_key *k, u64 seed,
				unsigned int shift)
{
	u64 h = (k->w0 ^ seed) * 0x9e3779b97f4a7c15ULL;

	h = (h ^ k->w1 ^ (h >> 29)) * 0xbf58476d1ce4e5b9ULL;
	return h >> shift;
}

/*
 * Flow key of an ICMP packet: echo request (8) and reply (0) share a flow by
 * their identifier; other messages are keyed by type and code.
 */
static inline void xtt_icmp_flow_key(struct xtt_flow_key *k, u32 src, u32 dst,
				     u8 type, u8 code, u16 id)
{
	if (type == 8 || type == 0)
		xtt_flow_key_make(k, 1, src, id, dst, id);
	else
		xtt_flow_key_make(k, XTT_FLOW_ICMP_MSG, src, ((u16)type << 8) | code,
				  dst, ((u16)type << 8) | code);
}

/* ICMPv6 echo request (128) and reply (129) share a flow by identifier. */
static inline void xtt_icmp6_flow_key(struct xtt_flow_key *k, u32 src, u32 dst,
				      u8 type, u8 code, u16 id)
{
	if (type == 128 || type == 129)
		xtt_flow_key_make(k, 58, src, id, dst, id);
	else
		xtt_flow_key_make(k, XTT_FLOW_ICMP_MSG, src, ((u16)type << 8) | code,
				  dst, ((u16)type << 8) | code);
}

#endif /* _XT_TRAFFIC_CORE_H */
