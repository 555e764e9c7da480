// libxt_traffic.so against the real xt_traffic module, with both iptables backends:
// iptables' own .t file, the help text, iptables -L / iptables-save output and an
// iptables-save | iptables-restore round trip. Each test runs in a fresh netns.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadModule } from '../lib/module.js';
import { HASH, NAME_RULES, NONCONTIG, NOTHING, NOT_ADDR, NOT_MASK, SLASH0, SUFFIX } from '../lib/messages.js';
import { formatFailures, parseTFile, runT, type TRule } from '../lib/xtables-t.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const T_FILE = `${REPO}/libxt/libxt_traffic.t`;
const ENV = { ...process.env, XTABLES_LIBDIR: `${REPO}/libxt:/usr/lib/x86_64-linux-gnu/xtables` };

// XTT_LIBXT_FULL=1 runs the .t file the slow iptables-test.py way (-A, save, -D per
// rule and chain); the default loads the OK lines with one iptables-restore.
const MODE = process.env.XTT_LIBXT_FULL === '1' ? 'full' : 'fast';

const BACKENDS = [
  { ipt: 'iptables', tag: 'nf_tables' },
  { ipt: 'iptables-legacy', tag: 'legacy' },
] as const;

interface Out {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string): Out {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: ENV, input, timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(cmd: string, args: string[], input?: string): string {
  const r = run(cmd, args, input);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

let seq = 0;
let ns = '';
const inNs = (cmd: string, args: string[], input?: string): Out => run('ip', ['netns', 'exec', ns, cmd, ...args], input);
const okNs = (cmd: string, args: string[], input?: string): string => ok('ip', ['netns', 'exec', ns, cmd, ...args], input);

/** iptables-save output without the "# Generated/Completed" comment lines. */
const saveText = (ipt: string, table: string): string =>
  okNs(`${ipt}-save`, ['-t', table])
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');

beforeAll(() => {
  loadModule();
  expect(existsSync('/sys/module/xt_traffic')).toBe(true);
  expect(existsSync(`${REPO}/libxt/libxt_traffic.so`)).toBe(true);
});

beforeEach(() => {
  ns = `xtlibxt${process.pid}x${seq++}`;
  ok('ip', ['netns', 'add', ns]);
});

afterEach(() => {
  ok('ip', ['netns', 'del', ns]);
});

// What each FAIL line of libxt_traffic.t must print (after "iptables vX (backend): "),
// so that a FAIL passes only for the reason it was written for.
const B = '-m traffic --traffic --netbase 10.0.0.0 --netmask 8';
const FAIL_MESSAGES: Record<string, string> = {
  '-m traffic --traffic --netbase 10.0.0.1 --netmask 24 --name t1':
    'traffic: --netbase 10.0.0.1 is not aligned to netmask 255.255.255.0 (did you mean 10.0.0.0?)',
  '-m traffic --traffic --netbase 193.11.177.0 --netmask 255.255.240.0 --name RSN':
    'traffic: --netbase 193.11.177.0 is not aligned to netmask 255.255.240.0 (did you mean 193.11.176.0?)',
  '-m traffic --traffic --netbase 10.0.0.0 --netmask 255.0.255.0 --name t1': `traffic: --netmask 255.0.255.0 ${NONCONTIG}`,
  '-m traffic --traffic --netbase 0.0.0.0 --netmask 0.255.255.255 --name t1': `traffic: --netmask 0.255.255.255 ${NONCONTIG}`,
  '-m traffic --traffic --netbase 10.0.0.0 --netmask 33 --name t1':
    'traffic: --netmask 33 is out of range: a prefix length is 1..32 (or give a.b.c.d)',
  '-m traffic --traffic --netbase 0.0.0.0 --netmask 0 --name t1': `traffic: --netmask 0 ${SLASH0}`,
  '-m traffic --traffic --netbase 0.0.0.0 --netmask 0.0.0.0 --name t1': `traffic: --netmask 0.0.0.0 ${SLASH0}`,
  '-m traffic --traffic --netbase 10.0.0.0 --netmask -8 --name t1': `traffic: --netmask "-8" ${NOT_MASK}`,
  '-m traffic --traffic --netbase 10.0.0.0 --netmask /24 --name t1': `traffic: --netmask "/24" ${NOT_MASK}`,
  '-m traffic --traffic --netbase 10.0.0.0 --netmask 255.255.255 --name t1':
    'traffic: --netmask "255.255.255" is not a netmask: expected a.b.c.d (e.g. 255.255.240.0) or a prefix length 1..32',
  '-m traffic --traffic --netbase 10.0.0 --netmask 8 --name t1': `traffic: --netbase "10.0.0" ${NOT_ADDR}`,
  '-m traffic --traffic --netbase 10.0.0.0/8 --netmask 8 --name t1':
    'traffic: --netbase "10.0.0.0/8" is not an IPv4 address: give the base as a.b.c.d and the prefix with --netmask (e.g. --netbase 10.0.0.0 --netmask 24)',
  '-m traffic --traffic --netbase localhost --netmask 32 --name t1': `traffic: --netbase "localhost" ${NOT_ADDR}`,
  [`${B} --name ""`]: `traffic: --name must not be empty: ${NAME_RULES}`,
  [`${B} --name abcdefghijklmnopqrstuvwxyz012345`]:
    `traffic: --name "abcdefghijklmnopqrstuvwxyz012345" is too long (32 characters): ${NAME_RULES}`,
  [`${B} --name a/b`]: `traffic: --name "a/b" must not contain "/" (it is a file name under /proc/net/xt_traffic/): ${NAME_RULES}`,
  [`${B} --name .`]: `traffic: --name "." is not allowed (it is a directory entry): ${NAME_RULES}`,
  [`${B} --name ..`]: `traffic: --name ".." is not allowed (it is a directory entry): ${NAME_RULES}`,
  [`${B} --name a:b`]: `traffic: --name "a:b" has a bad character at position 2: ${NAME_RULES}`,
  [`${B} --name RSN_ipconn`]: `traffic: --name "RSN_ipconn" must not end in "_ipconn" ${SUFFIX}`,
  [`${B} --name RSN_portconn`]: `traffic: --name "RSN_portconn" must not end in "_portconn" ${SUFFIX}`,
  [`${B} --name RSN_info`]: `traffic: --name "RSN_info" must not end in "_info" ${SUFFIX}`,
  [`${B} --name _info`]: `traffic: --name "_info" must not end in "_info" ${SUFFIX}`,
  [`${B} --name t1 --hashsize 0`]: `traffic: --hashsize "0" ${HASH}`,
  [`${B} --name t1 --hashsize 4194305`]: `traffic: --hashsize "4194305" ${HASH}`,
  [`${B} --name t1 --hashsize 99999999999`]: `traffic: --hashsize "99999999999" ${HASH}`,
  [`${B} --name t1 --hashsize -1`]: `traffic: --hashsize "-1" ${HASH}`,
  [`${B} --name t1 --hashsize many`]: `traffic: --hashsize "many" ${HASH}`,
  '-m traffic --netbase 10.0.0.0 --netmask 8 --name t1 --nointernal': NOTHING,
  '-m traffic --traffic --netmask 8 --name t1': 'traffic: option "--netbase" must be specified',
  '-m traffic --traffic --netbase 10.0.0.0 --name t1': 'traffic: option "--netmask" must be specified',
  [B]: 'traffic: option "--name" must be specified',
  '-m traffic': NOTHING,
  '-m traffic --traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1': 'traffic: option "--traffic" can only be used once.',
  [`${B} --name t1 --name t2`]: 'traffic: option "--name" can only be used once.',
  '-m traffic --traffic --netbase 10.0.0.0 --netbase 10.0.0.0 --netmask 8 --name t1': 'traffic: option "--netbase" can only be used once.',
  [`${B} --netmask 8 --name t1`]: 'traffic: option "--netmask" can only be used once.',
  [`${B} --name t1 --nointernal ! --nointernal`]: 'traffic: option "--nointernal" can only be used once.',
  [`${B} --name t1 --clearonread --clearonread`]: 'traffic: option "--clearonread" can only be used once.',
  '-m traffic ! --traffic --netbase 10.0.0.0 --netmask 8 --name t1': 'traffic: option "--traffic" cannot be inverted.',
  [`${B} --name t1 --count`]: 'unknown option "--count"',
  [`${B} --name`]: 'option "--name" requires an argument',
  '-m traffic --traffic --netbase 10.0.0.1 --netmask 255.0.0.0 --name raw1':
    'traffic: --netbase 10.0.0.1 is not aligned to netmask 255.0.0.0 (did you mean 10.0.0.0?)',
  [`${B} --hostprefix 33 --name t1`]:
    'traffic: --hostprefix "33" is not allowed: give a prefix length from the net\'s length to 32 (32 counts per address, 24 per /24)',
  [`${B} --hostprefix 7 --name t1`]: 'traffic: --hostprefix 7 is shorter than the net /8: a host prefix lies inside the net (use 8..32)',
  '-m traffic --traffic --netbase 2001:db8:: --netmask 48 --name t1':
    'traffic: --netbase "2001:db8::" is IPv6: iptables counts IPv4 nets; use ip6tables for an IPv6 net',
};

// The same for libip6t_traffic.t (ip6tables, revision 1).
const B6 = '-m traffic --traffic --netbase 2001:db8:: --netmask 48';
const FAIL_MESSAGES6: Record<string, string> = {
  '-m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name t1':
    'traffic: --netbase "10.0.0.0" is IPv4: ip6tables counts IPv6 nets; use iptables for an IPv4 net',
  '-m traffic --traffic --netbase 2001:db8:: --netmask 255.255.0.0 --name t1':
    'traffic: --netmask "255.255.0.0" is IPv4: ip6tables takes a prefix length 1..128 or an IPv6 mask; use iptables for an IPv4 net',
  '-m traffic --traffic --netbase 2001:db8::1 --netmask 48 --name t1':
    'traffic: --netbase 2001:db8::1 has host bits set for a /48 net (did you mean 2001:db8::?)',
  '-m traffic --traffic --netbase :: --netmask 0 --name t1':
    'traffic: --netmask 0 is not allowed: a /0 net would be every address; use a prefix length 1..128',
  '-m traffic --traffic --netbase :: --netmask :: --name t1':
    'traffic: --netmask :: is not allowed: a /0 net would be every address; use a prefix length 1..128',
  '-m traffic --traffic --netbase 2001:db8:: --netmask 129 --name t1':
    'traffic: --netmask 129 is out of range: a prefix length is 1..128 (or give an IPv6 mask)',
  '-m traffic --traffic --netbase :: --netmask ffff::ffff --name t1':
    'traffic: --netmask ffff::ffff is not contiguous: the one bits must come first (e.g. ffff:ffff:ffff::), or give a prefix length 1..128',
  '-m traffic --traffic --netbase 2001:db8::/48 --netmask 48 --name t1':
    'traffic: --netbase "2001:db8::/48" is not an IPv6 address: give the base alone and the prefix with --netmask (e.g. --netbase 2001:db8:: --netmask 48)',
  '-m traffic --traffic --netbase 2001:db8::g --netmask 48 --name t1': 'traffic: --netbase "2001:db8::g" is not an IPv6 address (e.g. 2001:db8::)',
  [`${B6} --hostprefix 129 --name t1`]:
    'traffic: --hostprefix "129" is not allowed: give a prefix length from the net\'s length to 128 (128 counts per address, 64 per /64)',
  [`${B6} --hostprefix 40 --name t1`]: 'traffic: --hostprefix 40 is shorter than the net /48: a host prefix lies inside the net (use 48..128)',
  [`${B6} --hostprefix 0 --name t1`]:
    'traffic: --hostprefix "0" is not allowed: give a prefix length from the net\'s length to 128 (128 counts per address, 64 per /64)',
  '-m traffic --traffic --netbase 2001:db8:: --netmask 96 --name t1':
    'traffic: the net /96 is longer than the default --hostprefix 64: give --hostprefix 96..128 (128 counts per address)',
  [`${B6} --hostprefix 56 --hostprefix 64 --name t1`]: 'traffic: option "--hostprefix" can only be used once.',
  '-m traffic --netbase 2001:db8:: --netmask 48 --name t1': NOTHING,
  [`${B6} --name a/b`]: `traffic: --name "a/b" must not contain "/" (it is a file name under /proc/net/xt_traffic/): ${NAME_RULES}`,
};

const HELP = `traffic match options (per-IP traffic and connection accounting;
the rule always matches, it only counts):
 at least one of:
  --traffic             count bytes per IP, in and out, split TCP/UDP/OTHER
                        -> /proc/net/xt_traffic/NAME
  --portconn            count new connections per service (destination) port,
                        split TCP/UDP/ICMP/OTHER -> /proc/net/xt_traffic/NAME_portconn
  --ipconn              count new connections per IP, split TCP/UDP/ICMP/OTHER
                        -> /proc/net/xt_traffic/NAME_ipconn
 mandatory:
  --netbase a.b.c.d     base address of the monitored net (aligned to the mask)
  --netmask a.b.c.d|N   netmask of the monitored net: dotted, or a prefix
                        length 1..32 (e.g. 255.255.240.0 or 20)
  --name NAME           table name, 1..31 characters of A-Z a-z 0-9 _ . -,
                        not "." or "..", not ending in _ipconn, _portconn
                        or _info; rules giving the same NAME share one table
 optional:
  --hashsize N          hash buckets, 1..4194304, rounded up to a power of two
                        (default: derived from the net size)
  --clearonread         every read of a file returns and zeroes its counters
                        (default: counters are kept when read)
  --nointernal          do not count traffic between two hosts of the net
  ! --nointernal        count only traffic between two hosts of the net
                        (default: counted for both hosts, out and in)
files under /proc/net/xt_traffic/ (per network namespace; root only unless
the module parameters proc_perms, proc_uid, proc_gid say otherwise):
  NAME, NAME_portconn, NAME_ipconn   counters, one row per IP or port
  NAME_info                          settings, entry counts, overflow
  open O_RDWR to read and clear; "echo clear > FILE" clears without reading
example:
  iptables -t raw -A PREROUTING -m traffic --traffic --portconn --ipconn \\
      --netbase 193.11.176.0 --netmask 20 --nointernal --name RSN
revision 1 (iptables and ip6tables):
  --netbase ADDR        on ip6tables an IPv6 address (e.g. 2001:db8::)
  --netmask N|MASK      on ip6tables a prefix length 1..128 or an IPv6 mask
                        (e.g. 48 or ffff:ffff:ffff::)
  --hostprefix N        count per prefix of length N inside the net
                        (net length <= N <= 32 for IPv4, 128 for IPv6;
                        default 32 for IPv4: per address, 64 for IPv6: per /64);
                        rows are keyed ADDR/N, or the bare address at 32 or 128
  a table name is one family and one host prefix: a rule naming it with
  another is refused
example:
  ip6tables -t raw -A PREROUTING -m traffic --traffic --ipconn \\
      --netbase 2001:db8:: --netmask 48 --hostprefix 56 --name V6
`;

// Written with prefix lengths and options out of order; saved in canonical form.
const RESTORE_IN = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:PROMISC - [0:0]
-A PREROUTING -i mon0 -j PROMISC
-A PROMISC -m traffic --name RSN --nointernal --netmask 20 --netbase 193.11.176.0 --ipconn --portconn --traffic
-A PROMISC -j DROP
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m traffic ! --nointernal --clearonread --hashsize 4096 --ipconn --netbase 10.0.0.0 --netmask 8 --name lan -j ACCEPT
-A FORWARD -m traffic --portconn --netbase 10.1.2.3 --netmask 32 --name host -m traffic --traffic --netbase 10.1.0.0 --netmask 255.255.0.0 --name net --hashsize 1
COMMIT
`;

const SAVED_RAW = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:PROMISC - [0:0]
-A PREROUTING -i mon0 -j PROMISC
-A PROMISC -m traffic --traffic --portconn --ipconn --netbase 193.11.176.0 --netmask 255.255.240.0 --name RSN --nointernal
-A PROMISC -j DROP
COMMIT
`;

const SAVED_FILTER = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m traffic --ipconn --netbase 10.0.0.0 --netmask 255.0.0.0 --name lan --hashsize 4096 --clearonread ! --nointernal -j ACCEPT
-A FORWARD -m traffic --portconn --netbase 10.1.2.3 --netmask 255.255.255.255 --name host -m traffic --traffic --netbase 10.1.0.0 --netmask 255.255.0.0 --name net --hashsize 1
COMMIT
`;

describe.each(BACKENDS)('libxt_traffic.so with $ipt', ({ ipt, tag }) => {
  it('passes libxt_traffic.t, every FAIL line for its own reason', async () => {
    const entries = parseTFile(T_FILE);
    const results = await runT(entries, { iptables: ipt, env: ENV, netns: ns, mode: MODE });
    expect(formatFailures(results)).toBe('');
    const rules = entries.filter((e): e is TRule => e.kind === 'rule');
    const okRuns = rules.filter((r) => r.expect === 'OK').reduce((n, r) => n + r.chains.length, 0);
    const failLines = rules.filter((r) => r.expect === 'FAIL');
    expect(okRuns).toBe(24 * 3 + 2 * 2);
    expect(failLines.length).toBe(46);
    expect(results.length).toBe(MODE === 'full' ? 69 * 3 + 3 * 2 : okRuns + failLines.length);
    expect(results.filter((r) => r.expect === 'OK').length).toBe(okRuns);

    const prefix = new RegExp(`^iptables v[0-9.]+ \\(${tag}\\): `);
    const got = results
      .filter((r) => r.expect === 'FAIL')
      .map((r) => {
        const line = r.stderr.split('\n').find((l) => prefix.test(l)) ?? `(no error line in ${JSON.stringify(r.stderr)})`;
        return [r.rule, r.chain, r.status, line.replace(prefix, '')];
      });
    const want = results
      .filter((r) => r.expect === 'FAIL')
      .map((r) => [r.rule, r.chain, 2, FAIL_MESSAGES[r.rule] ?? '(no expected message)']);
    expect(got).toEqual(want);
    expect(Object.keys(FAIL_MESSAGES).sort()).toEqual(failLines.map((r) => r.rule).sort());
  }, 900_000);

  it('-m traffic -h exits 0 and teaches every option and file', () => {
    const r = inNs(ipt, ['-m', 'traffic', '-h']);
    expect(r.status).toBe(0);
    // No "revision 0 not supported" warning: the kernel knows the match.
    expect(r.stderr).toBe('');
    const at = r.stdout.indexOf('traffic match options');
    expect(r.stdout.slice(at)).toBe(HELP);
    for (const opt of ['--traffic', '--portconn', '--ipconn', '--netbase', '--netmask', '--hostprefix', '--name', '--hashsize', '--clearonread', '--nointernal', '! --nointernal']) {
      expect(HELP).toContain(`\n  ${opt} `);
    }
  });

  it('iptables-save | iptables-restore round-trips to the canonical form', () => {
    okNs(`${ipt}-restore`, [], RESTORE_IN);
    const raw = saveText(ipt, 'raw');
    const filter = saveText(ipt, 'filter');
    expect(raw).toBe(SAVED_RAW);
    expect(filter).toBe(SAVED_FILTER);
    // Each table shows up once per netns, shared by name.
    expect(okNs('ls', ['/proc/net/xt_traffic']).split('\n').filter(Boolean).sort()).toEqual(
      ['RSN', 'RSN_info', 'RSN_ipconn', 'RSN_portconn', 'host_info', 'host_portconn', 'lan_info', 'lan_ipconn', 'net', 'net_info'],
    );

    const all = okNs(`${ipt}-save`, []);
    okNs(`${ipt}-restore`, [], all);
    expect(saveText(ipt, 'raw')).toBe(SAVED_RAW);
    expect(saveText(ipt, 'filter')).toBe(SAVED_FILTER);

    // And once more from the -t outputs, as a user would restore a saved file.
    okNs(`${ipt}-restore`, [], raw + filter);
    expect(saveText(ipt, 'raw')).toBe(SAVED_RAW);
    expect(saveText(ipt, 'filter')).toBe(SAVED_FILTER);
  });

  it('-L prints the short form, -S the save form', () => {
    okNs(`${ipt}-restore`, [], RESTORE_IN);
    const row = (table: string, chain: string): string | undefined =>
      okNs(ipt, ['-t', table, '-L', chain, '-n']).split('\n')[2]?.trim().replace(/\s+/g, ' ');
    expect(row('raw', 'PROMISC')).toBe('0 -- 0.0.0.0/0 0.0.0.0/0 traffic RSN 193.11.176.0/20 traffic,portconn,ipconn nointernal');
    expect(row('filter', 'INPUT')).toBe(
      'ACCEPT 6 -- 0.0.0.0/0 0.0.0.0/0 traffic lan 10.0.0.0/8 ipconn hashsize 4096 clearonread onlyinternal',
    );
    expect(row('filter', 'FORWARD')).toBe(
      '0 -- 0.0.0.0/0 0.0.0.0/0 traffic host 10.1.2.3/32 portconn traffic net 10.1.0.0/16 traffic hashsize 1',
    );
    expect(okNs(ipt, ['-S', 'INPUT'])).toBe(
      '-P INPUT ACCEPT\n-A INPUT -p tcp -m traffic --ipconn --netbase 10.0.0.0 --netmask 255.0.0.0 --name lan --hashsize 4096 --clearonread ! --nointernal -j ACCEPT\n',
    );
  });

  it('-D finds a rule written in another form (same struct, kernel pointer not compared)', async () => {
    okNs(`${ipt}-restore`, [], RESTORE_IN);
    // A different table name is a different rule.
    const miss = inNs(ipt, ['-t', 'raw', '-D', 'PROMISC', '-m', 'traffic', '--traffic', '--portconn', '--ipconn', '--netbase', '193.11.176.0', '--netmask', '20', '--name', 'RSN2', '--nointernal']);
    expect(miss.status).toBe(1);
    okNs(ipt, ['-t', 'raw', '-D', 'PROMISC', '-m', 'traffic', '--nointernal', '--ipconn', '--portconn', '--traffic', '--name', 'RSN', '--netmask', '20', '--netbase', '193.11.176.0']);
    okNs(ipt, ['-D', 'INPUT', '-p', 'tcp', '-m', 'traffic', '--ipconn', '--netbase', '10.0.0.0', '--netmask', '8', '--name', 'lan', '--hashsize', '4096', '--clearonread', '!', '--nointernal', '-j', 'ACCEPT']);
    okNs(ipt, ['-D', 'FORWARD', '-m', 'traffic', '--netbase', '10.1.2.3', '--netmask', '32', '--portconn', '--name', 'host', '-m', 'traffic', '--hashsize', '1', '--name', 'net', '--netmask', '16', '--netbase', '10.1.0.0', '--traffic']);
    expect(okNs(ipt, ['-t', 'raw', '-S'])).toBe('-P PREROUTING ACCEPT\n-P OUTPUT ACCEPT\n-N PROMISC\n-A PREROUTING -i mon0 -j PROMISC\n-A PROMISC -j DROP\n');
    expect(okNs(ipt, ['-S'])).toBe('-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n');
    // No rule uses the tables any more: their files go (nf_tables destroys rules from a
    // work queue, so give it a moment).
    let files = okNs('ls', ['/proc/net/xt_traffic']);
    for (let i = 0; i < 50 && files !== ''; i++) {
      await new Promise((r) => setTimeout(r, 200));
      files = okNs('ls', ['/proc/net/xt_traffic']);
    }
    expect(files).toBe('');
  });
});

const BACKENDS6 = [
  { ipt: 'ip6tables', tag: 'nf_tables' },
  { ipt: 'ip6tables-legacy', tag: 'legacy' },
] as const;
const T6_FILE = `${REPO}/libxt/libip6t_traffic.t`;

describe.each(BACKENDS6)('libxt_traffic.so (revision 1) with $ipt', ({ ipt, tag }) => {
  it('passes libip6t_traffic.t, every FAIL line for its own reason', async () => {
    const entries = parseTFile(T6_FILE);
    const results = await runT(entries, { iptables: ipt, env: ENV, netns: ns, mode: MODE });
    expect(formatFailures(results)).toBe('');
    const rules = entries.filter((e): e is TRule => e.kind === 'rule');
    const okRuns = rules.filter((r) => r.expect === 'OK').reduce((n, r) => n + r.chains.length, 0);
    const failLines = rules.filter((r) => r.expect === 'FAIL');
    expect(okRuns).toBe(10 * 3 + 1 * 2);
    expect(failLines.length).toBe(16);
    expect(results.filter((r) => r.expect === 'OK').length).toBe(okRuns);
    const prefix = new RegExp(`^ip6tables v[0-9.]+ \\(${tag}\\): `);
    const got = results
      .filter((r) => r.expect === 'FAIL')
      .map((r) => {
        const line = r.stderr.split('\n').find((l) => prefix.test(l)) ?? `(no error line in ${JSON.stringify(r.stderr)})`;
        return [r.rule, r.status, line.replace(prefix, '')];
      });
    const want = results.filter((r) => r.expect === 'FAIL').map((r) => [r.rule, 2, FAIL_MESSAGES6[r.rule] ?? '(no expected message)']);
    expect(got).toEqual(want);
    expect(Object.keys(FAIL_MESSAGES6).sort()).toEqual(failLines.map((r) => r.rule).sort());
  }, 900_000);

  it('-m traffic -h shows the revision-1 help', () => {
    const r = inNs(ipt, ['-m', 'traffic', '-h']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.slice(r.stdout.indexOf('traffic match options'))).toBe(HELP);
  });

  it('save | restore round-trips; -L and -S; the table files are keyed per prefix', () => {
    const input = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -m traffic --name V6 --hostprefix 56 --netmask ffff:ffff:ffff:: --netbase 2001:db8:: --ipconn --traffic
-A OUTPUT -m traffic --traffic --netbase 2001:db8:0:1:: --netmask 64 --hostprefix 128 --name H --nointernal
COMMIT
`;
    const saved = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -m traffic --traffic --ipconn --netbase 2001:db8:: --netmask 48 --hostprefix 56 --name V6
-A OUTPUT -m traffic --traffic --netbase 2001:db8:0:1:: --netmask 64 --hostprefix 128 --name H --nointernal
COMMIT
`;
    okNs(`${ipt}-restore`, [], input);
    expect(saveText(ipt, 'raw')).toBe(saved);
    okNs(`${ipt}-restore`, [], saved);
    expect(saveText(ipt, 'raw')).toBe(saved);
    const row = okNs(ipt, ['-t', 'raw', '-L', 'PREROUTING', '-n']).split('\n')[2]?.trim().replace(/\s+/g, ' ');
    expect(row?.endsWith(' ::/0 ::/0 traffic V6 2001:db8::/48 traffic,ipconn hostprefix 56')).toBe(true);
    expect(okNs(ipt, ['-t', 'raw', '-S', 'OUTPUT'])).toBe(
      '-P OUTPUT ACCEPT\n-A OUTPUT -m traffic --traffic --netbase 2001:db8:0:1:: --netmask 64 --hostprefix 128 --name H --nointernal\n',
    );
    expect(okNs('ls', ['/proc/net/xt_traffic']).split('\n').filter(Boolean).sort()).toEqual(['H', 'H_info', 'V6', 'V6_info', 'V6_ipconn']);
    const info = okNs('cat', ['/proc/net/xt_traffic/V6_info']).split('\n');
    expect(info.slice(0, 6)).toEqual(['name: V6', 'family: ipv6', 'netbase: 2001:db8::', 'netmask: ffff:ffff:ffff::', 'hostprefix: 56', 'options: traffic ipconn']);
    // -D finds it written in another form
    okNs(ipt, ['-t', 'raw', '-D', 'PREROUTING', '-m', 'traffic', '--traffic', '--ipconn', '--netbase', '2001:db8::', '--netmask', '48', '--hostprefix', '56', '--name', 'V6']);
    expect(saveText(ipt, 'raw')).not.toContain('--name V6');
  });

  it('an IPv4 table name is refused on ip6tables (one family per table)', () => {
    okNs(ipt.replace('ip6tables', 'iptables'), ['-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--traffic', '--netbase', '10.0.0.0', '--netmask', '8', '--name', 'both']);
    const r = inNs(ipt, ['-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--traffic', '--netbase', '2001:db8::', '--netmask', '48', '--name', 'both']);
    expect(r.status).not.toBe(0);
    expect(okNs('cat', ['/proc/net/xt_traffic/both_info'])).toContain('family: ipv4');
  });
});
