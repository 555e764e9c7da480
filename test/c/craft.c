// SPDX-License-Identifier: GPL-2.0
/*
 * craft: appends one rule "-m traffic" whose struct xt_traffic_mtinfo (or
 * xt_traffic_mtinfo1) is exactly what the arguments say, through libiptc
 * (IPT_SO_SET_REPLACE, or IP6T_ with -6), so the kernel's checkentry is tested
 * on its own, without libxt_traffic's checks.
 *
 *   craft [-t TABLE] [-c CHAIN] [-n N] [-l] [-x] [-u] [-b I=HEX]... [-m I=HEX]...
 *         [-r REV] [-6] [-p HOSTPREFIX] [-P HEX] FLAGS HASHSIZE NETBASE NETMASK NAME
 *
 *   FLAGS      32-bit hex (0x optional), any bits
 *   HASHSIZE   32-bit number (decimal, or hex with 0x)
 *   NETBASE    dotted quad, stored in netbase.ip (any bits); with -6 an IPv6
 *              address, all 128 bits
 *   NETMASK    the same for netmask (any bits: non-contiguous, 0)
 *   -r REV     match revision 0 (default) or 1 (struct xt_traffic_mtinfo1)
 *   -6         an ip6tables rule (libip6tc; needs -r 1 to be accepted)
 *   -p N       revision 1's hostprefix, 0..255 (default 32, with -6 64)
 *   -P HEX     revision 1's three pad bytes, 6 hex digits (default 000000)
 *   NAME       bytes of name[32]: at most 31, zero-padded; with -x given as
 *              hex pairs ("61ff0a62"); with -u exactly 32 bytes, no NUL
 *   -b I=HEX   netbase.all[I] = htonl(HEX), I = 1..3 (IPv6 words)
 *   -m I=HEX   the same for netmask.all[I]
 *   -t, -c     table and chain (default raw PREROUTING)
 *   -n N       make N attempts (each reads, appends to and commits the table)
 *   -l         then print "rules N": the number of rules in the chain
 *
 * Prints "OK" for an attempt the kernel accepted and the errno name (EINVAL,
 * ERANGE, ...) for one whose commit it refused, one line each; exits 0 when
 * every attempt was accepted, else 1; exits 2 on a usage error or when the
 * table cannot be read (message on stderr).
 * Build: make -f test/c/craft.mk [OUT=DIR].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <libiptc/libiptc.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <linux/netfilter/xt_traffic.h>

/* libip6tc (libip6tc2; its -dev package is not needed for these) */
struct xtc_handle *ip6tc_init(const char *tablename);
int ip6tc_append_entry(const char *chain, const struct ip6t_entry *e,
		       struct xtc_handle *handle);
int ip6tc_commit(struct xtc_handle *handle);
void ip6tc_free(struct xtc_handle *h);
const char *ip6tc_strerror(int err);
int ip6tc_is_chain(const char *chain, struct xtc_handle *const handle);
const struct ip6t_entry *ip6tc_first_rule(const char *chain,
					  struct xtc_handle *handle);
const struct ip6t_entry *ip6tc_next_rule(const struct ip6t_entry *prev,
					 struct xtc_handle *handle);

static bool v6;

static void usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "craft: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: craft [-t TABLE] [-c CHAIN] [-n N] [-l] [-x] [-u] [-b I=HEX]... [-m I=HEX]... "
		"[-r REV] [-6] [-p HOSTPREFIX] [-P HEX] FLAGS HASHSIZE NETBASE NETMASK NAME\n");
	exit(2);
}

static uint32_t parse_u32(const char *s, int base, const char *what)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (*s == '\0' || *s == '-')
		usage("bad %s", what);
	v = strtoull(s, &end, base);
	if (errno || *end != '\0' || v > 0xffffffffULL)
		usage("bad %s", what);
	return (uint32_t)v;
}

static void parse_addr(const char *s, union nf_inet_addr *out, const char *what)
{
	struct in_addr a;

	if (v6) {
		if (inet_pton(AF_INET6, s, &out->in6) != 1)
			usage("bad %s", what);
		return;
	}
	if (inet_pton(AF_INET, s, &a) != 1)
		usage("bad %s", what);
	out->ip = a.s_addr;
}

