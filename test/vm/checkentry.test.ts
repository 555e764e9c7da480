// The kernel's checkentry (traffic_mt_check / xtt_check_info) on its own: test/c/craft.c
// appends a rule whose struct xt_traffic_mtinfo is whatever the test says, through libiptc,
// so nothing of libxt_traffic stands in between. Every bad struct must be refused with the
// exact errno and exactly one `xt_traffic: ...` line naming what is wrong, leave no rule, no
// table and no module reference behind, and log no WARNING. Then the same bad inputs through
// the real iptables (nft backend and legacy): libxt must refuse them itself (exit 2, a
// message naming the value, nothing reaching the kernel). Valid edge cases are accepted and
// show in NAME_info. Runs in the VM as root.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KernelLog, RatelimitPacer } from '../lib/dmesg.js';
import { HASH, NAME_RULES, NONCONTIG, NOTHING, SUFFIX } from '../lib/messages.js';
import { loadModule, moduleRefcnt } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { REPO, run, sh, type RunResult } from '../lib/sh.js';

const PREFIX = 'xt_traffic: ';
const BACKENDS = ['iptables', 'iptables-legacy'] as const;

// The guest's file system is a read-only view: build into a tmpfs.
let CRAFT = '';
let ns: Netns;
// a process that stays in the netns, so its /proc/PID/net is the netns's /proc/net
let holder: ChildProcess | undefined;
const pacer = new RatelimitPacer();

beforeAll(async () => {
  const out = mkdtempSync(path.join(tmpdir(), 'xtt-craft-'));
  sh('make', ['-s', '-f', `${REPO}/test/c/craft.mk`, `OUT=${out}`]);
  CRAFT = `${out}/craft`;
  expect(existsSync(CRAFT)).toBe(true);
  loadModule();
  sh('modprobe', ['ip_tables']);
  sh('modprobe', ['iptable_raw']);
  sh('modprobe', ['ip6_tables']);
  sh('modprobe', ['ip6table_raw']);
  ns = new Netns('xtce');
  holder = spawn('nsenter', [`--net=/run/netns/${ns.name}`, 'sleep', 'infinity'], { stdio: 'ignore' });
  const want = statSync(`/run/netns/${ns.name}`).ino;
  for (let i = 0; ; i++) {
    try {
      if (statSync(`/proc/${holder.pid}/ns/net`).ino === want) break;
    } catch {
      // not started yet
    }
    if (i > 100) throw new Error(`nsenter into ${ns.name} did not happen`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // a message another test file made less than 5 s ago may have used up a window
  await pacer.settle(PREFIX);
});

// Let the worker's event loop turn between tests: vitest's RPC to its main process times out
// (60 s) when back-to-back synchronous tests never let its answer in.
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));

afterAll(() => {
  holder?.kill();
  ns?.delete();
});

interface Craft {
  flags?: string;
  hashsize?: string;
  netbase?: string;
  netmask?: string;
  name?: string;
  /** extra craft options (-x, -u, -b I=HEX, -m I=HEX, -r 1, -6, -p N, -P HEX) */
  opts?: string[];
}

/** craft's arguments: a valid struct (--traffic 10.0.0.0/8 t1) changed by `c`. */
function craftArgs(c: Craft): string[] {
  return [
    ...(c.opts ?? []),
    c.flags ?? '1',
    c.hashsize ?? '0',
    c.netbase ?? '10.0.0.0',
    c.netmask ?? '255.0.0.0',
    c.name ?? 't1',
  ];
}

/** Runs craft in the test's netns (nsenter: cheaper than ip netns exec under TCG). */
function craft(c: Craft, extra: string[] = []): RunResult {
  return run('nsenter', [`--net=/run/netns/${ns.name}`, CRAFT, ...extra, ...craftArgs(c)]);
}

/** The files of /proc/net/xt_traffic/ in the test's netns. */
function procFiles(): string[] {
  return readdirSync(`/proc/${holder!.pid}/net/xt_traffic`).sort();
}

function procRead(file: string): string {
  return readFileSync(`/proc/${holder!.pid}/net/xt_traffic/${file}`, 'utf8');
}

// One call site name per pr_info_ratelimited of the checks (each has its own ratelimit);
// flags, count, internal, name and hashsize are shared by both revisions.
type Site =
  | 'flags'
  | 'count'
  | 'internal'
  | 'name'
  | 'ipv6'
  | 'mask'
  | 'align'
  | 'hashsize'
  | 'pad'
  | 'ipv6on4'
  | 'mask1'
  | 'align1'
  | 'mask6'
  | 'align6'
  | 'hostprefix'
  | 'same';

interface Bad {
  title: string;
  craft: Craft;
  errno: 'EINVAL' | 'ERANGE' | 'EEXIST';
  site: Site;
  /** the kernel's line, without "xt_traffic: " */
  log: string;
  /** the same input through iptables: its arguments after -m traffic and libxt's message */
  ipt?: { args: string[]; msg: string };
}

