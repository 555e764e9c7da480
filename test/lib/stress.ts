/*
 * Helpers for test/vm/stress.test.ts (issue 12, "Stress on two CPUs"):
 *  - PairOracle: plain iptables rules on a hook, one user chain per (source, destination) pair
 *    with a tcp, a udp and a catch-all rule, read back as packets AND bytes per protocol, plus
 *    one last rule that counts whatever no pair took (it must stay at 0);
 *  - pktgen in a network namespace (pktgen is per netns: /proc/net/pktgen and its kpktgend_N
 *    threads, one bound to each CPU, exist in every namespace);
 *  - summing the rows of several reads of a traffic table per IP, protocol and direction.
 */
import type { Netns } from './netns.js';
import type { ExpectedTraffic, PairCount } from './oracle.js';
import { parseTraffic } from './proc-oracle.js';
import { shAsync } from './sh.js';

/** Packets and bytes per protocol. */
export interface ProtoCounts {
  tcp: { packets: bigint; bytes: bigint };
  udp: { packets: bigint; bytes: bigint };
  other: { packets: bigint; bytes: bigint };
}

export interface PairRead {
  src: string;
  dst: string;
  /** Every packet from src to dst, once. */
  all: ProtoCounts;
  /** Those that went through the counted chain (raw PREROUTING) exactly twice (mark 0x3). */
  twice: ProtoCounts;
  /** Those that went through it never (mark 0), or three times or more (0x7). */
  never: { packets: bigint; bytes: bigint };
  thrice: { packets: bigint; bytes: bigint };
}

/**
 * The raw PREROUTING rules that record, in the packet mark, how many times a packet went
 * through the chain they end: 0x1 once, 0x3 twice, 0x7 three times or more (MARK only sets
 * bits, so each rule looks at what the one after it set on an earlier pass).
 */
export const TRAVERSAL_MARKS = [
  '-A PREROUTING -m mark --mark 0x2/0x2 -j MARK --or-mark 0x4',
  '-A PREROUTING -m mark --mark 0x1/0x1 -j MARK --or-mark 0x2',
  '-A PREROUTING -j MARK --or-mark 0x1',
];

/**
 * An independent oracle on a later table of the same hook (mangle PREROUTING after raw):
 * one user chain per (source, destination) pair counting, per protocol, every packet and
 * those marked as having gone through raw PREROUTING twice (TRAVERSAL_MARKS), plus never and
 * three times or more; then one last rule that counts whatever no pair took (it must stay 0).
 */
export class PairOracle {
  private chains: { src: string; dst: string; chain: string }[] = [];

  constructor(
    private readonly ns: Netns,
    private readonly ipt: string,
    private readonly table: string,
    private readonly hook: string,
  ) {}

  /** One chain per pair (in one iptables-restore --noflush), then the catch-all rule. */
  async install(pairs: Array<[string, string]>): Promise<void> {
    const lines = [`*${this.table}`];
    pairs.forEach(([src, dst], i) => {
      const chain = `PAIR${i}`;
      lines.push(`:${chain} - [0:0]`);
      lines.push(
        `-A ${chain} -p tcp`, `-A ${chain} -p udp`, `-A ${chain}`,
        `-A ${chain} -p tcp -m mark --mark 0x3`, `-A ${chain} -p udp -m mark --mark 0x3`, `-A ${chain} -m mark --mark 0x3`,
        `-A ${chain} -m mark --mark 0x0`, `-A ${chain} -m mark --mark 0x7`,
        `-A ${chain} -j ACCEPT`,
      );
      lines.push(`-A ${this.hook} -s ${src} -d ${dst} -j ${chain}`);
      this.chains.push({ src, dst, chain });
    });
    // last: every packet that no pair took (the test must have listed them all)
    lines.push(`-A ${this.hook} -m comment --comment unlisted`);
    lines.push('COMMIT', '');
    await this.ns.run(`${this.ipt}-restore`, ['--noflush'], { input: lines.join('\n') });
  }

