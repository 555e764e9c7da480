// SPDX-License-Identifier: GPL-2.0
/*
 * xt_traffic: per-IP traffic and connection accounting with one rule.
 *
 * For every address of a monitored IPv4 net it counts bytes in and out split
 * TCP/UDP/OTHER, and new connections per address and per service port split
 * TCP/UDP/ICMP/OTHER. Tables are per network namespace, named, shared by the
 * rules that name them and read from /proc/net/xt_traffic/.
 *
 * Packet path: an RCU lookup in a per-table hash of per-key entries and
 * atomic64 adds; an entry is allocated once, on a key's first packet, under a
 * lock striped per bucket. Counters only ever grow for the life of a table:
 * a clear moves a per-counter display baseline instead (under the table's
 * clear mutex), so the spec's files show counter - baseline and every byte
 * lands in exactly one cleared read, while /proc/net/xt_traffic_counters/
 * streams the counters themselves for a collector that must never lose one.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/hash.h>
#include <linux/icmp.h>
#include <linux/init.h>
#include <linux/ip.h>
#include <net/ip.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/proc_fs.h>
#include <linux/random.h>
#include <linux/seq_file.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/uidgid.h>
#include <linux/vmalloc.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_traffic.h>

#include "compat.h"
#include "xt_traffic_core.h"

#define XT_TRAFFIC_VERSION "0.1.0"

/* The monotonic counters, one file per table: see xtt_ctr_show(). */
#define XTT_COUNTERS_DIR	"xt_traffic_counters"
#define XTT_COUNTERS_REVISION	1

MODULE_AUTHOR("xttraffic developers");
MODULE_DESCRIPTION("Xtables: per-IP traffic and connection accounting");
MODULE_LICENSE("GPL");
MODULE_VERSION(XT_TRAFFIC_VERSION);
MODULE_ALIAS("ipt_traffic");

static unsigned int max_entries __read_mostly = 1U << 20;
static unsigned int flow_timeout __read_mostly = 30;
static unsigned int proc_perms __read_mostly = 0600;
static unsigned int proc_uid __read_mostly;
static unsigned int proc_gid __read_mostly;
module_param(max_entries, uint, 0644);
module_param(flow_timeout, uint, 0644);
module_param(proc_perms, uint, 0400);
module_param(proc_uid, uint, 0644);
module_param(proc_gid, uint, 0644);
MODULE_PARM_DESC(max_entries, "most keys kept per kind per table (default 1048576)");
MODULE_PARM_DESC(flow_timeout, "seconds after which a UDP/ICMP/other flow's next packet is a new connection (default 30)");
MODULE_PARM_DESC(proc_perms, "mode of the /proc/net/xt_traffic/* files (default 0600)");
MODULE_PARM_DESC(proc_uid, "owner of the /proc/net/xt_traffic/* files");
MODULE_PARM_DESC(proc_gid, "group of the /proc/net/xt_traffic/* files");

/* Counter slots of each kind. TOTAL is derived when printing. */
enum { XTT_TR_TCP, XTT_TR_UDP, XTT_TR_OTHER, XTT_TR_N };
enum { XTT_CN_TCP, XTT_CN_UDP, XTT_CN_ICMP, XTT_CN_OTHER, XTT_CN_N };
#define XTT_IN	0
#define XTT_OUT	1

enum xtt_kind { XTT_KIND_TRAFFIC, XTT_KIND_IPCONN, XTT_KIND_PORTCONN, XTT_KINDS };

static const char *const xtt_kind_suffix[XTT_KINDS] = {
	[XTT_KIND_TRAFFIC] = "",
	[XTT_KIND_IPCONN] = XT_TRAFFIC_SUFFIX_IPCONN,
	[XTT_KIND_PORTCONN] = XT_TRAFFIC_SUFFIX_PORTCONN,
};

static const char *const xtt_kind_name[XTT_KINDS] = {
	[XTT_KIND_TRAFFIC] = "traffic",
	[XTT_KIND_IPCONN] = "ipconn",
	[XTT_KIND_PORTCONN] = "portconn",
};

/* Counters of a map's row: 2 * protocols, at most this many. */
#define XTT_COUNTERS_MAX	(2 * XTT_CN_N)

/*
 * c[0 .. n-1]: the counters, [proto * 2 + XTT_IN/OUT], only ever added to.
 * c[n .. 2n-1]: their display baselines (xtt_base()), set by clears under
 * the table's clear_mutex; the spec's files show counter - baseline.
 */
struct xtt_entry {
	struct xtt_entry __rcu *next;
	u32 key;
	atomic64_t c[];
};

/* Striped insert locks: an entry is only ever added, never removed. */
#define XTT_LOCKS	256

struct xtt_map {
	struct xt_traffic_table *table;
	enum xtt_kind kind;
	unsigned int ncounters;
	unsigned int bits;
	bool direct;
	u32 nbuckets;
	atomic_t count;
	struct xtt_entry __rcu **buckets;
	spinlock_t locks[XTT_LOCKS];	/* bucket b is guarded by locks[b % XTT_LOCKS] on insert */
};

struct xtt_flow {
	struct xtt_flow_key key;
	unsigned long last;	/* jiffies of its last packet; 0 = empty */
};

/* Readers look a flow up without the lock; writers bump seq under it. */
struct xtt_flow_set {
	seqcount_t seq;
	struct xtt_flow way[XTT_FLOW_WAYS];
};

struct xtt_flows {
	u32 nsets;		/* power of two */
	unsigned int bits;	/* log2(nsets) */
	u64 seed;
	spinlock_t locks[XTT_LOCKS];	/* set s is guarded by locks[s % XTT_LOCKS] */
	struct xtt_flow_set set[];
};

struct xt_traffic_table {
	/* read by every packet: first, in one cache line */
	u32 base;		/* host order */
	u32 mask;
	u8 sides;		/* xtt_count_sides(flags) */
	u8 fast;		/* sides traffic_mt() counts inline */
	struct xtt_map *map[XTT_KINDS];
	struct xtt_flows *flows;

	struct list_head list;
	struct net *net;
	unsigned int refcnt;
	char name[XT_TRAFFIC_NAME_LEN];
	u32 flags;
	u32 hashsize;		/* as given; 0 = derived */
	u64 generation;		/* random, non-zero: this instance of the table */
	atomic64_t overflow;	/* never cleared */
	struct mutex clear_mutex;	/* baselines: every read and clear of them */
};

struct traffic_net {
	struct list_head tables;
	struct proc_dir_entry *proc_dir;	/* xt_traffic/ */
	struct proc_dir_entry *counters_dir;	/* xt_traffic_counters/ */
};

static unsigned int traffic_net_id __read_mostly;
static DEFINE_MUTEX(traffic_mutex);

static struct traffic_net *traffic_pernet(struct net *net)
{
	return net_generic(net, traffic_net_id);
}

/* ---- maps ---- */

