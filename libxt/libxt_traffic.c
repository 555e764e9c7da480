// SPDX-License-Identifier: GPL-2.0-only
/*
 * libxt_traffic: iptables userspace part of the xt_traffic match
 * (per-IP traffic and connection accounting).
 *
 *   iptables -t raw -A PREROUTING -m traffic --traffic --ipconn \
 *	--netbase 193.11.176.0 --netmask 20 --name RSN
 *   ip6tables -t raw -A PREROUTING -m traffic --traffic \
 *	--netbase 2001:db8:: --netmask 48 --hostprefix 56 --name V6
 *
 * Revision 0 (IPv4) and revision 1 (IPv4 and IPv6, --hostprefix): iptables
 * uses revision 1 when the kernel has it.
 * Option contracts: docs/design.md. The kernel's checkentry re-checks
 * everything; the checks here exist to give a clear message early.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <xtables.h>
#include <linux/netfilter/xt_traffic.h>

#ifndef __maybe_unused
#define __maybe_unused __attribute__((unused))
#endif
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(x) (sizeof(x) / sizeof(*(x)))
#endif

enum {
	O_TRAFFIC = 0,
	O_PORTCONN,
	O_IPCONN,
	O_NETBASE,
	O_NETMASK,
	O_NAME,
	O_HASHSIZE,
	O_CLEARONREAD,
	O_NOINTERNAL,
	O_HOSTPREFIX,
	F_TRAFFIC	= 1 << O_TRAFFIC,
	F_PORTCONN	= 1 << O_PORTCONN,
	F_IPCONN	= 1 << O_IPCONN,
	F_NETBASE	= 1 << O_NETBASE,
	F_NETMASK	= 1 << O_NETMASK,
	F_HOSTPREFIX	= 1 << O_HOSTPREFIX,
	F_COUNT		= F_TRAFFIC | F_PORTCONN | F_IPCONN,
};

#define NAME_CHARS_HELP	"1..31 characters of A-Z a-z 0-9 _ . -"

#define s struct xt_traffic_mtinfo
static const struct xt_option_entry traffic_mt_opts[] = {
	{.name = "traffic", .id = O_TRAFFIC, .type = XTTYPE_NONE},
	{.name = "portconn", .id = O_PORTCONN, .type = XTTYPE_NONE},
	{.name = "ipconn", .id = O_IPCONN, .type = XTTYPE_NONE},
	/* Parsed by hand: numeric only, and messages that name the value. */
	{.name = "netbase", .id = O_NETBASE, .type = XTTYPE_STRING,
	 .flags = XTOPT_MAND},
	{.name = "netmask", .id = O_NETMASK, .type = XTTYPE_STRING,
	 .flags = XTOPT_MAND},
	{.name = "name", .id = O_NAME, .type = XTTYPE_STRING,
	 .flags = XTOPT_MAND},
	{.name = "hashsize", .id = O_HASHSIZE, .type = XTTYPE_UINT32,
	 .flags = XTOPT_PUT, XTOPT_POINTER(s, hashsize),
	 .min = 1, .max = XT_TRAFFIC_HASHSIZE_MAX},
	{.name = "clearonread", .id = O_CLEARONREAD, .type = XTTYPE_NONE},
	{.name = "nointernal", .id = O_NOINTERNAL, .type = XTTYPE_NONE,
	 .flags = XTOPT_INVERT},
	XTOPT_TABLEEND,
};
#undef s

