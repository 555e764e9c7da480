// SPDX-License-Identifier: GPL-2.0
/*
 * xt_traffic: per-IP traffic and connection accounting with one rule.
 *
 * For every address (or host prefix: revision 1, IPv4 and IPv6) of a
 * monitored net it counts bytes in and out split
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
#include <linux/icmpv6.h>
#include <linux/delay.h>
#include <linux/init.h>
#include <linux/ip.h>
#include <net/ip.h>
#include <linux/ipv6.h>
#include <net/ipv6.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/proc_fs.h>
#include <linux/sched/mm.h>
#include <linux/random.h>
#include <linux/seq_file.h>
#include <linux/siphash.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/uidgid.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
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
/* ... and of tables that reclaim idle entries: rows carry serials, acks */
#define XTT_COUNTERS_REVISION_RECLAIM	2
/* Packet counts, one file per table with them: the traffic file's format. */
#define XTT_PACKETS_DIR		"xt_traffic_packets"

MODULE_AUTHOR("xttraffic developers");
MODULE_DESCRIPTION("Xtables: per-IP traffic and connection accounting");
MODULE_LICENSE("GPL");
MODULE_VERSION(XT_TRAFFIC_VERSION);
MODULE_ALIAS("ipt_traffic");
MODULE_ALIAS("ip6t_traffic");

static unsigned int max_entries __read_mostly = 1U << 20;
static unsigned int flow_timeout __read_mostly = 30;
static unsigned int proc_perms __read_mostly = 0600;
static unsigned int proc_uid __read_mostly;
static unsigned int proc_gid __read_mostly;
static unsigned int reclaim_idle __read_mostly;

/* Bounds of the checked module parameters. */
#define XTT_MAX_ENTRIES_MAX	16777216U	/* every host of a /8 */
#define XTT_FLOW_TIMEOUT_MAX	86400U		/* a day */
#define XTT_RECLAIM_IDLE_MAX	86400U		/* a day */

/*
 * A parameter in [@min, @max] (and with no bit of @forbid), else -EINVAL
 * with one line naming it and the value given (escaped: it is user text).
 */
static int xtt_param_set(const char *val, const struct kernel_param *kp,
			 unsigned int min, unsigned int max, unsigned int forbid)
{
	unsigned int v;

	if (kstrtouint(val, 0, &v) || v < min || v > max || (v & forbid)) {
		if (forbid)
			pr_err("%s=\"%*pE\" refused: a mode of 0%o at most, without execute bits\n",
			       kp->name, (int)strnlen(val, 32), val, max);
		else
			pr_err("%s=\"%*pE\" refused: a number in %u..%u\n",
			       kp->name, (int)strnlen(val, 32), val, min, max);
		return -EINVAL;
	}
	WRITE_ONCE(*(unsigned int *)kp->arg, v);
	return 0;
}

static int xtt_set_max_entries(const char *val, const struct kernel_param *kp)
{
	return xtt_param_set(val, kp, 1, XTT_MAX_ENTRIES_MAX, 0);
}

static int xtt_set_flow_timeout(const char *val, const struct kernel_param *kp)
{
	return xtt_param_set(val, kp, 1, XTT_FLOW_TIMEOUT_MAX, 0);
}

static int xtt_set_reclaim_idle(const char *val, const struct kernel_param *kp)
{
	return xtt_param_set(val, kp, 0, XTT_RECLAIM_IDLE_MAX, 0);
}

static int xtt_set_proc_perms(const char *val, const struct kernel_param *kp)
{
	return xtt_param_set(val, kp, 0, 0777, 0111);
}

static const struct kernel_param_ops xtt_max_entries_ops = {
	.set = xtt_set_max_entries,
	.get = param_get_uint,
};

static const struct kernel_param_ops xtt_flow_timeout_ops = {
	.set = xtt_set_flow_timeout,
	.get = param_get_uint,
};

static const struct kernel_param_ops xtt_reclaim_idle_ops = {
	.set = xtt_set_reclaim_idle,
	.get = param_get_uint,
};

static const struct kernel_param_ops xtt_proc_perms_ops = {
	.set = xtt_set_proc_perms,
	.get = param_get_uint,
};

static bool packets __read_mostly;
module_param(packets, bool, 0644);
MODULE_PARM_DESC(packets, "tables with --traffic created while this is set also count packets per IP, in /proc/net/xt_traffic_packets/NAME (default 0)");

module_param_cb(max_entries, &xtt_max_entries_ops, &max_entries, 0644);
module_param_cb(flow_timeout, &xtt_flow_timeout_ops, &flow_timeout, 0644);
module_param_cb(proc_perms, &xtt_proc_perms_ops, &proc_perms, 0400);
module_param_cb(reclaim_idle, &xtt_reclaim_idle_ops, &reclaim_idle, 0644);
/* module_param_cb() records no type: modinfo and `xttraffic load --param` need it */
__MODULE_PARM_TYPE(max_entries, "uint");
__MODULE_PARM_TYPE(flow_timeout, "uint");
__MODULE_PARM_TYPE(proc_perms, "uint");
__MODULE_PARM_TYPE(reclaim_idle, "uint");
module_param(proc_uid, uint, 0644);
module_param(proc_gid, uint, 0644);
MODULE_PARM_DESC(max_entries, "most keys kept per kind per table, 1..16777216 (default 1048576)");
MODULE_PARM_DESC(flow_timeout, "seconds after which a UDP/ICMP/other flow's next packet is a new connection, 1..86400 (default 30)");
MODULE_PARM_DESC(proc_perms, "mode of the /proc/net/xt_traffic/* files, at most 0666 (default 0600)");
MODULE_PARM_DESC(reclaim_idle, "tables created while this is set free entries idle this many seconds once the collector acked them, 0..86400 (default 0: never)");
MODULE_PARM_DESC(proc_uid, "owner of the /proc/net/xt_traffic/* files");
MODULE_PARM_DESC(proc_gid, "group of the /proc/net/xt_traffic/* files");

/* Counter slots of each kind. TOTAL is derived when printing. */
enum { XTT_TR_TCP, XTT_TR_UDP, XTT_TR_OTHER, XTT_TR_N };
enum { XTT_CN_TCP, XTT_CN_UDP, XTT_CN_ICMP, XTT_CN_OTHER, XTT_CN_N };
#define XTT_IN	0
#define XTT_OUT	1

enum xtt_kind { XTT_KIND_TRAFFIC, XTT_KIND_IPCONN, XTT_KIND_PORTCONN,
		XTT_KIND_PACKETS, XTT_KINDS };

static const char *const xtt_kind_suffix[XTT_KINDS] = {
	[XTT_KIND_TRAFFIC] = "",
	[XTT_KIND_IPCONN] = XT_TRAFFIC_SUFFIX_IPCONN,
	[XTT_KIND_PORTCONN] = XT_TRAFFIC_SUFFIX_PORTCONN,
	[XTT_KIND_PACKETS] = "",	/* xt_traffic_packets/NAME */
};

static const char *const xtt_kind_name[XTT_KINDS] = {
	[XTT_KIND_TRAFFIC] = "traffic",
	[XTT_KIND_IPCONN] = "ipconn",
	[XTT_KIND_PORTCONN] = "portconn",
	[XTT_KIND_PACKETS] = "packets",
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
	u32 key;	/* IPv4: the prefix's index in the net; IPv6: its hash */
	/*
	 * Maps that reclaim: the second (xtt_now()) of the last change, in
	 * what was padding (no new cache line); XTT_STAMP_DEAD once unlinked.
	 */
	u32 stamp;
	atomic64_t c[];
	/* IPv6 maps: a struct xtt_k6 (the prefix's first address) follows */
	/* maps that reclaim: then a u64 serial (xtt_serial()) */
};

#define XTT_STAMP_DEAD	U32_MAX

/* Sorted index of an IPv6 map: the keys and their entries. */
struct xtt_ix6 {
	struct xtt_k6 key;
	struct xtt_entry *e;
};

/*
 * The keys of a hashed map in ascending order, rebuilt by a read that
 * starts when keys were inserted since (@epoch = the map's inserts then):
 * one per map, 4 bytes a key, never one per open file.
 */
struct xtt_index {
	u32 n;
	int epoch;
	u32 keys[];
};

struct xtt_index6 {
	u32 n;
	int epoch;
	struct xtt_ix6 keys[];
};

#define XTT_ENTRY_SIZE(n)	(sizeof(struct xtt_entry) + (n) * sizeof(atomic64_t))

/*
 * Striped locks: inserts, and the unlinks of tables that reclaim idle
 * entries (otherwise an entry lives as long as its table).
 */
#define XTT_LOCKS	256

struct xtt_map {
	struct xt_traffic_table *table;
	enum xtt_kind kind;
	unsigned int ncounters;
	unsigned int bits;
	bool direct;
	bool v6;		/* 128-bit keys after the counters */
	bool d6lo;		/* IPv6 direct: the index bits are in k6.lo */
	u8 d6shift;		/* IPv6 direct: index = (half >> d6shift) & d6mask */
	u32 d6mask;
	bool reclaim;		/* stamps and serials (t->reclaim_idle) */
	u32 nbuckets;
	siphash_key_t hkey;	/* random per map */
	struct xtt_entry __rcu **buckets;
	struct xtt_index *index;	/* hashed maps' key order, under clear_mutex */
	struct xtt_index6 *index6;	/* the same for IPv6 maps */

	/* written by inserts: off the cache line every packet reads */
	atomic_t count ____cacheline_aligned_in_smp;
	atomic_t inserts;	/* bumped by every insert: staleness of the index */
	/* bucket b is guarded by locks[b % XTT_LOCKS] on insert */
	spinlock_t locks[XTT_LOCKS] ____cacheline_aligned_in_smp;
};

struct xtt_flow {
	struct xtt_flow_key key;
	unsigned long last;	/* jiffies of its last packet; 0 = empty */
};

/* Readers look a flow up without the lock; writers bump seq under it. */
struct xtt_flow_set {
	seqcount_spinlock_t seq;	/* associated with the set's stripe lock */
	struct xtt_flow way[XTT_FLOW_WAYS];
};

struct xtt_flows {
	u32 nsets;		/* power of two */
	unsigned int shift;	/* 64 - log2(nsets): a set's hash bits are the top ones */
	u64 seed;
	u64 __percpu *evictions;	/* live flows pushed out of a full set */
	/* set s is guarded by locks[s % XTT_LOCKS]: not on the line above */
	spinlock_t locks[XTT_LOCKS] ____cacheline_aligned_in_smp;
	struct xtt_flow_set set[] ____cacheline_aligned_in_smp;
};

/* Counters file walks whose start is remembered for an "ack N". */
#define XTT_READLOG	16
/* Entries unlinked per grace period by the reclaim work. */
#define XTT_REAP_BATCH	1024

struct xt_traffic_table {
	/* read by every packet: first, in one cache line */
	u32 base;		/* host order */
	u32 mask;
	u8 sides;		/* xtt_count_sides(flags) */
	u8 fast;		/* sides traffic_mt() counts inline */
	bool fast6hi;		/* IPv6: fast, direct, indexed by the high half */
	u8 shift;		/* IPv4: 32 - hostprefix (key = offset >> shift) */
	struct xtt_map *map[XTT_KINDS];
	struct xtt_flows *flows;
	struct xtt_k6 base6;	/* IPv6: the net, and the host prefix's mask */
	struct xtt_k6 mask6;
	struct xtt_k6 hpmask6;
	bool d6lo;		/* IPv6: the prefixes' index is in the low half */
	u8 d6shift;		/* IPv6: and this far up in it (xtt_map6_hash()) */
	siphash_key_t fkey;	/* IPv6: flow keys carry a keyed digest of addresses */

	/* configuration and state no packet reads */
	struct list_head list ____cacheline_aligned_in_smp;
	struct net *net;
	unsigned int refcnt;
	char name[XT_TRAFFIC_NAME_LEN];
	u32 flags;
	u32 hashsize;		/* as given; 0 = derived */
	u8 family;		/* NFPROTO_IPV4 or NFPROTO_IPV6 */
	u8 hostprefix;		/* key length: 32 or 128 = per address */
	u64 generation;		/* random, non-zero: this instance of the table */
	struct mem_cgroup *memcg;	/* of the rule's creator: entries are charged to it */
	u64 __percpu *overflow;	/* per CPU, summed when read; never cleared */
	struct mutex clear_mutex;	/* baselines: every read and clear of them */

	/* reclaim_idle (0: never; see xtt_reclaim_work()) */
	unsigned int reclaim_idle;
	atomic64_t serial;		/* the last entry serial drawn */
	atomic64_t reclaimed;		/* entries freed so far */
	struct delayed_work reclaim_work;
	struct xtt_entry **reap;	/* XTT_REAP_BATCH entries unlinked */
	spinlock_t ack_lock;		/* reads, readlog, acked_at */
	u64 reads;			/* counters file walks started */
	struct {
		u64 n;
		u32 at;			/* xtt_now() when walk n started */
	} readlog[XTT_READLOG];
	u32 acked_at;			/* the latest acked walk's start; 0: none */
};

struct traffic_net {
	struct list_head tables;
	struct proc_dir_entry *proc_dir;	/* xt_traffic/ */
	struct proc_dir_entry *counters_dir;	/* xt_traffic_counters/ */
	struct proc_dir_entry *packets_dir;	/* xt_traffic_packets/ */
};

