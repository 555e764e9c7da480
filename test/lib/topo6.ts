import { alignTo6, formatIPv6, parseIPv6 } from '../../src/core/ip.js';
import type { Netns } from './netns.js';
import { REPO, shAsync } from './sh.js';
import { startServer } from './topo.js';

/** IPv6 packet senders and servers (test/lib/pkt6.py). */
export const PKT6 = `${REPO}/test/lib/pkt6.py`;

let links = 0;

/** The addresses of one side of a link: IPv6 ones (/64, no DAD) and optional IPv4 CIDRs. */
export interface Side6 {
  v6: string[];
  v4?: string[];
}

/**
 * Joins two namespaces by a veth pair for IPv6 (and IPv4 when given): offloads off (every
 * packet the stack sees is one wire packet, as the oracle counts it), addresses without DAD,
 * and static neighbours both ways, so no neighbour discovery (ICMPv6) is ever counted.
 * Few process spawns (slow under TCG): one `ip -batch` per side. Returns the two devices.
 */
export async function link6(a: Netns, sa: Side6, b: Netns, sb: Side6, opts: { mtu?: number } = {}): Promise<[string, string]> {
  const ifA = `s${links}a`;
  const ifB = `s${links++}b`;
  await shAsync('ip', ['link', 'add', ifA, 'netns', a.name, 'type', 'veth', 'peer', 'name', ifB, 'netns', b.name]);
  const macs: string[] = [];
  for (const [ns, dev, side] of [[a, ifA, sa], [b, ifB, sb]] as const) {
    await ns.run('ethtool', ['-K', dev, 'tso', 'off', 'gso', 'off', 'gro', 'off', 'tx', 'off', 'rx', 'off']);
    const cmds = [
      ...(opts.mtu ? [`link set ${dev} mtu ${opts.mtu}`] : []),
      ...side.v6.map((ip) => `addr add ${ip}/64 dev ${dev} nodad`),
      ...(side.v4 ?? []).map((c) => `addr add ${c} dev ${dev}`),
      `link set ${dev} up`,
    ];
    await shAsync('ip', ['-n', ns.name, '-batch', '-'], { input: cmds.join('\n') + '\n' });
    macs.push(JSON.parse(await shAsync('ip', ['-n', ns.name, '-j', 'link', 'show', 'dev', dev]))[0].address as string);
  }
  const neigh = (ips: string[], mac: string, dev: string) => ips.map((ip) => `neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`).join('\n') + '\n';
  if (sb.v6.length) await shAsync('ip', ['-n', a.name, '-batch', '-'], { input: neigh(sb.v6, macs[1]!, ifA) });
  if (sa.v6.length) await shAsync('ip', ['-n', b.name, '-batch', '-'], { input: neigh(sa.v6, macs[0]!, ifB) });
  return [ifA, ifB];
}

/**
 * Starts a pkt6.py server (`tcpserve PORT`, `udpsink PORT COUNT SECONDS`) in `ns` and waits
 * until it listens; `done` gives the number it printed last (in an object: an async
 * function returning a bare promise would wait for it).
 */
export async function serve6(ns: Netns, args: string[]): Promise<{ done: Promise<number> }> {
  return startServer(ns, PKT6, args);
}

/**
 * An ip6tables (or iptables) oracle per address: for each address, `out` (-s ADDR) and `in`
 * (-d ADDR) rules for all, tcp and udp, in a user chain of `table`/`hook`, plus one rule each
 * way for the whole net (to prove the per-address rules saw every packet of the net).
 * Counters are the packets' full lengths (IPv6: 40 + payload), as xt_traffic counts them.
 */
export class AddrOracle {
  constructor(
    private readonly ns: Netns,
    private readonly ipt: string,
    private readonly chain: string,
    private readonly net: string,
    private readonly addrs: string[],
    private readonly table = 'raw',
    private readonly hook = 'PREROUTING',
  ) {}

  async install(): Promise<void> {
    const full = this.ipt.startsWith('ip6') ? 128 : 32;
    const lines = [`*${this.table}`, `:${this.chain} - [0:0]`, `-A ${this.hook} -j ${this.chain}`];
    for (const a of this.addrs) {
      for (const dir of ['out', 'in'] as const) {
        for (const proto of ['all', 'tcp', 'udp']) {
          const me = `${dir === 'out' ? '-s' : '-d'} ${a}/${full}`;
          lines.push(`-A ${this.chain} ${me}${proto === 'all' ? '' : ` -p ${proto}`} -m comment --comment "${a} ${dir} ${proto}"`);
        }
      }
    }
    lines.push(`-A ${this.chain} -s ${this.net} -m comment --comment "net out all"`, `-A ${this.chain} -d ${this.net} -m comment --comment "net in all"`);
    lines.push('COMMIT', '');
    await this.ns.run(`${this.ipt}-restore`, ['--noflush'], { input: lines.join('\n') });
  }

  /** `ADDR DIR PROTO` -> bytes (and `net DIR all`). */
  async read(): Promise<Map<string, bigint>> {
    const m = new Map<string, bigint>();
    const save = await this.ns.run(`${this.ipt}-save`, ['-c', '-t', this.table]);
    for (const l of save.split('\n')) {
      const x = new RegExp(`^\\[(\\d+):(\\d+)\\] -A ${this.chain} .*--comment "?([^"]+?)"?$`).exec(l);
      if (x) m.set(x[3]!, BigInt(x[2]!));
    }
    if (m.size !== this.addrs.length * 6 + 2) throw new Error(`${this.ipt} oracle: ${m.size} counters, not ${this.addrs.length * 6 + 2}:\n${save}`);
    return m;
  }
}

export type Dir6 = { in: bigint; out: bigint };
export interface Bytes6 {
  total: Dir6;
  tcp: Dir6;
  udp: Dir6;
  other: Dir6;
}

/**
 * The oracle's counters summed per key (`keyOf(addr)`), by protocol and direction (OTHER =
 * all - tcp - udp). Every packet here has at most one end inside the net or both ends
 * counted (no --nointernal), so the per-address rules are exactly the table's sides.
 */
export function sumPerKey(o: Map<string, bigint>, addrs: string[], keyOf: (a: string) => string): Map<string, Bytes6> {
  const rows = new Map<string, Bytes6>();
  for (const a of addrs) {
    const k = keyOf(a);
    const r = rows.get(k) ?? { total: { in: 0n, out: 0n }, tcp: { in: 0n, out: 0n }, udp: { in: 0n, out: 0n }, other: { in: 0n, out: 0n } };
    for (const dir of ['in', 'out'] as const) {
      const get = (p: string): bigint => o.get(`${a} ${dir} ${p}`)!;
      r.total[dir] += get('all');
      r.tcp[dir] += get('tcp');
      r.udp[dir] += get('udp');
      r.other[dir] += get('all') - get('tcp') - get('udp');
    }
    rows.set(k, r);
  }
  for (const [k, r] of rows) if (r.total.in === 0n && r.total.out === 0n) rows.delete(k);
  return rows;
}

/** The table key of an IPv6 address counted per /hp: RFC 5952, `/hp` below 128. */
export function keyOf6(a: string, hp: number): string {
  const w = new Uint32Array(4);
  if (!parseIPv6(a, w)) throw new Error(`not IPv6: ${a}`);
  const t = formatIPv6(alignTo6(w, hp));
  return hp === 128 ? t : `${t}/${hp}`;
}