static struct xtt_map *xtt_map_alloc(struct xt_traffic_table *t,
				     enum xtt_kind kind, u32 nbuckets,
				     u32 keyspace)
{
	struct xtt_map *m;
	unsigned int i;

	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m)
		return NULL;
	m->buckets = kvcalloc(nbuckets, sizeof(*m->buckets), GFP_KERNEL);
	if (!m->buckets) {
		kfree(m);
		return NULL;
	}
	m->table = t;
	m->kind = kind;
	m->ncounters = 2 * (kind == XTT_KIND_TRAFFIC ? XTT_TR_N : XTT_CN_N);
	m->nbuckets = nbuckets;
	m->bits = xtt_ilog2(nbuckets);
	/* keyspace 0 means 2^32 */
	m->direct = keyspace != 0 && keyspace <= nbuckets;
	atomic_set(&m->count, 0);
	for (i = 0; i < XTT_LOCKS; i++)
		spin_lock_init(&m->locks[i]);
	return m;
}

static void xtt_map_free(struct xtt_map *m)
{
	struct xtt_entry *e, *next;
	u32 i;

	if (!m)
		return;
	for (i = 0; i < m->nbuckets; i++) {
		for (e = rcu_dereference_protected(m->buckets[i], 1); e; e = next) {
			next = rcu_dereference_protected(e->next, 1);
			kfree(e);
		}
	}
	kvfree(m->buckets);
	kfree(m);
}

static __always_inline struct xtt_entry *xtt_map_find(struct xtt_map *m,
						      u32 idx, u32 key)
{
	struct xtt_entry *e;

	for (e = rcu_dereference(m->buckets[idx]); e; e = rcu_dereference(e->next))
		if (e->key == key)
			return e;
	return NULL;
}

/* Slow path: a key's first packet. Never fails the packet; counts overflow. */
static noinline struct xtt_entry *xtt_map_insert(struct xtt_map *m, u32 idx,
						 u32 key)
{
	spinlock_t *lock = &m->locks[idx % XTT_LOCKS];
	struct xtt_entry *e;

	/* _bh: OUTPUT hooks may run with BHs enabled (nft backend) */
	spin_lock_bh(lock);
	e = xtt_map_find(m, idx, key);
	if (e)
		goto out;
	if (atomic_read(&m->count) >= READ_ONCE(max_entries))
		goto out;
	/* the counters and their baselines, all zero */
	e = kzalloc(struct_size(e, c, 2 * m->ncounters), GFP_ATOMIC | __GFP_NOWARN);
	if (!e)
		goto out;
	e->key = key;
	RCU_INIT_POINTER(e->next, rcu_dereference_protected(m->buckets[idx],
							    lockdep_is_held(lock)));
	rcu_assign_pointer(m->buckets[idx], e);
	atomic_inc(&m->count);
out:
	spin_unlock_bh(lock);
	if (!e)
		atomic64_inc(&m->table->overflow);
	return e;
}

/* Every counted packet comes here: inlined, one lookup and one atomic add. */
static __always_inline void xtt_map_add(struct xtt_map *m, u32 key,
					unsigned int slot, u64 n)
{
	u32 idx = xtt_bucket(key, m->bits, m->direct);
	struct xtt_entry *e;

	e = xtt_map_find(m, idx, key);
	if (unlikely(!e)) {
		e = xtt_map_insert(m, idx, key);
		if (!e)
			return;
	}
	atomic64_add(n, &e->c[slot]);
}

/* ---- flow cache (new connections for UDP, ICMP, other) ---- */

static struct xtt_flows *xtt_flows_alloc(u32 slots)
{
	u32 nsets = slots / XTT_FLOW_WAYS;
	struct xtt_flows *f;
	unsigned int i;

	f = kvzalloc(struct_size(f, set, nsets), GFP_KERNEL);
	if (!f)
		return NULL;
	f->nsets = nsets;
	f->bits = xtt_ilog2(nsets);
	f->seed = get_random_u64();
	for (i = 0; i < XTT_LOCKS; i++)
		spin_lock_init(&f->locks[i]);
	for (i = 0; i < nsets; i++)
		seqcount_init(&f->set[i].seq);
	return f;
}

static bool xtt_flow_key_eq(const struct xtt_flow_key *x,
			    const struct xtt_flow_key *y)
{
	return x->w0 == y->w0 && x->w1 == y->w1;
}

/*
 * Under the set's lock: true when @k starts a flow not seen for flow_timeout
 * seconds (it is then recorded, in an empty way or the least recent one).
 */
static bool xtt_flow_update(struct xtt_flows *f, struct xtt_flow_key k)
{
	unsigned long now = jiffies | 1;	/* 0 marks an empty slot */
	unsigned long timeout = (unsigned long)READ_ONCE(flow_timeout) * HZ;
	u32 h = xtt_flow_hash(&k, f->seed, f->bits);
	struct xtt_flow_set *set = &f->set[h];
	struct xtt_flow *w = set->way, *victim = w;
	spinlock_t *lock = &f->locks[h % XTT_LOCKS];
	bool is_new = true;
	unsigned int i;

	/* _bh: OUTPUT hooks may run with BHs enabled (nft backend) */
	spin_lock_bh(lock);
	for (i = 0; i < XTT_FLOW_WAYS; i++) {
		if (w[i].last && xtt_flow_key_eq(&w[i].key, &k)) {
			is_new = time_after(now, w[i].last + timeout);
			victim = &w[i];
			break;
		}
		/* otherwise replace an empty slot or the least recent one */
		if (victim->last && (!w[i].last || time_before(w[i].last, victim->last)))
			victim = &w[i];
	}
	raw_write_seqcount_begin(&set->seq);
	victim->key = k;
	WRITE_ONCE(victim->last, now);
	raw_write_seqcount_end(&set->seq);
	spin_unlock_bh(lock);
	return is_new;
}

/*
 * Lockless: true when @k is a flow seen within flow_timeout seconds (its
 * time is then refreshed). The set's seqcount proves the key read was
 * whole. False sends the packet to xtt_flow_update(), which decides under
 * the lock, so two CPUs never both count one new flow.
 */
static __always_inline bool xtt_flow_seen(struct xtt_flows *f,
					  const struct xtt_flow_key *k)
{
	unsigned long now = jiffies | 1;
	unsigned long timeout = (unsigned long)READ_ONCE(flow_timeout) * HZ;
	struct xtt_flow_set *set = &f->set[xtt_flow_hash(k, f->seed, f->bits)];
	struct xtt_flow *w = set->way, *end = w + XTT_FLOW_WAYS;
	unsigned int seq;

	seq = raw_read_seqcount_begin(&set->seq);
	for (; w < end; w++) {
		unsigned long last = READ_ONCE(w->last);

		if (!last || !xtt_flow_key_eq(&w->key, k))
			continue;
		if (time_after(now, last + timeout) ||
		    read_seqcount_retry(&set->seq, seq))
			return false;
		/* a racing writer may have reused the way: it was just seen too */
		if (last != now)
			WRITE_ONCE(w->last, now);
		return true;
	}
	return false;
}

/* ---- the match ---- */

