// SPDX-License-Identifier: GPL-2.0-only
/*
 * libxt_traffic: iptables userspace part of the xt_traffic match
 * (per-IP traffic and connection accounting).
 *
 *   iptables -t raw -A PREROUTING -m traffic --traffic --ipconn \
 *	--netbase 193.11.176.0 --netmask 20 --name RSN
 *
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
	F_TRAFFIC	= 1 << O_TRAFFIC,
	F_PORTCONN	= 1 << O_PORTCONN,
	F_IPCONN	= 1 << O_IPCONN,
	F_NETBASE	= 1 << O_NETBASE,
	F_NETMASK	= 1 << O_NETMASK,
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

static void traffic_parse_name(struct xt_option_call *cb)
{
	static const char *const suffixes[] = {
		XT_TRAFFIC_SUFFIX_IPCONN,
		XT_TRAFFIC_SUFFIX_PORTCONN,
		XT_TRAFFIC_SUFFIX_INFO,
	};
	struct xt_traffic_mtinfo *info = cb->data;
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
	memcpy(info->name, name, len + 1);
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

static void traffic_mt_parse(struct xt_option_call *cb)
{
	struct xt_traffic_mtinfo *info = cb->data;

	if (cb->entry->id == O_HASHSIZE)
		traffic_parse_hashsize(cb);
	/* Once-only and invert checks; stores --hashsize. */
	xtables_option_parse(cb);

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
		traffic_parse_name(cb);
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

/* One entry per family; an NFPROTO_IPV6 entry can follow with ip6 helpers. */
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
};

static void __attribute__((constructor)) traffic_mt_ldr(void)
{
	xtables_register_matches(traffic_mt_reg, ARRAY_SIZE(traffic_mt_reg));
}
