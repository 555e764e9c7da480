/**
 * libxt_traffic's error messages (libxt/libxt_traffic.c): the explanations that follow
 * "traffic: --OPTION VALUE". The VM suites that check exact messages (checkentry, libxt)
 * share them, so a reworded message is changed in one place.
 */
export const NAME_RULES = 'use 1..31 characters of A-Z a-z 0-9 _ . -';
export const SUFFIX = '(NAME_ipconn, NAME_portconn and NAME_info are the extra files of table NAME): use another name';
export const HASH =
  'is not allowed: use a number of buckets 1..4194304 (rounded up to a power of two; leave it out to derive it from the net size)';
export const NOT_MASK = 'is not a netmask: expected a prefix length 1..32 or a.b.c.d (e.g. 20 or 255.255.240.0)';
export const NONCONTIG = 'is not contiguous: the one bits must come first (e.g. 255.255.240.0), or give a prefix length 1..32';
export const SLASH0 = 'is not allowed: a /0 net would be every address; use a prefix length 1..32';
export const NOT_ADDR = 'is not an IPv4 address: expected a dotted quad a.b.c.d (e.g. 193.11.176.0)';
export const NOTHING = 'traffic: nothing to count: give at least one of --traffic, --portconn, --ipconn';