  async read(): Promise<{ pairs: PairRead[]; unlisted: { packets: bigint; bytes: bigint } }> {
    const all = await this.ns.run(this.ipt, ['-t', this.table, '-L', '-n', '-v', '-x']);
    const byChain = new Map<string, string[]>();
    for (const block of all.split('\n\n')) {
      const lines = block.trim().split('\n');
      const name = /^Chain (\S+)/.exec(lines[0] ?? '')?.[1];
      if (name) byChain.set(name, lines.slice(2).filter((l) => l.trim() !== ''));
    }
    const counters = (l: string) => {
      const f = l.trim().split(/\s+/);
      return { packets: BigInt(f[0]!), bytes: BigInt(f[1]!) };
    };
    const minus = (a: { packets: bigint; bytes: bigint }, b: { packets: bigint; bytes: bigint }) => ({ packets: a.packets - b.packets, bytes: a.bytes - b.bytes });
    const protos = (tcp: { packets: bigint; bytes: bigint }, udp: { packets: bigint; bytes: bigint }, any: { packets: bigint; bytes: bigint }): ProtoCounts =>
      ({ tcp, udp, other: minus(minus(any, tcp), udp) });
    const pairs = this.chains.map(({ src, dst, chain }) => {
      const r = (byChain.get(chain) ?? []).map(counters);
      if (r.length !== 9) throw new Error(`oracle chain ${chain}: expected 9 rules, got ${r.length}`);
      return { src, dst, all: protos(r[0]!, r[1]!, r[2]!), twice: protos(r[3]!, r[4]!, r[5]!), never: r[6]!, thrice: r[7]! };
    });
    const last = (byChain.get(this.hook) ?? []).find((l) => l.includes('unlisted'));
    if (!last) throw new Error(`oracle: no catch-all rule in ${this.table} ${this.hook}`);
    return { pairs, unlisted: counters(last) };
  }
}

/** What a rule in raw PREROUTING counted for each pair: a packet that went through it twice, twice. */
export function countedPairs(pairs: PairRead[]): PairCount[] {
  return pairs.map((p) => ({
    src: p.src, dst: p.dst,
    tcp: p.all.tcp.bytes + p.twice.tcp.bytes,
    udp: p.all.udp.bytes + p.twice.udp.bytes,
    other: p.all.other.bytes + p.twice.other.bytes,
  }));
}

/** The same, in packets (for the per-IP packet counts of /proc/net/xt_traffic_packets/NAME). */
export function countedPairPackets(pairs: PairRead[]): PairCount[] {
  return pairs.map((p) => ({
    src: p.src, dst: p.dst,
    tcp: p.all.tcp.packets + p.twice.tcp.packets,
    udp: p.all.udp.packets + p.twice.udp.packets,
    other: p.all.other.packets + p.twice.other.packets,
  }));
}

/** Writes one pktgen command (`echo CMD > /proc/net/pktgen/FILE` in `ns`); pktgen refuses by EINVAL. */
export async function pgset(ns: Netns, file: string, cmd: string): Promise<void> {
  await ns.run('sh', ['-c', 'printf "%s\\n" "$1" > "/proc/net/pktgen/$2"', 'pgset', cmd, file]);
}

export interface PktgenDev {
  dev: string;
  /** pktgen thread (kpktgend_N, bound to CPU N). */
  thread: number;
  /** pktgen's pkt_size: the Ethernet frame without FCS; the IP total length is pkt_size - 14. */
  pktSize: number;
  srcMin: string;
  srcMax: string;
  dst: string;
  /** ns between packets (0: as fast as it can). */
  delayNs: number;
}

/**
 * Configures one device on its thread for `xmit_mode netif_receive` (UDP 9 -> 9, sources
 * from srcMin to srcMax in turn, destination MAC = the device's, so the stack takes them as
 * its own), count 0 (until stopped).
 */
export async function pgDevice(ns: Netns, p: PktgenDev): Promise<void> {
  const mac = (await ns.run('cat', [`/sys/class/net/${p.dev}/address`])).trim();
  await pgset(ns, `kpktgend_${p.thread}`, 'rem_device_all');
  await pgset(ns, `kpktgend_${p.thread}`, `add_device ${p.dev}`);
  for (const c of [
    'xmit_mode netif_receive', `pkt_size ${p.pktSize}`, `delay ${p.delayNs}`, 'count 0',
    `dst ${p.dst}`, `dst_mac ${mac}`, `src_min ${p.srcMin}`, `src_max ${p.srcMax}`,
    'udp_src_min 9', 'udp_src_max 9', 'udp_dst_min 9', 'udp_dst_max 9',
  ]) await pgset(ns, p.dev, c);
}

/** pkts-sofar and errors of a pktgen device (errors: packets the stack dropped, still sent). */
export async function pgSofar(ns: Netns, dev: string): Promise<{ sofar: number; errors: number }> {
  const text = await ns.run('cat', [`/proc/net/pktgen/${dev}`]);
  const m = /pkts-sofar:\s*(\d+)\s+errors:\s*(\d+)/.exec(text);
  if (!m) throw new Error(`pktgen ${dev}: no pkts-sofar in ${JSON.stringify(text.slice(0, 400))}`);
  return { sofar: Number(m[1]), errors: Number(m[2]) };
}