/* Revision 1: the same and --hostprefix (parsed by hand: messages name it). */
#define s struct xt_traffic_mtinfo1
static const struct xt_option_entry traffic_mt1_opts[] = {
	{.name = "traffic", .id = O_TRAFFIC, .type = XTTYPE_NONE},
	{.name = "portconn", .id = O_PORTCONN, .type = XTTYPE_NONE},
	{.name = "ipconn", .id = O_IPCONN, .type = XTTYPE_NONE},
	{.name = "netbase", .id = O_NETBASE, .type = XTTYPE_STRING,
	 .flags = XTOPT_MAND},
	{.name = "netmask", .id = O_NETMASK, .type = XTTYPE_STRING,
	 .flags = XTOPT_MAND},
	{.name = "hostprefix", .id = O_HOSTPREFIX, .type = XTTYPE_STRING},
	{.name = "name", .id = O_NAME, .type = XTTYPE_STRING,
	 .flags = XTOPT_MAND},
	{.name = "hashsize", .id = O_HASHSIZE, .type = XTTYPE_UINT32,
	 .flags = XTOPT_PUT, XTOPT_POINTER(s, hashsize),
	 .min = 1, .max = XT_TRAFFIC_HASHSIZE_MAX},
	{.name = "clearonread", .id = O_CLEARONREAD, .type = XTTYPE_NONE},
	{.name = "nointernal", .id = O_NOINTERNAL, .type = XTTYPE_NONE,
	 .flags = XTOPT_INVERT},
	XTOPT_TABLEEND,
};
#undef s

static void traffic_mt_help(void)
{
	printf(
"traffic match options (per-IP traffic and connection accounting;\n"
"the rule always matches, it only counts):\n"
" at least one of:\n"
"  --traffic             count bytes per IP, in and out, split TCP/UDP/OTHER\n"
"                        -> /proc/net/xt_traffic/NAME\n"
"  --portconn            count new connections per service (destination) port,\n"
"                        split TCP/UDP/ICMP/OTHER -> /proc/net/xt_traffic/NAME_portconn\n"
"  --ipconn              count new connections per IP, split TCP/UDP/ICMP/OTHER\n"
"                        -> /proc/net/xt_traffic/NAME_ipconn\n"
" mandatory:\n"
"  --netbase a.b.c.d     base address of the monitored net (aligned to the mask)\n"
"  --netmask a.b.c.d|N   netmask of the monitored net: dotted, or a prefix\n"
"                        length 1..32 (e.g. 255.255.240.0 or 20)\n"
"  --name NAME           table name, " NAME_CHARS_HELP ",\n"
"                        not \".\" or \"..\", not ending in _ipconn, _portconn\n"
"                        or _info; rules giving the same NAME share one table\n"
" optional:\n"
"  --hashsize N          hash buckets, 1..%u, rounded up to a power of two\n"
"                        (default: derived from the net size)\n"
"  --clearonread         every read of a file returns and zeroes its counters\n"
"                        (default: counters are kept when read)\n"
"  --nointernal          do not count traffic between two hosts of the net\n"
"  ! --nointernal        count only traffic between two hosts of the net\n"
"                        (default: counted for both hosts, out and in)\n"
"files under /proc/net/xt_traffic/ (per network namespace; root only unless\n"
"the module parameters proc_perms, proc_uid, proc_gid say otherwise):\n"
"  NAME, NAME_portconn, NAME_ipconn   counters, one row per IP or port\n"
"  NAME_info                          settings, entry counts, overflow\n"
"  open O_RDWR to read and clear; \"echo clear > FILE\" clears without reading\n"
"example:\n"
"  iptables -t raw -A PREROUTING -m traffic --traffic --portconn --ipconn \\\n"
"      --netbase 193.11.176.0 --netmask 20 --nointernal --name RSN\n",
	       XT_TRAFFIC_HASHSIZE_MAX);
}

static void traffic_mt1_help(void)
{
	traffic_mt_help();
	printf(
"revision 1 (iptables and ip6tables):\n"
"  --netbase ADDR        on ip6tables an IPv6 address (e.g. 2001:db8::)\n"
"  --netmask N|MASK      on ip6tables a prefix length 1..128 or an IPv6 mask\n"
"                        (e.g. 48 or ffff:ffff:ffff::)\n"
"  --hostprefix N        count per prefix of length N inside the net\n"
"                        (net length <= N <= 32 for IPv4, 128 for IPv6;\n"
"                        default 32 for IPv4: per address, 64 for IPv6: per /64);\n"
"                        rows are keyed ADDR/N, or the bare address at 32 or 128\n"
"  a table name is one family and one host prefix: a rule naming it with\n"
"  another is refused\n"
"example:\n"
"  ip6tables -t raw -A PREROUTING -m traffic --traffic --ipconn \\\n"
"      --netbase 2001:db8:: --netmask 48 --hostprefix 56 --name V6\n");
}

