import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../lib/cli.js';
import { rng } from '../ledger/helpers.js';
import { loadModule, unloadModuleWhenFree } from '../lib/module.js';
import { expectedConns, expectedTraffic, Oracle, parseNet, type PairCount, type SentConn } from '../lib/oracle.js';
import { REPO, runAsync } from '../lib/sh.js';
import { PKT, RoutedTopo } from '../lib/topo.js';

// The ledger end to end, for real: traffic between network namespaces crosses router R of
// RoutedTopo, two xt_traffic tables on R count it (LAN: H1's /24; LANC: H2's /24 with
// --clearonread), an oracle of plain iptables rules on the same hook counts every byte, and
// `xttraffic collect --interval 1` (XTT_DB in a temporary folder) collects them. Meanwhile:
// the collector is killed with SIGKILL at 20 random moments under traffic and restarted each
// time (4 of them only after 3.5 s: a gap); another reader clears the tables all along
// (`xttraffic read LAN --clear`, `echo clear > LAN`, `cat` of the --clearonread LANC); the
// module is reloaded (rules deleted, rmmod, insmod, rules added again: new generations) and
// LAN is deleted and added again with `xttraffic rule del` / `rule add`. At the end the
// collector is stopped with SIGTERM (one last collection) and `report --json`'s per-host bytes
// (in/out per TCP/UDP/OTHER) must equal the oracle's, its connections the flows the test
// started, and the intervals must carry the flags the events imply.
//
// THE RULE for bytes sent while a table does not exist: none are sent. The ledger covers each
// table instance from its creation (a first reading takes everything since) to its last
// collection; the oracle counts all along. So traffic (and the clearing readers) pause around
// every step where a table goes away: paused, the collector commits two more collections (or
// `rule del` makes it collect first), then the table goes, comes back, and only then traffic
// resumes. The oracle's counters are checked not to move while paused, so the rule is tested,
// not assumed. (Counts between an instance's last collection and its end would be lost with
// it: docs/design.md, "The ledger"; the pause makes that window empty.)
//
// Quota: with the test clock hook XTT_CLOCK_OFFSET_MS (src/real-deps.ts) a collector runs
// 30 s before the end of billing period 2026-12 (UTC); one burst from H1 (a 60,000-byte ping,
// fragmented) puts H1 over a 50 kB `out` quota with action block: the collection that ingests
// the burst (or the next, if a read fell inside the burst) blocks H1 (ipset xttraffic-block,
// FORWARD DROP rules by src/system/block.ts), H1's forwarded packets are really dropped (the
// DROP rules count exactly the echo requests), and the first collection at or after
// 2027-01-01T00:00Z lifts the block. Once with the system's iptables (nft), once with
// iptables-legacy put first on the collector's PATH.

