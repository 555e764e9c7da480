import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../lib/cli.js';
import { loadModule } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { REPO, shAsync } from '../lib/sh.js';
import { PKT } from '../lib/topo.js';
import { AddrOracle, keyOf6, link6, PKT6, serve6, sumPerKey, type Bytes6 } from '../lib/topo6.js';

// IPv6 end to end (issue 13): kernel -> collector -> ledger -> report, with an operator's
// commands. Router R between a customer LAN (H1: four addresses of one /56, three of them
// privacy-style /128s in one /64), a second customer /56 (H2) and an outside host X.
// `xttraffic rule add --net 2001:db8:100::/48 --hostprefix 56` (ip6tables) and an IPv4 rule
// (`--net 10.1.1.0/24`) count into one ledger while `xttraffic collect --interval 1` runs;
// traffic: TCP transfers, UDP flows, ICMPv6 echo, internal UDP between the two /56s, IPv4 UDP.
// Meanwhile the collector is killed with SIGKILL once and restarted, and a clearing read
// (`read V6 --clear`) takes the tables once. An oracle of per-address ip6tables/iptables
// rules on the same hook (test/lib/topo6.ts) counts every byte. At the end:
// - cleared read + final `read` = oracle per /56 (and `watch` one frame, the /proc file and
//   `status` show the final read's numbers);
// - `report --json` per host (/56 keys and the IPv4 address) = oracle exactly, per protocol
//   and direction, and the connections the test started;
// - `report --ip ADDR` of a privacy address gives its /56; a group with an IPv6 CIDR (and an
//   IPv4 one) sums its members; `history` of a /56 sums to the oracle.
// Then (second describe) a lossless clear under load for IPv6, as test/vm/clear.test.ts does
// for IPv4: UDP from four sources in two /56s while readers clear in a loop; per prefix, the
// sum of the cleared reads plus a final read equals the oracle.