const BAD_CHAR = 'has a character other than A-Z a-z 0-9 _ . -';
const SUFFIX_K = 'may not end in _ipconn, _portconn or _info';
const NONCONTIG_K = 'is not a contiguous mask of prefix 1..32';
const N32 = 'abcdefghijklmnopqrstuvwxyz012345';
/** iptables arguments of a valid rule with some options replaced */
const ipt = (o: { count?: string[]; base?: string; mask?: string; name?: string; extra?: string[] }): string[] => [
  ...(o.count ?? ['--traffic']),
  '--netbase',
  o.base ?? '10.0.0.0',
  '--netmask',
  o.mask ?? '8',
  '--name',
  o.name ?? 't1',
  ...(o.extra ?? []),
];

const BAD: Bad[] = [
  {
    title: 'unknown flag bit 0x40',
    craft: { flags: '41' },
    errno: 'EINVAL',
    site: 'flags',
    log: 'unknown flag bits 0x40 (known: 0x3f)',
  },
  {
    title: 'unknown flag bit 0x80000000 (top bit)',
    craft: { flags: '80000001' },
    errno: 'EINVAL',
    site: 'flags',
    log: 'unknown flag bits 0x80000000 (known: 0x3f)',
  },
  {
    title: 'unknown flag bits are refused before anything else (empty name too)',
    craft: { flags: 'ffffff01', name: '' },
    errno: 'EINVAL',
    site: 'flags',
    log: 'unknown flag bits 0xffffff00 (known: 0x3f)',
  },
  {
    title: 'no counting option (flags 0)',
    craft: { flags: '0' },
    errno: 'EINVAL',
    site: 'count',
    log: 'nothing to count: give --traffic, --portconn or --ipconn',
    ipt: { args: ipt({ count: [] }), msg: NOTHING },
  },
  {
    title: 'no counting option (only --clearonread --nointernal)',
    craft: { flags: '18' },
    errno: 'EINVAL',
    site: 'count',
    log: 'nothing to count: give --traffic, --portconn or --ipconn',
    ipt: { args: ipt({ count: [], extra: ['--clearonread', '--nointernal'] }), msg: NOTHING },
  },
  {
    title: '--nointernal and ! --nointernal both',
    craft: { flags: '31' },
    errno: 'EINVAL',
    site: 'internal',
    log: '--nointernal and ! --nointernal exclude each other',
    ipt: { args: ipt({ extra: ['--nointernal', '!', '--nointernal'] }), msg: 'traffic: option "--nointernal" can only be used once.' },
  },
  {
    title: 'empty name',
    craft: { name: '' },
    errno: 'EINVAL',
    site: 'name',
    log: 'table name "" is empty',
    ipt: { args: ipt({ name: '' }), msg: `traffic: --name must not be empty: ${NAME_RULES}` },
  },
  {
    title: '32-byte name without a NUL',
    craft: { name: N32, opts: ['-u'] },
    errno: 'EINVAL',
    site: 'name',
    log: `table name "${N32}" is too long (at most 31 characters)`,
    ipt: { args: ipt({ name: N32 }), msg: `traffic: --name "${N32}" is too long (32 characters): ${NAME_RULES}` },
  },
  {
    title: 'name with "/"',
    craft: { name: 'a/b' },
    errno: 'EINVAL',
    site: 'name',
    log: `table name "a/b" ${BAD_CHAR}`,
    ipt: {
      args: ipt({ name: 'a/b' }),
      msg: `traffic: --name "a/b" must not contain "/" (it is a file name under /proc/net/xt_traffic/): ${NAME_RULES}`,
    },
  },
  {
    title: 'name ".."',
    craft: { name: '..' },
    errno: 'EINVAL',
    site: 'name',
    log: 'table name ".." may not be "." or ".."',
    ipt: { args: ipt({ name: '..' }), msg: `traffic: --name ".." is not allowed (it is a directory entry): ${NAME_RULES}` },
  },
  {
    title: 'name "."',
    craft: { name: '.' },
    errno: 'EINVAL',
    site: 'name',
    log: 'table name "." may not be "." or ".."',
    ipt: { args: ipt({ name: '.' }), msg: `traffic: --name "." is not allowed (it is a directory entry): ${NAME_RULES}` },
  },
  {
    title: 'name with a space',
    craft: { name: 'a b' },
    errno: 'EINVAL',
    site: 'name',
    log: `table name "a b" ${BAD_CHAR}`,
    ipt: { args: ipt({ name: 'a b' }), msg: `traffic: --name "a b" has a bad character at position 2: ${NAME_RULES}` },
  },
  {
    title: 'name with a byte 0xff (printable Latin-1 for the kernel: %pE keeps it, kmsg shows it escaped)',
    craft: { name: '61ff62', opts: ['-x'] },
    errno: 'EINVAL',
    site: 'name',
    log: `table name "a\\xffb" ${BAD_CHAR}`,
    ipt: { args: ipt({ name: 'a\u00ffb' }), msg: `traffic: --name "a\u00ffb" has a bad character at position 2: ${NAME_RULES}` },
  },
  {
    title: 'name with a newline stays one log record (escaped by the module as \\n, whose backslash kmsg shows as \\x5c)',
    craft: { name: '610a62', opts: ['-x'] },
    errno: 'EINVAL',
    site: 'name',
    log: `table name "a\\x5cnb" ${BAD_CHAR}`,
    ipt: { args: ipt({ name: 'a\nb' }), msg: `traffic: --name "a\nb" has a bad character at position 2: ${NAME_RULES}` },
  },
  {
    title: 'name ending in _ipconn',
    craft: { name: 'RSN_ipconn' },
    errno: 'EINVAL',
    site: 'name',
    log: `table name "RSN_ipconn" ${SUFFIX_K}`,
    ipt: { args: ipt({ name: 'RSN_ipconn' }), msg: `traffic: --name "RSN_ipconn" must not end in "_ipconn" ${SUFFIX}` },
  },
  {
    title: 'name ending in _portconn',
    craft: { name: 'RSN_portconn' },
    errno: 'EINVAL',
    site: 'name',
    log: `table name "RSN_portconn" ${SUFFIX_K}`,
    ipt: { args: ipt({ name: 'RSN_portconn' }), msg: `traffic: --name "RSN_portconn" must not end in "_portconn" ${SUFFIX}` },
  },
  {
    title: 'name "_info"',
    craft: { name: '_info' },
    errno: 'EINVAL',
    site: 'name',
    log: `table name "_info" ${SUFFIX_K}`,
    ipt: { args: ipt({ name: '_info' }), msg: `traffic: --name "_info" must not end in "_info" ${SUFFIX}` },
  },
  {
    title: 'IPv6 bits in netbase word 1',
    craft: { opts: ['-b', '1=1'] },
    errno: 'EINVAL',
    site: 'ipv6',
    log: 't1: IPv4 netbase/netmask carry IPv6 bits',
  },
  {
    title: 'IPv6 bits in netbase word 3',
    craft: { opts: ['-b', '3=80000000'] },
    errno: 'EINVAL',
    site: 'ipv6',
    log: 't1: IPv4 netbase/netmask carry IPv6 bits',
  },
  {
    title: 'IPv6 bits in netmask words 1 and 2',
    craft: { opts: ['-m', '1=ffffffff', '-m', '2=ffffffff'] },
    errno: 'EINVAL',
    site: 'ipv6',
    log: 't1: IPv4 netbase/netmask carry IPv6 bits',
  },
  {
    title: 'IPv6 bits in netmask word 3',
    craft: { opts: ['-m', '3=1'] },
    errno: 'EINVAL',
    site: 'ipv6',
    log: 't1: IPv4 netbase/netmask carry IPv6 bits',
  },
  {
    title: 'netmask 0.0.0.0 (a /0 net)',
    craft: { netbase: '0.0.0.0', netmask: '0.0.0.0' },
    errno: 'EINVAL',
    site: 'mask',
    log: `t1: netmask 0.0.0.0 ${NONCONTIG_K}`,
    ipt: {
      args: ipt({ base: '0.0.0.0', mask: '0.0.0.0' }),
      msg: 'traffic: --netmask 0.0.0.0 is not allowed: a /0 net would be every address; use a prefix length 1..32',
    },
  },
  ...['255.0.255.0', '0.255.255.255', '255.255.255.253', '128.0.0.1', '0.0.0.1', '254.255.255.255'].map(
    (mask): Bad => ({
      title: `non-contiguous netmask ${mask}`,
      craft: { netbase: '0.0.0.0', netmask: mask },
      errno: 'EINVAL',
      site: 'mask',
      log: `t1: netmask ${mask} ${NONCONTIG_K}`,
      ipt: { args: ipt({ base: '0.0.0.0', mask }), msg: `traffic: --netmask ${mask} ${NONCONTIG}` },
    }),
  ),
  {
    title: 'netbase 10.0.0.1 not aligned to /24',
    craft: { netbase: '10.0.0.1', netmask: '255.255.255.0' },
    errno: 'EINVAL',
    site: 'align',
    log: 't1: netbase 10.0.0.1 is not aligned to netmask 255.255.255.0',
    ipt: {
      args: ipt({ base: '10.0.0.1', mask: '24' }),
      msg: 'traffic: --netbase 10.0.0.1 is not aligned to netmask 255.255.255.0 (did you mean 10.0.0.0?)',
    },
  },
  {
    title: 'netbase 193.11.177.0 not aligned to /20',
    craft: { netbase: '193.11.177.0', netmask: '255.255.240.0', name: 'RSN' },
    errno: 'EINVAL',
    site: 'align',
    log: 'RSN: netbase 193.11.177.0 is not aligned to netmask 255.255.240.0',
    ipt: {
      args: ipt({ base: '193.11.177.0', mask: '255.255.240.0', name: 'RSN' }),
      msg: 'traffic: --netbase 193.11.177.0 is not aligned to netmask 255.255.240.0 (did you mean 193.11.176.0?)',
    },
  },
  {
    title: 'hashsize 4194305 (one over the maximum)',
    craft: { hashsize: '4194305' },
    errno: 'ERANGE',
    site: 'hashsize',
    log: 't1: hashsize 4194305 out of range 1..4194304',
    ipt: { args: ipt({ extra: ['--hashsize', '4194305'] }), msg: `traffic: --hashsize "4194305" ${HASH}` },
  },
  {
    title: 'hashsize 0xffffffff',
    craft: { hashsize: '0xffffffff' },
    errno: 'ERANGE',
    site: 'hashsize',
    log: 't1: hashsize 4294967295 out of range 1..4194304',
    ipt: { args: ipt({ extra: ['--hashsize', '0xffffffff'] }), msg: `traffic: --hashsize "0xffffffff" ${HASH}` },
  },
  {
    title: 'hashsize 0x80000000',
    craft: { hashsize: '0x80000000' },
    errno: 'ERANGE',
    site: 'hashsize',
    log: 't1: hashsize 2147483648 out of range 1..4194304',
    ipt: { args: ipt({ extra: ['--hashsize', '2147483648'] }), msg: `traffic: --hashsize "2147483648" ${HASH}` },
  },
];