/* Strict dotted quad (no host names, no short forms like 10.1). */
static bool traffic_parse_ipv4(const char *arg, struct in_addr *addr)
{
	return inet_pton(AF_INET, arg, addr) == 1;
}

static void traffic_parse_netbase(struct xt_option_call *cb)
{
	struct xt_traffic_mtinfo *info = cb->data;
	struct in_addr addr;

	if (!traffic_parse_ipv4(cb->arg, &addr)) {
		if (strchr(cb->arg, '/') != NULL)
			xtables_error(PARAMETER_PROBLEM,
				"traffic: --netbase \"%s\" is not an IPv4 address: give the base as a.b.c.d and the prefix with --netmask (e.g. --netbase 10.0.0.0 --netmask 24)",
				cb->arg);
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netbase \"%s\" is not an IPv4 address: expected a dotted quad a.b.c.d (e.g. 193.11.176.0)",
			cb->arg);
	}
	info->netbase.in = addr;
}

static void traffic_parse_netmask(struct xt_option_call *cb)
{
	struct xt_traffic_mtinfo *info = cb->data;
	const char *p = cb->arg;
	struct in_addr addr;
	unsigned int plen = 0;

	if (strchr(p, '.') != NULL) {
		if (!traffic_parse_ipv4(p, &addr))
			xtables_error(PARAMETER_PROBLEM,
				"traffic: --netmask \"%s\" is not a netmask: expected a.b.c.d (e.g. 255.255.240.0) or a prefix length 1..32", p);
		info->netmask.in = addr;
		return;
	}

	/* Decimal digits only: no signs, no 0x, no octal from a leading 0. */
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) ||
	    (*p == '0' && p[1] != '\0'))
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netmask \"%s\" is not a netmask: expected a prefix length 1..32 or a.b.c.d (e.g. 20 or 255.255.240.0)", p);
	if (strlen(p) <= 2)
		plen = strtoul(p, NULL, 10);
	if (strcmp(p, "0") == 0)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netmask 0 is not allowed: a /0 net would be every address; use a prefix length 1..32");
	if (strlen(p) > 2 || plen > 32)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netmask %s is out of range: a prefix length is 1..32 (or give a.b.c.d)", p);
	info->netmask.ip = htonl(~0U << (32 - plen));
}

static void traffic_parse_name(struct xt_option_call *cb, char *dst)
{
	static const char *const suffixes[] = {
		XT_TRAFFIC_SUFFIX_IPCONN,
		XT_TRAFFIC_SUFFIX_PORTCONN,
		XT_TRAFFIC_SUFFIX_INFO,
	};
	const char *name = cb->arg;
	size_t len = strlen(name), bad, i;

	if (len == 0)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --name must not be empty: use "
			NAME_CHARS_HELP);
	if (len >= XT_TRAFFIC_NAME_LEN)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --name \"%s\" is too long (%zu characters): use " NAME_CHARS_HELP, name, len);
	if (strchr(name, '/') != NULL)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --name \"%s\" must not contain \"/\" (it is a file name under /proc/net/" XT_TRAFFIC_PROC_DIR
			"/): use " NAME_CHARS_HELP, name);
	bad = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
	if (bad != len)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --name \"%s\" has a bad character at position %zu: use " NAME_CHARS_HELP, name, bad + 1);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --name \"%s\" is not allowed (it is a directory entry): use " NAME_CHARS_HELP, name);
	for (i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t slen = strlen(suffixes[i]);

		if (len >= slen && strcmp(name + len - slen, suffixes[i]) == 0)
			xtables_error(PARAMETER_PROBLEM,
				"traffic: --name \"%s\" must not end in \"%s\" (NAME_ipconn, NAME_portconn and NAME_info are the extra files of table NAME): use another name", name, suffixes[i]);
	}
	memcpy(dst, name, len + 1);
}

static void traffic_parse_hashsize(struct xt_option_call *cb)
{
	unsigned int v;

	/* Pre-check so that the message names the value. */
	if (!xtables_strtoui(cb->arg, NULL, &v, cb->entry->min,
			     cb->entry->max))
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --hashsize \"%s\" is not allowed: use a number of buckets 1..%u (rounded up to a power of two; leave it out to derive it from the net size)",
			cb->arg, cb->entry->max);
}