/* "I=HEX" into words[I] (I = 1..3), network order. */
static void parse_word(const char *s, __be32 *words)
{
	char *end;
	unsigned long i;

	i = strtoul(s, &end, 10);
	if (end == s || *end != '=' || i < 1 || i > 3)
		usage("bad word \"%s\" (expected I=HEX, I = 1..3)", s);
	words[i] = htonl(parse_u32(end + 1, 16, "word value"));
}

static struct xtc_handle *open_table(const char *table)
{
	struct xtc_handle *h = v6 ? ip6tc_init(table) : iptc_init(table);

	if (!h) {
		fprintf(stderr, "craft: cannot read table %s: %s (%s)\n", table,
			strerrorname_np(errno) ?: "?",
			v6 ? ip6tc_strerror(errno) : iptc_strerror(errno));
		exit(2);
	}
	return h;
}

/* One attempt: append @e to @chain and commit. Returns 0 or the errno. */
static int attempt(const char *table, const char *chain, const void *e)
{
	struct xtc_handle *h = open_table(table);
	int ok, err;

	if (!(v6 ? ip6tc_append_entry(chain, e, h) : iptc_append_entry(chain, e, h))) {
		fprintf(stderr, "craft: cannot append to %s/%s: %s\n", table, chain,
			v6 ? ip6tc_strerror(errno) : iptc_strerror(errno));
		exit(2);
	}
	errno = 0;
	ok = v6 ? ip6tc_commit(h) : iptc_commit(h);
	err = errno ? errno : -1;
	if (v6)
		ip6tc_free(h);
	else
		iptc_free(h);
	return ok ? 0 : err;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int main(int argc, char **argv)
{
	struct xt_traffic_mtinfo1 info;
	struct xt_traffic_mtinfo info0;
	unsigned int revision = 0, hostprefix = 0, pad = 0;
	bool have_hostprefix = false;
	const void *data;
	size_t datasz;
	const char *table = "raw", *chain = "PREROUTING";
	char name[XT_TRAFFIC_NAME_LEN + 1];
	size_t namelen = 0, esz, msz, tsz;
	bool hex = false, unterminated = false;
	struct xt_standard_target *t;
	struct xt_entry_match *m;
	unsigned int attempts = 1, i, refused = 0;
	bool list = false;
	struct ipt_entry *e4;
	struct ip6t_entry *e6;
	void *e;
	int opt;

	memset(&info, 0, sizeof(info));
	while ((opt = getopt(argc, argv, "t:c:n:lxub:m:r:6p:P:")) != -1) {
		switch (opt) {
		case 't':
			table = optarg;
			break;
		case 'c':
			chain = optarg;
			break;
		case 'n':
			attempts = parse_u32(optarg, 10, "-n");
			break;
		case 'l':
			list = true;
			break;
		case 'x':
			hex = true;
			break;
		case 'u':
			unterminated = true;
			break;
		case 'b':
			parse_word(optarg, info.netbase.all);
			break;
		case 'm':
			parse_word(optarg, info.netmask.all);
			break;
		case 'r':
			revision = parse_u32(optarg, 10, "-r");
			if (revision > 1)
				usage("-r %s: revision 0 or 1", optarg);
			break;
		case '6':
			v6 = true;
			break;
		case 'p':
			hostprefix = parse_u32(optarg, 10, "-p");
			if (hostprefix > 255)
				usage("-p %s: 0..255", optarg);
			have_hostprefix = true;
			break;
		case 'P':
			if (strlen(optarg) != 6)
				usage("-P %s: 6 hex digits", optarg);
			pad = parse_u32(optarg, 16, "-P");
			break;
		default:
			usage("unknown option%s", "");
		}
	}
	if (argc - optind != 5)
		usage("expected 5 arguments%s", "");
	info.flags = parse_u32(argv[optind], 16, "FLAGS");
	info.hashsize = parse_u32(argv[optind + 1], 0, "HASHSIZE");
	parse_addr(argv[optind + 2], &info.netbase, "NETBASE");
	parse_addr(argv[optind + 3], &info.netmask, "NETMASK");
	info.hostprefix = have_hostprefix ? hostprefix : v6 ? 64 : 32;
	info.pad[0] = pad >> 16;
	info.pad[1] = pad >> 8;
	info.pad[2] = pad;

	if (hex) {
		const char *p = argv[optind + 4];

		if (strlen(p) % 2)
			usage("odd number of hex digits in NAME \"%s\"", p);
		for (; *p; p += 2) {
			int hi = hexval(p[0]), lo = hexval(p[1]);

			if (hi < 0 || lo < 0)
				usage("bad hex in NAME \"%s\"", argv[optind + 4]);
			if (namelen == XT_TRAFFIC_NAME_LEN)
				usage("NAME \"%s\" is longer than 32 bytes", argv[optind + 4]);
			name[namelen++] = (char)(hi << 4 | lo);
		}
	} else {
		namelen = strlen(argv[optind + 4]);
		if (namelen > XT_TRAFFIC_NAME_LEN)
			usage("NAME \"%s\" is longer than 32 bytes", argv[optind + 4]);
		memcpy(name, argv[optind + 4], namelen);
	}
	if (unterminated && namelen != XT_TRAFFIC_NAME_LEN)
		usage("-u needs a NAME of exactly 32 bytes%s", "");
	if (!unterminated && namelen == XT_TRAFFIC_NAME_LEN)
		usage("a NAME of 32 bytes has no NUL: give -u%s", "");
	memcpy(info.name, name, namelen);
	if (revision == 0) {
		/* the same fields in revision 0's struct */
		memset(&info0, 0, sizeof(info0));
		info0.flags = info.flags;
		info0.hashsize = info.hashsize;
		info0.netbase = info.netbase;
		info0.netmask = info.netmask;
		memcpy(info0.name, info.name, sizeof(info0.name));
		data = &info0;
		datasz = sizeof(info0);
	} else {
		data = &info;
		datasz = sizeof(info);
	}

	esz = v6 ? XT_ALIGN(sizeof(*e6)) : XT_ALIGN(sizeof(*e4));
	msz = XT_ALIGN(sizeof(*m)) + XT_ALIGN(datasz);
	tsz = XT_ALIGN(sizeof(*t));
	e = calloc(1, esz + msz + tsz);
	if (!e) {
		perror("craft: calloc");
		return 2;
	}
	e4 = e;
	e6 = e;
	if (v6) {
		e6->target_offset = esz + msz;
		e6->next_offset = esz + msz + tsz;
		m = (struct xt_entry_match *)e6->elems;
	} else {
		e4->target_offset = esz + msz;
		e4->next_offset = esz + msz + tsz;
		m = (struct xt_entry_match *)e4->elems;
	}
	m->u.user.match_size = msz;
	strcpy(m->u.user.name, "traffic");
	m->u.user.revision = revision;
	memcpy(m->data, data, datasz);
	/* the standard target with an empty name: fall through (no -j) */
	t = (struct xt_standard_target *)((char *)e + esz + msz);
	t->target.u.user.target_size = tsz;

	for (i = 0; i < attempts; i++) {
		int err = attempt(table, chain, e);
		const char *n = err > 0 ? strerrorname_np(err) : NULL;

		if (err == 0)
			puts("OK");
		else
			printf("%s\n", n ? n : "EUNKNOWN");
		if (err)
			refused++;
	}
	if (list) {
		struct xtc_handle *h = open_table(table);
		unsigned int rules = 0;

		if (!(v6 ? ip6tc_is_chain(chain, h) : iptc_is_chain(chain, h))) {
			fprintf(stderr, "craft: no chain %s in %s\n", chain, table);
			return 2;
		}
		if (v6) {
			const struct ip6t_entry *r;

			for (r = ip6tc_first_rule(chain, h); r; r = ip6tc_next_rule(r, h))
				rules++;
			ip6tc_free(h);
		} else {
			const struct ipt_entry *r;

			for (r = iptc_first_rule(chain, h); r; r = iptc_next_rule(r, h))
				rules++;
			iptc_free(h);
		}
		printf("rules %u\n", rules);
	}
	free(e);
	return refused ? 1 : 0;
}