// Revision 1 (IPv4 and IPv6, per host prefix): crafted through libiptc / libip6tc.
const R1 = ['-r', '1'];
const R16 = ['-r', '1', '-6'];
/** A revision-1 struct: IPv4 10.0.0.0/8 (or with -6 2001:db8::/48) t1, changed by `c`. */
const v4r1 = (c: Craft & { extra?: string[] }): Craft => ({ ...c, opts: [...R1, ...(c.extra ?? [])] });
const v6r1 = (c: Craft & { extra?: string[] }): Craft => ({
  netbase: '2001:db8::',
  netmask: 'ffff:ffff:ffff::',
  ...c,
  opts: [...R16, ...(c.extra ?? [])],
});
const NONCONTIG6 = 'is not a contiguous IPv6 mask of prefix 1..128';

const BAD1: Bad[] = [
  // IPv4, revision 1
  { title: 'v4 rev 1: pad byte 0x01', craft: v4r1({ extra: ['-P', '000001'] }), errno: 'EINVAL', site: 'pad', log: 't1: padding bytes 0x000001 are not zero' },
  { title: 'v4 rev 1: pad byte 0xff first', craft: v4r1({ extra: ['-P', 'ff0000'] }), errno: 'EINVAL', site: 'pad', log: 't1: padding bytes 0xff0000 are not zero' },
  {
    title: 'v4 rev 1: IPv6 bits in netbase word 3',
    craft: v4r1({ extra: ['-b', '3=1'] }),
    errno: 'EINVAL',
    site: 'ipv6on4',
    log: 't1: an IPv4 rule with IPv6 values: netbase a00::1 netmask ff00::',
  },
  {
    title: 'v4 rev 1: IPv6 bits in netmask word 1 (an IPv6 /64 mask on iptables)',
    craft: v4r1({ netmask: '255.255.255.255', extra: ['-m', '1=ffffffff'] }),
    errno: 'EINVAL',
    site: 'ipv6on4',
    log: 't1: an IPv4 rule with IPv6 values: netbase a00:: netmask ffff:ffff:ffff:ffff::',
  },
  {
    title: 'v4 rev 1: hostprefix 33 (longer than an address)',
    craft: v4r1({ extra: ['-p', '33'] }),
    errno: 'EINVAL',
    site: 'hostprefix',
    log: 't1: hostprefix 33 is longer than an IPv4 address (8..32 for this /8 IPv4 net)',
  },
  {
    title: 'v4 rev 1: hostprefix 64 (the IPv6 default on iptables)',
    craft: v4r1({ extra: ['-p', '64'] }),
    errno: 'EINVAL',
    site: 'hostprefix',
    log: 't1: hostprefix 64 is longer than an IPv4 address (8..32 for this /8 IPv4 net)',
  },
  {
    title: 'v4 rev 1: hostprefix 7 (shorter than the /8 net)',
    craft: v4r1({ extra: ['-p', '7'] }),
    errno: 'EINVAL',
    site: 'hostprefix',
    log: 't1: hostprefix 7 is shorter than the net (8..32 for this /8 IPv4 net)',
  },
  {
    title: 'v4 rev 1: hostprefix 0',
    craft: v4r1({ extra: ['-p', '0'] }),
    errno: 'EINVAL',
    site: 'hostprefix',
    log: 't1: hostprefix 0 is shorter than the net (8..32 for this /8 IPv4 net)',
  },
  {
    title: 'v4 rev 1: hostprefix 23 on a /24',
    craft: v4r1({ netbase: '10.1.2.0', netmask: '255.255.255.0', extra: ['-p', '23'] }),
    errno: 'EINVAL',
    site: 'hostprefix',
    log: 't1: hostprefix 23 is shorter than the net (24..32 for this /24 IPv4 net)',
  },
  {
    title: 'v4 rev 1: netmask 0.0.0.0 (a /0 net)',
    craft: v4r1({ netbase: '0.0.0.0', netmask: '0.0.0.0' }),
    errno: 'EINVAL',
    site: 'mask1',
    log: `t1: netmask 0.0.0.0 ${NONCONTIG_K}`,
  },
  {
    title: 'v4 rev 1: non-contiguous netmask 255.0.255.0',
    craft: v4r1({ netbase: '0.0.0.0', netmask: '255.0.255.0' }),
    errno: 'EINVAL',
    site: 'mask1',
    log: `t1: netmask 255.0.255.0 ${NONCONTIG_K}`,
  },
  {
    title: 'v4 rev 1: netbase 10.0.0.1 with host bits of a /24',
    craft: v4r1({ netbase: '10.0.0.1', netmask: '255.255.255.0' }),
    errno: 'EINVAL',
    site: 'align1',
    log: 't1: netbase 10.0.0.1 is not aligned to netmask 255.255.255.0',
  },
  { title: 'v4 rev 1: unknown flag bit 0x40', craft: v4r1({ flags: '41' }), errno: 'EINVAL', site: 'flags', log: 'unknown flag bits 0x40 (known: 0x3f)' },
  { title: 'v4 rev 1: name with "/"', craft: v4r1({ name: 'a/b' }), errno: 'EINVAL', site: 'name', log: `table name "a/b" ${BAD_CHAR}` },
  {
    title: 'v4 rev 1: hashsize 4194305',
    craft: v4r1({ hashsize: '4194305' }),
    errno: 'ERANGE',
    site: 'hashsize',
    log: 't1: hashsize 4194305 out of range 1..4194304',
  },
  // IPv6, revision 1
  {
    title: 'v6: a /0 net',
    craft: v6r1({ netbase: '::', netmask: '::' }),
    errno: 'EINVAL',
    site: 'mask6',
    log: `t1: netmask :: ${NONCONTIG6} (a /0 net would be every address)`,
  },
  {
    title: 'v6: non-contiguous netmask ffff:0:ffff::',
    craft: v6r1({ netbase: '::', netmask: 'ffff:0:ffff::' }),
    errno: 'EINVAL',
    site: 'mask6',
    log: `t1: netmask ffff:0:ffff:: ${NONCONTIG6}`,
  },
  {
    title: 'v6: netmask ::1 (bits from the wrong end)',
    craft: v6r1({ netbase: '::', netmask: '::1' }),
    errno: 'EINVAL',
    site: 'mask6',
    log: `t1: netmask ::1 ${NONCONTIG6}`,
  },
  {
    title: 'v6: an IPv4 mask in the first word with a hole (255.0.255.0 read as IPv6)',
    craft: v6r1({ netbase: 'a00::', netmask: 'ff00:ff00::' }),
    errno: 'EINVAL',
    site: 'mask6',
    log: `t1: netmask ff00:ff00:: ${NONCONTIG6}`,
  },
  {
    title: 'v6: netbase 2001:db8::1 with host bits of a /48',
    craft: v6r1({ netbase: '2001:db8::1' }),
    errno: 'EINVAL',
    site: 'align6',
    log: 't1: netbase 2001:db8::1 has host bits set for a /48 net',
  },
  {
    title: 'v6: netbase 2001:db8:0:1:: with host bits of a /48',
    craft: v6r1({ netbase: '2001:db8:0:1::' }),
    errno: 'EINVAL',
    site: 'align6',
    log: 't1: netbase 2001:db8:0:1:: has host bits set for a /48 net',
  },
  {
    title: 'v6: hostprefix 129',
    craft: v6r1({ extra: ['-p', '129'] }),
    errno: 'EINVAL',
    site: 'hostprefix',
    log: 't1: hostprefix 129 is longer than an IPv6 address (48..128 for this /48 IPv6 net)',
  },
  {
    title: 'v6: hostprefix 47 on a /48',
    craft: v6r1({ extra: ['-p', '47'] }),
    errno: 'EINVAL',
    site: 'hostprefix',
    log: 't1: hostprefix 47 is shorter than the net (48..128 for this /48 IPv6 net)',
  },
  {
    title: 'v6: hostprefix 32 (the IPv4 default) on a /48',
    craft: v6r1({ extra: ['-p', '32'] }),
    errno: 'EINVAL',
    site: 'hostprefix',
    log: 't1: hostprefix 32 is shorter than the net (48..128 for this /48 IPv6 net)',
  },
  {
    title: 'v6: the default hostprefix 64 on a /96 net',
    craft: v6r1({ netbase: '2001:db8::', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff::' }),
    errno: 'EINVAL',
    site: 'hostprefix',
    log: 't1: hostprefix 64 is shorter than the net (96..128 for this /96 IPv6 net)',
  },
  { title: 'v6: pad bytes 0x00ff00', craft: v6r1({ extra: ['-P', '00ff00'] }), errno: 'EINVAL', site: 'pad', log: 't1: padding bytes 0x00ff00 are not zero' },
  { title: 'v6: no counting option', craft: v6r1({ flags: '0' }), errno: 'EINVAL', site: 'count', log: 'nothing to count: give --traffic, --portconn or --ipconn' },
  { title: 'v6: both --nointernal bits', craft: v6r1({ flags: '31' }), errno: 'EINVAL', site: 'internal', log: '--nointernal and ! --nointernal exclude each other' },
  { title: 'v6: name ending in _info', craft: v6r1({ name: 'v6_info' }), errno: 'EINVAL', site: 'name', log: `table name "v6_info" ${SUFFIX_K}` },
  {
    title: 'v6: hashsize 0xffffffff',
    craft: v6r1({ hashsize: '0xffffffff' }),
    errno: 'ERANGE',
    site: 'hashsize',
    log: 't1: hashsize 4294967295 out of range 1..4194304',
  },
];

describe('checkentry refuses a crafted revision-1 struct (IPv4 and IPv6)', () => {
  it('has at least 20 cases', () => {
    expect(BAD1.length).toBeGreaterThanOrEqual(20);
  });

  it.each(BAD1)('$title: $errno and one log line', async (c) => {
    const refs = moduleRefcnt();
    const log = new KernelLog();
    const r = await pacer.paced(c.site, () => craft(c.craft, ['-l']));
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 1, stdout: `${c.errno}\nrules 0\n`, stderr: '' });
    expect(log.linesStarting(PREFIX)).toEqual([PREFIX + c.log]);
    expect(log.trouble()).toEqual([]);
    expect(procFiles()).toEqual([]);
    expect(moduleRefcnt()).toBe(refs);
  });

  it('a revision-0 struct on ip6tables: no such match (ENOENT), nothing logged', () => {
    const log = new KernelLog();
    const r = craft({ netbase: '2001:db8::', netmask: 'ffff:ffff:ffff::', opts: ['-6'] }, ['-l']);
    expect(r.status).toBe(1);
    // x_tables: no match "traffic" revision 0 for NFPROTO_IPV6 (ENOENT; EPROTOTYPE would say "other revisions exist")
    expect(['ENOENT\nrules 0\n', 'EPROTOTYPE\nrules 0\n']).toContain(r.stdout);
    expect(log.linesStarting(PREFIX)).toEqual([]);
    expect(procFiles()).toEqual([]);
  });
});