/** What a pktgen thread (kpktgend_N, bound to CPU N) says it is running ("Running: DEV ..."). */
export async function pgThreadRunning(ns: Netns, thread: number): Promise<string> {
  const text = await ns.run('cat', [`/proc/net/pktgen/kpktgend_${thread}`]);
  return /^Running:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? '';
}

export type Sums = Record<string, ExpectedTraffic>;

const dir = () => ({ in: 0n, out: 0n });

/** Adds the rows of one read (traffic file text) to `acc`. */
export function addRows(acc: Sums, text: string): void {
  for (const r of parseTraffic(text)) {
    const a = (acc[r.ip] ??= { total: dir(), tcp: dir(), udp: dir(), other: dir() });
    for (const k of ['total', 'tcp', 'udp', 'other'] as const) {
      a[k].in += r[k].in;
      a[k].out += r[k].out;
    }
  }
}

/** Adds the rows of `xttraffic read NAME --csv` output to `acc`. */
export function addCsv(acc: Sums, csv: string): void {
  const lines = csv.split('\n').filter((l) => l !== '');
  if (lines[0] !== 'ip,total_in,total_out,tcp_in,tcp_out,udp_in,udp_out,other_in,other_out') throw new Error(`read --csv: unexpected header ${JSON.stringify(lines[0])}`);
  for (const l of lines.slice(1)) {
    const f = l.split(',');
    if (f.length !== 9) throw new Error(`read --csv: bad row ${JSON.stringify(l)}`);
    const v = f.slice(1).map((x) => BigInt(x));
    const a = (acc[f[0]!] ??= { total: dir(), tcp: dir(), udp: dir(), other: dir() });
    (['total', 'tcp', 'udp', 'other'] as const).forEach((k, i) => {
      a[k].in += v[2 * i]!;
      a[k].out += v[2 * i + 1]!;
    });
  }
}

/** Sums of several reads, rows with nothing but zeros left out (as expectedTraffic does). */
export function sumReads(...parts: Sums[]): Sums {
  const out: Sums = {};
  for (const p of parts) {
    for (const [ip, r] of Object.entries(p)) {
      const a = (out[ip] ??= { total: dir(), tcp: dir(), udp: dir(), other: dir() });
      for (const k of ['total', 'tcp', 'udp', 'other'] as const) {
        a[k].in += r[k].in;
        a[k].out += r[k].out;
      }
    }
  }
  for (const [ip, r] of Object.entries(out)) {
    if ((['total', 'tcp', 'udp', 'other'] as const).every((k) => r[k].in === 0n && r[k].out === 0n)) delete out[ip];
  }
  return out;
}

/** The backends of XTT_STRESS_BACKENDS (default both), validated. */
export function stressBackends(value: string | undefined): string[] {
  const all = ['iptables', 'iptables-legacy'];
  const list = (value ?? all.join(' ')).split(/[\s,]+/).filter(Boolean);
  const bad = list.filter((b) => !all.includes(b));
  if (bad.length || list.length === 0) throw new Error(`XTT_STRESS_BACKENDS=${JSON.stringify(value)}: one or both of ${all.join(', ')}`);
  return [...new Set(list)];
}

/** Times runs of named activities: count, total and max, in ms. */
export class ActivityClock {
  private readonly stats = new Map<string, { n: number; total: number; max: number }>();

  async time<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      const ms = Date.now() - t0;
      const s = this.stats.get(name) ?? { n: 0, total: 0, max: 0 };
      s.n++;
      s.total += ms;
      s.max = Math.max(s.max, ms);
      this.stats.set(name, s);
    }
  }

  /** "name mean/max" per activity, in seconds with one decimal. */
  summary(): string {
    return [...this.stats].map(([k, s]) => `${k} ${(s.total / s.n / 1000).toFixed(1)}/${(s.max / 1000).toFixed(1)}`).join(', ');
  }
}

/**
 * A namespace made and deleted without blocking the event loop (the churn of the stress
 * test: on the debug kernel `ip netns add` and `del` take seconds, and Netns does them
 * synchronously). `run` as Netns.run.
 */
export class ChurnNetns {
  private static seq = 0;

  private constructor(readonly name: string) {}

  static async create(prefix: string): Promise<ChurnNetns> {
    const n = new ChurnNetns(`${prefix}${process.pid}c${ChurnNetns.seq++}`);
    await shAsync('ip', ['netns', 'add', n.name]);
    return n;
  }

  run(cmd: string, args: string[] = [], opts: { input?: string } = {}): Promise<string> {
    return shAsync('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  async delete(): Promise<void> {
    await shAsync('ip', ['netns', 'del', this.name]);
  }
}
