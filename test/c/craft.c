// SPDX-License-Identifier: GPL-2.0
/*
 * craft: appends one rule "-m traffic" whose struct xt_traffic_mtinfo is
 * exactly what the arguments say, through libiptc (IPT_SO_SET_REPLACE), so
 * the kernel's checkentry is tested on its own, without libxt_traffic's checks.
 *
 *   craft [-t TABLE] [-c CHAIN] [-n N] [-l] [-x] [-u] [-b I=HEX]... [-m I=HEX]...
 *         FLAGS HASHSIZE NETBASE NETMASK NAME
 *
 *   FLAGS      32-bit hex (0x optional), any bits
 *   HASHSIZE   32-bit number (decimal, or hex with 0x)
 *   NETBASE    dotted quad, stored in netbase.ip (any bits)
 *   NETMASK    dotted quad, stored in netmask.ip (any bits: non-contiguous, 0)
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
#include <linux/netfilter/xt_traffic.h>

static void usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "craft: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: craft [-t TABLE] [-c CHAIN] [-n N] [-l] [-x] [-u] [-b I=HEX]... [-m I=HEX]... "
		"FLAGS HASHSIZE NETBASE NETMASK NAME\n");
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

static void parse_addr(const char *s, __be32 *out, const char *what)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		usage("bad %s", what);
	*out = a.s_addr;
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
	struct xtc_handle *h = iptc_init(table);

	if (!h) {
		fprintf(stderr, "craft: cannot read table %s: %s (%s)\n", table,
			strerrorname_np(errno) ?: "?", iptc_strerror(errno));
		exit(2);
	}
	return h;
}

/* One attempt: append @e to @chain and commit. Returns 0 or the errno. */
static int attempt(const char *table, const char *chain,
		   const struct ipt_entry *e)
{
	struct xtc_handle *h = open_table(table);
	int ok, err;

	if (!iptc_append_entry(chain, e, h)) {
		fprintf(stderr, "craft: cannot append to %s/%s: %s\n", table, chain,
			iptc_strerror(errno));
		exit(2);
	}
	errno = 0;
	ok = iptc_commit(h);
	err = errno ? errno : -1;
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
	struct xt_traffic_mtinfo info;
	const char *table = "raw", *chain = "PREROUTING";
	char name[XT_TRAFFIC_NAME_LEN + 1];
	size_t namelen = 0, esz, msz, tsz;
	bool hex = false, unterminated = false;
	struct xt_standard_target *t;
	struct xt_entry_match *m;
	unsigned int attempts = 1, i, refused = 0;
	bool list = false;
	struct ipt_entry *e;
	int opt;

	memset(&info, 0, sizeof(info));
	while ((opt = getopt(argc, argv, "t:c:n:lxub:m:")) != -1) {
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
		default:
			usage("unknown option%s", "");
		}
	}
	if (argc - optind != 5)
		usage("expected 5 arguments%s", "");
	info.flags = parse_u32(argv[optind], 16, "FLAGS");
	info.hashsize = parse_u32(argv[optind + 1], 0, "HASHSIZE");
	parse_addr(argv[optind + 2], &info.netbase.ip, "NETBASE");
	parse_addr(argv[optind + 3], &info.netmask.ip, "NETMASK");

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

	esz = XT_ALIGN(sizeof(*e));
	msz = XT_ALIGN(sizeof(*m)) + XT_ALIGN(sizeof(info));
	tsz = XT_ALIGN(sizeof(*t));
	e = calloc(1, esz + msz + tsz);
	if (!e) {
		perror("craft: calloc");
		return 2;
	}
	e->target_offset = esz + msz;
	e->next_offset = esz + msz + tsz;
	m = (struct xt_entry_match *)e->elems;
	m->u.user.match_size = msz;
	strcpy(m->u.user.name, "traffic");
	m->u.user.revision = 0;
	memcpy(m->data, &info, sizeof(info));
	/* the standard target with an empty name: fall through (no -j) */
	t = (struct xt_standard_target *)((char *)e + e->target_offset);
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
		const struct ipt_entry *r;
		unsigned int rules = 0;

		if (!iptc_is_chain(chain, h)) {
			fprintf(stderr, "craft: no chain %s in %s\n", chain, table);
			return 2;
		}
		for (r = iptc_first_rule(chain, h); r; r = iptc_next_rule(r, h))
			rules++;
		printf("rules %u\n", rules);
		iptc_free(h);
	}
	free(e);
	return refused ? 1 : 0;
}