const NET6 = '2001:db8:100::/48';
const HP = 56;
const P1 = '2001:db8:100:1::11';
const P2 = '2001:db8:100:1:a1b2:c3d4:e5f6:1'; // privacy-style, same /64
const P3 = '2001:db8:100:1:5e:77ff:fe00:3'; // same /64
const P4 = '2001:db8:100:2::4'; // another /64, same /56
const Q = '2001:db8:100:1200::2'; // H2: the next customer's /56
const R1 = '2001:db8:100:1::1';
const R2 = '2001:db8:100:1200::1';
const RX = '2001:db8:ff::1';
const X = '2001:db8:ff::2';
const K1 = keyOf6(P1, HP); // 2001:db8:100::/56
const K2 = keyOf6(Q, HP); // 2001:db8:100:1200::/56
const H1V4 = '10.1.1.2';
const X4 = '203.0.113.2';
const IN6 = [P1, P2, P3, P4, Q, R1, R2];
const CLI = `${REPO}/dist/cli.js`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ok(r: CliResult, what: string): CliResult {
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

async function until(what: string, f: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

const collections = (db: string): number => {
  try {
    return (JSON.parse(readFileSync(`${db}.collector`, 'utf8')) as { collections: number }).collections;
  } catch {
    return -1;
  }
};

/** `xttraffic collect --interval 1` in network namespace `ns`. */
function startCollector(ns: string, db: string): { p: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; err: () => string } {
  const env: NodeJS.ProcessEnv = { ...process.env, XTT_DB: db };
  delete env['XTABLES_LIBDIR'];
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, 'collect', '--interval', '1', '--json'], { env, cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => p.on('close', (code, signal) => resolve({ code, signal })));
  return { p, exited, err: () => err };
}

type Json = Record<string, unknown>;
type InOutN = { in: number; out: number };
const n = (d: { in: bigint; out: bigint }): InOutN => ({ in: Number(d.in), out: Number(d.out) });
const bytesN = (b: Bytes6) => ({ tcp: n(b.tcp), udp: n(b.udp), other: n(b.other), total: n(b.total) });
const zero = (): Bytes6 => ({ total: { in: 0n, out: 0n }, tcp: { in: 0n, out: 0n }, udp: { in: 0n, out: 0n }, other: { in: 0n, out: 0n } });
function add(a: Bytes6, b: Bytes6): Bytes6 {
  const r = zero();
  for (const p of ['total', 'tcp', 'udp', 'other'] as const) for (const d of ['in', 'out'] as const) r[p][d] = a[p][d] + b[p][d];
  return r;
}
/** A `read --json` traffic row (or a watch row's totals) as Bytes6. */
function fromRow(r: Json): Bytes6 {
  const g = (p: string): { in: bigint; out: bigint } => {
    const v = r[p] as { in: number | string; out: number | string };
    return { in: BigInt(v.in), out: BigInt(v.out) };
  };
  return { total: g('total'), tcp: g('tcp'), udp: g('udp'), other: g('other') };
}

type Conn = { src: string; dst: string; proto: 'tcp' | 'udp' | 'icmp' };
type ConnRow = Record<'tcp' | 'udp' | 'icmp' | 'other' | 'total', InOutN>;
function expectedConns(conns: Conn[], keyOf: (a: string) => string | undefined): Map<string, ConnRow> {
  const m = new Map<string, ConnRow>();
  const z = (): ConnRow => ({ tcp: { in: 0, out: 0 }, udp: { in: 0, out: 0 }, icmp: { in: 0, out: 0 }, other: { in: 0, out: 0 }, total: { in: 0, out: 0 } });
  for (const c of conns) {
    for (const [a, dir] of [[c.src, 'out'], [c.dst, 'in']] as const) {
      const k = keyOf(a);
      if (k === undefined) continue;
      const r = m.get(k) ?? z();
      r[c.proto][dir]++;
      r.total[dir]++;
      m.set(k, r);
    }
  }
  return m;
}
const key6 = (a: string): string | undefined => (IN6.includes(a) ? keyOf6(a, HP) : undefined);
const key4 = (a: string): string | undefined => (a === H1V4 ? a : undefined);

describe.each([
  { backend: 'nft', ipt: 'ip6tables', ipt4: 'iptables', extra: [] as string[] },
  { backend: 'legacy', ipt: 'ip6tables-legacy', ipt4: 'iptables-legacy', extra: ['--backend', 'legacy'] },
])('IPv6 ledger end to end through $ipt', ({ ipt, ipt4, extra }) => {
  let r: Netns;
  let h1: Netns;
  let h2: Netns;
  let x: Netns;
  let dir: string;
  let db: string;

  beforeAll(async () => {
    loadModule();
    r = new Netns('l6r');
    h1 = new Netns('l6h');
    h2 = new Netns('l6i');
    x = new Netns('l6x');
    dir = mkdtempSync(join(tmpdir(), 'xtt-ledger6-'));
    db = join(dir, 'ledger.db');
    await r.run('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1', 'net.ipv4.ip_forward=1']);
    const [, r1] = await link6(h1, { v6: [P1, P2, P3, P4], v4: [`${H1V4}/24`] }, r, { v6: [R1], v4: ['10.1.1.1/24'] });
    await link6(h2, { v6: [Q] }, r, { v6: [R2] });
    await link6(x, { v6: [X], v4: [`${X4}/24`] }, r, { v6: [RX], v4: ['203.0.113.1/24'] });
    await r.run('ip', ['-6', 'route', 'add', '2001:db8:100:2::/64', 'dev', r1]);
    await h1.run('ip', ['-6', 'route', 'add', 'default', 'via', R1]);
    await h1.run('ip', ['route', 'add', 'default', 'via', '10.1.1.1']);
    await h2.run('ip', ['-6', 'route', 'add', 'default', 'via', R2]);
    await x.run('ip', ['-6', 'route', 'add', 'default', 'via', RX]);
    await x.run('ip', ['route', 'add', 'default', 'via', '203.0.113.1']);
    // receivers drop UDP: no port unreachable the test did not ask for
    for (const ns of [h1, h2, x]) {
      await ns.run(`${ipt}-restore`, [], { input: '*filter\n-A INPUT -p udp -j DROP\nCOMMIT\n' });
      await ns.run(`${ipt4}-restore`, [], { input: '*filter\n-A INPUT -p udp -j DROP\nCOMMIT\n' });
    }
  }, 300_000);

  afterAll(() => {
    for (const ns of [r, h1, h2, x]) ns?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('collect (kill -9 once, a clearing read) -> report, report --ip, group, history, read, watch, status: every number = the oracle', async () => {
    const env = { XTT_DB: db };
    const add6 = ok(await runCli(['rule', 'add', '--name', 'V6', '--net', NET6, '--hostprefix', String(HP), '--traffic', '--ipconn', '--portconn', '--table', 'raw', '--chain', 'PREROUTING', ...extra], r.name, env), 'rule add V6');
    expect(add6.stdout).toBe(`added: ${ipt} -t raw -A PREROUTING -m traffic --traffic --portconn --ipconn --netbase 2001:db8:100:: --netmask 48 --hostprefix 56 --name V6\n`);
    ok(await runCli(['rule', 'add', '--name', 'LAN4', '--net', '10.1.1.0/24', '--traffic', '--ipconn', '--table', 'raw', '--chain', 'PREROUTING', ...extra], r.name, env), 'rule add LAN4');
    expect(await r.run(ipt, ['-t', 'raw', '-S', 'PREROUTING'])).toContain('-m traffic --traffic --portconn --ipconn --netbase 2001:db8:100:: --netmask 48 --hostprefix 56 --name V6');
    const o6 = new AddrOracle(r, ipt, 'ORACLE6', NET6, IN6);
    const o4 = new AddrOracle(r, ipt4, 'ORACLE4', '10.1.1.0/24', [H1V4, '10.1.1.1']);
    await o6.install();
    await o4.install();
    // a customer: its /52 (K1's /56 inside, K2's not) and its IPv4 /24
    ok(await runCli(['group', 'add', 'cust', '2001:db8:100::/52', '10.1.1.0/24'], undefined, env), 'group add');

    const conns: Conn[] = [];
    let on = true;
    let round = 0;
    const traffic = (async () => {
      while (on) {
        const k = round++;
        const srv = await serve6(x, ['tcpserve', String(8100 + k)]);
        const tcpBytes = 3000 + ((k * 1013) % 20000);
        await Promise.all([
          h1.run('timeout', ['60', 'python3', PKT6, 'tcpsend', X, String(8100 + k), String(tcpBytes), P3]),
          h1.run('timeout', ['60', 'python3', PKT6, 'udp', X, '5353', String(100 + ((k * 37) % 900)), '4', P1, String(20000 + k)]),
          h1.run('timeout', ['60', 'python3', PKT6, 'udp', Q, '6000', '300', '3', P4, String(30000 + k)]),
          h1.run('timeout', ['60', 'ping', '-6', '-q', '-c', '2', '-i', '0.2', '-s', String(56 + k), '-W', '2', '-I', P2, X]),
          x.run('timeout', ['60', 'ping', '-6', '-q', '-c', '1', '-s', '200', '-W', '2', Q]),
          h1.run('timeout', ['60', 'python3', PKT, 'udp', X4, '5353', String(200 + k), '3', String(40000 + k)]),
        ]);
        expect(await srv.done).toBe(tcpBytes);
        conns.push(
          { src: P3, dst: X, proto: 'tcp' },
          { src: P1, dst: X, proto: 'udp' },
          { src: P4, dst: Q, proto: 'udp' },
          { src: P2, dst: X, proto: 'icmp' },
          { src: X, dst: Q, proto: 'icmp' },
          { src: H1V4, dst: X4, proto: 'udp' },
        );
      }
    })();

    let c = startCollector(r.name, db);
    await until('the first collection', () => collections(db) >= 1);
    await until('two rounds', () => round >= 2, 120_000);
    // SIGKILL mid-traffic, restart after a little while
    c.p.kill('SIGKILL');
    expect((await c.exited).signal).toBe('SIGKILL');
    await sleep(700);
    c = startCollector(r.name, db);
    await until('a collection after the restart', () => collections(db) >= 1);
    await until('four rounds', () => round >= 4, 120_000);
    // one clearing read of each table, as an operator would type it
    const cleared6 = JSON.parse(ok(await runCli(['read', 'V6', '--clear', '--json'], r.name), 'read --clear').stdout) as Json;
    expect(cleared6['cleared']).toBe(true);
    expect(cleared6['config']).toMatchObject({ family: 'ipv6', netbase: '2001:db8:100::', netmask: 'ffff:ffff:ffff::', hostprefix: 56 });
    const cleared4 = JSON.parse(ok(await runCli(['read', 'LAN4', '--clear', '--json'], r.name), 'read LAN4 --clear').stdout) as Json;
    await until('six rounds', () => round >= 6, 180_000);
    on = false;
    await traffic;
    await sleep(300);
    const or6 = await o6.read();
    const or4 = await o4.read();
    const want6 = sumPerKey(or6, IN6, (a) => keyOf6(a, HP));
    const want4 = sumPerKey(or4, [H1V4, '10.1.1.1'], (a) => a);
    // the per-address rules saw every packet of the net
    const sumDir = (o: Map<string, bigint>, addrs: string[], d: string) => addrs.reduce((s, a) => s + o.get(`${a} ${d} all`)!, 0n);
    expect(sumDir(or6, IN6, 'out')).toBe(or6.get('net out all'));
    expect(sumDir(or6, IN6, 'in')).toBe(or6.get('net in all'));
    expect([...want6.keys()].sort()).toEqual([K1, K2].sort());
    expect([...want4.keys()]).toEqual([H1V4]);
    expect(want6.get(K1)!.tcp.out).toBeGreaterThan(18_000n);
    expect(want6.get(K1)!.udp.out).toBeGreaterThan(3_000n);
    expect(want6.get(K2)!.udp.in).toBeGreaterThan(3_000n);
    expect(want6.get(K2)!.other.in).toBeGreaterThan(1_000n);

    // what an operator types on the live tables: read, watch (one frame), the file, status
    const read6 = JSON.parse(ok(await runCli(['read', 'V6', '--json'], r.name), 'read').stdout) as Json;
    const read4 = JSON.parse(ok(await runCli(['read', 'LAN4', '--json'], r.name), 'read LAN4').stdout) as Json;
    const byKey = (doc: Json): Map<string, Bytes6> => new Map((doc['rows'] as Json[]).map((w) => [w['ip'] as string, fromRow(w)]));
    const c6 = byKey(cleared6);
    const f6 = byKey(read6);
    for (const k of [K1, K2]) {
      expect(bytesN(add(c6.get(k) ?? zero(), f6.get(k) ?? zero())), `${k}: cleared read + final read`).toEqual(bytesN(want6.get(k)!));
    }
    expect([...c6.keys(), ...f6.keys()].every((k) => k === K1 || k === K2)).toBe(true);
    const c4 = byKey(cleared4);
    const f4 = byKey(read4);
    expect(bytesN(add(c4.get(H1V4) ?? zero(), f4.get(H1V4) ?? zero()))).toEqual(bytesN(want4.get(H1V4)!));
    // the rows of the final read in numeric order, /56 keys as the file has them
    expect((read6['rows'] as Json[]).map((w) => w['ip'])).toEqual([K1, K2].filter((k) => f6.has(k)));
    const file = await r.run('cat', ['/proc/net/xt_traffic/V6']);
    expect(file.split('\n').slice(1).filter(Boolean)).toEqual(
      [...f6].map(([k, b]) => [k, b.total.in, b.total.out, b.tcp.in, b.tcp.out, b.udp.in, b.udp.out, b.other.in, b.other.out].join('\t')),
    );
    const w = ok(await runCli(['watch', 'V6', '--count', '1', '--json'], r.name), 'watch');
    const frame = JSON.parse(w.stdout.trim().split('\n')[0]!) as Json;
    expect(frame['table']).toBe('V6');
    const byFirst = (a: unknown[], b: unknown[]) => (String(a[0]) < String(b[0]) ? -1 : 1);
    expect((frame['rows'] as Json[]).map((x) => [x['ip'], x['total']]).sort(byFirst)).toEqual(
      [...f6].map(([k, b]) => [k, { in: Number(b.total.in), out: Number(b.total.out) }]).sort(byFirst),
    );
    const st = JSON.parse(ok(await runCli(['status', '--json'], r.name), 'status').stdout) as { tables: Array<{ name: string; info: Json }> };
    const v6 = st.tables.find((t) => t.name === 'V6')!.info;
    expect(v6).toMatchObject({ family: 'ipv6', netbase: '2001:db8:100::', hostPrefix: 56, trafficEntries: f6.size, ipconnEntries: 2 });
    const text = ok(await runCli(['status'], r.name), 'status text').stdout;
    expect(text).toMatch(/^ {2}V6 +ipv6 +2001:db8:100::\/48 +\/56 +traffic portconn ipconn /m);
    const readText = ok(await runCli(['read', 'V6'], r.name), 'read text').stdout;
    for (const [k, b] of f6) expect(readText).toMatch(new RegExp(`^${k.replace(/[.:/]/g, '\\$&')} +${b.total.in} +${b.total.out} `, 'm'));

    // stop the collector: one last collection
    c.p.kill('SIGTERM');
    const ex = await c.exited;
    expect(ex.code, c.err()).toBe(0);

    const rep = JSON.parse(ok(await runCli(['report', '--json'], undefined, env), 'report').stdout) as { hosts: Array<{ host: string; totals: { bytes: Json; connections: Json } }>; groups: Array<{ group: string; totals: { bytes: Json; connections: Json } }> };
    const got = new Map(rep.hosts.map((h) => [h.host, h.totals]));
    expect([...got.keys()].sort()).toEqual([H1V4, K1, K2].sort());
    const wantC6 = expectedConns(conns, key6);
    const wantC4 = expectedConns(conns, key4);
    for (const k of [K1, K2]) {
      expect(got.get(k)!.bytes, `${k} bytes`).toEqual(bytesN(want6.get(k)!));
      expect(got.get(k)!.connections, `${k} connections`).toEqual(wantC6.get(k));
    }
    expect(got.get(H1V4)!.bytes).toEqual(bytesN(want4.get(H1V4)!));
    expect(got.get(H1V4)!.connections).toEqual(wantC4.get(H1V4));
    // the group: K1 (inside its /52) and the IPv4 host, not K2
    const g = rep.groups.find((x) => x.group === 'cust')!;
    expect(g.totals.bytes).toEqual(bytesN(add(want6.get(K1)!, want4.get(H1V4)!)));
    const gc = (p: 'tcp' | 'udp' | 'icmp' | 'other' | 'total', d: 'in' | 'out') => wantC6.get(K1)![p][d] + wantC4.get(H1V4)![p][d];
    expect(g.totals.connections).toEqual(Object.fromEntries((['tcp', 'udp', 'icmp', 'other', 'total'] as const).map((p) => [p, { in: gc(p, 'in'), out: gc(p, 'out') }])));
    // the group's own report: its hosts as billed, the /56 and the IPv4 address
    const rg = JSON.parse(ok(await runCli(['report', '--group', 'cust', '--json'], undefined, env), 'report --group').stdout) as typeof rep;
    expect(rg.hosts.map((h) => [h.host, (h as { group?: string }).group]).sort()).toEqual([[H1V4, 'cust'], [K1, 'cust']].sort());
    // an address (a privacy one) means the /56 counting it
    const one = JSON.parse(ok(await runCli(['report', '--ip', P2, '--json'], undefined, env), 'report --ip').stdout) as typeof rep;
    expect(one.hosts.map((h) => [h.host, h.totals.bytes])).toEqual([[K1, bytesN(want6.get(K1)!)]]);
    const csv = ok(await runCli(['report', '--ip', Q, '--csv'], undefined, env), 'report --csv').stdout.split('\n');
    const b2 = want6.get(K2)!;
    expect(csv.filter((l) => l.startsWith('host,'))).toHaveLength(1);
    expect(csv.find((l) => l.startsWith('host,'))).toMatch(new RegExp(`^host,${K2.replace(/[.:/]/g, '\\$&')},,[^,]+,[^,]+,${b2.total.in},${b2.total.out},${b2.tcp.in},${b2.tcp.out},${b2.udp.in},${b2.udp.out},${b2.other.in},${b2.other.out},`));
    // history of the /56 (hourly) sums to the same bytes; a /64 inside it is not a key: no data
    const hist = JSON.parse(ok(await runCli(['history', K1, '--step', 'hour', '--json'], undefined, env), 'history').stdout) as { name: string; points: Array<{ totals: { bytes: Record<string, InOutN> } }> };
    expect(hist.name).toBe(K1);
    const hsum = { in: 0, out: 0 };
    for (const p of hist.points) {
      hsum.in += p.totals.bytes['total']!.in;
      hsum.out += p.totals.bytes['total']!.out;
    }
    expect(hsum).toEqual(n(want6.get(K1)!.total));
    const h64 = JSON.parse(ok(await runCli(['history', '2001:db8:100:1::/64', '--json'], undefined, env), 'history /64').stdout) as typeof hist;
    expect([h64.name, h64.points]).toEqual(['2001:db8:100:1::/64', []]);
  }, 900_000);
});

describe.each(['ip6tables', 'ip6tables-legacy'])('lossless clear for IPv6 with %s', (ipt) => {
  // senders in two /56s of 2001:db8:7::/48: S1, S2 (one /64), S3 (another /64), S4 (the next /56)
  const S = ['2001:db8:7:1::1', '2001:db8:7:1:9e2a:11ff:fe3b:2', '2001:db8:7:2::3', '2001:db8:7:100::4'];
  const B = '2001:db8:9::2';
  const READER = `${REPO}/test/lib/reader.py`;
  let a: Netns;
  let b: Netns;

  interface ReaderResult {
    reads: number;
    keys: Record<string, [number, number]>;
  }

  function startReader(file: string, chunk: number, mode: 'r' | 'rw', stop: string): Promise<ReaderResult> {
    const p = spawn('ip', ['netns', 'exec', b.name, 'python3', READER, file, String(chunk), mode, stop]);
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise((resolve, reject) =>
      p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as ReaderResult) : reject(new Error(`reader ${file}: ${err}`)))),
    );
  }

  beforeAll(async () => {
    loadModule();
    // four senders at once into one backlog: no datagram may be dropped before PREROUTING
    await shAsync('sysctl', ['-qw', 'net.core.netdev_max_backlog=100000']);
    a = new Netns('c6a');
    b = new Netns('c6b');
    // one link: A's addresses and B's are on-link (a /64 each side is not needed: routes by device)
    const [ifA, ifB] = await link6(a, { v6: S }, b, { v6: [B] });
    await a.run('ip', ['-6', 'route', 'add', `${B}/128`, 'dev', ifA]);
    for (const s of S) await b.run('ip', ['-6', 'route', 'replace', `${s}/128`, 'dev', ifB]);
    const lines = [
      '*raw',
      // C6 per /56 clearing on every read; R6 per /64 read with O_RDWR
      '-A PREROUTING -m traffic --traffic --netbase 2001:db8:7:: --netmask 48 --hostprefix 56 --clearonread --name C6',
      '-A PREROUTING -m traffic --traffic --netbase 2001:db8:7:: --netmask 48 --name R6',
      ...S.map((s) => `-A PREROUTING -s ${s}/128 -d ${B}/128`),
      'COMMIT',
      '*filter',
      '-A INPUT -p udp -j DROP',
      'COMMIT',
      '',
    ];
    await b.run(`${ipt}-restore`, [], { input: lines.join('\n') });
  }, 300_000);

  afterAll(() => {
    a?.delete();
    b?.delete();
  });

  it('four senders, readers clearing in a loop (1-byte and 64-byte chunks): per prefix, cleared reads + a final read = the oracle', async () => {
    const stop = `/tmp/stop6-${b.name}`;
    const readers = [
      startReader('/proc/net/xt_traffic/C6', 1, 'r', stop),
      startReader('/proc/net/xt_traffic/C6', 64, 'r', stop),
      startReader('/proc/net/xt_traffic/R6', 64, 'rw', stop),
      startReader('/proc/net/xt_traffic/R6', 1, 'rw', stop),
    ];
    const sizes = [200, 333, 1000, 64];
    const sent = (await Promise.all(S.map((s, i) => a.run('python3', [PKT6, 'udpblast', B, '9999', String(sizes[i]), '6', s])))).map((t) => Number(t.trim()));
    await b.run('touch', [stop]);
    const rs = await Promise.all(readers);
    const finalC = await startReader('/proc/net/xt_traffic/C6', 4096, 'r', stop);
    const finalR = await startReader('/proc/net/xt_traffic/R6', 4096, 'rw', stop);
    const save = await b.run(`${ipt}-save`, ['-c', '-t', 'raw']);
    const oracle = S.map((s) => BigInt(new RegExp(`^\\[\\d+:(\\d+)\\] -A PREROUTING -s ${s.replace(/[.:]/g, '\\$&')}/128 -d `, 'm').exec(save)![1]!));
    // every datagram was counted by the oracle: 40 + 8 + size each
    S.forEach((_, i) => {
      expect(sent[i]).toBeGreaterThan(20);
      expect(oracle[i]).toBe(BigInt(sent[i]! * (48 + sizes[i]!)));
    });
    for (const r of rs) expect(r.reads).toBeGreaterThan(2);
    const sum = (results: ReaderResult[]): Record<string, [number, number]> => {
      const m: Record<string, [number, number]> = {};
      for (const r of results) for (const [k, [i, o]] of Object.entries(r.keys)) {
        const e = (m[k] ??= [0, 0]);
        e[0] += i;
        e[1] += o;
      }
      return m;
    };
    const want = (hp: number): Record<string, [number, number]> => {
      const m: Record<string, [number, number]> = {};
      S.forEach((s, i) => {
        const e = (m[keyOf6(s, hp)] ??= [0, 0]);
        e[1] += Number(oracle[i]!);
      });
      return m;
    };
    expect(sum([rs[0]!, rs[1]!, finalC])).toEqual(want(56));
    expect(sum([rs[2]!, rs[3]!, finalR])).toEqual(want(64));
    expect(Object.keys(want(56))).toEqual(['2001:db8:7::/56', '2001:db8:7:100::/56']);
    expect(Object.keys(want(64)).length).toBe(3);
  }, 300_000);
});