/*
 * The options both revisions share. flags, hashsize, netbase and netmask
 * are at the same offsets in both structs; @name is the struct's own.
 */
static void traffic_parse_common(struct xt_option_call *cb, char *name)
{
	struct xt_traffic_mtinfo *info = cb->data;

	switch (cb->entry->id) {
	case O_TRAFFIC:
		info->flags |= XT_TRAFFIC_TRAFFIC;
		break;
	case O_PORTCONN:
		info->flags |= XT_TRAFFIC_PORTCONN;
		break;
	case O_IPCONN:
		info->flags |= XT_TRAFFIC_IPCONN;
		break;
	case O_NETBASE:
		traffic_parse_netbase(cb);
		break;
	case O_NETMASK:
		traffic_parse_netmask(cb);
		break;
	case O_NAME:
		traffic_parse_name(cb, name);
		break;
	case O_CLEARONREAD:
		info->flags |= XT_TRAFFIC_CLEARONREAD;
		break;
	case O_NOINTERNAL:
		info->flags |= cb->invert ? XT_TRAFFIC_ONLYINTERNAL :
					    XT_TRAFFIC_NOINTERNAL;
		break;
	}
}

static void traffic_mt_parse(struct xt_option_call *cb)
{
	struct xt_traffic_mtinfo *info = cb->data;

	if (cb->entry->id == O_HASHSIZE)
		traffic_parse_hashsize(cb);
	/* Once-only and invert checks; stores --hashsize. */
	xtables_option_parse(cb);
	traffic_parse_common(cb, info->name);
}

/* --hostprefix N: decimal 1..128 (the family's bound is checked at the end). */
static void traffic_parse_hostprefix(struct xt_option_call *cb, unsigned int bits)
{
	struct xt_traffic_mtinfo1 *info = cb->data;
	const char *p = cb->arg;

	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) ||
	    (*p == '0' && p[1] != '\0') || strlen(p) > 3 ||
	    strtoul(p, NULL, 10) == 0 || strtoul(p, NULL, 10) > bits)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --hostprefix \"%s\" is not allowed: give a prefix length from the net's length to %u (%s)",
			p, bits, bits == 32 ? "32 counts per address, 24 per /24" :
			"128 counts per address, 64 per /64");
	info->hostprefix = strtoul(p, NULL, 10);
}

/* Revision 1 on iptables: revision 0's IPv4 options and --hostprefix. */
static void traffic_mt1_parse4(struct xt_option_call *cb)
{
	struct xt_traffic_mtinfo1 *info = cb->data;

	if (cb->entry->id == O_HASHSIZE)
		traffic_parse_hashsize(cb);
	xtables_option_parse(cb);
	if ((cb->entry->id == O_NETBASE || cb->entry->id == O_NETMASK) &&
	    strchr(cb->arg, ':') != NULL)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --%s \"%s\" is IPv6: iptables counts IPv4 nets; use ip6tables for an IPv6 net",
			cb->entry->name, cb->arg);
	if (cb->entry->id == O_HOSTPREFIX)
		traffic_parse_hostprefix(cb, 32);
	traffic_parse_common(cb, info->name);
}

static void traffic_parse_netbase6(struct xt_option_call *cb)
{
	struct xt_traffic_mtinfo1 *info = cb->data;
	const char *p = cb->arg;

	if (strchr(p, ':') == NULL && strchr(p, '.') != NULL)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netbase \"%s\" is IPv4: ip6tables counts IPv6 nets; use iptables for an IPv4 net", p);
	if (strchr(p, '/') != NULL)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netbase \"%s\" is not an IPv6 address: give the base alone and the prefix with --netmask (e.g. --netbase 2001:db8:: --netmask 48)", p);
	if (inet_pton(AF_INET6, p, &info->netbase.in6) != 1)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netbase \"%s\" is not an IPv6 address (e.g. 2001:db8::)", p);
}

