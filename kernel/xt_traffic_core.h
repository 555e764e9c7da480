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
static inline u32 xtt_ip_buckets(u32 mask, u32 hashsize)
{
	unsigned int prefix = xtt_prefix_len(mask);
	u32 hosts;

	if (hashsize)
		return hashsize < 2 ? 2 : xtt_roundup_pow2(hashsize);
	if (32 - prefix >= 16)
		return XTT_BUCKETS_DEFAULT_MAX;
	hosts = 1U << (32 - prefix);
	return hosts < XTT_BUCKETS_MIN ? XTT_BUCKETS_MIN : hosts;
}

/* Flow cache slots: twice the IP buckets, clamped, a multiple of the ways. */
static inline u32 xtt_flow_slots(u32 ip_buckets)
{
	u32 slots = ip_buckets * 2;

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

/* Direction-less flow key: the lower (address, port) pair first. */
struct xtt_flow_key {
	u32 a;		/* host order */
	u32 b;
	u16 pa;
	u16 pb;
	u16 proto;	/* IP protocol, or XTT_FLOW_ICMP_MSG */
};

/* Flow "protocol" of ICMP messages other than echo: keyed by type and code. */
#define XTT_FLOW_ICMP_MSG	0x101

static inline void xtt_flow_key_make(struct xtt_flow_key *k, u16 proto,
				     u32 src, u16 sport, u32 dst, u16 dport)
{
	k->proto = proto;
	if (src < dst || (src == dst && sport <= dport)) {
		k->a = src;
		k->pa = sport;
		k->b = dst;
		k->pb = dport;
	} else {
		k->a = dst;
		k->pa = dport;
		k->b = src;
		k->pb = sport;
	}
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

#endif /* _XT_TRAFFIC_CORE_H */