const { H1, H2, X } = RoutedTopo;
const NET = parseNet(RoutedTopo.NET);
const IPT = 'iptables';
const CLI = `${REPO}/dist/cli.js`;
const SEED = Number(process.env['XTT_LEDGER_SEED'] ?? Date.now() % 100_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The CLI in network namespace `ns` with extra environment. */
const cli = (args: string[], ns: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> => runCli(args, ns, env);

function ok(r: CliResult, what: string): CliResult {
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

interface Info {
  pid: number;
  collections: number;
}

function info(db: string): Info | undefined {
  try {
    return JSON.parse(readFileSync(`${db}.collector`, 'utf8')) as Info;
  } catch {
    return undefined;
  }
}

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000, stepMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** One `xttraffic collect` process (its JSON lines kept), in network namespace `ns`. */
class Collector {
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly p: ChildProcess;
  private buf = '';

  private constructor(ns: string, readonly db: string, env: NodeJS.ProcessEnv, args: string[]) {
    const e: NodeJS.ProcessEnv = { ...process.env, XTT_DB: db, ...env };
    delete e['XTABLES_LIBDIR'];
    this.p = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, 'collect', '--interval', '1', '--json', ...args], { env: e, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    this.p.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      const parts = this.buf.split('\n');
      this.buf = parts.pop()!;
      this.lines.push(...parts.filter((l) => l !== ''));
    });
    this.p.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    // 'close', not 'exit': after the last stdout data (a fast exit can come before the pipe is drained)
    this.exited = new Promise((resolve) => this.p.on('close', (code, signal) => resolve({ code, signal })));
  }

  /** Started, and it has written its pid (it takes the lock before): the kill targets it. */
  static async start(ns: string, db: string, env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<Collector> {
    const c = new Collector(ns, db, env, args);
    let done = false;
    void c.exited.then(() => (done = true));
    await until('the collector to start', () => {
      if (done) throw new Error(`collector exited at start: ${c.stderr}`);
      return info(db)?.pid === c.p.pid;
    });
    return c;
  }

  get pid(): number {
    return this.p.pid!;
  }

  /** Waits for `n` more committed collections. */
  async collections(n: number): Promise<void> {
    const from = info(this.db)!.collections;
    await until(`${n} collections`, () => info(this.db)!.collections >= from + n, 60_000, 50);
  }

  async kill9(): Promise<void> {
    process.kill(this.pid, 'SIGKILL');
    expect((await this.exited).signal).toBe('SIGKILL');
  }

  /** SIGTERM: one last collection, then exit 0. */
  async stop(): Promise<void> {
    const before = this.lines.length;
    process.kill(this.pid, 'SIGTERM');
    const r = await this.exited;
    if (r.code !== 0) throw new Error(`collector exit ${r.code} ${r.signal}: ${this.stderr}`);
    expect(this.lines.length).toBeGreaterThan(before); // the last collection
  }

  docs(): Array<{ at: string; intervals: Array<{ table: string; hosts: number; flags: string[] }>; quotas: Array<{ event: string; hosts: string[]; error?: string }> }> {
    return this.lines.map((l) => JSON.parse(l) as never);
  }
}

interface HostTotals {
  bytes: Record<'tcp' | 'udp' | 'other' | 'total', { in: number; out: number }>;
  connections: Record<'tcp' | 'udp' | 'icmp' | 'other' | 'total', { in: number; out: number }>;
}

interface ReportDoc {
  from: string;
  to: string;
  coverage: { events: Array<{ table: string; from: string | null; to: string; flags: string[] }> };
  hosts: Array<{ host: string; totals: HostTotals }>;
}

describe('the ledger in the VM: collect under kill -9, clears, a reload, rule del/add; quotas', () => {
  let topo: RoutedTopo;
  let dir: string;

  beforeAll(async () => {
    loadModule();
    topo = await RoutedTopo.create(IPT);
    dir = mkdtempSync(join(tmpdir(), 'xtt-ledger-vm-'));
  }, 300_000);

  afterAll(() => {
    topo?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const LAN_RULE = ['-m', 'traffic', '--traffic', '--ipconn', '--portconn', '--netbase', '10.1.1.0', '--netmask', '24', '--name', 'LAN'];
  const LANC_RULE = ['-m', 'traffic', '--traffic', '--ipconn', '--portconn', '--netbase', '10.1.2.0', '--netmask', '24', '--clearonread', '--name', 'LANC'];

  it('report --json per host equals the oracle exactly; intervals flagged first, gap, reset, gone/returned', async () => {
    const { r, h1, h2, x } = topo;
    const rand = rng(SEED);
    const db = join(dir, 'ledger.db');
    await r.run(IPT, ['-t', 'raw', '-A', 'PREROUTING', ...LAN_RULE]);
    await r.run(IPT, ['-t', 'raw', '-A', 'PREROUTING', ...LANC_RULE]);
    const oracle = new Oracle(r, IPT);
    await oracle.install(RoutedTopo.sources(), RoutedTopo.dests());
    const conns: SentConn[] = [];

    // traffic: rounds of UDP datagrams from fixed, unique source ports (one flow each: the
    // flow key has the ports, and no port repeats within flow_timeout), and TCP connects to a
    // closed port (SYN, RST: one connection each)
    let round = 0;
    let trafficOn = false;
    let trafficLoop: Promise<void> = Promise.resolve();
    const startTraffic = () => {
      trafficOn = true;
      trafficLoop = (async () => {
        while (trafficOn) {
          const k = round++;
          const jobs = [
            h1.run('python3', [PKT, 'udp', X, '5353', String(100 + ((k * 37) % 900)), '20', String(20000 + k)]),
            x.run('python3', [PKT, 'udp', H2, '7000', String(50 + ((k * 53) % 1400)), '10', String(30000 + k)]),
            h2.run('python3', [PKT, 'udp', H1, '6000', '300', '5', String(40000 + k)]),
          ];
          conns.push({ src: H1, dst: X, proto: 'udp', port: 5353, count: 1 }, { src: X, dst: H2, proto: 'udp', port: 7000, count: 1 }, { src: H2, dst: H1, proto: 'udp', port: 6000, count: 1 });
          if (k % 3 === 0) {
            jobs.push(x.run('python3', [PKT, 'syn', H1, '9', '1']));
            conns.push({ src: X, dst: H1, proto: 'tcp', port: 9, count: 1 });
          }
          await Promise.all(jobs);
        }
      })();
    };
    const stopTraffic = async () => {
      trafficOn = false;
      await trafficLoop;
    };

    // the other readers: every table cleared all along, none of it may reach the ledger
    let readersOn = false;
    let readerLoop: Promise<void> = Promise.resolve();
    let clears = 0;
    let cliClears = 0;
    const startReaders = () => {
      readersOn = true;
      readerLoop = (async () => {
        let i = 0;
        while (readersOn) {
          await r.run('sh', ['-c', 'cat /proc/net/xt_traffic/LANC /proc/net/xt_traffic/LANC_ipconn >/dev/null && echo clear > /proc/net/xt_traffic/LAN && echo clear > /proc/net/xt_traffic/LAN_ipconn']);
          clears++;
          if (i++ % 4 === 0) {
            const rd = ok(await cli(['read', 'LAN', '--clear', '--json'], r.name), 'read LAN --clear');
            expect(JSON.parse(rd.stdout).cleared).toBe(true);
            cliClears++;
          }
          await sleep(150);
        }
      })();
    };
    const stopReaders = async () => {
      readersOn = false;
      await readerLoop;
    };

    /** Pauses traffic and readers; the oracle must not move until resume() (THE RULE above). */
    let paused: PairCount[] = [];
    const pause = async (c: Collector) => {
      await stopTraffic();
      await stopReaders();
      await sleep(300);
      paused = await oracle.read();
      await c.collections(2);
    };
    const checkStill = async () => expect(await oracle.read()).toEqual(paused);
    const resume = () => {
      startTraffic();
      startReaders();
    };

    let c = await Collector.start(r.name, db);
    const all: Collector[] = [c];
    await c.collections(1);
    resume();
    let kills = 0;
    const killAndRestart = async () => {
      await sleep(200 + rand() * 1800);
      await c.kill9();
      kills++;
      if (kills % 5 === 0) await sleep(3500); // > 1.5 intervals + 1 s: the next reading is a gap
      c = await Collector.start(r.name, db);
      all.push(c);
    };
    for (let i = 0; i < 8; i++) await killAndRestart();

    // module reload: the collector must see the new generations, never quiet traffic. It is
    // stopped (SIGSTOP) over the reload so it cannot see the tables gone in between.
    await pause(c);
    process.kill(c.pid, 'SIGSTOP');
    for (const rule of [LAN_RULE, LANC_RULE]) await r.run(IPT, ['-t', 'raw', '-D', 'PREROUTING', ...rule]);
    await unloadModuleWhenFree();
    loadModule();
    for (const rule of [LAN_RULE, LANC_RULE]) await r.run(IPT, ['-t', 'raw', '-A', 'PREROUTING', ...rule]);
    await checkStill();
    // a little traffic in the new generation before the collector reads again: its counters
    // are far below the old ones (taken for the same generation it would be an anomaly)
    await h1.run('python3', [PKT, 'udp', X, '5353', '64', '3', '19999']);
    conns.push({ src: H1, dst: X, proto: 'udp', port: 5353, count: 1 });
    process.kill(c.pid, 'SIGCONT');
    await c.collections(1);
    resume();
    for (let i = 0; i < 6; i++) await killAndRestart();

    // rule del (the running collector collects first) and rule add: LAN gone, then returned
    await pause(c);
    const del = ok(await cli(['rule', 'del', '--name', 'LAN'], r.name, { XTT_DB: db }), 'rule del');
    expect(del.stderr).toMatch(new RegExp(`^xttraffic: the collector \\(pid ${c.pid}\\) collected before rule del --name LAN \\(\\d+ ms\\)$`, 'm'));
    await c.collections(2); // it sees LAN gone
    ok(await cli(['rule', 'add', '--name', 'LAN', '--net', '10.1.1.0/24', '--traffic', '--ipconn', '--portconn', '--table', 'raw', '--chain', 'PREROUTING'], r.name, { XTT_DB: db }), 'rule add');
    await c.collections(1);
    await checkStill();
    resume();
    for (let i = 0; i < 6; i++) await killAndRestart();
    expect(kills).toBe(20);

    await stopTraffic();
    await stopReaders();
    await sleep(300);
    const pairs = await oracle.read();
    await c.stop();
    await checkStillAgainst(oracle, pairs);

    const rep = ok(await cli(['report', '--json'], r.name, { XTT_DB: db }), 'report');
    const doc = JSON.parse(rep.stdout) as ReportDoc;
    const want = expectedTraffic(pairs, NET, 'all');
    const wantConn = expectedConns(conns, NET, 'all').ip;
    const got = Object.fromEntries(doc.hosts.map((h) => [h.host, h.totals]));
    expect(Object.keys(got).sort()).toEqual([H1, H2]);
    for (const ip of [H1, H2]) {
      const w = want[ip]!;
      const g = got[ip]!;
      const bytes = (t: HostTotals['bytes']) => ({ tcp: t.tcp, udp: t.udp, other: t.other, total: t.total });
      expect(bytes(g.bytes), `${ip} bytes (seed ${SEED})`).toEqual({
        tcp: { in: Number(w.tcp.in), out: Number(w.tcp.out) }, udp: { in: Number(w.udp.in), out: Number(w.udp.out) },
        other: { in: Number(w.other.in), out: Number(w.other.out) }, total: { in: Number(w.total.in), out: Number(w.total.out) },
      });
      const wc = wantConn[ip]!;
      const n = (d: { in: bigint; out: bigint } | undefined) => ({ in: Number(d?.in ?? 0n), out: Number(d?.out ?? 0n) });
      expect(g.connections, `${ip} connections (seed ${SEED})`).toEqual({ tcp: n(wc.tcp), udp: n(wc.udp), icmp: n(wc.icmp), other: n(wc.other), total: n(wc.total) });
    }
    // the traffic was real and large enough to matter
    expect(want[H1]!.udp.out).toBeGreaterThan(10_000n);
    expect(want[H2]!.udp.in).toBeGreaterThan(10_000n);
    expect(want[H1]!.tcp.out).toBeGreaterThan(0n);
    expect(clears).toBeGreaterThan(10);
    expect(cliClears).toBeGreaterThan(2);

    // flags: per table, in order of the collections
    const ev = (t: string) => doc.coverage.events.filter((e) => e.table === t).map((e) => e.flags.join(' '));
    for (const t of ['LAN', 'LANC']) {
      const e = ev(t);
      expect(e.filter((f) => f.includes('first')), `${t}: ${e.join(', ')}`).toEqual(['first']);
      expect(e[0]).toBe('first');
      expect(e.filter((f) => f.includes('anomaly'))).toEqual([]);
      // the 4 restarts after 3.5 s at least (a slow restart may add more)
      expect(e.filter((f) => f.split(' ').includes('gap')).length).toBeGreaterThanOrEqual(4);
    }
    // the reload: one reset each (the collector was stopped over it, so LAN/LANC never looked gone there)
    const lan = ev('LAN').map((f) => f.split(' ').filter((x) => x !== 'gap').join(' '));
    const lanc = ev('LANC').map((f) => f.split(' ').filter((x) => x !== 'gap').join(' '));
    expect(lanc.filter((f) => f !== '')).toEqual(['first', 'reset']);
    // LAN: the reload's reset, then rule del (gone) and rule add (a new generation, returned)
    expect(lan.filter((f) => f !== '')).toEqual(['first', 'reset', 'gone', 'reset returned']);
    expect(all.length).toBe(21);
  }, 900_000);

  async function checkStillAgainst(oracle: Oracle, pairs: PairCount[]): Promise<void> {
    expect(await oracle.read()).toEqual(pairs);
  }

  const BOUNDARY = Date.UTC(2027, 0, 1); // the end of billing period 2026-12 (day 1, UTC)
  const LEAD_MS = 30_000;

  describe.each([
    { backend: 'iptables (nft)', ipt: 'iptables', shim: false },
    { backend: 'iptables-legacy', ipt: 'iptables-legacy', shim: true },
  ])('quota block with $backend', ({ ipt, shim }) => {
    it('over the quota: blocked at the collection that sees it, packets dropped; lifted at the first collection of the next period', async () => {
      const { r, h1, x } = topo;
      const qdir = mkdtempSync(join(dir, 'quota-'));
      const db = join(qdir, 'ledger.db');
      const env: NodeJS.ProcessEnv = { XTT_DB: db, XTT_CLOCK_OFFSET_MS: String(BOUNDARY - LEAD_MS - Date.now()) };
      if (shim) {
        // the collector runs `iptables`: here that name is iptables-legacy
        mkdirSync(join(qdir, 'bin'));
        symlinkSync('/usr/sbin/iptables-legacy', join(qdir, 'bin', 'iptables'));
        env['PATH'] = `${join(qdir, 'bin')}:${process.env['PATH']}`;
      }
      const QT = ['-m', 'traffic', '--traffic', '--netbase', H1, '--netmask', '32', '--name', 'QT'];
      await r.run(IPT, ['-t', 'raw', '-A', 'PREROUTING', ...QT]);
      try {
        const set = ok(await cli(['quota', 'set', H1, '50k', '--dir', 'out', '--action', 'block'], r.name, env), 'quota set');
        expect(set.stdout).toBe(`quota host ${H1}: 50000 bytes out per month, action block\n`);
        const c = await Collector.start(r.name, db, env, ['QT']);
        await c.collections(1);
        expect((await runAsync('ip', ['netns', 'exec', r.name, 'ipset', 'test', 'xttraffic-block', H1])).status).not.toBe(0);

        // one burst: 60,008 bytes of ICMP in 41 fragments (40 x 1480 + 808), 60,828 bytes out
        const ping = await runAsync('ip', ['netns', 'exec', h1.name, 'ping', '-c', '1', '-s', '60000', '-W', '3', X]);
        expect(ping.status, ping.stdout + ping.stderr).toBe(0);
        await until('H1 in ipset xttraffic-block', async () => (await runAsync('ip', ['netns', 'exec', r.name, 'ipset', 'test', 'xttraffic-block', H1])).status === 0, 30_000, 100);
        // the block comes inside the collection, its JSON line after it: wait for the line too
        await until('the over event printed', () => c.docs().some((d) => d.quotas.some((q) => q.event === 'over')), 10_000, 50);
        const fakeNow = Date.now() + Number(env['XTT_CLOCK_OFFSET_MS']);
        expect(fakeNow, 'blocked before the period ended (else LEAD_MS is too short for this machine)').toBeLessThan(BOUNDARY - 3000);
        let docs = c.docs();
        const firstTraffic = docs.findIndex((d) => d.intervals.some((i) => i.table === 'QT' && i.hosts > 0));
        const over = docs.findIndex((d) => d.quotas.some((q) => q.event === 'over'));
        expect(firstTraffic).toBeGreaterThan(0);
        // the burst is read by one collection, or by two when a read fell inside it
        expect(over - firstTraffic).toBeGreaterThanOrEqual(0);
        expect(over - firstTraffic).toBeLessThanOrEqual(1);
        expect(docs[over]!.quotas.find((q) => q.event === 'over')).toMatchObject({ hosts: [H1] });
        expect(docs[over]!.quotas.find((q) => q.event === 'over')!.error).toBeUndefined();

        // really dropped: in FORWARD by the two rules of the backend the collector used
        const dropCounts = async () => {
          const out = (await runAsync('ip', ['netns', 'exec', r.name, ipt, '-t', 'filter', '-L', 'FORWARD', '-v', '-x', '-n'])).stdout;
          const pk = (dir: string) => Number(out.split('\n').find((l) => l.includes(`xttraffic block ${dir}`))?.trim().split(/\s+/)[0] ?? NaN);
          return { src: pk('src'), dst: pk('dst') };
        };
        const d0 = await dropCounts();
        expect(Number.isInteger(d0.src) && Number.isInteger(d0.dst)).toBe(true);
        const p1 = await runAsync('ip', ['netns', 'exec', h1.name, 'ping', '-c', '2', '-i', '0.2', '-W', '1', X]);
        expect(p1.status).not.toBe(0);
        expect(p1.stdout).toMatch(/2 packets transmitted, 0 received/);
        const p2 = await runAsync('ip', ['netns', 'exec', x.name, 'ping', '-c', '1', '-W', '1', H1]);
        expect(p2.stdout).toMatch(/1 packets transmitted, 0 received/);
        expect(await dropCounts()).toEqual({ src: d0.src + 2, dst: d0.dst + 1 });

        // the period ends: the first collection at or after the boundary lifts the block
        await until('the block lifted', async () => (await runAsync('ip', ['netns', 'exec', r.name, 'ipset', 'test', 'xttraffic-block', H1])).status !== 0, LEAD_MS + 60_000, 200);
        await c.collections(1);
        const p3 = await runAsync('ip', ['netns', 'exec', h1.name, 'ping', '-c', '1', '-W', '2', X]);
        expect(p3.stdout).toMatch(/1 packets transmitted, 1 received/);
        await c.stop();
        docs = c.docs();
        const lifts = docs.flatMap((d, i) => (d.quotas.some((q) => q.event === 'lift') ? [i] : []));
        const firstNext = docs.findIndex((d) => Date.parse(d.at) >= BOUNDARY);
        expect(lifts).toEqual([firstNext]);
        expect(docs[firstNext]!.quotas.find((q) => q.event === 'lift')).toMatchObject({ hosts: [H1] });
        expect(c.stderr).toBe('');
      } finally {
        await r.run(IPT, ['-t', 'raw', '-D', 'PREROUTING', ...QT]);
        for (const dir of ['src', 'dst']) {
          await runAsync('ip', ['netns', 'exec', r.name, ipt, '-t', 'filter', '-D', 'FORWARD', '-m', 'set', '--match-set', 'xttraffic-block', dir, '-m', 'comment', '--comment', `xttraffic block ${dir}`, '-j', 'DROP']);
        }
        await runAsync('ip', ['netns', 'exec', r.name, 'ipset', 'destroy', 'xttraffic-block']);
      }
    }, 300_000);
  });
});