static void traffic_parse_netmask6(struct xt_option_call *cb)
{
	struct xt_traffic_mtinfo1 *info = cb->data;
	const char *p = cb->arg;
	unsigned int plen, i;

	if (strchr(p, ':') != NULL) {
		if (inet_pton(AF_INET6, p, &info->netmask.in6) != 1)
			xtables_error(PARAMETER_PROBLEM,
				"traffic: --netmask \"%s\" is not a netmask: expected a prefix length 1..128 or an IPv6 mask (e.g. 48 or ffff:ffff:ffff::)", p);
		return;
	}
	if (strchr(p, '.') != NULL)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netmask \"%s\" is IPv4: ip6tables takes a prefix length 1..128 or an IPv6 mask; use iptables for an IPv4 net", p);
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) ||
	    (*p == '0' && p[1] != '\0'))
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netmask \"%s\" is not a netmask: expected a prefix length 1..128 or an IPv6 mask (e.g. 48 or ffff:ffff:ffff::)", p);
	if (strcmp(p, "0") == 0)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netmask 0 is not allowed: a /0 net would be every address; use a prefix length 1..128");
	plen = strlen(p) <= 3 ? strtoul(p, NULL, 10) : 129;
	if (plen > 128)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netmask %s is out of range: a prefix length is 1..128 (or give an IPv6 mask)", p);
	memset(&info->netmask, 0, sizeof(info->netmask));
	for (i = 0; i < 4; i++) {
		unsigned int n = plen > 32 * i ? plen - 32 * i : 0;

		if (n >= 32)
			info->netmask.ip6[i] = 0xffffffff;
		else if (n > 0)
			info->netmask.ip6[i] = htonl(~0U << (32 - n));
	}
}

/* Revision 1 on ip6tables. */
static void traffic_mt1_parse6(struct xt_option_call *cb)
{
	struct xt_traffic_mtinfo1 *info = cb->data;

	if (cb->entry->id == O_HASHSIZE)
		traffic_parse_hashsize(cb);
	xtables_option_parse(cb);
	switch (cb->entry->id) {
	case O_NETBASE:
		traffic_parse_netbase6(cb);
		break;
	case O_NETMASK:
		traffic_parse_netmask6(cb);
		break;
	case O_HOSTPREFIX:
		traffic_parse_hostprefix(cb, 128);
		break;
	default:
		traffic_parse_common(cb, info->name);
		break;
	}
}

/* Prefix length of a contiguous IPv4 mask (host order), or -1. */
static int traffic_mask_plen(uint32_t mask)
{
	uint32_t inv = ~mask;

	if (inv & (inv + 1))
		return -1;
	return 32 - __builtin_popcount(inv);
}

static void traffic_mt_check(struct xt_fcheck_call *cb)
{
	const struct xt_traffic_mtinfo *info = cb->data;
	uint32_t base = ntohl(info->netbase.ip);
	uint32_t mask = ntohl(info->netmask.ip);
	struct in_addr fix;
	char sbase[INET_ADDRSTRLEN], smask[INET_ADDRSTRLEN];

	if (!(cb->xflags & F_COUNT))
		xtables_error(PARAMETER_PROBLEM,
			"traffic: nothing to count: give at least one of --traffic, --portconn, --ipconn");

	/* Missing --netbase/--netmask/--name: libxtables names them next. */
	if ((cb->xflags & (F_NETBASE | F_NETMASK)) != (F_NETBASE | F_NETMASK))
		return;

	snprintf(sbase, sizeof(sbase), "%s",
		 xtables_ipaddr_to_numeric(&info->netbase.in));
	snprintf(smask, sizeof(smask), "%s",
		 xtables_ipaddr_to_numeric(&info->netmask.in));

	if (traffic_mask_plen(mask) < 0)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netmask %s is not contiguous: the one bits must come first (e.g. 255.255.240.0), or give a prefix length 1..32", smask);
	if (mask == 0)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netmask %s is not allowed: a /0 net would be every address; use a prefix length 1..32", smask);
	if (base & ~mask) {
		fix.s_addr = htonl(base & mask);
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netbase %s is not aligned to netmask %s (did you mean %s?)", sbase, smask,
			xtables_ipaddr_to_numeric(&fix));
	}
}