describe('checkentry refuses a crafted struct', () => {
  it('has at least 20 cases', () => {
    expect(BAD.length).toBeGreaterThanOrEqual(20);
  });

  it.each(BAD)('$title: $errno and one log line', async (c) => {
    const refs = moduleRefcnt();
    const log = new KernelLog();
    // -l: then count the rules of raw PREROUTING (the refused one must not be there)
    const r = await pacer.paced(c.site, () => craft(c.craft, ['-l']));
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 1, stdout: `${c.errno}\nrules 0\n`, stderr: '' });
    expect(log.linesStarting(PREFIX)).toEqual([PREFIX + c.log]);
    expect(log.trouble()).toEqual([]);
    // nothing left behind
    expect(procFiles()).toEqual([]);
    expect(moduleRefcnt()).toBe(refs);
  });
});

interface Good {
  title: string;
  craft: Craft;
  /** the table's files under /proc/net/xt_traffic/ */
  files: string[];
  /** NAME_info lines that must be there */
  info: string[];
  /** an IPv4 table per address: NAME_info has no hostprefix line (as revision 0) */
  noHostprefix?: boolean;
}

const N31 = 'A123456789.123456789-123456789_';
const GOOD: Good[] = [
  {
    title: 'a /32 net',
    files: ['net32', 'net32_info'],
    craft: { netbase: '10.1.2.3', netmask: '255.255.255.255', name: 'net32' },
    info: ['name: net32', 'netbase: 10.1.2.3', 'netmask: 255.255.255.255', 'options: traffic', 'hashsize: 16'],
  },
  {
    title: 'a /1 net',
    files: ['net1', 'net1_info'],
    craft: { netbase: '128.0.0.0', netmask: '128.0.0.0', name: 'net1' },
    info: ['name: net1', 'netbase: 128.0.0.0', 'netmask: 128.0.0.0', 'hashsize: 65536'],
  },
  {
    title: 'hashsize 1 (2 buckets)',
    files: ['h1', 'h1_info'],
    craft: { hashsize: '1', name: 'h1' },
    info: ['name: h1', 'hashsize: 2'], // at least 2 buckets: hash_32() needs a bit
  },
  {
    title: 'hashsize 4194304 (the maximum)',
    files: ['hmax', 'hmax_info'],
    craft: { hashsize: '4194304', name: 'hmax' },
    info: ['name: hmax', 'hashsize: 4194304'],
  },
  {
    title: 'hashsize 5 (rounded up to 8)',
    files: ['h5', 'h5_info', 'h5_ipconn'],
    craft: { hashsize: '5', name: 'h5', flags: '5' },
    info: ['name: h5', 'options: traffic ipconn', 'hashsize: 8', 'flow_slots: 4096'],
  },
  {
    title: 'a name of 31 characters',
    files: [N31, `${N31}_info`],
    craft: { name: N31 },
    info: [`name: ${N31}`],
  },
  {
    title: 'every valid flag but ! --nointernal (0x1f)',
    files: ['RSN', 'RSN_info', 'RSN_ipconn', 'RSN_portconn'],
    craft: { flags: '1f', netbase: '193.11.176.0', netmask: '255.255.240.0', name: 'RSN' },
    info: ['name: RSN', 'netbase: 193.11.176.0', 'netmask: 255.255.240.0', 'options: traffic portconn ipconn nointernal clearonread', 'hashsize: 4096', 'flow_slots: 16384'],
  },
  {
    title: '! --nointernal alone with --portconn (0x22)',
    files: ['only_info', 'only_portconn'],
    craft: { flags: '22', name: 'only' },
    info: ['name: only', 'options: portconn onlyinternal'],
  },
  {
    title: 'bytes after the NUL of the name are ignored',
    files: ['a', 'a_info'],
    craft: { name: '610062632e', opts: ['-x'] },
    info: ['name: a'],
  },
];