static unsigned int traffic_net_id __read_mostly;
/*
 * Entries of traffic maps (6 counters) and of connection maps (8), charged;
 * then the same with a 128-bit key for IPv6 maps.
 */
static struct kmem_cache *xtt_entry_cache[8] __read_mostly;

static struct kmem_cache *xtt_cache(const struct xtt_map *m)
{
	return xtt_entry_cache[m->reclaim * 4 + m->v6 * 2 +
			       (m->ncounters != 2 * XTT_TR_N)];
}

/* The 128-bit key of an entry of an IPv6 map (after counters and baselines). */
static struct xtt_k6 *xtt_key6(const struct xtt_map *m, struct xtt_entry *e)
{
	return (struct xtt_k6 *)&e->c[2 * m->ncounters];
}

/* The serial of an entry of a map that reclaims (after counters, baselines, key). */
static u64 *xtt_serial(const struct xtt_map *m, struct xtt_entry *e)
{
	return (u64 *)&e->c[2 * m->ncounters + (m->v6 ? 2 : 0)];
}

/* Seconds since boot (never XTT_STAMP_DEAD: that is 136 years). */
static __always_inline u32 xtt_now(void)
{
	return (u32)((jiffies - INITIAL_JIFFIES) / HZ);
}

static DEFINE_MUTEX(traffic_mutex);

static struct traffic_net *traffic_pernet(struct net *net)
{
	return net_generic(net, traffic_net_id);
}

static u64 xtt_percpu_sum(u64 __percpu *c)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += *per_cpu_ptr(c, cpu);
	return sum;
}

/* Packets or connections not counted for want of an entry, so far. */
static u64 xtt_overflow(const struct xt_traffic_table *t)
{
	return xtt_percpu_sum(t->overflow);
}

/* ---- maps ---- */

/*
 * Long walks over a whole map (free, clear, index rebuild) let others run
 * every XTT_RESCHED_STEPS steps, a step being a bucket or an entry: a chain
 * can be long too (--hashsize 2 puts half the entries in one).
 */
#define XTT_RESCHED_STEPS	1024U

static __always_inline bool xtt_resched_due(unsigned int *steps)
{
	return ++*steps % XTT_RESCHED_STEPS == 0;
}

/*
 * A step of a walk under rcu_read_lock() and the table's clear_mutex: only
 * a reclaim (under clear_mutex) or the table's free unlinks and frees
 * entries, so the walk may leave the RCU read side, reschedule and go on
 * from the entry it holds.
 */
static void xtt_walk_step(unsigned int *steps)
{
	if (xtt_resched_due(steps)) {
		rcu_read_unlock();
		cond_resched();
		rcu_read_lock();
	}
}

static struct xtt_map *xtt_map_alloc(struct xt_traffic_table *t,
				     enum xtt_kind kind, u32 nbuckets,
				     u32 keyspace)
{
	struct xtt_map *m;
	unsigned int i;

	m = kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);
	if (!m)
		return NULL;
	m->buckets = kvcalloc(nbuckets, sizeof(*m->buckets), GFP_KERNEL_ACCOUNT);
	if (!m->buckets) {
		kfree(m);
		return NULL;
	}
	m->table = t;
	m->kind = kind;
	m->ncounters = 2 * (kind == XTT_KIND_TRAFFIC || kind == XTT_KIND_PACKETS ?
			    XTT_TR_N : XTT_CN_N);
	m->nbuckets = nbuckets;
	m->bits = xtt_ilog2(nbuckets);
	/* IPv6 prefixes (not ports) have 128-bit keys */
	m->v6 = t->family == NFPROTO_IPV6 && kind != XTT_KIND_PORTCONN;
	/*
	 * keyspace 0 means 2^32 (IPv4), or an IPv6 net whose prefixes are not
	 * indexed by one 64-bit half (xtt_table_create()): always hashed
	 */
	m->direct = keyspace != 0 && keyspace <= nbuckets;
	if (m->v6 && m->direct) {
		m->d6lo = t->d6lo;
		m->d6shift = t->d6shift;
		m->d6mask = keyspace - 1;
	}
	m->reclaim = t->reclaim_idle != 0;
	get_random_bytes(&m->hkey, sizeof(m->hkey));
	atomic_set(&m->count, 0);
	for (i = 0; i < XTT_LOCKS; i++)
		spin_lock_init(&m->locks[i]);
	return m;
}

static void xtt_map_free(struct xtt_map *m)
{
	struct xtt_entry *e, *next;
	unsigned int steps = 0;
	u32 i;

	if (!m)
		return;
	/* process context (a rule's destroy, a failed create), no lock held */
	for (i = 0; i < m->nbuckets; i++) {
		for (e = rcu_dereference_protected(m->buckets[i], 1); e; e = next) {
			next = rcu_dereference_protected(e->next, 1);
			kmem_cache_free(xtt_cache(m), e);
			if (xtt_resched_due(&steps))
				cond_resched();
		}
		if (xtt_resched_due(&steps))
			cond_resched();
	}
	kvfree(m->index);
	kvfree(m->index6);
	kvfree(m->buckets);
	kfree(m);
}

/*
 * Bucket of a key: a direct map's bucket is the key; a hashed map uses
 * SipHash keyed per map, so nobody outside can pick keys of one chain.
 */