/* Revision 1 on iptables: revision 0's checks, then the host prefix. */
static void traffic_mt1_check4(struct xt_fcheck_call *cb)
{
	struct xt_traffic_mtinfo1 *info = cb->data;
	int plen;

	traffic_mt_check(cb);
	if ((cb->xflags & (F_NETBASE | F_NETMASK)) != (F_NETBASE | F_NETMASK))
		return;
	if (!(cb->xflags & F_HOSTPREFIX))
		info->hostprefix = 32;
	plen = traffic_mask_plen(ntohl(info->netmask.ip));
	if (info->hostprefix < plen)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --hostprefix %u is shorter than the net /%d: a host prefix lies inside the net (use %d..32)",
			info->hostprefix, plen, plen);
}

/* Prefix length of a contiguous IPv6 mask, or -1. */
static int traffic_mask6_plen(const union nf_inet_addr *m)
{
	int n = 0, i;

	for (i = 0; i < 128; i++) {
		unsigned int bit = (ntohl(m->ip6[i / 32]) >> (31 - i % 32)) & 1;

		if (bit && n != i)
			return -1;
		if (bit)
			n++;
	}
	return n;
}

static void traffic_mt1_check6(struct xt_fcheck_call *cb)
{
	struct xt_traffic_mtinfo1 *info = cb->data;
	union nf_inet_addr fix;
	char sbase[INET6_ADDRSTRLEN], smask[INET6_ADDRSTRLEN];
	bool aligned = true;
	int plen, i;

	if (!(cb->xflags & F_COUNT))
		xtables_error(PARAMETER_PROBLEM,
			"traffic: nothing to count: give at least one of --traffic, --portconn, --ipconn");
	if ((cb->xflags & (F_NETBASE | F_NETMASK)) != (F_NETBASE | F_NETMASK))
		return;
	inet_ntop(AF_INET6, &info->netbase.in6, sbase, sizeof(sbase));
	inet_ntop(AF_INET6, &info->netmask.in6, smask, sizeof(smask));
	plen = traffic_mask6_plen(&info->netmask);
	if (plen < 0)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netmask %s is not contiguous: the one bits must come first (e.g. ffff:ffff:ffff::), or give a prefix length 1..128", smask);
	if (plen == 0)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netmask %s is not allowed: a /0 net would be every address; use a prefix length 1..128", smask);
	for (i = 0; i < 4; i++) {
		fix.ip6[i] = info->netbase.ip6[i] & info->netmask.ip6[i];
		if (fix.ip6[i] != info->netbase.ip6[i])
			aligned = false;
	}
	if (!aligned) {
		char sfix[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, &fix.in6, sfix, sizeof(sfix));
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --netbase %s has host bits set for a /%d net (did you mean %s?)",
			sbase, plen, sfix);
	}
	if (!(cb->xflags & F_HOSTPREFIX)) {
		if (plen > 64)
			xtables_error(PARAMETER_PROBLEM,
				"traffic: the net /%d is longer than the default --hostprefix 64: give --hostprefix %d..128 (128 counts per address)",
				plen, plen);
		info->hostprefix = 64;
	}
	if (info->hostprefix < plen)
		xtables_error(PARAMETER_PROBLEM,
			"traffic: --hostprefix %u is shorter than the net /%d: a host prefix lies inside the net (use %d..128)",
			info->hostprefix, plen, plen);
}

static void traffic_mt_print(const void *ip __maybe_unused,
			     const struct xt_entry_match *match,
			     int numeric __maybe_unused)
{
	const struct xt_traffic_mtinfo *info = (const void *)match->data;
	int plen = traffic_mask_plen(ntohl(info->netmask.ip));
	const char *sep = " ";

	printf(" traffic %s %s", info->name,
	       xtables_ipaddr_to_numeric(&info->netbase.in));
	if (plen >= 0)
		printf("/%d", plen);
	else
		printf("/%s", xtables_ipaddr_to_numeric(&info->netmask.in));
	if (info->flags & XT_TRAFFIC_TRAFFIC) {
		printf("%straffic", sep);
		sep = ",";
	}
	if (info->flags & XT_TRAFFIC_PORTCONN) {
		printf("%sportconn", sep);
		sep = ",";
	}
	if (info->flags & XT_TRAFFIC_IPCONN)
		printf("%sipconn", sep);
	if (info->hashsize != 0)
		printf(" hashsize %u", info->hashsize);
	if (info->flags & XT_TRAFFIC_CLEARONREAD)
		printf(" clearonread");
	if (info->flags & XT_TRAFFIC_NOINTERNAL)
		printf(" nointernal");
	if (info->flags & XT_TRAFFIC_ONLYINTERNAL)
		printf(" onlyinternal");
}