static noinline void xtt_count_conn(struct xt_traffic_table *t,
				    u32 src, bool s_in, u32 dst, bool d_in,
				    unsigned int proto, u16 port)
{
	struct xtt_map *m;

	m = t->map[XTT_KIND_IPCONN];
	if (m) {
		if (s_in)
			xtt_map_add(m, src & ~t->mask, proto * 2 + XTT_OUT, 1);
		if (d_in)
			xtt_map_add(m, dst & ~t->mask, proto * 2 + XTT_IN, 1);
	}
	m = t->map[XTT_KIND_PORTCONN];
	if (m) {
		if (d_in)
			xtt_map_add(m, port, proto * 2 + XTT_IN, 1);
		if (s_in)
			xtt_map_add(m, port, proto * 2 + XTT_OUT, 1);
	}
}

/* What a packet means for the connection counts. */
enum xtt_conn_kind {
	XTT_CONN_NONE,		/* nothing: TCP other than SYN, or no header */
	XTT_CONN_NEW,		/* a new connection: a TCP SYN */
	XTT_CONN_FLOW,		/* new if its flow was not seen recently */
};

/*
 * The connection facts of a packet whose transport header is at @l4 (NULL
 * when the packet is too short for it: then only protocols without ports
 * count): the flow key, the XTT_CN_* protocol and the destination port.
 */
static __always_inline enum xtt_conn_kind
xtt_conn_key(const struct iphdr *iph, const void *l4, u32 src, u32 dst,
	     struct xtt_flow_key *k, unsigned int *proto, u16 *port)
{
	switch (iph->protocol) {
	case IPPROTO_TCP: {
		const struct tcphdr *th = l4;

		if (!th || !th->syn || th->ack)
			return XTT_CONN_NONE;
		*proto = XTT_CN_TCP;
		*port = ntohs(th->dest);
		return XTT_CONN_NEW;
	}
	case IPPROTO_UDP: {
		const struct udphdr *uh = l4;

		if (!uh)
			return XTT_CONN_NONE;
		*proto = XTT_CN_UDP;
		*port = ntohs(uh->dest);
		xtt_flow_key_make(k, IPPROTO_UDP, src, ntohs(uh->source),
				  dst, *port);
		return XTT_CONN_FLOW;
	}
	case IPPROTO_ICMP: {
		const struct icmphdr *ih = l4;

		if (!ih)
			return XTT_CONN_NONE;
		*proto = XTT_CN_ICMP;
		*port = 0;
		xtt_icmp_flow_key(k, src, dst, ih->type, ih->code,
				  ntohs(ih->un.echo.id));
		return XTT_CONN_FLOW;
	}
	default:
		*proto = XTT_CN_OTHER;
		*port = 0;
		xtt_flow_key_make(k, iph->protocol, src, 0, dst, 0);
		return XTT_CONN_FLOW;
	}
}

/* Transport header length of a GSO packet, for its per-segment headers. */
static unsigned int xtt_gso_thlen(const struct sk_buff *skb,
				  const struct iphdr *iph, unsigned int thoff)
{
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr _th;
		const struct tcphdr *th;

		th = skb_header_pointer(skb, thoff, sizeof(_th), &_th);
		return th ? th->doff * 4 : sizeof(_th);
	}
	if (iph->protocol == IPPROTO_UDP)
		return sizeof(struct udphdr);
	return 0;
}

static noinline u64 xtt_gso_bytes(const struct sk_buff *skb,
				  const struct iphdr *iph, unsigned int len)
{
	const struct skb_shared_info *shinfo = skb_shinfo(skb);
	unsigned int ihl = iph->ihl * 4;
	unsigned int thlen, segs;

	/* IPv4 BIG TCP leaves tot_len 0 */
	if (!len)
		len = skb->len - skb_network_offset(skb);
	thlen = xtt_gso_thlen(skb, iph, skb_network_offset(skb) + ihl);
	segs = shinfo->gso_segs;
	if (!segs && shinfo->gso_size)
		segs = DIV_ROUND_UP(len - ihl - thlen, shinfo->gso_size);
	return xtt_wire_bytes(len, segs, ihl + thlen);
}

/* Traffic counter pair of an IP protocol: XTT_TR_* * 2 (+ XTT_IN/XTT_OUT). */
static const u8 xtt_tr_slot[256] = {
	[0 ... 255] = XTT_TR_OTHER * 2,
	[IPPROTO_TCP] = XTT_TR_TCP * 2,
	[IPPROTO_UDP] = XTT_TR_UDP * 2,
};

/* Where a packet's addresses are: bit 0 source in the net, bit 1 destination. */
static __always_inline unsigned int xtt_where(const struct xt_traffic_table *t,
					      u32 src, u32 dst)
{
	return ((src & t->mask) == t->base) |
	       ((dst & t->mask) == t->base) << 1;
}

/* Transport header bytes the connection logic reads. */
static unsigned int xtt_l4_len(u8 protocol)
{
	return protocol == IPPROTO_TCP ? sizeof(struct tcphdr) : 8;
}

/*
 * Connections of a packet, every case: copies a header not in the linear
 * data, decides new flows under the lock, counts.
 */
static noinline bool traffic_mt_conn_full(const struct sk_buff *skb,
					  struct xt_traffic_table *t,
					  unsigned int where)
{
	const struct iphdr *iph = ip_hdr(skb);
	u32 src = ntohl(iph->saddr);
	u32 dst = ntohl(iph->daddr);
	union {
		struct tcphdr th;
		struct udphdr uh;
		struct icmphdr ih;
	} buf;
	struct xtt_flow_key k;
	unsigned int proto;
	const void *l4;
	u16 port;

	l4 = skb_header_pointer(skb, skb_network_offset(skb) + iph->ihl * 4,
				xtt_l4_len(iph->protocol), &buf);
	switch (xtt_conn_key(iph, l4, src, dst, &k, &proto, &port)) {
	case XTT_CONN_NONE:
		return true;
	case XTT_CONN_FLOW:
		if (!xtt_flow_update(t->flows, k))
			return true;
		break;
	case XTT_CONN_NEW:
		break;
	}
	xtt_count_conn(t, src, where & 1, dst, where & 2, proto, port);
	return true;
}

/*
 * Connections of a packet, the common case: a linear header and a flow seen
 * before, found without a lock. Out of line (a tail call from traffic_mt())
 * and with no buffer (no stack canary); anything else goes to the full path.
 */
static noinline bool traffic_mt_conn(const struct sk_buff *skb,
				     struct xt_traffic_table *t,
				     const struct iphdr *iph, unsigned int where)
{
	unsigned int thoff = skb_network_offset(skb) + iph->ihl * 4;
	struct xtt_flow_key k;
	unsigned int proto;
	u16 port;

	/* room for the longest header read (TCP); a shorter one: full path */
	if (unlikely(thoff + sizeof(struct tcphdr) > skb_headlen(skb)))
		return traffic_mt_conn_full(skb, t, where);
	switch (xtt_conn_key(iph, skb->data + thoff, ntohl(iph->saddr),
			     ntohl(iph->daddr), &k, &proto, &port)) {
	case XTT_CONN_NONE:
		return true;
	case XTT_CONN_FLOW:
		if (xtt_flow_seen(t->flows, &k))
			return true;
		break;
	case XTT_CONN_NEW:
		break;
	}
	return traffic_mt_conn_full(skb, t, where);
}