const GOOD1: Good[] = [
  {
    title: 'v6 /48 per /56',
    files: ['v6a', 'v6a_info', 'v6a_ipconn'],
    craft: v6r1({ flags: '5', name: 'v6a', extra: ['-p', '56'] }),
    info: ['name: v6a', 'family: ipv6', 'netbase: 2001:db8::', 'netmask: ffff:ffff:ffff::', 'hostprefix: 56', 'options: traffic ipconn', 'hashsize: 256'],
  },
  {
    title: 'v6 /48 per /64 (the default)',
    files: ['v6b', 'v6b_info'],
    craft: v6r1({ name: 'v6b' }),
    info: ['name: v6b', 'family: ipv6', 'hostprefix: 64', 'hashsize: 65536'],
  },
  {
    title: 'v6 /128 per address',
    files: ['v6c', 'v6c_info'],
    craft: v6r1({ netbase: '2001:db8::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', name: 'v6c', extra: ['-p', '128'] }),
    info: ['netbase: 2001:db8::1', 'netmask: ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'hostprefix: 128', 'hashsize: 16'],
  },
  {
    title: 'v6 /1 per address',
    files: ['v6d', 'v6d_info'],
    craft: v6r1({ netbase: '8000::', netmask: '8000::', name: 'v6d', extra: ['-p', '128'] }),
    info: ['netbase: 8000::', 'netmask: 8000::', 'hostprefix: 128', 'hashsize: 65536'],
  },
  {
    title: 'v6 IPv4-mapped net (mixed notation)',
    files: ['v6e', 'v6e_info'],
    craft: v6r1({ netbase: '::ffff:10.0.0.0', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00', name: 'v6e', extra: ['-p', '128'] }),
    info: ['netbase: ::ffff:10.0.0.0', 'netmask: ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00', 'hostprefix: 128'],
  },
  {
    title: 'v6 ISATAP-looking net stays pure hex',
    files: ['v6f', 'v6f_info'],
    craft: v6r1({ netbase: 'fe80::5efe:c000:200', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00', name: 'v6f', extra: ['-p', '128'] }),
    info: ['netbase: fe80::5efe:c000:200', 'hostprefix: 128'],
  },
  {
    title: 'v4 rev 1 /8 per /24',
    files: ['v4a', 'v4a_info'],
    craft: v4r1({ name: 'v4a', extra: ['-p', '24'] }),
    info: ['name: v4a', 'family: ipv4', 'netbase: 10.0.0.0', 'netmask: 255.0.0.0', 'hostprefix: 24', 'hashsize: 65536'],
  },
  {
    title: 'v4 rev 1 /20 per address (32)',
    files: ['v4b', 'v4b_info'],
    craft: v4r1({ netbase: '193.11.176.0', netmask: '255.255.240.0', name: 'v4b' }),
    info: ['family: ipv4', 'netbase: 193.11.176.0', 'netmask: 255.255.240.0', 'hashsize: 4096'],
    noHostprefix: true,
  },
];

describe('checkentry accepts valid revision-1 structs', () => {
  it.each(GOOD1)('$title', (c) => {
    const refs = moduleRefcnt();
    const log = new KernelLog();
    const v6 = c.craft.opts?.includes('-6');
    try {
      const r = craft(c.craft, ['-l']);
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: 'OK\nrules 1\n', stderr: '' });
      expect(log.linesStarting(PREFIX)).toEqual([]);
      expect(log.trouble()).toEqual([]);
      expect(moduleRefcnt()).toBe(refs + 1);
      expect(procFiles()).toEqual([...c.files].sort());
      const info = procRead(`${c.files.find((f) => f.endsWith('_info'))}`).split('\n');
      for (const line of c.info) expect(info).toContain(line);
      expect(info).toContain('rules: 1');
      expect(info.some((l) => l.startsWith('hostprefix: '))).toBe(!c.noHostprefix);
    } finally {
      ns.exec(v6 ? 'ip6tables-legacy' : 'iptables-legacy', ['-t', 'raw', '-F']);
    }
    expect(procFiles()).toEqual([]);
    expect(moduleRefcnt()).toBe(refs);
  });
});

describe('table sharing across revisions and families', () => {
  afterEach(() => {
    ns.exec('iptables-legacy', ['-t', 'raw', '-F']);
    ns.exec('ip6tables-legacy', ['-t', 'raw', '-F']);
  });

  it('revision 0 and revision 1 per address share an IPv4 table (the creator keeps its files)', () => {
    expect(craft({ name: 'sh' }).stdout).toBe('OK\n');
    expect(craft(v4r1({ name: 'sh' }), ['-l']).stdout).toBe('OK\nrules 2\n');
    const info = procRead('sh_info').split('\n');
    expect(info).toContain('rules: 2');
    expect(info.some((l) => l.startsWith('hostprefix'))).toBe(false);
  });

  it('a name in use by IPv4 is refused for IPv6: EEXIST, one line naming it', async () => {
    expect(craft(v4r1({ name: 'sh' })).stdout).toBe('OK\n');
    const log = new KernelLog();
    const r = await pacer.paced('same', () => craft(v6r1({ name: 'sh' }), ['-l']));
    expect(r.stdout).toBe('EEXIST\nrules 0\n');
    expect(log.linesStarting(PREFIX)).toEqual([`${PREFIX}table sh exists for ipv4; this rule is ipv6`]);
  });

  it('a name in use with another host prefix is refused: EEXIST, one line naming both', async () => {
    expect(craft(v6r1({ name: 'sh', extra: ['-p', '56'] })).stdout).toBe('OK\n');
    const log = new KernelLog();
    const r = await pacer.paced('same', () => craft(v6r1({ name: 'sh' }), ['-l']));
    expect(r.stdout).toBe('EEXIST\nrules 1\n');
    expect(log.linesStarting(PREFIX)).toEqual([`${PREFIX}table sh exists with --hostprefix 56; this rule has 64`]);
  });
});

describe('checkentry accepts valid edge cases', () => {
  it.each(GOOD)('$title', (c) => {
    const refs = moduleRefcnt();
    const log = new KernelLog();
    try {
      const r = craft(c.craft, ['-l']);
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: 'OK\nrules 1\n', stderr: '' });
      expect(log.linesStarting(PREFIX)).toEqual([]);
      expect(log.trouble()).toEqual([]);
      expect(moduleRefcnt()).toBe(refs + 1);
      expect(procFiles()).toEqual([...c.files].sort());
      const info = procRead(`${c.files.find((f) => f.endsWith('_info'))}`).split('\n');
      for (const line of c.info) expect(info).toContain(line);
      expect(info).toContain('rules: 1');
    } finally {
      ns.exec('iptables-legacy', ['-t', 'raw', '-F']);
    }
    expect(procFiles()).toEqual([]);
    expect(moduleRefcnt()).toBe(refs);
  });
});

describe.each(BACKENDS)('%s with the same bad inputs', (iptables) => {
  const withIpt = BAD.filter((c) => c.ipt);

  it.each(withIpt)('$title: libxt refuses it, naming the value', (c) => {
    const log = new KernelLog();
    const r = run('nsenter', [`--net=/run/netns/${ns.name}`, iptables, '-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', ...c.ipt!.args]);
    const tag = iptables === 'iptables' ? 'nf_tables' : 'legacy';
    expect(r.status).toBe(2);
    expect(r.stderr.startsWith(`iptables v`)).toBe(true);
    // "iptables v1.8.9 (nf_tables): MESSAGE" then the "Try `iptables -h'" line
    const first = r.stderr.slice(0, r.stderr.indexOf('\nTry ')).trimEnd();
    expect(first.replace(/^iptables v[0-9.]+ /, '')).toBe(`(${tag}): ${c.ipt!.msg}`);
    // refused in userspace: the kernel saw nothing
    expect(log.linesStarting(PREFIX)).toEqual([]);
    expect(procFiles()).toEqual([]);
  });

  it('left no rule behind', () => {
    expect(ns.exec(`${iptables}-save`, ['-t', 'raw'])).not.toContain('traffic');
  });
});

describe('pr_info_ratelimited', () => {
  // Found out here: the guest's kernel.printk_ratelimit=0 does not apply to the
  // per-call-site state of pr_info_ratelimited (10 lines per 5 s); refusals are never
  // rate limited, only their lines, and the next line after the window tells how many
  // were suppressed.
  it('logs 10 lines per call site per 5 s, refuses every bad struct, then counts the suppressed ones', async () => {
    await pacer.fresh('name');
    const log = new KernelLog();
    // 12 attempts from one process: well within one 5 s window even under a loaded TCG
    const t0 = Date.now();
    const burst = craft({ name: 'bad name' }, ['-n', '12']);
    const elapsed = Date.now() - t0;
    pacer.assumeFull('name');
    expect(elapsed).toBeLessThan(4500);
    expect(burst.stdout).toBe('EINVAL\n'.repeat(12));
    const lines = log.linesStarting(PREFIX);
    expect(lines).toEqual(Array(10).fill(`${PREFIX}table name "bad name" ${BAD_CHAR}`));
    await pacer.fresh('name');
    log.mark();
    const r = await pacer.paced('name', () => craft({ name: 'a:b' }));
    expect(r.stdout).toBe('EINVAL\n');
    expect(log.since().filter((l) => l.includes('xt_traffic') || l.includes('suppressed'))).toEqual([
      'xtt_check_flags_name: 2 callbacks suppressed',
      `${PREFIX}table name "a:b" ${BAD_CHAR}`,
    ]);
    expect(log.trouble()).toEqual([]);
  });
});