static void traffic_mt_save(const void *ip __maybe_unused,
			    const struct xt_entry_match *match)
{
	const struct xt_traffic_mtinfo *info = (const void *)match->data;

	if (info->flags & XT_TRAFFIC_TRAFFIC)
		printf(" --traffic");
	if (info->flags & XT_TRAFFIC_PORTCONN)
		printf(" --portconn");
	if (info->flags & XT_TRAFFIC_IPCONN)
		printf(" --ipconn");
	printf(" --netbase %s", xtables_ipaddr_to_numeric(&info->netbase.in));
	printf(" --netmask %s", xtables_ipaddr_to_numeric(&info->netmask.in));
	printf(" --name %s", info->name);
	if (info->hashsize != 0)
		printf(" --hashsize %u", info->hashsize);
	if (info->flags & XT_TRAFFIC_CLEARONREAD)
		printf(" --clearonread");
	if (info->flags & XT_TRAFFIC_NOINTERNAL)
		printf(" --nointernal");
	if (info->flags & XT_TRAFFIC_ONLYINTERNAL)
		printf(" ! --nointernal");
}

/* The flag words of print, after the net. */
static void traffic_print_flags(uint32_t flags, uint32_t hashsize)
{
	const char *sep = " ";

	if (flags & XT_TRAFFIC_TRAFFIC) {
		printf("%straffic", sep);
		sep = ",";
	}
	if (flags & XT_TRAFFIC_PORTCONN) {
		printf("%sportconn", sep);
		sep = ",";
	}
	if (flags & XT_TRAFFIC_IPCONN)
		printf("%sipconn", sep);
	if (hashsize != 0)
		printf(" hashsize %u", hashsize);
	if (flags & XT_TRAFFIC_CLEARONREAD)
		printf(" clearonread");
	if (flags & XT_TRAFFIC_NOINTERNAL)
		printf(" nointernal");
	if (flags & XT_TRAFFIC_ONLYINTERNAL)
		printf(" onlyinternal");
}

static void traffic_mt1_print(const struct xt_entry_match *match, bool v6)
{
	const struct xt_traffic_mtinfo1 *info = (const void *)match->data;

	if (v6) {
		int plen = traffic_mask6_plen(&info->netmask);

		printf(" traffic %s %s", info->name,
		       xtables_ip6addr_to_numeric(&info->netbase.in6));
		if (plen >= 0)
			printf("/%d", plen);
		else
			printf("/%s", xtables_ip6addr_to_numeric(&info->netmask.in6));
	} else {
		int plen = traffic_mask_plen(ntohl(info->netmask.ip));

		printf(" traffic %s %s", info->name,
		       xtables_ipaddr_to_numeric(&info->netbase.in));
		if (plen >= 0)
			printf("/%d", plen);
		else
			printf("/%s", xtables_ipaddr_to_numeric(&info->netmask.in));
	}
	traffic_print_flags(info->flags, info->hashsize);
	if (v6 || info->hostprefix != 32)
		printf(" hostprefix %u", info->hostprefix);
}

/*
 * The contract's save order: counting options, --netbase, --netmask (IPv4:
 * dotted; IPv6: a prefix length when contiguous), --hostprefix (always for
 * IPv6, for IPv4 when not 32), --name, --hashsize, --clearonread, nointernal.
 */