/* Every case: GSO, internal traffic, a key's first packet, connections. */
static noinline bool traffic_mt_full(const struct sk_buff *skb,
				     struct xt_action_param *par)
{
	const struct xt_traffic_mtinfo *info = par->matchinfo;
	struct xt_traffic_table *t = info->table;
	const struct iphdr *iph = ip_hdr(skb);
	u32 src = ntohl(iph->saddr);
	u32 dst = ntohl(iph->daddr);
	unsigned int where = xtt_where(t, src, dst);
	struct xtt_map *m;

	if (!(t->sides & (1U << where)))
		return true;
	m = t->map[XTT_KIND_TRAFFIC];
	if (m) {
		unsigned int len = ntohs(iph->tot_len);
		unsigned int slot = xtt_tr_slot[iph->protocol];
		u64 bytes = len;

		if (unlikely(skb_is_gso(skb)))
			bytes = xtt_gso_bytes(skb, iph, len);
		if (where & 1)
			xtt_map_add(m, src & ~t->mask, slot + XTT_OUT, bytes);
		if (where & 2)
			xtt_map_add(m, dst & ~t->mask, slot + XTT_IN, bytes);
	}

	/* Connections start in a first fragment (or an unfragmented packet). */
	if (t->flows && !(iph->frag_off & htons(IP_OFFSET)))
		return traffic_mt_conn(skb, t, iph, where);
	return true;
}

/*
 * The common case inline, with no stack frame: one side in the net, a known
 * key, no GSO. Anything else is a tail call to traffic_mt_full(), which does
 * the whole packet. The match never drops: it always returns true.
 */
static bool traffic_mt(const struct sk_buff *skb, struct xt_action_param *par)
{
	const struct xt_traffic_mtinfo *info = par->matchinfo;
	struct xt_traffic_table *t = info->table;
	const struct iphdr *iph = ip_hdr(skb);
	u32 src = ntohl(iph->saddr);
	u32 dst = ntohl(iph->daddr);
	unsigned int where = xtt_where(t, src, dst);
	struct xtt_map *m;
	struct xtt_entry *e;
	unsigned int slot;
	u32 key;

	if (!where)
		return true;
	/* t->fast: the sides counted here (one side in the net, --traffic) */
	if (unlikely(!(t->fast & (1U << where)) || skb_is_gso(skb)))
		return traffic_mt_full(skb, par);

	slot = xtt_tr_slot[iph->protocol];
	if (where & 1) {
		key = src & ~t->mask;
		slot += XTT_OUT;
	} else {
		key = dst & ~t->mask;
		slot += XTT_IN;
	}
	m = t->map[XTT_KIND_TRAFFIC];
	e = xtt_map_find(m, xtt_bucket(key, m->bits, m->direct), key);
	if (unlikely(!e))
		return traffic_mt_full(skb, par);
	atomic64_add(ntohs(iph->tot_len), &e->c[slot]);

	if (t->flows && !(iph->frag_off & htons(IP_OFFSET)))
		return traffic_mt_conn(skb, t, iph, where);
	return true;
}

/* ---- /proc: snapshots ---- */

/* One row: the key, then the counters, all u64 so sort() swaps words. */
struct xtt_snap {
	struct xtt_map *map;
	unsigned int stride;	/* u64 words per row */
	size_t rows;
	u64 *data;
};

