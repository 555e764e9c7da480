/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * xt_traffic: per-IP traffic and connection accounting match.
 *
 * Shared by the kernel module (kernel/), the iptables extension (libxt/) and
 * the N-API binding (native/). An ABI change is a new revision, never an edit.
 */
#ifndef _UAPI_XT_TRAFFIC_H
#define _UAPI_XT_TRAFFIC_H

#include <linux/types.h>
#include <linux/netfilter.h>

/* Table name, including the terminating NUL. */
#define XT_TRAFFIC_NAME_LEN	32

/* Largest accepted --hashsize (buckets); 0 in the struct means "derive". */
#define XT_TRAFFIC_HASHSIZE_MAX	(1U << 22)

/* Suffixes of the extra /proc files of table NAME; a name may not end in one. */
#define XT_TRAFFIC_SUFFIX_IPCONN	"_ipconn"
#define XT_TRAFFIC_SUFFIX_PORTCONN	"_portconn"
#define XT_TRAFFIC_SUFFIX_INFO		"_info"

/* /proc/net/xt_traffic/ */
#define XT_TRAFFIC_PROC_DIR	"xt_traffic"

enum {
	XT_TRAFFIC_TRAFFIC	= 1 << 0,	/* --traffic */
	XT_TRAFFIC_PORTCONN	= 1 << 1,	/* --portconn */
	XT_TRAFFIC_IPCONN	= 1 << 2,	/* --ipconn */
	XT_TRAFFIC_CLEARONREAD	= 1 << 3,	/* --clearonread */
	XT_TRAFFIC_NOINTERNAL	= 1 << 4,	/* --nointernal */
	XT_TRAFFIC_ONLYINTERNAL	= 1 << 5,	/* ! --nointernal */
};

#define XT_TRAFFIC_COUNT_FLAGS \
	(XT_TRAFFIC_TRAFFIC | XT_TRAFFIC_PORTCONN | XT_TRAFFIC_IPCONN)
#define XT_TRAFFIC_VALID_FLAGS \
	(XT_TRAFFIC_COUNT_FLAGS | XT_TRAFFIC_CLEARONREAD | \
	 XT_TRAFFIC_NOINTERNAL | XT_TRAFFIC_ONLYINTERNAL)

/*
 * Revision 0. netbase/netmask are in network byte order; for IPv4 only
 * .ip is used and the rest of each union must be zero (IPv6 can follow as
 * another family with the same struct).
 */
struct xt_traffic_mtinfo {
	__u32 flags;
	__u32 hashsize;
	union nf_inet_addr netbase;
	union nf_inet_addr netmask;
	char name[XT_TRAFFIC_NAME_LEN];

	/* Kernel-private: the shared table. Not part of what userspace compares. */
	struct xt_traffic_table *table __attribute__((aligned(8)));
};

/*
 * Revision 1, registered for NFPROTO_IPV4 and NFPROTO_IPV6: counts per host
 * prefix of length hostprefix inside the net. netbase/netmask in network byte
 * order: for IPv4 only .ip is used and the rest of each union must be zero;
 * for IPv6 all 128 bits (.ip6). hostprefix: net length .. 32 (IPv4) or 128
 * (IPv6); it is never 0 in a valid struct (libxt puts the default: 32 for
 * IPv4, 64 for IPv6). pad must be zero.
 */
struct xt_traffic_mtinfo1 {
	__u32 flags;
	__u32 hashsize;
	union nf_inet_addr netbase;
	union nf_inet_addr netmask;
	__u8 hostprefix;
	__u8 pad[3];
	char name[XT_TRAFFIC_NAME_LEN];

	/* Kernel-private: the shared table. Not part of what userspace compares. */
	struct xt_traffic_table *table __attribute__((aligned(8)));
};

#endif /* _UAPI_XT_TRAFFIC_H */