static void traffic_mt1_save(const struct xt_entry_match *match, bool v6)
{
	const struct xt_traffic_mtinfo1 *info = (const void *)match->data;

	if (info->flags & XT_TRAFFIC_TRAFFIC)
		printf(" --traffic");
	if (info->flags & XT_TRAFFIC_PORTCONN)
		printf(" --portconn");
	if (info->flags & XT_TRAFFIC_IPCONN)
		printf(" --ipconn");
	if (v6) {
		int plen = traffic_mask6_plen(&info->netmask);

		printf(" --netbase %s", xtables_ip6addr_to_numeric(&info->netbase.in6));
		if (plen >= 0)
			printf(" --netmask %d", plen);
		else
			printf(" --netmask %s", xtables_ip6addr_to_numeric(&info->netmask.in6));
		printf(" --hostprefix %u", info->hostprefix);
	} else {
		printf(" --netbase %s", xtables_ipaddr_to_numeric(&info->netbase.in));
		printf(" --netmask %s", xtables_ipaddr_to_numeric(&info->netmask.in));
		if (info->hostprefix != 32)
			printf(" --hostprefix %u", info->hostprefix);
	}
	printf(" --name %s", info->name);
	if (info->hashsize != 0)
		printf(" --hashsize %u", info->hashsize);
	if (info->flags & XT_TRAFFIC_CLEARONREAD)
		printf(" --clearonread");
	if (info->flags & XT_TRAFFIC_NOINTERNAL)
		printf(" --nointernal");
	if (info->flags & XT_TRAFFIC_ONLYINTERNAL)
		printf(" ! --nointernal");
}

static void traffic_mt1_print4(const void *ip __maybe_unused,
			       const struct xt_entry_match *match,
			       int numeric __maybe_unused)
{
	traffic_mt1_print(match, false);
}

static void traffic_mt1_print6(const void *ip __maybe_unused,
			       const struct xt_entry_match *match,
			       int numeric __maybe_unused)
{
	traffic_mt1_print(match, true);
}

static void traffic_mt1_save4(const void *ip __maybe_unused,
			      const struct xt_entry_match *match)
{
	traffic_mt1_save(match, false);
}

static void traffic_mt1_save6(const void *ip __maybe_unused,
			      const struct xt_entry_match *match)
{
	traffic_mt1_save(match, true);
}

/*
 * Revision 0: IPv4 (kernels before IPv6 support). Revision 1: IPv4 and
 * IPv6; iptables takes the highest revision the kernel has.
 */
static struct xtables_match traffic_mt_reg[] = {
	{
		.version	= XTABLES_VERSION,
		.name		= "traffic",
		.revision	= 0,
		.family		= NFPROTO_IPV4,
		.size		= XT_ALIGN(sizeof(struct xt_traffic_mtinfo)),
		.userspacesize	= offsetof(struct xt_traffic_mtinfo, table),
		.help		= traffic_mt_help,
		.x6_parse	= traffic_mt_parse,
		.x6_fcheck	= traffic_mt_check,
		.print		= traffic_mt_print,
		.save		= traffic_mt_save,
		.x6_options	= traffic_mt_opts,
	},
	{
		.version	= XTABLES_VERSION,
		.name		= "traffic",
		.revision	= 1,
		.family		= NFPROTO_IPV4,
		.size		= XT_ALIGN(sizeof(struct xt_traffic_mtinfo1)),
		.userspacesize	= offsetof(struct xt_traffic_mtinfo1, table),
		.help		= traffic_mt1_help,
		.x6_parse	= traffic_mt1_parse4,
		.x6_fcheck	= traffic_mt1_check4,
		.print		= traffic_mt1_print4,
		.save		= traffic_mt1_save4,
		.x6_options	= traffic_mt1_opts,
	},
	{
		.version	= XTABLES_VERSION,
		.name		= "traffic",
		.revision	= 1,
		.family		= NFPROTO_IPV6,
		.size		= XT_ALIGN(sizeof(struct xt_traffic_mtinfo1)),
		.userspacesize	= offsetof(struct xt_traffic_mtinfo1, table),
		.help		= traffic_mt1_help,
		.x6_parse	= traffic_mt1_parse6,
		.x6_fcheck	= traffic_mt1_check6,
		.print		= traffic_mt1_print6,
		.save		= traffic_mt1_save6,
		.x6_options	= traffic_mt1_opts,
	},
};

static void __attribute__((constructor)) traffic_mt_ldr(void)
{
	xtables_register_matches(traffic_mt_reg, ARRAY_SIZE(traffic_mt_reg));
}