static int xtt_row_cmp(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* Display baseline of counter @i of an entry of @m. */
static atomic64_t *xtt_base(const struct xtt_map *m, struct xtt_entry *e,
			    unsigned int i)
{
	return &e->c[m->ncounters + i];
}

/*
 * Copy every displayed counter (counter - baseline) of the map; with @clear,
 * also move each baseline to the counter value just read. Under the table's
 * clear_mutex, so two clears never both take one baseline: a packet added
 * before a counter is read lands in this read, one added after in the next.
 * Entries added after their bucket was passed are left for the next snapshot.
 */
static int xtt_snapshot(struct xtt_snap *s, struct xtt_map *m, bool clear)
{
	unsigned int n = m->ncounters, i;
	size_t cap, rows = 0;
	struct xtt_entry *e;
	u32 b;

	s->map = m;
	s->stride = 1 + n;
	cap = atomic_read(&m->count) + 1024;
	s->data = kvmalloc_array(cap, s->stride * sizeof(u64), GFP_KERNEL);
	if (!s->data)
		return -ENOMEM;

	mutex_lock(&m->table->clear_mutex);
	rcu_read_lock();
	for (b = 0; b < m->nbuckets && rows < cap; b++) {
		for (e = rcu_dereference(m->buckets[b]); e && rows < cap;
		     e = rcu_dereference(e->next)) {
			u64 *row = s->data + rows * s->stride;
			u64 any = 0;

			row[0] = e->key;
			for (i = 0; i < n; i++) {
				u64 v = atomic64_read(&e->c[i]);

				row[1 + i] = v - atomic64_read(xtt_base(m, e, i));
				if (clear)
					atomic64_set(xtt_base(m, e, i), v);
				any |= row[1 + i];
			}
			if (any)
				rows++;
		}
		if ((b & 1023) == 1023) {
			rcu_read_unlock();
			cond_resched();
			rcu_read_lock();
		}
	}
	rcu_read_unlock();
	mutex_unlock(&m->table->clear_mutex);
	s->rows = rows;
	/* a direct map's bucket is its key: the walk was in key order */
	if (!m->direct)
		sort(s->data, rows, s->stride * sizeof(u64), xtt_row_cmp, NULL);
	return 0;
}

static void *xtt_seq_start(struct seq_file *seq, loff_t *pos)
{
	struct xtt_snap *s = seq->private;

	if (*pos == 0)
		return SEQ_START_TOKEN;
	if (*pos > s->rows)
		return NULL;
	return s->data + (*pos - 1) * s->stride;
}

static void *xtt_seq_next(struct seq_file *seq, void *v, loff_t *pos)
{
	++*pos;
	return xtt_seq_start(seq, pos);
}

static void xtt_seq_stop(struct seq_file *seq, void *v)
{
}

/*
 * One row of a map: the key (an IP of the net, or a port), total in, total
 * out, then the @m->ncounters counters @c, tab separated.
 */
static void xtt_put_row(struct seq_file *seq, const struct xtt_map *m,
			u32 key, const u64 *c)
{
	unsigned int np = m->ncounters / 2, i;
	u64 tin = 0, tout = 0;

	/* seq_put_decimal_ull: a tenth of seq_printf's cost, on big tables */
	if (m->kind == XTT_KIND_PORTCONN) {
		seq_put_decimal_ull(seq, "", key);
	} else {
		u32 ip = m->table->base | key;

		seq_put_decimal_ull(seq, "", ip >> 24);
		seq_put_decimal_ull(seq, ".", (ip >> 16) & 255);
		seq_put_decimal_ull(seq, ".", (ip >> 8) & 255);
		seq_put_decimal_ull(seq, ".", ip & 255);
	}
	for (i = 0; i < np; i++) {
		tin += c[i * 2 + XTT_IN];
		tout += c[i * 2 + XTT_OUT];
	}
	seq_put_decimal_ull(seq, "\t", tin);
	seq_put_decimal_ull(seq, "\t", tout);
	for (i = 0; i < m->ncounters; i++)
		seq_put_decimal_ull(seq, "\t", c[i]);
	seq_putc(seq, '\n');
}

static int xtt_seq_show(struct seq_file *seq, void *v)
{
	struct xtt_snap *s = seq->private;
	const u64 *row = v;

	if (v == SEQ_START_TOKEN) {
		switch (s->map->kind) {
		case XTT_KIND_TRAFFIC:
			seq_puts(seq, "IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n");
			break;
		case XTT_KIND_IPCONN:
			seq_puts(seq, "IP\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n");
			break;
		default:
			seq_puts(seq, "PORT\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n");
			break;
		}
		return 0;
	}
	xtt_put_row(seq, s->map, (u32)row[0], row + 1);
	return 0;
}

static const struct seq_operations xtt_seq_ops = {
	.start	= xtt_seq_start,
	.next	= xtt_seq_next,
	.stop	= xtt_seq_stop,
	.show	= xtt_seq_show,
};

/* Clearing takes CAP_NET_ADMIN of the netns's owner, held by the opener. */
static bool xtt_may_clear(const struct file *file, struct xt_traffic_table *t)
{
	return file_ns_capable(file, t->net->user_ns, CAP_NET_ADMIN);
}

static int xtt_proc_open(struct inode *inode, struct file *file)
{
	struct xtt_map *m = pde_data(inode);
	struct xtt_snap *s;
	bool clear;
	int ret;

	/*
	 * Opening read-write is the explicit read-and-clear; a --clearonread
	 * table clears on every read. Either needs the capability: read
	 * permission alone (proc_perms) must not clear anything.
	 */
	clear = (m->table->flags & XT_TRAFFIC_CLEARONREAD) ||
		(file->f_mode & FMODE_WRITE);
	if (clear && !xtt_may_clear(file, m->table))
		return -EPERM;
	s = __seq_open_private(file, &xtt_seq_ops, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (file->f_mode & FMODE_READ) {
		ret = xtt_snapshot(s, m, clear);
		if (ret) {
			seq_release_private(inode, file);
			return ret;
		}
	} else {
		s->map = m;
	}
	return 0;
}

static int xtt_proc_release(struct inode *inode, struct file *file)
{
	struct seq_file *seq = file->private_data;
	struct xtt_snap *s = seq->private;

	kvfree(s->data);
	return seq_release_private(inode, file);
}

/* A clear without a read: every baseline of the map moves to its counter. */
static void xtt_map_clear(struct xtt_map *m)
{
	struct xtt_entry *e;
	unsigned int i;
	u32 b;

	mutex_lock(&m->table->clear_mutex);
	rcu_read_lock();
	for (b = 0; b < m->nbuckets; b++) {
		for (e = rcu_dereference(m->buckets[b]); e;
		     e = rcu_dereference(e->next))
			for (i = 0; i < m->ncounters; i++)
				atomic64_set(xtt_base(m, e, i),
					     atomic64_read(&e->c[i]));
		if ((b & 1023) == 1023) {
			rcu_read_unlock();
			cond_resched();
			rcu_read_lock();
		}
	}
	rcu_read_unlock();
	mutex_unlock(&m->table->clear_mutex);
}

static ssize_t xtt_proc_write(struct file *file, const char __user *ubuf,
			      size_t size, loff_t *loff)
{
	struct xtt_map *m = pde_data(file_inode(file));
	char buf[16];

	if (!xtt_may_clear(file, m->table))
		return -EPERM;
	if (size == 0)
		return 0;
	if (size >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, size))
		return -EFAULT;
	buf[size] = '\0';
	if (size && buf[size - 1] == '\n')
		buf[size - 1] = '\0';
	if (strcmp(buf, "clear") != 0) {
		pr_info_ratelimited("%s%s: unknown command \"%s\" (allowed: clear)\n",
				    m->table->name, xtt_kind_suffix[m->kind], buf);
		return -EINVAL;
	}
	xtt_map_clear(m);
	return size;
}

static const struct proc_ops xtt_proc_ops = {
	.proc_open	= xtt_proc_open,
	.proc_read	= seq_read,
	.proc_write	= xtt_proc_write,
	.proc_lseek	= seq_lseek,
	.proc_release	= xtt_proc_release,
};

/* The "options:" line of NAME_info and of the counters file. */
static void xtt_put_options(struct seq_file *seq,
			    const struct xt_traffic_table *t)
{
	seq_puts(seq, "options:");
	if (t->flags & XT_TRAFFIC_TRAFFIC)
		seq_puts(seq, " traffic");
	if (t->flags & XT_TRAFFIC_PORTCONN)
		seq_puts(seq, " portconn");
	if (t->flags & XT_TRAFFIC_IPCONN)
		seq_puts(seq, " ipconn");
	if (t->flags & XT_TRAFFIC_NOINTERNAL)
		seq_puts(seq, " nointernal");
	if (t->flags & XT_TRAFFIC_ONLYINTERNAL)
		seq_puts(seq, " onlyinternal");
	if (t->flags & XT_TRAFFIC_CLEARONREAD)
		seq_puts(seq, " clearonread");
	seq_putc(seq, '\n');
}

/* NAME_info: configuration and state, one "key: value" a line. */
static int xtt_info_show(struct seq_file *seq, void *v)
{
	struct xt_traffic_table *t = seq->private;
	__be32 base = htonl(t->base), mask = htonl(t->mask);
	unsigned int k;

	/*
	 * No traffic_mutex here: destroy removes this file while holding it
	 * and waits for readers. The maps never change after creation.
	 */
	seq_printf(seq, "name: %s\nfamily: ipv4\nnetbase: %pI4\nnetmask: %pI4\n",
		   t->name, &base, &mask);
	xtt_put_options(seq, t);
	seq_printf(seq, "hashsize: %u\n",
		   t->map[XTT_KIND_TRAFFIC] ? t->map[XTT_KIND_TRAFFIC]->nbuckets :
		   t->map[XTT_KIND_IPCONN] ? t->map[XTT_KIND_IPCONN]->nbuckets : 0);
	seq_printf(seq, "flow_slots: %u\n",
		   t->flows ? t->flows->nsets * XTT_FLOW_WAYS : 0);
	seq_printf(seq, "rules: %u\n", READ_ONCE(t->refcnt));
	seq_printf(seq, "max_entries: %u\n", READ_ONCE(max_entries));
	for (k = 0; k < XTT_KINDS; k++)
		if (t->map[k])
			seq_printf(seq, "%s_entries: %d\n", xtt_kind_name[k],
				   atomic_read(&t->map[k]->count));
	seq_printf(seq, "overflow: %lld\n", atomic64_read(&t->overflow));
	seq_printf(seq, "generation: %016llx\n", t->generation);
	return 0;
}

static int xtt_info_open(struct inode *inode, struct file *file)
{
	return single_open(file, xtt_info_show, pde_data(inode));
}

static const struct proc_ops xtt_info_proc_ops = {
	.proc_open	= xtt_info_open,
	.proc_read	= seq_read,
	.proc_lseek	= seq_lseek,
	.proc_release	= single_release,
};

/*
 * xt_traffic_counters/NAME: the monotonic counters, streamed. The iterator
 * walks the live hash chains with no snapshot and no allocation: the head,
 * then per enabled kind a "[kind]" line and one row per entry, then "[end]".
 * Entries are only ever pushed at the head of a chain and freed with the
 * table, after its files are gone, so the entry reached last stays valid
 * from one read() to the next and the walk goes on from it: every entry
 * that existed at open is shown, and none twice.
 */
enum xtt_ctr_at { XTT_AT_HEAD, XTT_AT_SECTION, XTT_AT_ENTRY, XTT_AT_END,
		  XTT_AT_DONE };

struct xtt_ctr_iter {
	struct xt_traffic_table *t;
	loff_t pos;		/* seq_file position of the element below */
	enum xtt_ctr_at at;
	unsigned int kind;	/* enum xtt_kind */
	u32 bucket;
	struct xtt_entry *e;
};

/*
 * No RCU read side needed: an entry lives as long as the table, and the
 * table outlives this file (see above); this only orders the reads after
 * the entry's initialisation, as rcu_dereference() does.
 */
static struct xtt_entry *xtt_ctr_deref(struct xtt_entry __rcu *const *p)
{
	return rcu_dereference_check(*p, true);
}

/* The section of the first enabled kind from @k on, else the end. */
static void xtt_ctr_section(struct xtt_ctr_iter *it, unsigned int k)
{
	for (; k < XTT_KINDS; k++) {
		if (it->t->map[k]) {
			it->at = XTT_AT_SECTION;
			it->kind = k;
			return;
		}
	}
	it->at = XTT_AT_END;
}

/* The first entry of the section's map from bucket @b on, else what follows. */
static void xtt_ctr_scan(struct xtt_ctr_iter *it, u32 b)
{
	struct xtt_map *m = it->t->map[it->kind];

	for (; b < m->nbuckets; b++) {
		struct xtt_entry *e = xtt_ctr_deref(&m->buckets[b]);

		if (e) {
			it->at = XTT_AT_ENTRY;
			it->bucket = b;
			it->e = e;
			return;
		}
		if ((b & 4095) == 4095)
			cond_resched();
	}
	xtt_ctr_section(it, it->kind + 1);
}

static void xtt_ctr_advance(struct xtt_ctr_iter *it)
{
	struct xtt_entry *e;

	switch (it->at) {
	case XTT_AT_HEAD:
		xtt_ctr_section(it, 0);
		break;
	case XTT_AT_SECTION:
		xtt_ctr_scan(it, 0);
		break;
	case XTT_AT_ENTRY:
		e = xtt_ctr_deref(&it->e->next);
		if (e)
			it->e = e;
		else
			xtt_ctr_scan(it, it->bucket + 1);
		break;
	default:
		it->at = XTT_AT_DONE;
		break;
	}
}

static void *xtt_ctr_start(struct seq_file *seq, loff_t *pos)
{
	struct xtt_ctr_iter *it = seq->private;

	/*
	 * seq_read() resumes at the position where next() left the iterator;
	 * position 0 is a new walk, any other position (a seek) walks to it.
	 */
	if (*pos == 0 || *pos != it->pos) {
		it->at = XTT_AT_HEAD;
		it->pos = 0;
		while (it->pos < *pos && it->at != XTT_AT_DONE) {
			xtt_ctr_advance(it);
			it->pos++;
		}
	}
	return it->at == XTT_AT_DONE ? NULL : it;
}

static void *xtt_ctr_next(struct seq_file *seq, void *v, loff_t *pos)
{
	struct xtt_ctr_iter *it = seq->private;

	xtt_ctr_advance(it);
	it->pos = ++*pos;
	return it->at == XTT_AT_DONE ? NULL : it;
}

static void xtt_ctr_stop(struct seq_file *seq, void *v)
{
}

static int xtt_ctr_show(struct seq_file *seq, void *v)
{
	struct xtt_ctr_iter *it = v;
	struct xt_traffic_table *t = it->t;
	const struct xtt_map *m;
	u64 c[XTT_COUNTERS_MAX];
	__be32 base, mask;
	unsigned int i;

	switch (it->at) {
	case XTT_AT_HEAD:
		base = htonl(t->base);
		mask = htonl(t->mask);
		seq_printf(seq, "xt_traffic_counters %d\nname: %s\ngeneration: %016llx\n",
			   XTT_COUNTERS_REVISION, t->name, t->generation);
		xtt_put_options(seq, t);
		seq_printf(seq, "netbase: %pI4\nnetmask: %pI4\noverflow: %llu\n",
			   &base, &mask, (u64)atomic64_read(&t->overflow));
		break;
	case XTT_AT_SECTION:
		seq_printf(seq, "[%s]\n", xtt_kind_name[it->kind]);
		break;
	case XTT_AT_ENTRY:
		m = t->map[it->kind];
		for (i = 0; i < m->ncounters; i++)
			c[i] = atomic64_read(&it->e->c[i]);
		xtt_put_row(seq, m, it->e->key, c);
		break;
	default:
		seq_puts(seq, "[end]\n");
		break;
	}
	return 0;
}

static const struct seq_operations xtt_ctr_seq_ops = {
	.start	= xtt_ctr_start,
	.next	= xtt_ctr_next,
	.stop	= xtt_ctr_stop,
	.show	= xtt_ctr_show,
};

static int xtt_ctr_open(struct inode *inode, struct file *file)
{
	struct xtt_ctr_iter *it;

	/* read only, whoever opens it: it never clears and takes no command */
	if (file->f_mode & FMODE_WRITE)
		return -EPERM;
	it = __seq_open_private(file, &xtt_ctr_seq_ops, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->t = pde_data(inode);
	it->at = XTT_AT_HEAD;
	return 0;
}

static const struct proc_ops xtt_ctr_proc_ops = {
	.proc_open	= xtt_ctr_open,
	.proc_read	= seq_read,
	.proc_lseek	= seq_lseek,
	.proc_release	= seq_release_private,
};

/* ---- tables ---- */

static struct xt_traffic_table *xtt_table_lookup(struct traffic_net *tn,
						 const char *name)
{
	struct xt_traffic_table *t;

	list_for_each_entry(t, &tn->tables, list)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

/*
 * The table's files, in the order they are created: NAME, NAME_ipconn,
 * NAME_portconn (the enabled ones), NAME_info, then xt_traffic_counters/NAME.
 * False when the table has no file @i.
 */
enum { XTT_FILE_INFO = XTT_KINDS, XTT_FILE_COUNTERS, XTT_FILES };

static bool xtt_table_file(const struct traffic_net *tn,
			   const struct xt_traffic_table *t, unsigned int i,
			   char *fname, size_t size, struct proc_dir_entry **dir)
{
	*dir = tn->proc_dir;
	switch (i) {
	case XTT_FILE_INFO:
		snprintf(fname, size, "%s%s", t->name, XT_TRAFFIC_SUFFIX_INFO);
		return true;
	case XTT_FILE_COUNTERS:
		*dir = tn->counters_dir;
		strscpy(fname, t->name, size);
		return true;
	default:
		snprintf(fname, size, "%s%s", t->name, xtt_kind_suffix[i]);
		return t->map[i];
	}
}

/* Removes the table's first @n files (all of them: XTT_FILES). */
static void xtt_table_remove_files(struct traffic_net *tn,
				   struct xt_traffic_table *t, unsigned int n)
{
	char fname[XT_TRAFFIC_NAME_LEN + 16];
	struct proc_dir_entry *dir;
	unsigned int i;

	if (!tn->proc_dir)	/* the netns is going away: already removed */
		return;
	for (i = 0; i < n; i++)
		if (xtt_table_file(tn, t, i, fname, sizeof(fname), &dir))
			remove_proc_entry(fname, dir);
}

static void xtt_table_remove_proc(struct traffic_net *tn,
				  struct xt_traffic_table *t)
{
	xtt_table_remove_files(tn, t, XTT_FILES);
}

static void xtt_table_free(struct xt_traffic_table *t)
{
	unsigned int k;

	for (k = 0; k < XTT_KINDS; k++)
		xtt_map_free(t->map[k]);
	kvfree(t->flows);
	mutex_destroy(&t->clear_mutex);
	kfree(t);
}

/* Every file of a table has the same mode, owner and group. */
static int xtt_table_add_proc(struct traffic_net *tn, struct xt_traffic_table *t)
{
	kuid_t uid = make_kuid(t->net->user_ns, proc_uid);
	kgid_t gid = make_kgid(t->net->user_ns, proc_gid);
	char fname[XT_TRAFFIC_NAME_LEN + 16];
	const struct proc_ops *ops;
	struct proc_dir_entry *pde, *dir;
	unsigned int i;
	void *data;

	if (!uid_valid(uid) || !gid_valid(gid)) {
		pr_info_ratelimited("proc_uid %u or proc_gid %u is not mapped in this namespace\n",
				    proc_uid, proc_gid);
		return -EINVAL;
	}
	for (i = 0; i < XTT_FILES; i++) {
		if (!xtt_table_file(tn, t, i, fname, sizeof(fname), &dir))
			continue;
		switch (i) {
		case XTT_FILE_INFO:
			ops = &xtt_info_proc_ops;
			data = t;
			break;
		case XTT_FILE_COUNTERS:
			ops = &xtt_ctr_proc_ops;
			data = t;
			break;
		default:
			ops = &xtt_proc_ops;
			data = t->map[i];
			break;
		}
		pde = proc_create_data(fname, proc_perms, dir, ops, data);
		if (!pde)
			goto out_remove;
		proc_set_user(pde, uid, gid);
	}
	return 0;

out_remove:
	pr_info_ratelimited("cannot create /proc/net/%s/%s\n",
			    i == XTT_FILE_COUNTERS ? XTT_COUNTERS_DIR :
			    XT_TRAFFIC_PROC_DIR, fname);
	/* only the files created before this one */
	xtt_table_remove_files(tn, t, i);
	return -ENOMEM;
}

static struct xt_traffic_table *xtt_table_create(struct net *net,
						 const struct xt_traffic_mtinfo *info)
{
	struct xt_traffic_table *t;
	u32 ipb;

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return NULL;
	t->net = net;
	t->refcnt = 1;
	strscpy(t->name, info->name, sizeof(t->name));
	t->flags = info->flags;
	t->base = ntohl(info->netbase.ip);
	t->mask = ntohl(info->netmask.ip);
	t->sides = xtt_count_sides(t->flags);
	/* internal packets (both sides) and tables without --traffic: full path */
	t->fast = t->flags & XT_TRAFFIC_TRAFFIC ? t->sides & (1 << 1 | 1 << 2) : 0;
	t->hashsize = info->hashsize;
	atomic64_set(&t->overflow, 0);
	mutex_init(&t->clear_mutex);
	/* a new instance: its counters start at zero (0 is never drawn) */
	do {
		t->generation = get_random_u64();
	} while (!t->generation);

	ipb = xtt_ip_buckets(t->mask, t->hashsize);
	if (t->flags & XT_TRAFFIC_TRAFFIC) {
		t->map[XTT_KIND_TRAFFIC] = xtt_map_alloc(t, XTT_KIND_TRAFFIC, ipb,
							 ~t->mask + 1);
		if (!t->map[XTT_KIND_TRAFFIC])
			goto out_free_table;
	}
	if (t->flags & XT_TRAFFIC_IPCONN) {
		t->map[XTT_KIND_IPCONN] = xtt_map_alloc(t, XTT_KIND_IPCONN, ipb,
							~t->mask + 1);
		if (!t->map[XTT_KIND_IPCONN])
			goto out_free_table;
	}
	if (t->flags & XT_TRAFFIC_PORTCONN) {
		t->map[XTT_KIND_PORTCONN] = xtt_map_alloc(t, XTT_KIND_PORTCONN,
							  XTT_PORT_BUCKETS,
							  65536);
		if (!t->map[XTT_KIND_PORTCONN])
			goto out_free_table;
	}
	if (t->flags & (XT_TRAFFIC_IPCONN | XT_TRAFFIC_PORTCONN)) {
		t->flows = xtt_flows_alloc(xtt_flow_slots(ipb));
		if (!t->flows)
			goto out_free_table;
	}
	return t;

out_free_table:
	xtt_table_free(t);
	return NULL;
}

/* ---- checkentry / destroy ---- */

static const char *const xtt_name_errstr[] = {
	[XTT_NAME_EMPTY] = "is empty",
	[XTT_NAME_TOO_LONG] = "is too long (at most 31 characters)",
	[XTT_NAME_BAD_CHAR] = "has a character other than A-Z a-z 0-9 _ . -",
	[XTT_NAME_DOTS] = "may not be \".\" or \"..\"",
	[XTT_NAME_RESERVED_SUFFIX] = "may not end in _ipconn, _portconn or _info",
};

static int xtt_check_info(const struct xt_traffic_mtinfo *info)
{
	u32 base = ntohl(info->netbase.ip), mask = ntohl(info->netmask.ip);
	enum xtt_name_err nerr;

	if (info->flags & ~XT_TRAFFIC_VALID_FLAGS) {
		pr_info_ratelimited("unknown flag bits 0x%x (known: 0x%x)\n",
				    info->flags & ~XT_TRAFFIC_VALID_FLAGS,
				    XT_TRAFFIC_VALID_FLAGS);
		return -EINVAL;
	}
	if (!(info->flags & XT_TRAFFIC_COUNT_FLAGS)) {
		pr_info_ratelimited("nothing to count: give --traffic, --portconn or --ipconn\n");
		return -EINVAL;
	}
	if ((info->flags & XT_TRAFFIC_NOINTERNAL) &&
	    (info->flags & XT_TRAFFIC_ONLYINTERNAL)) {
		pr_info_ratelimited("--nointernal and ! --nointernal exclude each other\n");
		return -EINVAL;
	}
	nerr = xtt_name_check(info->name);
	if (nerr != XTT_NAME_OK) {
		pr_info_ratelimited("table name \"%.*s\" %s\n",
				    XT_TRAFFIC_NAME_LEN, info->name,
				    xtt_name_errstr[nerr]);
		return -EINVAL;
	}
	if (info->netbase.all[1] || info->netbase.all[2] || info->netbase.all[3] ||
	    info->netmask.all[1] || info->netmask.all[2] || info->netmask.all[3]) {
		pr_info_ratelimited("%s: IPv4 netbase/netmask carry IPv6 bits\n",
				    info->name);
		return -EINVAL;
	}
	if (!xtt_mask_valid(mask)) {
		pr_info_ratelimited("%s: netmask %pI4 is not a contiguous mask of prefix 1..32\n",
				    info->name, &info->netmask.ip);
		return -EINVAL;
	}
	if (!xtt_base_aligned(base, mask)) {
		pr_info_ratelimited("%s: netbase %pI4 is not aligned to netmask %pI4\n",
				    info->name, &info->netbase.ip, &info->netmask.ip);
		return -EINVAL;
	}
	if (info->hashsize > XT_TRAFFIC_HASHSIZE_MAX) {
		pr_info_ratelimited("%s: hashsize %u out of range 1..%u\n",
				    info->name, info->hashsize,
				    XT_TRAFFIC_HASHSIZE_MAX);
		return -ERANGE;
	}
	return 0;
}

/* A rule naming an existing table must describe it exactly. */
static int xtt_check_same(const struct xt_traffic_table *t,
			  const struct xt_traffic_mtinfo *info)
{
	u32 base = ntohl(info->netbase.ip), mask = ntohl(info->netmask.ip);
	static const struct {
		u32 bit;
		const char *opt;
	} opts[] = {
		{ XT_TRAFFIC_TRAFFIC, "--traffic" },
		{ XT_TRAFFIC_PORTCONN, "--portconn" },
		{ XT_TRAFFIC_IPCONN, "--ipconn" },
		{ XT_TRAFFIC_CLEARONREAD, "--clearonread" },
		{ XT_TRAFFIC_NOINTERNAL, "--nointernal" },
		{ XT_TRAFFIC_ONLYINTERNAL, "! --nointernal" },
	};
	unsigned int i;

	if (t->base != base || t->mask != mask) {
		__be32 tb = htonl(t->base), tm = htonl(t->mask);

		pr_info_ratelimited("table %s exists with --netbase %pI4 --netmask %pI4; this rule has %pI4 %pI4\n",
				    t->name, &tb, &tm, &info->netbase.ip,
				    &info->netmask.ip);
		return -EINVAL;
	}
	for (i = 0; i < ARRAY_SIZE(opts); i++) {
		if ((t->flags ^ info->flags) & opts[i].bit) {
			pr_info_ratelimited("table %s exists %s %s; this rule differs\n",
					    t->name,
					    t->flags & opts[i].bit ? "with" : "without",
					    opts[i].opt);
			return -EINVAL;
		}
	}
	if (t->hashsize != info->hashsize) {
		pr_info_ratelimited("table %s exists with --hashsize %u; this rule has %u (0 = derived)\n",
				    t->name, t->hashsize, info->hashsize);
		return -EINVAL;
	}
	return 0;
}

static int traffic_mt_check(const struct xt_mtchk_param *par)
{
	struct xt_traffic_mtinfo *info = par->matchinfo;
	struct traffic_net *tn = traffic_pernet(par->net);
	struct xt_traffic_table *t;
	int ret;

	ret = xtt_check_info(info);
	if (ret)
		return ret;

	mutex_lock(&traffic_mutex);
	t = xtt_table_lookup(tn, info->name);
	if (t) {
		ret = xtt_check_same(t, info);
		if (ret)
			goto out;
		t->refcnt++;
		info->table = t;
		goto out;
	}
	if (!tn->proc_dir) {
		ret = -ENOENT;	/* the netns is being dismantled */
		goto out;
	}
	t = xtt_table_create(par->net, info);
	if (!t) {
		pr_info_ratelimited("%s: out of memory for the table\n", info->name);
		ret = -ENOMEM;
		goto out;
	}
	ret = xtt_table_add_proc(tn, t);
	if (ret)
		goto out_free_table;
	list_add_tail(&t->list, &tn->tables);
	info->table = t;
	goto out;

out_free_table:
	xtt_table_free(t);
out:
	mutex_unlock(&traffic_mutex);
	return ret;
}

static void traffic_mt_destroy(const struct xt_mtdtor_param *par)
{
	struct traffic_net *tn = traffic_pernet(par->net);
	const struct xt_traffic_mtinfo *info = par->matchinfo;
	struct xt_traffic_table *t = info->table;

	mutex_lock(&traffic_mutex);
	if (--t->refcnt == 0) {
		list_del(&t->list);
		xtt_table_remove_proc(tn, t);
		mutex_unlock(&traffic_mutex);
		/* rules are gone from the packet path before destroy is called */
		xtt_table_free(t);
		return;
	}
	mutex_unlock(&traffic_mutex);
}

static struct xt_match traffic_mt_reg __read_mostly = {
	.name		= "traffic",
	.revision	= 0,
	.family		= NFPROTO_IPV4,
	.match		= traffic_mt,
	.checkentry	= traffic_mt_check,
	.destroy	= traffic_mt_destroy,
	.matchsize	= sizeof(struct xt_traffic_mtinfo),
	.usersize	= offsetof(struct xt_traffic_mtinfo, table),
	.me		= THIS_MODULE,
};

/* ---- per network namespace ---- */

static int __net_init traffic_net_init(struct net *net)
{
	struct traffic_net *tn = traffic_pernet(net);

	INIT_LIST_HEAD(&tn->tables);
	tn->proc_dir = proc_mkdir(XT_TRAFFIC_PROC_DIR, net->proc_net);
	if (!tn->proc_dir)
		return -ENOMEM;
	tn->counters_dir = proc_mkdir(XTT_COUNTERS_DIR, net->proc_net);
	if (!tn->counters_dir)
		goto out_remove_proc_dir;
	return 0;

out_remove_proc_dir:
	remove_proc_entry(XT_TRAFFIC_PROC_DIR, net->proc_net);
	tn->proc_dir = NULL;
	return -ENOMEM;
}

static void __net_exit traffic_net_exit(struct net *net)
{
	struct traffic_net *tn = traffic_pernet(net);

	/*
	 * Rules of this netns may still be destroyed after us (their tables
	 * go away later): remove the files now, like xt_recent, and tell
	 * destroy not to touch /proc.
	 */
	mutex_lock(&traffic_mutex);
	tn->proc_dir = NULL;
	tn->counters_dir = NULL;
	mutex_unlock(&traffic_mutex);
	remove_proc_subtree(XT_TRAFFIC_PROC_DIR, net->proc_net);
	remove_proc_subtree(XTT_COUNTERS_DIR, net->proc_net);
}

static struct pernet_operations traffic_net_ops = {
	.init	= traffic_net_init,
	.exit	= traffic_net_exit,
	.id	= &traffic_net_id,
	.size	= sizeof(struct traffic_net),
};

static int __init traffic_mt_init(void)
{
	int ret;

	ret = register_pernet_subsys(&traffic_net_ops);
	if (ret)
		return ret;
	ret = xt_register_match(&traffic_mt_reg);
	if (ret)
		unregister_pernet_subsys(&traffic_net_ops);
	return ret;
}

static void __exit traffic_mt_exit(void)
{
	xt_unregister_match(&traffic_mt_reg);
	unregister_pernet_subsys(&traffic_net_ops);
}

module_init(traffic_mt_init);
module_exit(traffic_mt_exit);