static __always_inline u32 xtt_map_bucket(const struct xtt_map *m, u32 key)
{
	if (m->direct)
		return key;
	return (u32)siphash_1u32(key, &m->hkey) >> (32 - m->bits);
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

/*
 * Bucket (and the entry's 32-bit key) of an IPv6 key, as the top bits: a
 * direct map's bucket is the prefix's index in the net (every key of the
 * map is in the net, so the index picks one prefix; the bucket holds no
 * other), a hashed map uses SipHash keyed per map.
 */
static __always_inline u32 xtt_map6_hash(const struct xtt_map *m,
					 const struct xtt_k6 *k)
{
	if (m->direct)
		return (u32)(((m->d6lo ? k->lo : k->hi) >> m->d6shift) &
			     m->d6mask) << (32 - m->bits);
	return (u32)siphash_2u64(k->hi, k->lo, &m->hkey);
}

static __always_inline struct xtt_entry *xtt_map6_find(struct xtt_map *m,
						       u32 h,
						       const struct xtt_k6 *k)
{
	struct xtt_entry *e;

	for (e = rcu_dereference(m->buckets[h >> (32 - m->bits)]); e;
	     e = rcu_dereference(e->next)) {
		const struct xtt_k6 *ek = xtt_key6(m, e);

		if (e->key == h && ek->hi == k->hi && ek->lo == k->lo)
			return e;
	}
	return NULL;
}

/*
 * Slow path: a key's first packet. Never fails the packet; counts overflow.
 * @k6: the 128-bit key of an IPv6 map (@key is then its hash), else NULL.
 */
static noinline struct xtt_entry *xtt_map_insert(struct xtt_map *m, u32 idx,
						 u32 key,
						 const struct xtt_k6 *k6)
{
	spinlock_t *lock = &m->locks[idx % XTT_LOCKS];
	struct xtt_entry *e = NULL;
	struct mem_cgroup *old;

	/* a full map (a scan of a big net) costs no lock and no shared write */
	if (atomic_read(&m->count) >= READ_ONCE(max_entries))
		goto out_overflow;
	/* _bh: OUTPUT hooks may run with BHs enabled (nft backend) */
	spin_lock_bh(lock);
	e = k6 ? xtt_map6_find(m, key, k6) : xtt_map_find(m, idx, key);
	if (e)
		goto out;
	if (atomic_read(&m->count) >= READ_ONCE(max_entries))
		goto out;
	/* the counters and their baselines, all zero, charged to the creator */
	old = set_active_memcg(m->table->memcg);
	e = kmem_cache_zalloc(xtt_cache(m), GFP_ATOMIC | __GFP_NOWARN);
	set_active_memcg(old);
	if (!e)
		goto out;
	e->key = key;
	e->stamp = xtt_now();
	if (k6)
		*xtt_key6(m, e) = *k6;
	/* under the bucket's lock: serials grow along a chain from its tail */
	if (m->reclaim)
		*xtt_serial(m, e) = atomic64_inc_return(&m->table->serial);
	RCU_INIT_POINTER(e->next, rcu_dereference_protected(m->buckets[idx],
							    lockdep_is_held(lock)));
	rcu_assign_pointer(m->buckets[idx], e);
	atomic_inc(&m->count);
	/* release: a reader that sees this insert also sees the entry */
	atomic_inc_return_release(&m->inserts);
out:
	spin_unlock_bh(lock);
out_overflow:
	if (!e)
		this_cpu_inc(*m->table->overflow);
	return e;
}

/*
 * A map that reclaims: the entry's stamp moves to this second (at most
 * once a second; never off XTT_STAMP_DEAD, so a packet racing a reclaim
 * leaves the unlinked mark alone) before the counter moves: whoever
 * sees the count (smp_rmb(), then the stamp) sees the stamp.
 */
static __always_inline void xtt_touch(struct xtt_entry *e)
{
	u32 now = xtt_now(), s = READ_ONCE(e->stamp);

	if (s != now && s != XTT_STAMP_DEAD)
		cmpxchg(&e->stamp, s, now);
	/* the stamp (read or written) before the count: xtt_reclaimable() */
	smp_mb__before_atomic();
}

static __always_inline void xtt_entry_add(const struct xtt_map *m,
					  struct xtt_entry *e,
					  unsigned int slot, u64 n)
{
	if (m->reclaim)
		xtt_touch(e);
	atomic64_add(n, &e->c[slot]);
}

/* Every counted packet comes here: inlined, one lookup and one atomic add. */
static __always_inline void xtt_map_add(struct xtt_map *m, u32 key,
					unsigned int slot, u64 n)
{
	u32 idx = xtt_map_bucket(m, key);
	struct xtt_entry *e;

	e = xtt_map_find(m, idx, key);
	if (unlikely(!e)) {
		e = xtt_map_insert(m, idx, key, NULL);
		if (!e)
			return;
	}
	xtt_entry_add(m, e, slot, n);
}

static void xtt_map6_add(struct xtt_map *m, const struct xtt_k6 *k,
			 unsigned int slot, u64 n)
{
	u32 h = xtt_map6_hash(m, k);
	struct xtt_entry *e;

	e = xtt_map6_find(m, h, k);
	if (unlikely(!e)) {
		e = xtt_map_insert(m, h >> (32 - m->bits), h, k);
		if (!e)
			return;
	}
	xtt_entry_add(m, e, slot, n);
}

/* ---- flow cache (new connections for UDP, ICMP, other) ---- */

static struct xtt_flows *xtt_flows_alloc(u32 slots)
{
	u32 nsets = slots / XTT_FLOW_WAYS;
	struct xtt_flows *f;
	unsigned int i;

	f = kvzalloc(struct_size(f, set, nsets), GFP_KERNEL_ACCOUNT);
	if (!f)
		return NULL;
	f->evictions = alloc_percpu_gfp(u64, GFP_KERNEL_ACCOUNT);
	if (!f->evictions) {
		kvfree(f);
		return NULL;
	}
	f->nsets = nsets;
	f->shift = 64 - xtt_ilog2(nsets);
	f->seed = get_random_u64();
	for (i = 0; i < XTT_LOCKS; i++)
		spin_lock_init(&f->locks[i]);
	for (i = 0; i < nsets; i++) {
		seqcount_spinlock_init(&f->set[i].seq,
				       &f->locks[i % XTT_LOCKS]);
		/* millions of sets for the biggest hash (lockdep inits each) */
		if (i % (16 * XTT_RESCHED_STEPS) == 0)
			cond_resched();
	}
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
	unsigned long h = xtt_flow_hash(&k, f->seed, f->shift);
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
	/* a flow still live pushed out: its next packet will count again */
	if (i == XTT_FLOW_WAYS && victim->last &&
	    !time_after(now, victim->last + timeout))
		this_cpu_inc(*f->evictions);
	write_seqcount_begin(&set->seq);
	victim->key = k;
	WRITE_ONCE(victim->last, now);
	write_seqcount_end(&set->seq);
	spin_unlock_bh(lock);
	return is_new;
}

/*
 * Lockless: true when @k is a flow seen within flow_timeout seconds (its
 * time is then refreshed). The set's seqcount proves the key read was
 * whole. False sends the packet to xtt_flow_update(), which decides under
 * the lock, so two CPUs never both count one new flow.
 *
 * The ways are compared key first and unrolled (most ways hold another
 * flow: two compares each), and the clock is read only for the way found:
 * no end pointer and no clock held across the compares, so the common path
 * needs no saved registers. An empty way's key is all zero: should a packet
 * have that key too, its !last sends it to the locked path, which is right.
 */
static __always_inline bool xtt_flow_seen(struct xtt_flows *f,
					  const struct xtt_flow_key *k)
{
	struct xtt_flow_set *set = &f->set[xtt_flow_hash(k, f->seed, f->shift)];
	struct xtt_flow *w = set->way;
	unsigned long now, last;
	unsigned int seq;

	BUILD_BUG_ON(XTT_FLOW_WAYS != 4);
	/* with PREEMPT_RT a reader meeting a writer takes its lock, never spins */
	seq = read_seqcount_begin(&set->seq);
	if (!xtt_flow_key_eq(&w->key, k) && !xtt_flow_key_eq(&(++w)->key, k) &&
	    !xtt_flow_key_eq(&(++w)->key, k) && !xtt_flow_key_eq(&(++w)->key, k))
		return false;
	last = READ_ONCE(w->last);
	now = jiffies | 1;
	if (!last ||
	    time_after(now, last + (unsigned long)READ_ONCE(flow_timeout) * HZ) ||
	    read_seqcount_retry(&set->seq, seq))
		return false;
	/* a racing writer may have reused the way: it was just seen too */
	if (last != now)
		WRITE_ONCE(w->last, now);
	return true;
}

/* ---- the match ---- */

/* Key of an IPv4 address of the net: its host prefix's index in the net. */
static __always_inline u32 xtt_key4(const struct xt_traffic_table *t, u32 addr)
{
	return (addr & ~t->mask) >> t->shift;
}

static noinline void xtt_count_conn(struct xt_traffic_table *t,
				    u32 src, bool s_in, u32 dst, bool d_in,
				    unsigned int proto, u16 port)
{
	struct xtt_map *m;

	m = t->map[XTT_KIND_IPCONN];
	if (m) {
		if (s_in)
			xtt_map_add(m, xtt_key4(t, src), proto * 2 + XTT_OUT, 1);
		if (d_in)
			xtt_map_add(m, xtt_key4(t, dst), proto * 2 + XTT_IN, 1);
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
 * The connection facts of a packet whose transport header is at @l4 (when
 * !@l4ok the packet is too short for it: then only protocols without ports
 * count): the flow key, the XTT_CN_* protocol and the destination port.
 */
static __always_inline enum xtt_conn_kind
xtt_conn_key(const struct iphdr *iph, const void *l4, bool l4ok, u32 src,
	     u32 dst, struct xtt_flow_key *k, unsigned int *proto, u16 *port)
{
	switch (iph->protocol) {
	case IPPROTO_TCP: {
		const struct tcphdr *th = l4;

		if (!l4ok || !th->syn || th->ack)
			return XTT_CONN_NONE;
		*proto = XTT_CN_TCP;
		*port = ntohs(th->dest);
		return XTT_CONN_NEW;
	}
	case IPPROTO_UDP: {
		const struct udphdr *uh = l4;

		if (!l4ok)
			return XTT_CONN_NONE;
		*proto = XTT_CN_UDP;
		*port = ntohs(uh->dest);
		/* both ports as one load, unswapped (the key is never shown) */
		xtt_flow_key_make_ports(k, IPPROTO_UDP, src, dst,
					(__force u16)uh->source |
					(u32)(__force u16)uh->dest << 16);
		return XTT_CONN_FLOW;
	}
	case IPPROTO_ICMP: {
		const struct icmphdr *ih = l4;

		if (!l4ok)
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

/*
 * Headers every segment of a GSO packet repeats (IP + transport), from
 * headers read and bounded here: TCP (SKB_GSO_TCPV4 of a TCP packet, doff at
 * least 5), UDP (SKB_GSO_UDP_L4 of a UDP packet), UFO (SKB_GSO_UDP of a UDP
 * packet: IP fragments, the IP header only). 0 when segmentation would not
 * split the packet (a gso_type that does not fit the protocol, a TCP header
 * shorter than 20 bytes or longer than the packet): it counts once, as is.
 */
static u32 xtt_gso_hdrlen(const struct sk_buff *skb, const struct iphdr *iph,
			  u32 len)
{
	unsigned int type = skb_shinfo(skb)->gso_type;
	u32 ihl = iph->ihl * 4, thlen;

	if ((type & SKB_GSO_TCPV4) && iph->protocol == IPPROTO_TCP) {
		struct tcphdr _th;
		const struct tcphdr *th;

		th = skb_header_pointer(skb, skb_network_offset(skb) + ihl,
					sizeof(_th), &_th);
		if (!th || th->doff < 5)
			return 0;
		thlen = th->doff * 4;
	} else if ((type & SKB_GSO_UDP_L4) && iph->protocol == IPPROTO_UDP) {
		thlen = sizeof(struct udphdr);
	} else if ((type & SKB_GSO_UDP) && iph->protocol == IPPROTO_UDP) {
		thlen = 0;
	} else {
		return 0;
	}
	return ihl + thlen <= len ? ihl + thlen : 0;
}

/*
 * Wire bytes of a GSO packet (the rule of docs/design.md, "GSO packets"):
 * len + (segs - 1) * headers, segs recomputed from the payload and gso_size
 * as segmentation cuts it. skb's gso_segs is never read: for SKB_GSO_DODGY
 * packets (tap, packet sockets) it is the sender's word.
 */
static noinline u64 xtt_gso_bytes(const struct sk_buff *skb,
				  const struct iphdr *iph, u32 len, u32 *segs)
{
	u32 netlen = skb->len - skb_network_offset(skb);
	u32 hdrlen;

	/* IPv4 BIG TCP leaves tot_len 0: the packet's own length then */
	if (!len)
		len = netlen;
	/* ip_rcv trims to tot_len; on the output path tot_len is the stack's */
	if (len > netlen)
		len = netlen;
	hdrlen = xtt_gso_hdrlen(skb, iph, len);
	if (!hdrlen)
		return len;
	*segs = xtt_gso_segs(len, hdrlen, skb_shinfo(skb)->gso_size);
	return xtt_wire_bytes(len, *segs, hdrlen);
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
	switch (xtt_conn_key(iph, l4, l4, src, dst, &k, &proto, &port)) {
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
	/* iph is the network header: skb_network_offset() + ihl * 4 from data */
	const u8 *l4 = (const u8 *)iph + iph->ihl * 4;
	struct xtt_flow_key k;
	unsigned int proto;
	u16 port;

	/* room for the longest header read (TCP); a shorter one: full path */
	if (unlikely(l4 + sizeof(struct tcphdr) > skb->data + skb_headlen(skb)))
		return traffic_mt_conn_full(skb, t, where);
	switch (xtt_conn_key(iph, l4, true, ntohl(iph->saddr),
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
				     struct xt_traffic_table *t)
{
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
		u32 segs = 1;

		if (unlikely(skb_is_gso(skb)))
			bytes = xtt_gso_bytes(skb, iph, len, &segs);
		if (where & 1)
			xtt_map_add(m, xtt_key4(t, src), slot + XTT_OUT, bytes);
		if (where & 2)
			xtt_map_add(m, xtt_key4(t, dst), slot + XTT_IN, bytes);
		/* packets as on the wire: a GSO packet's segments */
		m = t->map[XTT_KIND_PACKETS];
		if (m && (where & 1))
			xtt_map_add(m, xtt_key4(t, src), slot + XTT_OUT, segs);
		if (m && (where & 2))
			xtt_map_add(m, xtt_key4(t, dst), slot + XTT_IN, segs);
	}

	/* Connections start in a first fragment (or an unfragmented packet). */
	if (t->flows && !(iph->frag_off & htons(IP_OFFSET)))
		return traffic_mt_conn(skb, t, iph, where);
	return true;
}

/*
 * xtt_mt4()'s lookup in a hashed map, out of line: inlined, the SipHash call
 * gave the match a full stack frame on every packet, direct maps included
 * (six saved registers instead of two: +13 instructions per packet).
 */
static noinline bool xtt_mt4_hashed(const struct sk_buff *skb,
				    struct xt_traffic_table *t,
				    struct xtt_map *m, u32 key,
				    unsigned int slot, unsigned int where)
{
	const struct iphdr *iph = ip_hdr(skb);
	struct xtt_entry *e;

	e = xtt_map_find(m, xtt_map_bucket(m, key), key);
	if (unlikely(!e))
		return traffic_mt_full(skb, t);
	xtt_entry_add(m, e, slot, ntohs(iph->tot_len));
	if (t->flows && !(iph->frag_off & htons(IP_OFFSET)))
		return traffic_mt_conn(skb, t, iph, where);
	return true;
}

/*
 * The common case inline, with no stack frame: one side in the net, a known
 * key, no GSO. Anything else is a tail call to traffic_mt_full(), which does
 * the whole packet. The match never drops: it always returns true.
 */
static __always_inline bool xtt_mt4(const struct sk_buff *skb,
				    struct xt_traffic_table *t)
{
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
		return traffic_mt_full(skb, t);

	slot = xtt_tr_slot[iph->protocol];
	if (where & 1) {
		key = xtt_key4(t, src);
		slot += XTT_OUT;
	} else {
		key = xtt_key4(t, dst);
		slot += XTT_IN;
	}
	m = t->map[XTT_KIND_TRAFFIC];
	if (unlikely(!m->direct))
		return xtt_mt4_hashed(skb, t, m, key, slot, where);
	e = xtt_map_find(m, key, key);
	if (unlikely(!e))
		return traffic_mt_full(skb, t);
	xtt_entry_add(m, e, slot, ntohs(iph->tot_len));

	if (t->flows && !(iph->frag_off & htons(IP_OFFSET)))
		return traffic_mt_conn(skb, t, iph, where);
	return true;
}

/* Revision 0 (IPv4). */
static bool traffic_mt(const struct sk_buff *skb, struct xt_action_param *par)
{
	const struct xt_traffic_mtinfo *info = par->matchinfo;

	return xtt_mt4(skb, info->table);
}

/* Revision 1, IPv4: the same path, keys per host prefix (t->shift). */
static bool traffic_mt1(const struct sk_buff *skb, struct xt_action_param *par)
{
	const struct xt_traffic_mtinfo1 *info = par->matchinfo;

	return xtt_mt4(skb, info->table);
}

/* ---- IPv6 (revision 1) ---- */

static __always_inline void xtt_k6_load(struct xtt_k6 *k,
					const struct in6_addr *a)
{
	k->hi = (u64)ntohl(a->s6_addr32[0]) << 32 | ntohl(a->s6_addr32[1]);
	k->lo = (u64)ntohl(a->s6_addr32[2]) << 32 | ntohl(a->s6_addr32[3]);
}

static __always_inline bool xtt_in6(const struct xt_traffic_table *t,
				    const struct xtt_k6 *a)
{
	return (a->hi & t->mask6.hi) == t->base6.hi &&
	       (a->lo & t->mask6.lo) == t->base6.lo;
}

/* Key of an IPv6 address of the net: its host prefix's first address. */
static __always_inline void xtt_key6_of(const struct xt_traffic_table *t,
					const struct xtt_k6 *a,
					struct xtt_k6 *k)
{
	k->hi = a->hi & t->hpmask6.hi;
	k->lo = a->lo & t->hpmask6.lo;
}

/* An IPv6 address in a flow key: a digest keyed per table. */
static u32 xtt_flow_addr6(const struct xt_traffic_table *t,
			  const struct xtt_k6 *a)
{
	return (u32)siphash_2u64(a->hi, a->lo, &t->fkey);
}

/*
 * Wire bytes of an IPv6 GSO packet, as xtt_gso_bytes() for IPv4: @l3len the
 * IPv6 header and its extension headers (every segment repeats them), then
 * TCP (SKB_GSO_TCPV6, doff >= 5) or UDP (SKB_GSO_UDP_L4); UFO (SKB_GSO_UDP)
 * sends IPv6 fragments, each with the headers and a fragment header.
 */
static noinline u64 xtt_gso_bytes6(const struct sk_buff *skb, int proto,
				   u32 l3len, u32 len, u32 *segs)
{
	unsigned int type = skb_shinfo(skb)->gso_type;
	u32 gso_size = skb_shinfo(skb)->gso_size;
	u32 hdrlen;

	if ((type & SKB_GSO_TCPV6) && proto == IPPROTO_TCP) {
		struct tcphdr _th;
		const struct tcphdr *th;

		th = skb_header_pointer(skb, skb_network_offset(skb) + l3len,
					sizeof(_th), &_th);
		if (!th || th->doff < 5)
			return len;
		hdrlen = l3len + th->doff * 4;
	} else if ((type & SKB_GSO_UDP_L4) && proto == IPPROTO_UDP) {
		hdrlen = l3len + sizeof(struct udphdr);
	} else if ((type & SKB_GSO_UDP) && proto == IPPROTO_UDP) {
		if (l3len > len)
			return len;
		*segs = xtt_gso_segs(len, l3len, gso_size);
		if (*segs == 1)
			return len;
		return xtt_wire_bytes(len, *segs, l3len) +
		       (u64)*segs * sizeof(struct frag_hdr);
	} else {
		return len;
	}
	if (hdrlen > len)
		return len;
	*segs = xtt_gso_segs(len, hdrlen, gso_size);
	return xtt_wire_bytes(len, *segs, hdrlen);
}

/*
 * Connections of an IPv6 packet (not a non-first fragment): @proto and
 * @thoff from ipv6_find_hdr(). TCP SYN without ACK; UDP, ICMPv6 and others
 * by flow, as for IPv4 (ICMPv6 echo 128/129 share a flow by identifier).
 */
static noinline void traffic_mt6_conn(const struct sk_buff *skb,
				      struct xt_traffic_table *t, int proto,
				      unsigned int thoff,
				      const struct xtt_k6 *src,
				      const struct xtt_k6 *dst,
				      unsigned int where)
{
	union {
		struct tcphdr th;
		struct udphdr uh;
		struct icmp6hdr ih;
	} buf;
	struct xtt_flow_key k;
	struct xtt_k6 key;
	unsigned int cproto;
	const void *l4;
	struct xtt_map *m;
	u16 port = 0;

	l4 = skb_header_pointer(skb, thoff, xtt_l4_len(proto), &buf);
	switch (proto) {
	case IPPROTO_TCP: {
		const struct tcphdr *th = l4;

		if (!th || !th->syn || th->ack)
			return;
		cproto = XTT_CN_TCP;
		port = ntohs(th->dest);
		goto count;
	}
	case IPPROTO_UDP: {
		const struct udphdr *uh = l4;

		if (!uh)
			return;
		cproto = XTT_CN_UDP;
		port = ntohs(uh->dest);
		xtt_flow_key_make(&k, IPPROTO_UDP, xtt_flow_addr6(t, src),
				  ntohs(uh->source), xtt_flow_addr6(t, dst), port);
		break;
	}
	case IPPROTO_ICMPV6: {
		const struct icmp6hdr *ih = l4;

		if (!ih)
			return;
		cproto = XTT_CN_ICMP;
		xtt_icmp6_flow_key(&k, xtt_flow_addr6(t, src),
				   xtt_flow_addr6(t, dst), ih->icmp6_type,
				   ih->icmp6_code, ntohs(ih->icmp6_identifier));
		break;
	}
	default:
		cproto = XTT_CN_OTHER;
		xtt_flow_key_make(&k, proto, xtt_flow_addr6(t, src), 0,
				  xtt_flow_addr6(t, dst), 0);
		break;
	}
	if (xtt_flow_seen(t->flows, &k) || !xtt_flow_update(t->flows, k))
		return;
count:
	m = t->map[XTT_KIND_IPCONN];
	if (m && (where & 1)) {
		xtt_key6_of(t, src, &key);
		xtt_map6_add(m, &key, cproto * 2 + XTT_OUT, 1);
	}
	if (m && (where & 2)) {
		xtt_key6_of(t, dst, &key);
		xtt_map6_add(m, &key, cproto * 2 + XTT_IN, 1);
	}
	m = t->map[XTT_KIND_PORTCONN];
	if (m && (where & 2))
		xtt_map_add(m, port, cproto * 2 + XTT_IN, 1);
	if (m && (where & 1))
		xtt_map_add(m, port, cproto * 2 + XTT_OUT, 1);
}

/*
 * Revision 1, IPv6, any packet (traffic_mt6() inlines the common case).
 * Bytes: the whole packet, 40 + payload length (the packet's length when
 * that is 0: jumbograms, BIG TCP); GSO as for IPv4.
 * Protocol: the upper layer after the extension headers (ipv6_find_hdr; a
 * non-first fragment: its fragment header's next header); ICMPv6 is OTHER
 * for traffic. A packet whose headers cannot be walked counts as OTHER and
 * never as a connection; neither does a non-first fragment.
 */
static noinline bool traffic_mt6_full(const struct sk_buff *skb,
				      struct xt_traffic_table *t)
{
	const struct ipv6hdr *ip6h = ipv6_hdr(skb);
	u32 netlen = skb->len - skb_network_offset(skb);
	unsigned short fragoff = 0;
	unsigned int where, thoff = 0, slot;
	struct xtt_k6 src, dst, key;
	struct xtt_map *m;
	u32 len, segs = 1;
	u64 bytes;
	int proto;

	xtt_k6_load(&src, &ip6h->saddr);
	xtt_k6_load(&dst, &ip6h->daddr);
	where = xtt_in6(t, &src) | xtt_in6(t, &dst) << 1;
	if (!(t->sides & (1U << where)))
		return true;
	proto = ipv6_find_hdr(skb, &thoff, -1, &fragoff, NULL);
	m = t->map[XTT_KIND_TRAFFIC];
	if (m) {
		len = sizeof(*ip6h) + ntohs(ip6h->payload_len);
		if (!ip6h->payload_len || len > netlen)
			len = netlen;
		slot = proto < 0 ? XTT_TR_OTHER * 2 : xtt_tr_slot[proto & 255];
		bytes = len;
		if (unlikely(skb_is_gso(skb)) && proto >= 0 && !fragoff)
			bytes = xtt_gso_bytes6(skb, proto,
					       thoff - skb_network_offset(skb),
					       len, &segs);
		if (where & 1) {
			xtt_key6_of(t, &src, &key);
			xtt_map6_add(m, &key, slot + XTT_OUT, bytes);
			if (t->map[XTT_KIND_PACKETS])
				xtt_map6_add(t->map[XTT_KIND_PACKETS], &key,
					     slot + XTT_OUT, segs);
		}
		if (where & 2) {
			xtt_key6_of(t, &dst, &key);
			xtt_map6_add(m, &key, slot + XTT_IN, bytes);
			if (t->map[XTT_KIND_PACKETS])
				xtt_map6_add(t->map[XTT_KIND_PACKETS], &key,
					     slot + XTT_IN, segs);
		}
	}
	if (t->flows && proto >= 0 && !fragoff)
		traffic_mt6_conn(skb, t, proto, thoff, &src, &dst, where);
	return true;
}

/*
 * IPv6's common case with full 128-bit keys (a hashed map, or a direct one
 * indexed by the low half): --traffic with one side in the net, no GSO, the
 * upper layer right after the fixed header (TCP, UDP or ICMPv6: no extension
 * header, so ipv6_find_hdr() would return it at offset 40 with no fragment),
 * a payload length that fits the packet and a known key. Anything else goes
 * to traffic_mt6_full(), which does the whole packet; both count the same.
 */
static noinline bool xtt_mt6_keys(const struct sk_buff *skb,
				  struct xt_traffic_table *t, u8 nh)
{
	const struct ipv6hdr *ip6h = ipv6_hdr(skb);
	struct xtt_k6 src, dst, key;
	unsigned int where, slot;
	struct xtt_entry *e;
	struct xtt_map *m;
	u32 len;

	xtt_k6_load(&src, &ip6h->saddr);
	xtt_k6_load(&dst, &ip6h->daddr);
	where = xtt_in6(t, &src) | xtt_in6(t, &dst) << 1;
	if (!where)
		return true;
	len = sizeof(*ip6h) + ntohs(ip6h->payload_len);
	if (unlikely(!(t->fast & (1U << where)) || !ip6h->payload_len ||
		     len > skb->len - skb_network_offset(skb)))
		return traffic_mt6_full(skb, t);
	slot = xtt_tr_slot[nh];
	if (where & 1) {
		xtt_key6_of(t, &src, &key);
		slot += XTT_OUT;
	} else {
		xtt_key6_of(t, &dst, &key);
		slot += XTT_IN;
	}
	m = t->map[XTT_KIND_TRAFFIC];
	e = xtt_map6_find(m, xtt_map6_hash(m, &key), &key);
	if (unlikely(!e))
		return traffic_mt6_full(skb, t);
	xtt_entry_add(m, e, slot, len);
	if (t->flows)
		traffic_mt6_conn(skb, t, nh,
				 skb_network_offset(skb) + sizeof(*ip6h),
				 &src, &dst, where);
	return true;
}

/* The high 64 bits of an address (one load where unaligned loads are cheap). */
static __always_inline u64 xtt_be64_hi(const struct in6_addr *a)
{
	__be64 w;

	memcpy(&w, a, sizeof(w));
	return be64_to_cpu(w);
}

/* Connections of a packet counted by traffic_mt6()'s inline path. */
static noinline bool xtt_mt6_conn(const struct sk_buff *skb,
				  struct xt_traffic_table *t, u8 nh,
				  unsigned int where)
{
	const struct ipv6hdr *ip6h = ipv6_hdr(skb);
	struct xtt_k6 src, dst;

	xtt_k6_load(&src, &ip6h->saddr);
	xtt_k6_load(&dst, &ip6h->daddr);
	traffic_mt6_conn(skb, t, nh, skb_network_offset(skb) + sizeof(*ip6h),
			 &src, &dst, where);
	return true;
}

/*
 * Revision 1, IPv6. Inline, with no stack frame, the most common table: a
 * net of at most /64 counted per prefix of at most /64 (a /48 per /64) in a
 * direct map, so only the high 64 bits of each address are read (the low
 * half of the net's mask is 0) and the bucket alone is the prefix: checks as
 * xtt_mt6_keys(), then one lookup and one atomic64_add. Other tables:
 * xtt_mt6_keys(); anything unusual: traffic_mt6_full().
 */
static bool traffic_mt6(const struct sk_buff *skb, struct xt_action_param *par)
{
	const struct xt_traffic_mtinfo1 *info = par->matchinfo;
	struct xt_traffic_table *t = info->table;
	const struct ipv6hdr *ip6h = ipv6_hdr(skb);
	u8 nh = ip6h->nexthdr;
	unsigned int where, slot;
	struct xtt_entry *e;
	struct xtt_map *m;
	u64 src, dst, a;
	u32 len, idx;

	if (unlikely(!t->fast || skb_is_gso(skb)) ||
	    (nh != IPPROTO_TCP && nh != IPPROTO_UDP && nh != IPPROTO_ICMPV6))
		return traffic_mt6_full(skb, t);
	if (unlikely(!t->fast6hi))
		return xtt_mt6_keys(skb, t, nh);
	src = xtt_be64_hi(&ip6h->saddr);
	dst = xtt_be64_hi(&ip6h->daddr);
	where = ((src & t->mask6.hi) == t->base6.hi) |
		((dst & t->mask6.hi) == t->base6.hi) << 1;
	if (!where)
		return true;
	len = sizeof(*ip6h) + ntohs(ip6h->payload_len);
	if (unlikely(!(t->fast & (1U << where)) || !ip6h->payload_len ||
		     len > skb->len - skb_network_offset(skb)))
		return traffic_mt6_full(skb, t);
	slot = xtt_tr_slot[nh];
	if (where & 1) {
		a = src;
		slot += XTT_OUT;
	} else {
		a = dst;
		slot += XTT_IN;
	}
	m = t->map[XTT_KIND_TRAFFIC];
	idx = (u32)(a >> m->d6shift) & m->d6mask;
	e = rcu_dereference(m->buckets[idx]);
	if (unlikely(!e || e->key != idx << (32 - m->bits)))
		return traffic_mt6_full(skb, t);
	xtt_entry_add(m, e, slot, len);
	if (t->flows)
		return xtt_mt6_conn(skb, t, nh, where);
	return true;
}

/* ---- /proc: the spec's files, streamed ---- */

/*
 * A read of NAME, NAME_ipconn or NAME_portconn walks the live map in key
 * order with a cursor (the next key to look at) and allocates nothing
 * proportional to the table: a direct map's bucket is its key, a hashed
 * map's keys come from its shared sorted index. Each read() runs under the
 * table's clear_mutex (taken in start(), dropped in stop()), and a row is
 * computed, and with @clear its baselines moved, once, when the walk
 * reaches it: the row is kept here, so a row seq_file shows again (its
 * buffer was full) is the same row, never cleared twice.
 */
struct xtt_iter {
	struct xtt_map *map;
	bool clear;
	bool done;		/* the walk passed the last key */
	bool have;		/* key and c hold the row at pos */
	loff_t pos;		/* seq_file position of the row below (0: header) */
	u32 next;		/* keys below it were walked */
	struct xtt_k6 next6;	/* the same for IPv6 maps */
	/* the row at pos: its key, not its entry (a reclaim may free that) */
	u32 key;
	struct xtt_k6 key6;
	u64 c[XTT_COUNTERS_MAX];
};

/* Display baseline of counter @i of an entry of @m. */
static atomic64_t *xtt_base(const struct xtt_map *m, struct xtt_entry *e,
			    unsigned int i)
{
	return &e->c[m->ncounters + i];
}

static int xtt_key_cmp(const void *a, const void *b)
{
	u32 x = *(const u32 *)a, y = *(const u32 *)b;

	return x < y ? -1 : x > y;
}

/*
 * Under clear_mutex: make the index of a hashed map hold every key inserted
 * so far. Keys inserted during the walk may be missed (the next read
 * rebuilds); every key there before is taken, the array grows until they fit.
 */
static int xtt_index_update(struct xtt_map *m)
{
	int epoch = atomic_read_acquire(&m->inserts);
	struct xtt_index *ix = m->index;
	unsigned int steps = 0;
	struct mem_cgroup *old;
	struct xtt_entry *e;
	size_t cap, n;
	u32 b;

	if (ix && ix->epoch == epoch)
		return 0;
	cap = atomic_read(&m->count) + 64;
again:
	/* it lives as long as the table: charged to the table's creator */
	old = set_active_memcg(m->table->memcg);
	ix = kvmalloc(struct_size(ix, keys, cap), GFP_KERNEL_ACCOUNT);
	set_active_memcg(old);
	if (!ix)
		return -ENOMEM;
	n = 0;
	rcu_read_lock();
	for (b = 0; b < m->nbuckets; b++) {
		for (e = rcu_dereference(m->buckets[b]); e;
		     e = rcu_dereference(e->next)) {
			if (n == cap)
				break;
			ix->keys[n++] = e->key;
			xtt_walk_step(&steps);
		}
		if (n == cap)
			break;
		xtt_walk_step(&steps);
	}
	rcu_read_unlock();
	if (n == cap) {
		kvfree(ix);
		cap *= 2;
		goto again;
	}
	ix->n = n;
	ix->epoch = epoch;
	sort(ix->keys, n, sizeof(u32), xtt_key_cmp, NULL);
	kvfree(m->index);
	m->index = ix;
	return 0;
}

/* Position in the index of the first key >= @key. */
static u32 xtt_index_lower(const struct xtt_index *ix, u32 key)
{
	u32 lo = 0, hi = ix->n;

	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (ix->keys[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The row of @e into the iterator (with clear, its baselines move to the
 * values read); false when every displayed counter is zero.
 */
static bool xtt_iter_take(struct xtt_iter *it, struct xtt_entry *e)
{
	const struct xtt_map *m = it->map;
	unsigned int i;
	u64 any = 0;

	for (i = 0; i < m->ncounters; i++) {
		u64 v = atomic64_read(&e->c[i]);

		it->c[i] = v - atomic64_read(xtt_base(m, e, i));
		if (it->clear)
			atomic64_set(xtt_base(m, e, i), v);
		any |= it->c[i];
	}
	it->key = e->key;
	if (m->v6)
		it->key6 = *xtt_key6(m, e);
	return any;
}

static int xtt_ix6_cmp(const void *a, const void *b)
{
	return xtt_k6_cmp(&((const struct xtt_ix6 *)a)->key,
			  &((const struct xtt_ix6 *)b)->key);
}

/* xtt_index_update() for an IPv6 map: its keys and entries, sorted. */
static int xtt_index6_update(struct xtt_map *m)
{
	/* acquire: the entries of the inserts counted here are seen */
	int epoch = atomic_read_acquire(&m->inserts);
	struct xtt_index6 *ix = m->index6;
	unsigned int steps = 0;
	struct mem_cgroup *old;
	struct xtt_entry *e;
	size_t cap, n;
	u32 b;

	if (ix && ix->epoch == epoch)
		return 0;
	cap = atomic_read(&m->count) + 64;
again:
	/* it lives as long as the table: charged to the table's creator */
	old = set_active_memcg(m->table->memcg);
	ix = kvmalloc(struct_size(ix, keys, cap), GFP_KERNEL_ACCOUNT);
	set_active_memcg(old);
	if (!ix)
		return -ENOMEM;
	n = 0;
	rcu_read_lock();
	for (b = 0; b < m->nbuckets && n < cap; b++) {
		for (e = rcu_dereference(m->buckets[b]); e && n < cap;
		     e = rcu_dereference(e->next)) {
			ix->keys[n].key = *xtt_key6(m, e);
			ix->keys[n++].e = e;
			xtt_walk_step(&steps);
		}
		xtt_walk_step(&steps);
	}
	rcu_read_unlock();
	if (n == cap) {
		kvfree(ix);
		cap *= 2;
		goto again;
	}
	ix->n = n;
	ix->epoch = epoch;
	sort(ix->keys, n, sizeof(ix->keys[0]), xtt_ix6_cmp, NULL);
	kvfree(m->index6);
	m->index6 = ix;
	return 0;
}

/* Under clear_mutex: xtt_iter_advance() of an IPv6 map. */
static bool xtt_iter_advance6(struct xtt_iter *it)
{
	const struct xtt_index6 *ix = it->map->index6;
	unsigned int steps = 0;
	struct xtt_entry *e;
	bool found = false;
	u32 lo = 0, hi;

	if (it->done || !ix)
		return false;
	/* the first key >= next6 */
	hi = ix->n;
	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (xtt_k6_cmp(&ix->keys[mid].key, &it->next6) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (!found) {
		const struct xtt_ix6 *x;

		if (lo >= ix->n) {
			it->done = true;
			break;
		}
		x = &ix->keys[lo++];
		/* by key, as IPv4: a reclaim may have freed the entry indexed */
		rcu_read_lock();
		e = xtt_map6_find(it->map, xtt_map6_hash(it->map, &x->key),
				  &x->key);
		found = e && xtt_iter_take(it, e);
		rcu_read_unlock();
		it->next6 = x->key;
		if (++it->next6.lo == 0 && ++it->next6.hi == 0)
			it->done = true;	/* the last address was walked */
		if ((++steps & 1023) == 0)
			cond_resched();
	}
	return found;
}

/* Under clear_mutex: the next row with a displayed counter, in key order. */
static bool xtt_iter_advance(struct xtt_iter *it)
{
	struct xtt_map *m = it->map;
	const struct xtt_index *ix = m->index;
	unsigned int steps = 0;
	struct xtt_entry *e;
	bool found = false;
	u32 key, j;

	if (m->v6)
		return xtt_iter_advance6(it);
	if (it->done || (!m->direct && !ix))
		return false;
	j = m->direct ? 0 : xtt_index_lower(ix, it->next);
	while (!it->done && !found) {
		if (m->direct) {
			if (it->next >= m->nbuckets) {
				it->done = true;
				break;
			}
			key = it->next;
		} else {
			if (j >= ix->n) {
				it->done = true;
				break;
			}
			key = ix->keys[j++];
		}
		rcu_read_lock();
		e = xtt_map_find(m, xtt_map_bucket(m, key), key);
		found = e && xtt_iter_take(it, e);
		rcu_read_unlock();
		if (key == U32_MAX)
			it->done = true;
		else
			it->next = key + 1;
		if ((++steps & 1023) == 0)
			cond_resched();
	}
	return found;
}

static void *xtt_seq_start(struct seq_file *seq, loff_t *pos)
{
	struct xtt_iter *it = seq->private;
	struct xtt_map *m = it->map;

	mutex_lock(&m->table->clear_mutex);
	if (*pos == it->pos && *pos)
		return it->have ? it : NULL;
	if (*pos && it->clear)
		return ERR_PTR(-ESPIPE);	/* a clearing walk never goes back */
	/* a new walk (position 0), or a seek: walk to it */
	it->pos = 0;
	it->next = 0;
	it->next6.hi = 0;
	it->next6.lo = 0;
	it->done = false;
	it->have = false;
	if (m->v6 ? xtt_index6_update(m) : !m->direct && xtt_index_update(m))
		return ERR_PTR(-ENOMEM);
	while (it->pos < *pos && (it->have = xtt_iter_advance(it))) {
		/* under clear_mutex only: a seek far into a big table */
		if (++it->pos % XTT_RESCHED_STEPS == 0)
			cond_resched();
	}
	if (*pos == 0)
		return SEQ_START_TOKEN;
	return it->pos == *pos && it->have ? it : NULL;
}

static void *xtt_seq_next(struct seq_file *seq, void *v, loff_t *pos)
{
	struct xtt_iter *it = seq->private;

	++*pos;
	it->have = xtt_iter_advance(it);
	it->pos = *pos;
	/* seq_file's traverse() (a pread far in) calls next() row by row */
	if (*pos % XTT_RESCHED_STEPS == 0)
		cond_resched();
	return it->have ? it : NULL;
}

static void xtt_seq_stop(struct seq_file *seq, void *v)
{
	struct xtt_iter *it = seq->private;

	mutex_unlock(&it->map->table->clear_mutex);
}

static void xtt_put_ip4(struct seq_file *seq, u32 ip)
{
	/* seq_put_decimal_ull: a tenth of seq_printf's cost, on big tables */
	seq_put_decimal_ull(seq, "", ip >> 24);
	seq_put_decimal_ull(seq, ".", (ip >> 16) & 255);
	seq_put_decimal_ull(seq, ".", (ip >> 8) & 255);
	seq_put_decimal_ull(seq, ".", ip & 255);
}

/*
 * An IPv6 address in RFC 5952 form: lowercase hex, no leading zeros, the
 * longest run of two or more zero groups (the first of equal runs) as "::";
 * dotted only for IPv4-mapped addresses (%pI6c also dots ISATAP ids).
 */
static void xtt_put_ip6(struct seq_file *seq, const struct xtt_k6 *a)
{
	unsigned int i, start, run;
	u16 g[8];

	if (xtt_ip6_v4mapped(a)) {
		seq_puts(seq, "::ffff:");
		xtt_put_ip4(seq, (u32)a->lo);
		return;
	}
	for (i = 0; i < 4; i++) {
		g[i] = a->hi >> (48 - 16 * i);
		g[i + 4] = a->lo >> (48 - 16 * i);
	}
	run = xtt_ip6_zero_run(g, &start);
	for (i = 0; i < 8; i++) {
		if (run && i == start) {
			seq_puts(seq, "::");
			i += run - 1;
			continue;
		}
		if (i && !(run && i == start + run))
			seq_putc(seq, ':');
		seq_printf(seq, "%x", g[i]);
	}
}

/*
 * The key of a row: a port, or the host prefix (docs/design.md, "IPv6 and
 * host prefixes"): the bare address when the host prefix is the full
 * length, else the prefix's first address and "/LEN".
 */
static void xtt_put_key(struct seq_file *seq, const struct xtt_map *m,
			u32 key, const struct xtt_k6 *key6)
{
	const struct xt_traffic_table *t = m->table;

	if (m->kind == XTT_KIND_PORTCONN) {
		seq_put_decimal_ull(seq, "", key);
		return;
	}
	if (m->v6) {
		xtt_put_ip6(seq, key6);
		if (t->hostprefix < 128)
			seq_put_decimal_ull(seq, "/", t->hostprefix);
		return;
	}
	xtt_put_ip4(seq, t->base | key << t->shift);
	if (t->hostprefix < 32)
		seq_put_decimal_ull(seq, "/", t->hostprefix);
}

/*
 * One row of a map: the key (an IP or host prefix of the net, or a port),
 * total in, total out, then the @m->ncounters counters @c, tab separated.
 */
static void xtt_put_row(struct seq_file *seq, const struct xtt_map *m,
			u32 key, const struct xtt_k6 *key6, const u64 *serial,
			const u64 *c)
{
	unsigned int np = m->ncounters / 2, i;
	u64 tin = 0, tout = 0;

	xtt_put_key(seq, m, key, key6);
	if (serial)
		seq_put_decimal_ull(seq, "\t", *serial);
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
	struct xtt_iter *it = seq->private;

	if (v == SEQ_START_TOKEN) {
		switch (it->map->kind) {
		case XTT_KIND_TRAFFIC:
		case XTT_KIND_PACKETS:
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
	xtt_put_row(seq, it->map, it->key, &it->key6, NULL, it->c);
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
	struct xtt_iter *it;
	bool clear;

	/*
	 * Opening read-write is the explicit read-and-clear; a --clearonread
	 * table clears on every read. Either needs the capability: read
	 * permission alone (proc_perms) must not clear anything.
	 */
	clear = (m->table->flags & XT_TRAFFIC_CLEARONREAD) ||
		(file->f_mode & FMODE_WRITE);
	if (clear && !xtt_may_clear(file, m->table))
		return -EPERM;
	it = __seq_open_private(file, &xtt_seq_ops, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->map = m;
	it->clear = clear && (file->f_mode & FMODE_READ);
	return 0;
}

/* A clear without a read: every baseline of the map moves to its counter. */
static void xtt_map_clear(struct xtt_map *m)
{
	unsigned int i, steps = 0;
	struct xtt_entry *e;
	u32 b;

	mutex_lock(&m->table->clear_mutex);
	rcu_read_lock();
	for (b = 0; b < m->nbuckets; b++) {
		for (e = rcu_dereference(m->buckets[b]); e;
		     e = rcu_dereference(e->next)) {
			for (i = 0; i < m->ncounters; i++)
				atomic64_set(xtt_base(m, e, i),
					     atomic64_read(&e->c[i]));
			xtt_walk_step(&steps);
		}
		xtt_walk_step(&steps);
	}
	rcu_read_unlock();
	mutex_unlock(&m->table->clear_mutex);
}

/*
 * A write handler's command: @size bytes from @ubuf into @buf (of @len),
 * NUL-terminated, a trailing newline dropped. Returns @size, 0 for an
 * empty write (nothing to do), -EINVAL when it does not fit, -EFAULT.
 */
static ssize_t xtt_write_cmd(char *buf, size_t len, const char __user *ubuf,
			     size_t size)
{
	if (size == 0)
		return 0;
	if (size >= len)
		return -EINVAL;
	if (copy_from_user(buf, ubuf, size))
		return -EFAULT;
	buf[size] = '\0';
	if (buf[size - 1] == '\n')
		buf[size - 1] = '\0';
	return size;
}

static ssize_t xtt_proc_write(struct file *file, const char __user *ubuf,
			      size_t size, loff_t *loff)
{
	struct xtt_map *m = pde_data(file_inode(file));
	char buf[16];
	ssize_t ret;

	if (!xtt_may_clear(file, m->table))
		return -EPERM;
	ret = xtt_write_cmd(buf, sizeof(buf), ubuf, size);
	if (ret <= 0)
		return ret;
	if (strcmp(buf, "clear") != 0) {
		pr_info_ratelimited("%s%s: unknown command \"%*pE\" (allowed: clear)\n",
				    m->table->name, xtt_kind_suffix[m->kind],
				    (int)strlen(buf), buf);
		return -EINVAL;
	}
	xtt_map_clear(m);
	return size;
}

/*
 * A clearing read never goes back: a seek would drop what it has cleared
 * but not yet returned (seq_file's buffer and the row it holds). Only a
 * seek that stays where it is (a tell) is allowed.
 */
static loff_t xtt_proc_lseek(struct file *file, loff_t off, int whence)
{
	struct seq_file *seq = file->private_data;
	const struct xtt_iter *it = seq->private;

	if (it->clear && !(whence == SEEK_CUR && off == 0) &&
	    !(whence == SEEK_SET && off == file->f_pos))
		return -ESPIPE;
	return seq_lseek(file, off, whence);
}

static const struct proc_ops xtt_proc_ops = {
	.proc_open	= xtt_proc_open,
	.proc_read	= seq_read,
	.proc_write	= xtt_proc_write,
	.proc_lseek	= xtt_proc_lseek,
	.proc_release	= seq_release_private,
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

/* "netbase: " and "netmask: " lines: dotted quads, or RFC 5952 for IPv6. */
static void xtt_put_net(struct seq_file *seq, const struct xt_traffic_table *t)
{
	seq_puts(seq, "netbase: ");
	if (t->family == NFPROTO_IPV6)
		xtt_put_ip6(seq, &t->base6);
	else
		xtt_put_ip4(seq, t->base);
	seq_puts(seq, "\nnetmask: ");
	if (t->family == NFPROTO_IPV6)
		xtt_put_ip6(seq, &t->mask6);
	else
		xtt_put_ip4(seq, t->mask);
	seq_putc(seq, '\n');
}

/*
 * Not an IPv4 table counted per address: its files say family and
 * hostprefix. An IPv4 table per address (revision 0, or revision 1 with
 * --hostprefix 32) has the revision-0 files, byte for byte.
 */
static bool xtt_prefixed(const struct xt_traffic_table *t)
{
	return t->family == NFPROTO_IPV6 || t->hostprefix != 32;
}

static const char *xtt_family_name(const struct xt_traffic_table *t)
{
	return t->family == NFPROTO_IPV6 ? "ipv6" : "ipv4";
}

/* NAME_info: configuration and state, one "key: value" a line. */
static int xtt_info_show(struct seq_file *seq, void *v)
{
	struct xt_traffic_table *t = seq->private;
	unsigned int k;

	/*
	 * No traffic_mutex here: destroy removes this file while holding it
	 * and waits for readers. The maps never change after creation.
	 * An IPv4 table per address has no hostprefix line (it means 32).
	 */
	seq_printf(seq, "name: %s\nfamily: %s\n", t->name, xtt_family_name(t));
	xtt_put_net(seq, t);
	if (xtt_prefixed(t))
		seq_printf(seq, "hostprefix: %u\n", t->hostprefix);
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
	seq_printf(seq, "overflow: %llu\n", xtt_overflow(t));
	if (t->flows)
		seq_printf(seq, "flow_evictions: %llu\n",
			   xtt_percpu_sum(t->flows->evictions));
	seq_printf(seq, "packets: %s\n",
		   t->map[XTT_KIND_PACKETS] ? "yes" : "no");
	/* only for tables that reclaim: the others' file stays as it was */
	if (t->reclaim_idle)
		seq_printf(seq, "reclaim_idle: %u\nreclaimed: %lld\n",
			   t->reclaim_idle, atomic64_read(&t->reclaimed));
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
 * Each read() walks under rcu_read_lock() (start() to stop()). Entries are
 * only ever pushed at the head of a chain. In a table without reclaim_idle
 * they are freed with the table, after its files, so the entry reached last
 * stays valid from one read() to the next and the walk goes on from it. In
 * a table that reclaims (revision 2) an entry may be freed between two
 * read()s: the walk keeps (bucket, serial) and goes on at the first entry
 * of that bucket whose serial is not above it (serials fall along a chain).
 * Either way every entry that existed at open (and was not reclaimed since)
 * is shown, and none twice.
 */
enum xtt_ctr_at { XTT_AT_HEAD, XTT_AT_SECTION, XTT_AT_ENTRY, XTT_AT_END,
		  XTT_AT_DONE };

struct xtt_ctr_iter {
	struct xt_traffic_table *t;
	loff_t pos;		/* seq_file position of the element below */
	enum xtt_ctr_at at;
	unsigned int kind;	/* enum xtt_kind */
	u32 bucket;
	struct xtt_entry *e;	/* see above */
	u64 serial;		/* revision 2: e's serial */
	u64 read;		/* revision 2: this walk's number */
};

static struct xtt_entry *xtt_ctr_deref(struct xtt_entry __rcu *const *p)
{
	return rcu_dereference(*p);
}

/* The section of the first enabled kind from @k on, else the end. */
static void xtt_ctr_section(struct xtt_ctr_iter *it, unsigned int k)
{
	/* packets have no section: the counters file's revision 1 stays as it is */
	for (; k < XTT_KIND_PACKETS; k++) {
		if (it->t->map[k]) {
			it->at = XTT_AT_SECTION;
			it->kind = k;
			return;
		}
	}
	it->at = XTT_AT_END;
}

static void xtt_ctr_at_entry(struct xtt_ctr_iter *it, u32 b,
			     struct xtt_entry *e)
{
	const struct xtt_map *m = it->t->map[it->kind];

	it->at = XTT_AT_ENTRY;
	it->bucket = b;
	it->e = e;
	if (m->reclaim)
		it->serial = *xtt_serial(m, e);
}

/* The first entry of the section's map from bucket @b on, else what follows. */
static void xtt_ctr_scan(struct xtt_ctr_iter *it, u32 b)
{
	struct xtt_map *m = it->t->map[it->kind];

	for (; b < m->nbuckets; b++) {
		struct xtt_entry *e = xtt_ctr_deref(&m->buckets[b]);

		if (e) {
			xtt_ctr_at_entry(it, b, e);
			return;
		}
		if ((b & 4095) == 4095) {
			/* no entry is held here */
			rcu_read_unlock();
			cond_resched();
			rcu_read_lock();
		}
	}
	xtt_ctr_section(it, it->kind + 1);
}

/*
 * Revision 2, a new read(): the entry the walk stopped at, or (it was
 * reclaimed) the next one of its bucket, found by serial.
 */
static void xtt_ctr_refind(struct xtt_ctr_iter *it)
{
	struct xtt_map *m = it->t->map[it->kind];
	struct xtt_entry *e;

	for (e = xtt_ctr_deref(&m->buckets[it->bucket]); e;
	     e = xtt_ctr_deref(&e->next)) {
		if (*xtt_serial(m, e) <= it->serial) {
			xtt_ctr_at_entry(it, it->bucket, e);
			return;
		}
	}
	xtt_ctr_scan(it, it->bucket + 1);
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
			xtt_ctr_at_entry(it, it->bucket, e);
		else
			xtt_ctr_scan(it, it->bucket + 1);
		break;
	default:
		it->at = XTT_AT_DONE;
		break;
	}
}

/*
 * A revision-2 walk begins: its number, and the second it began in, kept
 * for an "ack N". Every packet that stamped an entry with an earlier
 * second has added its count once synchronize_rcu() returns (its RCU read
 * side began before it), so this walk sees it: an entry last stamped
 * before the acked walk's second was read with its final counters.
 */
static u64 xtt_read_begin(struct xt_traffic_table *t)
{
	u32 at = xtt_now();
	u64 n;

	synchronize_rcu();
	spin_lock(&t->ack_lock);
	n = ++t->reads;
	t->readlog[n % XTT_READLOG].n = n;
	t->readlog[n % XTT_READLOG].at = at;
	spin_unlock(&t->ack_lock);
	return n;
}

static void *xtt_ctr_start(struct seq_file *seq, loff_t *pos)
{
	struct xtt_ctr_iter *it = seq->private;
	struct xt_traffic_table *t = it->t;

	/*
	 * seq_read() resumes at the position where next() left the iterator;
	 * position 0 is a new walk, any other position (a seek) walks to it.
	 */
	if (*pos == 0 || *pos != it->pos) {
		if (*pos == 0 && t->reclaim_idle)
			it->read = xtt_read_begin(t);	/* sleeps */
		rcu_read_lock();
		it->at = XTT_AT_HEAD;
		it->pos = 0;
		while (it->pos < *pos && it->at != XTT_AT_DONE) {
			xtt_ctr_advance(it);
			it->pos++;
		}
	} else {
		rcu_read_lock();
		if (it->at == XTT_AT_ENTRY && t->reclaim_idle)
			xtt_ctr_refind(it);
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
	rcu_read_unlock();
}

static int xtt_ctr_show(struct seq_file *seq, void *v)
{
	struct xtt_ctr_iter *it = v;
	struct xt_traffic_table *t = it->t;
	const struct xtt_map *m;
	u64 c[XTT_COUNTERS_MAX];
	struct xtt_entry *e;
	unsigned int i;

	switch (it->at) {
	case XTT_AT_HEAD:
		seq_printf(seq, "xt_traffic_counters %d\nname: %s\ngeneration: %016llx\n",
			   t->reclaim_idle ? XTT_COUNTERS_REVISION_RECLAIM :
			   XTT_COUNTERS_REVISION, t->name, t->generation);
		xtt_put_options(seq, t);
		xtt_put_net(seq, t);
		/* IPv4 tables per address: absent, meaning ipv4 and 32 */
		if (xtt_prefixed(t))
			seq_printf(seq, "family: %s\nhostprefix: %u\n",
				   xtt_family_name(t), t->hostprefix);
		seq_printf(seq, "overflow: %llu\n", xtt_overflow(t));
		if (t->reclaim_idle)
			seq_printf(seq, "read: %llu\n", it->read);
		break;
	case XTT_AT_SECTION:
		seq_printf(seq, "[%s]\n", xtt_kind_name[it->kind]);
		break;
	case XTT_AT_ENTRY:
		m = t->map[it->kind];
		e = it->e;
		for (i = 0; i < m->ncounters; i++)
			c[i] = atomic64_read(&e->c[i]);
		if (m->reclaim) {
			/*
			 * Unlinked by a reclaim: a count read now may be one
			 * that raced it, which the reclaim re-adds to the
			 * key's next entry. The old serial's row is left out
			 * (its counts up to the unlink were acked).
			 */
			smp_mb();
			if (READ_ONCE(e->stamp) == XTT_STAMP_DEAD)
				return SEQ_SKIP;
		}
		xtt_put_row(seq, m, e->key, m->v6 ? xtt_key6(m, e) : NULL,
			    m->reclaim ? xtt_serial(m, e) : NULL, c);
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
	struct xt_traffic_table *t = pde_data(inode);
	struct xtt_ctr_iter *it;

	/*
	 * Opening never clears. Revision 1 takes no command: read only,
	 * whoever opens it. Revision 2 takes the collector's "ack N", which
	 * lets idle entries go: CAP_NET_ADMIN, as for a clear.
	 */
	if ((file->f_mode & FMODE_WRITE) &&
	    (!t->reclaim_idle || !xtt_may_clear(file, t)))
		return -EPERM;
	it = __seq_open_private(file, &xtt_ctr_seq_ops, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->t = t;
	it->at = XTT_AT_HEAD;
	return 0;
}

/* "ack N": walk N's counts are committed; entries idle since may go. */
static int xtt_ack(struct xt_traffic_table *t, u64 n)
{
	int ret = 0;

	spin_lock(&t->ack_lock);
	if (n && t->readlog[n % XTT_READLOG].n == n) {
		if (t->readlog[n % XTT_READLOG].at > t->acked_at)
			WRITE_ONCE(t->acked_at, t->readlog[n % XTT_READLOG].at);
	} else {
		ret = -EINVAL;
	}
	spin_unlock(&t->ack_lock);
	if (ret)
		pr_info_ratelimited("%s: ack %llu: no such read (the last %d reads can be acked)\n",
				    t->name, n, XTT_READLOG);
	return ret;
}

static ssize_t xtt_ctr_write(struct file *file, const char __user *ubuf,
			     size_t size, loff_t *loff)
{
	struct xt_traffic_table *t = pde_data(file_inode(file));
	char buf[32];
	ssize_t ret;
	u64 n;

	if (!t->reclaim_idle || !xtt_may_clear(file, t))
		return -EPERM;
	ret = xtt_write_cmd(buf, sizeof(buf), ubuf, size);
	if (ret <= 0)
		return ret;
	if (strncmp(buf, "ack ", 4) || kstrtou64(buf + 4, 10, &n)) {
		pr_info_ratelimited("%s: unknown command \"%*pE\" (allowed: ack N)\n",
				    t->name, (int)strlen(buf), buf);
		return -EINVAL;
	}
	ret = xtt_ack(t, n);
	return ret ? ret : size;
}

static const struct proc_ops xtt_ctr_proc_ops = {
	.proc_open	= xtt_ctr_open,
	.proc_read	= seq_read,
	.proc_write	= xtt_ctr_write,
	.proc_lseek	= seq_lseek,
	.proc_release	= seq_release_private,
};

/* ---- reclaiming idle entries (reclaim_idle) ---- */

/*
 * Under clear_mutex and the bucket's lock: whether @e may go, and if so it
 * is marked XTT_STAMP_DEAD. Every displayed counter is zero (no reader of
 * the spec's files has counts it has not read: clears move baselines only
 * under clear_mutex), it has not changed for @idle seconds, and its last
 * change came before the latest acked walk began (that walk, committed by
 * the collector, read its final counters). The counters are read before
 * the stamp: a count seen here brings its stamp (xtt_touch()).
 */
static bool xtt_reclaimable(const struct xtt_map *m, struct xtt_entry *e,
			    u32 now, u32 idle, u32 acked)
{
	unsigned int i;
	u32 s;

	for (i = 0; i < m->ncounters; i++)
		if (atomic64_read(&e->c[i]) !=
		    atomic64_read(xtt_base(m, e, i)))
			return false;
	/* pairs with xtt_touch(): the counts before their stamp */
	smp_rmb();
	s = READ_ONCE(e->stamp);
	if (s >= acked || now - s < idle)
		return false;
	return cmpxchg(&e->stamp, s, XTT_STAMP_DEAD) == s;
}

/*
 * After the grace period that followed @e's unlink (no packet holds it):
 * what packets added since the unlink (counter - baseline: the baselines
 * held the counters then) goes to the key's current entry, made with a
 * new serial if there is none; then @e is freed.
 */
static void xtt_reap(struct xtt_map *m, struct xtt_entry *e)
{
	u64 d[XTT_COUNTERS_MAX], any = 0;
	struct xtt_entry *n;
	unsigned int i;
	u32 idx;

	for (i = 0; i < m->ncounters; i++) {
		d[i] = atomic64_read(&e->c[i]) -
		       atomic64_read(xtt_base(m, e, i));
		any |= d[i];
	}
	if (any) {
		idx = m->v6 ? e->key >> (32 - m->bits) :
			      xtt_map_bucket(m, e->key);
		rcu_read_lock();
		n = xtt_map_insert(m, idx, e->key,
				   m->v6 ? xtt_key6(m, e) : NULL);
		for (i = 0; n && i < m->ncounters; i++)
			if (d[i])
				xtt_entry_add(m, n, i, d[i]);
		rcu_read_unlock();
	}
	kmem_cache_free(xtt_cache(m), e);
}

/* Unlinks bucket @b's reclaimable entries into t->reap[*n ...]. */
static void xtt_bucket_reclaim(struct xt_traffic_table *t, struct xtt_map *m,
			       u32 b, u32 now, u32 acked, unsigned int *n)
{
	spinlock_t *lock = &m->locks[b % XTT_LOCKS];
	struct xtt_entry __rcu **pp = &m->buckets[b];
	struct xtt_entry *e, *next;

	spin_lock_bh(lock);
	while ((e = rcu_dereference_protected(*pp, lockdep_is_held(lock)))) {
		next = rcu_dereference_protected(e->next, lockdep_is_held(lock));
		if (*n < XTT_REAP_BATCH &&
		    xtt_reclaimable(m, e, now, t->reclaim_idle, acked)) {
			rcu_assign_pointer(*pp, next);
			atomic_dec(&m->count);
			t->reap[(*n)++] = e;
		} else {
			pp = &e->next;
		}
	}
	spin_unlock_bh(lock);
}

static void xtt_map_reclaim(struct xt_traffic_table *t, struct xtt_map *m)
{
	u32 b = 0, now, acked;
	unsigned int n, i;

	while (b < m->nbuckets) {
		/* no spec-file read or clear meanwhile (baselines) */
		mutex_lock(&t->clear_mutex);
		now = xtt_now();
		acked = READ_ONCE(t->acked_at);
		n = 0;
		for (; acked && b < m->nbuckets && n < XTT_REAP_BATCH; b++) {
			if ((b & 1023) == 1023)
				cond_resched();
			if (rcu_access_pointer(m->buckets[b]))
				xtt_bucket_reclaim(t, m, b, now, acked, &n);
		}
		if (n) {
			synchronize_rcu();
			for (i = 0; i < n; i++)
				xtt_reap(m, t->reap[i]);
			atomic64_add(n, &t->reclaimed);
		}
		mutex_unlock(&t->clear_mutex);
		if (!acked)
			break;
	}
}

static unsigned long xtt_reclaim_period(const struct xt_traffic_table *t)
{
	return msecs_to_jiffies(max(t->reclaim_idle / 2, 1U) * MSEC_PER_SEC);
}

static void xtt_reclaim_work(struct work_struct *work)
{
	struct xt_traffic_table *t = container_of(to_delayed_work(work),
						  struct xt_traffic_table,
						  reclaim_work);
	unsigned int k;

	for (k = 0; k < XTT_KINDS; k++)
		if (t->map[k])
			xtt_map_reclaim(t, t->map[k]);
	schedule_delayed_work(&t->reclaim_work, xtt_reclaim_period(t));
}

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
	case XTT_KIND_PACKETS:
		*dir = tn->packets_dir;
		strscpy(fname, t->name, size);
		return t->map[i];
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

	/* the files are gone, the rules too: nothing reads or acks */
	if (t->reclaim_idle)
		cancel_delayed_work_sync(&t->reclaim_work);
	kvfree(t->reap);
	for (k = 0; k < XTT_KINDS; k++)
		xtt_map_free(t->map[k]);
	if (t->flows)
		free_percpu(t->flows->evictions);
	kvfree(t->flows);
	mutex_destroy(&t->clear_mutex);
	free_percpu(t->overflow);
	mem_cgroup_put(t->memcg);
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
			    i == XTT_KIND_PACKETS ? XTT_PACKETS_DIR :
			    XT_TRAFFIC_PROC_DIR, fname);
	/* only the files created before this one */
	xtt_table_remove_files(tn, t, i);
	return -ENOMEM;
}

/*
 * Most buckets of a map whose size is derived (no --hashsize): its array at
 * most 1/1024 of RAM (xt_hashlimit sizes by RAM too), a power of two, at
 * least XTT_BUCKETS_MIN.
 */
static u32 xtt_buckets_cap(void)
{
	unsigned long n = (totalram_pages() << PAGE_SHIFT) / 1024 /
			  sizeof(struct xtt_entry *);

	if (n > XT_TRAFFIC_HASHSIZE_MAX)
		n = XT_TRAFFIC_HASHSIZE_MAX;
	if (n < XTT_BUCKETS_MIN)
		return XTT_BUCKETS_MIN;
	return 1U << xtt_ilog2(n);
}

/* A checked rule of either revision, as a table is made or compared. */
struct xtt_conf {
	u8 family;		/* NFPROTO_IPV4 or NFPROTO_IPV6 */
	u8 netlen;		/* prefix length of the net */
	u8 hostprefix;		/* netlen .. 32 or 128 */
	u32 flags;
	u32 hashsize;
	const union nf_inet_addr *netbase;	/* network order */
	const union nf_inet_addr *netmask;
	const char *name;
};

static struct xtt_k6 xtt_k6_of(const union nf_inet_addr *a)
{
	struct xtt_k6 k;

	xtt_k6_load(&k, &a->in6);
	return k;
}

static struct xt_traffic_table *xtt_table_create(struct net *net,
						 const struct xtt_conf *conf)
{
	struct xt_traffic_table *t;
	u32 ipb, keyspace = 0;

	t = kzalloc(sizeof(*t), GFP_KERNEL_ACCOUNT);
	if (!t)
		return NULL;
	t->net = net;
	t->refcnt = 1;
	/* read once, like packets: the table keeps its choice */
	t->reclaim_idle = READ_ONCE(reclaim_idle);
	INIT_DELAYED_WORK(&t->reclaim_work, xtt_reclaim_work);
	spin_lock_init(&t->ack_lock);
	t->memcg = get_mem_cgroup_from_mm(current->mm);
	strscpy(t->name, conf->name, sizeof(t->name));
	t->flags = conf->flags;
	t->family = conf->family;
	t->hostprefix = conf->hostprefix;
	if (conf->family == NFPROTO_IPV6) {
		t->base6 = xtt_k6_of(conf->netbase);
		t->mask6 = xtt_k6_of(conf->netmask);
		t->hpmask6 = xtt_k6_mask(conf->hostprefix);
		get_random_bytes(&t->fkey, sizeof(t->fkey));
		/*
		 * Direct maps (bits between the prefixes that fit the buckets)
		 * when those bits lie in one 64-bit half: a /48 per /64, a /120
		 * per /128; a /56 per /72 straddles and stays hashed.
		 */
		if (conf->hostprefix - conf->netlen < 32 &&
		    (conf->hostprefix <= 64 || conf->netlen >= 64)) {
			keyspace = 1U << (conf->hostprefix - conf->netlen);
			t->d6lo = conf->hostprefix > 64;
			t->d6shift = (t->d6lo ? 128 : 64) - conf->hostprefix;
		}
	} else {
		t->base = ntohl(conf->netbase->ip);
		t->mask = ntohl(conf->netmask->ip);
		t->shift = 32 - conf->hostprefix;
		/* prefixes in the net: at most 2^31 (the net is at least a /1) */
		keyspace = 1U << (conf->hostprefix - conf->netlen);
	}
	t->sides = xtt_count_sides(t->flags);
	/* internal packets (both sides) and tables without --traffic: full path */
	t->fast = t->flags & XT_TRAFFIC_TRAFFIC ? t->sides & (1 << 1 | 1 << 2) : 0;
	t->hashsize = conf->hashsize;
	t->overflow = alloc_percpu_gfp(u64, GFP_KERNEL_ACCOUNT);
	if (!t->overflow)
		goto out_free_table;
	mutex_init(&t->clear_mutex);
	/* a new instance: its counters start at zero (0 is never drawn) */
	do {
		t->generation = get_random_u64();
	} while (!t->generation);

	ipb = xtt_ip_buckets_bits(conf->hostprefix - conf->netlen, t->hashsize);
	/* as xt_hashlimit: a derived size by RAM; a --hashsize is honoured */
	if (!t->hashsize && ipb > xtt_buckets_cap())
		ipb = xtt_buckets_cap();
	if (t->flags & XT_TRAFFIC_TRAFFIC) {
		t->map[XTT_KIND_TRAFFIC] = xtt_map_alloc(t, XTT_KIND_TRAFFIC, ipb,
							 keyspace);
		if (!t->map[XTT_KIND_TRAFFIC])
			goto out_free_table;
	}
	if ((t->flags & XT_TRAFFIC_TRAFFIC) && READ_ONCE(packets)) {
		t->map[XTT_KIND_PACKETS] = xtt_map_alloc(t, XTT_KIND_PACKETS, ipb,
							 keyspace);
		if (!t->map[XTT_KIND_PACKETS])
			goto out_free_table;
		t->fast = 0;	/* packets take the full path */
	}
	if (t->flags & XT_TRAFFIC_IPCONN) {
		t->map[XTT_KIND_IPCONN] = xtt_map_alloc(t, XTT_KIND_IPCONN, ipb,
							keyspace);
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
	/* IPv6: a net and host prefix of at most /64 over a direct map */
	t->fast6hi = t->fast && t->family == NFPROTO_IPV6 &&
		     conf->hostprefix <= 64 &&
		     t->map[XTT_KIND_TRAFFIC]->direct;
	if (t->flags & (XT_TRAFFIC_IPCONN | XT_TRAFFIC_PORTCONN)) {
		t->flows = xtt_flows_alloc(xtt_flow_slots(ipb));
		if (!t->flows)
			goto out_free_table;
	}
	if (t->reclaim_idle) {
		t->reap = kvmalloc_array(XTT_REAP_BATCH, sizeof(*t->reap),
					 GFP_KERNEL_ACCOUNT);
		if (!t->reap)
			goto out_free_table;
		schedule_delayed_work(&t->reclaim_work, xtt_reclaim_period(t));
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

/* Flags and name, the same rules and messages for both revisions. */
static int xtt_check_flags_name(u32 flags, const char *name)
{
	enum xtt_name_err nerr;

	if (flags & ~XT_TRAFFIC_VALID_FLAGS) {
		pr_info_ratelimited("unknown flag bits 0x%x (known: 0x%x)\n",
				    flags & ~XT_TRAFFIC_VALID_FLAGS,
				    XT_TRAFFIC_VALID_FLAGS);
		return -EINVAL;
	}
	if (!(flags & XT_TRAFFIC_COUNT_FLAGS)) {
		pr_info_ratelimited("nothing to count: give --traffic, --portconn or --ipconn\n");
		return -EINVAL;
	}
	if ((flags & XT_TRAFFIC_NOINTERNAL) && (flags & XT_TRAFFIC_ONLYINTERNAL)) {
		pr_info_ratelimited("--nointernal and ! --nointernal exclude each other\n");
		return -EINVAL;
	}
	nerr = xtt_name_check(name);
	if (nerr != XTT_NAME_OK) {
		pr_info_ratelimited("table name \"%*pE\" %s\n",
				    (int)strnlen(name, XT_TRAFFIC_NAME_LEN),
				    name, xtt_name_errstr[nerr]);
		return -EINVAL;
	}
	return 0;
}

static int xtt_check_hashsize(const char *name, u32 hashsize)
{
	if (hashsize > XT_TRAFFIC_HASHSIZE_MAX) {
		pr_info_ratelimited("%s: hashsize %u out of range 1..%u\n",
				    name, hashsize, XT_TRAFFIC_HASHSIZE_MAX);
		return -ERANGE;
	}
	return 0;
}

/* Revision 0: IPv4, per address. */
static int xtt_check_info(const struct xt_traffic_mtinfo *info,
			  struct xtt_conf *conf)
{
	u32 base = ntohl(info->netbase.ip), mask = ntohl(info->netmask.ip);
	int ret;

	ret = xtt_check_flags_name(info->flags, info->name);
	if (ret)
		return ret;
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
	ret = xtt_check_hashsize(info->name, info->hashsize);
	if (ret)
		return ret;
	conf->family = NFPROTO_IPV4;
	conf->netlen = xtt_prefix_len(mask);
	conf->hostprefix = 32;
	conf->flags = info->flags;
	conf->hashsize = info->hashsize;
	conf->netbase = &info->netbase;
	conf->netmask = &info->netmask;
	conf->name = info->name;
	return 0;
}

/* Revision 1, IPv4: as revision 0, plus the host prefix. */
static int xtt_check_net1_v4(const struct xt_traffic_mtinfo1 *info, u8 *netlen)
{
	u32 base = ntohl(info->netbase.ip), mask = ntohl(info->netmask.ip);

	if (info->netbase.all[1] || info->netbase.all[2] || info->netbase.all[3] ||
	    info->netmask.all[1] || info->netmask.all[2] || info->netmask.all[3]) {
		pr_info_ratelimited("%s: an IPv4 rule with IPv6 values: netbase %pI6c netmask %pI6c\n",
				    info->name, &info->netbase.in6,
				    &info->netmask.in6);
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
	*netlen = xtt_prefix_len(mask);
	return 0;
}

/* Revision 1, IPv6: a contiguous mask of 1..128 bits, the base aligned. */
static int xtt_check_net1_v6(const struct xt_traffic_mtinfo1 *info, u8 *netlen)
{
	struct xtt_k6 base = xtt_k6_of(&info->netbase);
	struct xtt_k6 mask = xtt_k6_of(&info->netmask);
	int len = xtt_k6_prefix_len(&mask);

	if (len <= 0) {
		pr_info_ratelimited("%s: netmask %pI6c is not a contiguous IPv6 mask of prefix 1..128%s\n",
				    info->name, &info->netmask.in6,
				    len == 0 ? " (a /0 net would be every address)" : "");
		return -EINVAL;
	}
	if ((base.hi & ~mask.hi) || (base.lo & ~mask.lo)) {
		pr_info_ratelimited("%s: netbase %pI6c has host bits set for a /%d net\n",
				    info->name, &info->netbase.in6, len);
		return -EINVAL;
	}
	*netlen = len;
	return 0;
}

static int xtt_check_info1(const struct xt_traffic_mtinfo1 *info, u8 family,
			   struct xtt_conf *conf)
{
	unsigned int bits = family == NFPROTO_IPV6 ? 128 : 32;
	u8 netlen;
	int ret;

	ret = xtt_check_flags_name(info->flags, info->name);
	if (ret)
		return ret;
	if (info->pad[0] || info->pad[1] || info->pad[2]) {
		pr_info_ratelimited("%s: padding bytes 0x%02x%02x%02x are not zero\n",
				    info->name, info->pad[0], info->pad[1],
				    info->pad[2]);
		return -EINVAL;
	}
	if (family == NFPROTO_IPV6)
		ret = xtt_check_net1_v6(info, &netlen);
	else
		ret = xtt_check_net1_v4(info, &netlen);
	if (ret)
		return ret;
	if (info->hostprefix < netlen || info->hostprefix > bits) {
		pr_info_ratelimited("%s: hostprefix %u is %s (%u..%u for this /%u %s net)\n",
				    info->name, info->hostprefix,
				    info->hostprefix > bits ?
				    (bits == 32 ? "longer than an IPv4 address" :
				     "longer than an IPv6 address") :
				    "shorter than the net",
				    netlen, bits, netlen,
				    bits == 32 ? "IPv4" : "IPv6");
		return -EINVAL;
	}
	ret = xtt_check_hashsize(info->name, info->hashsize);
	if (ret)
		return ret;
	conf->family = family;
	conf->netlen = netlen;
	conf->hostprefix = info->hostprefix;
	conf->flags = info->flags;
	conf->hashsize = info->hashsize;
	conf->netbase = &info->netbase;
	conf->netmask = &info->netmask;
	conf->name = info->name;
	return 0;
}

/* A rule naming an existing table must describe it exactly. */
static int xtt_check_same(const struct xt_traffic_table *t,
			  const struct xtt_conf *conf, bool report)
{
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

	if (t->family != conf->family) {
		if (report)
			pr_info_ratelimited("table %s exists for %s; this rule is %s\n",
					    t->name, xtt_family_name(t),
					    conf->family == NFPROTO_IPV6 ? "ipv6" : "ipv4");
		return -EEXIST;
	}
	if (t->hostprefix != conf->hostprefix) {
		if (report)
			pr_info_ratelimited("table %s exists with --hostprefix %u; this rule has %u\n",
					    t->name, t->hostprefix, conf->hostprefix);
		return -EEXIST;
	}
	if (t->family == NFPROTO_IPV6) {
		struct xtt_k6 base = xtt_k6_of(conf->netbase);
		struct xtt_k6 mask = xtt_k6_of(conf->netmask);

		if (xtt_k6_cmp(&base, &t->base6) || xtt_k6_cmp(&mask, &t->mask6)) {
			if (report)
				pr_info_ratelimited("table %s exists with --netbase %pI6c --netmask %d; this rule has %pI6c %u\n",
						    t->name, conf->netbase,
						    xtt_k6_prefix_len(&t->mask6),
						    conf->netbase, conf->netlen);
			return -EINVAL;
		}
	} else if (t->base != ntohl(conf->netbase->ip) ||
		   t->mask != ntohl(conf->netmask->ip)) {
		__be32 tb = htonl(t->base), tm = htonl(t->mask);

		if (report)
			pr_info_ratelimited("table %s exists with --netbase %pI4 --netmask %pI4; this rule has %pI4 %pI4\n",
					    t->name, &tb, &tm, &conf->netbase->ip,
					    &conf->netmask->ip);
		return -EINVAL;
	}
	for (i = 0; i < ARRAY_SIZE(opts); i++) {
		if ((t->flags ^ conf->flags) & opts[i].bit) {
			if (report)
				pr_info_ratelimited("table %s exists %s %s; this rule differs\n",
						    t->name,
						    t->flags & opts[i].bit ? "with" : "without",
						    opts[i].opt);
			return -EINVAL;
		}
	}
	if (t->hashsize != conf->hashsize) {
		if (report)
			pr_info_ratelimited("table %s exists with --hashsize %u; this rule has %u (0 = derived)\n",
					    t->name, t->hashsize, conf->hashsize);
		return -EINVAL;
	}
	return 0;
}

/* How long a rule waits for a table of the same name with other options to go. */
#define XTT_DESTROY_WAIT_MS	2000U

/* The table of a checked rule: found (and shared) or made. */
static int xtt_table_get(struct net *net, const struct xtt_conf *conf,
			 struct xt_traffic_table **table)
{
	struct traffic_net *tn = traffic_pernet(net);
	struct xt_traffic_table *t, *fresh = NULL;
	unsigned int waited = 0;
	int ret = 0;

	/*
	 * A new table is allocated outside traffic_mutex (megabytes for a
	 * big net must not stall every other rule of every netns); if
	 * another rule made the same table meanwhile, that one is used.
	 */
again:
	mutex_lock(&traffic_mutex);
	t = xtt_table_lookup(tn, conf->name);
	if (t) {
		/*
		 * Other options: the table may be one whose last rule is
		 * being destroyed asynchronously (nft_compat destroys after
		 * the commit, from a work item): wait for it a little.
		 */
		ret = xtt_check_same(t, conf, waited >= XTT_DESTROY_WAIT_MS);
		if (ret && waited < XTT_DESTROY_WAIT_MS) {
			mutex_unlock(&traffic_mutex);
			msleep(20);
			waited += 20;
			goto again;
		}
		if (ret)
			goto out;
		t->refcnt++;
		*table = t;
		goto out;
	}
	if (!tn->proc_dir) {
		ret = -ENOENT;	/* the netns is being dismantled */
		goto out;
	}
	if (!fresh) {
		mutex_unlock(&traffic_mutex);
		fresh = xtt_table_create(net, conf);
		if (!fresh) {
			pr_info_ratelimited("%s: out of memory for the table\n",
					    conf->name);
			return -ENOMEM;
		}
		goto again;
	}
	ret = xtt_table_add_proc(tn, fresh);
	if (ret)
		goto out;
	list_add_tail(&fresh->list, &tn->tables);
	*table = fresh;
	fresh = NULL;
out:
	mutex_unlock(&traffic_mutex);
	if (fresh)
		xtt_table_free(fresh);
	return ret;
}

static int traffic_mt_check(const struct xt_mtchk_param *par)
{
	struct xt_traffic_mtinfo *info = par->matchinfo;
	struct xtt_conf conf;
	int ret;

	ret = xtt_check_info(info, &conf);
	if (ret)
		return ret;
	return xtt_table_get(par->net, &conf, &info->table);
}

static int traffic_mt_check1(const struct xt_mtchk_param *par)
{
	struct xt_traffic_mtinfo1 *info = par->matchinfo;
	struct xtt_conf conf;
	int ret;

	ret = xtt_check_info1(info, par->family, &conf);
	if (ret)
		return ret;
	return xtt_table_get(par->net, &conf, &info->table);
}

static void xtt_table_put(struct net *net, struct xt_traffic_table *t)
{
	struct traffic_net *tn = traffic_pernet(net);

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

static void traffic_mt_destroy(const struct xt_mtdtor_param *par)
{
	const struct xt_traffic_mtinfo *info = par->matchinfo;

	xtt_table_put(par->net, info->table);
}

static void traffic_mt_destroy1(const struct xt_mtdtor_param *par)
{
	const struct xt_traffic_mtinfo1 *info = par->matchinfo;

	xtt_table_put(par->net, info->table);
}

static struct xt_match traffic_mt_reg[] __read_mostly = {
	{
		.name		= "traffic",
		.revision	= 0,
		.family		= NFPROTO_IPV4,
		.match		= traffic_mt,
		.checkentry	= traffic_mt_check,
		.destroy	= traffic_mt_destroy,
		.matchsize	= sizeof(struct xt_traffic_mtinfo),
		.usersize	= offsetof(struct xt_traffic_mtinfo, table),
		.me		= THIS_MODULE,
	},
	{
		.name		= "traffic",
		.revision	= 1,
		.family		= NFPROTO_IPV4,
		.match		= traffic_mt1,
		.checkentry	= traffic_mt_check1,
		.destroy	= traffic_mt_destroy1,
		.matchsize	= sizeof(struct xt_traffic_mtinfo1),
		.usersize	= offsetof(struct xt_traffic_mtinfo1, table),
		.me		= THIS_MODULE,
	},
	{
		.name		= "traffic",
		.revision	= 1,
		.family		= NFPROTO_IPV6,
		.match		= traffic_mt6,
		.checkentry	= traffic_mt_check1,
		.destroy	= traffic_mt_destroy1,
		.matchsize	= sizeof(struct xt_traffic_mtinfo1),
		.usersize	= offsetof(struct xt_traffic_mtinfo1, table),
		.me		= THIS_MODULE,
	},
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
	tn->packets_dir = proc_mkdir(XTT_PACKETS_DIR, net->proc_net);
	if (!tn->packets_dir)
		goto out_remove_counters_dir;
	return 0;

out_remove_counters_dir:
	remove_proc_entry(XTT_COUNTERS_DIR, net->proc_net);
	tn->counters_dir = NULL;
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
	tn->packets_dir = NULL;
	mutex_unlock(&traffic_mutex);
	remove_proc_subtree(XT_TRAFFIC_PROC_DIR, net->proc_net);
	remove_proc_subtree(XTT_COUNTERS_DIR, net->proc_net);
	remove_proc_subtree(XTT_PACKETS_DIR, net->proc_net);
}

static struct pernet_operations traffic_net_ops = {
	.init	= traffic_net_init,
	.exit	= traffic_net_exit,
	.id	= &traffic_net_id,
	.size	= sizeof(struct traffic_net),
};

static int __init traffic_mt_init(void)
{
	static const char *const names[ARRAY_SIZE(xtt_entry_cache)] = {
		"xt_traffic_entry", "xt_traffic_conn_entry",
		"xt_traffic_entry6", "xt_traffic_conn_entry6",
		"xt_traffic_entry_r", "xt_traffic_conn_entry_r",
		"xt_traffic_entry6_r", "xt_traffic_conn_entry6_r",
	};
	unsigned int i;
	int ret;

	/*
	 * counters and baselines; IPv6 entries then their 128-bit key; the
	 * entries of tables that reclaim then their serial
	 */
	for (i = 0; i < ARRAY_SIZE(xtt_entry_cache); i++) {
		xtt_entry_cache[i] =
			kmem_cache_create(names[i],
					  XTT_ENTRY_SIZE(4 * (i & 1 ? XTT_CN_N : XTT_TR_N)) +
					  (i & 2 ? sizeof(struct xtt_k6) : 0) +
					  (i & 4 ? sizeof(u64) : 0),
					  0, SLAB_ACCOUNT, NULL);
		if (!xtt_entry_cache[i]) {
			ret = -ENOMEM;
			goto out_destroy_caches;
		}
	}
	ret = register_pernet_subsys(&traffic_net_ops);
	if (ret)
		goto out_destroy_caches;
	ret = xt_register_matches(traffic_mt_reg, ARRAY_SIZE(traffic_mt_reg));
	if (ret)
		goto out_unregister_pernet;
	return 0;

out_unregister_pernet:
	unregister_pernet_subsys(&traffic_net_ops);
out_destroy_caches:
	for (i = 0; i < ARRAY_SIZE(xtt_entry_cache); i++)
		kmem_cache_destroy(xtt_entry_cache[i]);
	return ret;
}

static void __exit traffic_mt_exit(void)
{
	unsigned int i;

	xt_unregister_matches(traffic_mt_reg, ARRAY_SIZE(traffic_mt_reg));
	unregister_pernet_subsys(&traffic_net_ops);
	for (i = 0; i < ARRAY_SIZE(xtt_entry_cache); i++)
		kmem_cache_destroy(xtt_entry_cache[i]);
}

module_init(traffic_mt_init);
module_exit(traffic_mt_exit);
