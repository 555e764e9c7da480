import type { Netns } from './netns.js';

/** Bytes the oracle counted for packets from `src` to `dst`, split by protocol. */
export interface PairCount {
  src: string;
  dst: string;
  tcp: bigint;
  udp: bigint;
  other: bigint;
}

/**
 * An independent oracle: plain iptables rules on the same hook, one user chain per
 * (source, destination) pair with a `-p tcp` rule, a `-p udp` rule and a catch-all, whose
 * byte counters are the IPv4 total lengths of what went from src to dst.
 */
export class Oracle {
  private chains: { src: string; dst: string; chain: string }[] = [];

  constructor(
    private readonly ns: Netns,
    private readonly ipt: string,
    private readonly table = 'raw',
    private readonly hook = 'PREROUTING',
  ) {}

  /** Adds the chains and rules in one iptables-restore --noflush transaction. */
  async install(sources: string[], dests: string[]): Promise<void> {
    const lines = [`*${this.table}`];
    let i = 0;
    for (const src of sources) {
      for (const dst of dests) {
        if (src === dst) continue;
        const chain = `ORACLE${i++}`;
        lines.push(`:${chain} - [0:0]`);
        lines.push(`-A ${chain} -p tcp -j RETURN`, `-A ${chain} -p udp -j RETURN`, `-A ${chain} -j RETURN`);
        lines.push(`-A ${this.hook} -s ${src} -d ${dst} -j ${chain}`);
        this.chains.push({ src, dst, chain });
      }
    }
    lines.push('COMMIT', '');
    await this.ns.run(`${this.ipt}-restore`, ['--noflush'], { input: lines.join('\n') });
  }

  async read(): Promise<PairCount[]> {
    const all = await this.ns.run(this.ipt, ['-t', this.table, '-L', '-n', '-v', '-x']);
    const byChain = new Map<string, string>();
    for (const block of all.split('\n\n')) {
      const name = /^Chain (\S+)/.exec(block.trim())?.[1];
      if (name) byChain.set(name, block.trim());
    }
    return this.chains.map(({ src, dst, chain }) => {
      const out = byChain.get(chain) ?? '';
      // "Chain X (1 references)", the column header, then one line per rule: pkts bytes ...
      const bytes = out
        .split('\n')
        .slice(2)
        .filter((l) => l.trim())
        .map((l) => BigInt(l.trim().split(/\s+/)[1]!));
      if (bytes.length !== 3) throw new Error(`oracle chain ${chain}: expected 3 rules, got:\n${out}`);
      return { src, dst, tcp: bytes[0]!, udp: bytes[1]!, other: bytes[2]! };
    });
  }
}

export type InternalMode = 'all' | 'nointernal' | 'onlyinternal';

export interface Net {
  base: number;
  mask: number;
}

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
}

export function parseNet(cidr: string): Net {
  const [ip, len] = cidr.split('/');
  const mask = Number(len) === 0 ? 0 : (0xffffffff << (32 - Number(len))) >>> 0;
  return { base: ipToInt(ip!) & mask, mask };
}

export function inNet(net: Net, ip: string): boolean {
  return ((ipToInt(ip) & net.mask) >>> 0) === net.base;
}

/** Whether a packet from src to dst is counted at all, and for which sides. */
export function sides(net: Net, src: string, dst: string, mode: InternalMode): { out: boolean; in: boolean } {
  const s = inNet(net, src);
  const d = inNet(net, dst);
  const internal = s && d;
  if ((!s && !d) || (mode === 'nointernal' && internal) || (mode === 'onlyinternal' && !internal)) {
    return { out: false, in: false };
  }
  return { out: s, in: d };
}

type Dir = { in: bigint; out: bigint };
export interface ExpectedTraffic {
  total: Dir;
  tcp: Dir;
  udp: Dir;
  other: Dir;
}

const zero = (): Dir => ({ in: 0n, out: 0n });

/** Expected rows of NAME (traffic) from the oracle's pair counts, rows with only zeros left out. */
export function expectedTraffic(pairs: PairCount[], net: Net, mode: InternalMode): Record<string, ExpectedTraffic> {
  const rows: Record<string, ExpectedTraffic> = {};
  const row = (ip: string) => (rows[ip] ??= { total: zero(), tcp: zero(), udp: zero(), other: zero() });
  for (const p of pairs) {
    const side = sides(net, p.src, p.dst, mode);
    for (const proto of ['tcp', 'udp', 'other'] as const) {
      const n = p[proto];
      if (n === 0n) continue;
      if (side.out) {
        row(p.src)[proto].out += n;
        row(p.src).total.out += n;
      }
      if (side.in) {
        row(p.dst)[proto].in += n;
        row(p.dst).total.in += n;
      }
    }
  }
  return rows;
}

/** A connection the test started: `count` new connections from src to dst. */
export interface SentConn {
  src: string;
  dst: string;
  proto: 'tcp' | 'udp' | 'icmp' | 'other';
  port: number;
  count: number;
}

export interface ExpectedConn {
  total: Dir;
  tcp: Dir;
  udp: Dir;
  icmp: Dir;
  other: Dir;
}

const zconn = (): ExpectedConn => ({ total: zero(), tcp: zero(), udp: zero(), icmp: zero(), other: zero() });

/** Expected NAME_ipconn and NAME_portconn rows from the connections the test started. */
export function expectedConns(conns: SentConn[], net: Net, mode: InternalMode): {
  ip: Record<string, ExpectedConn>;
  port: Record<number, ExpectedConn>;
} {
  const ip: Record<string, ExpectedConn> = {};
  const port: Record<number, ExpectedConn> = {};
  for (const c of conns) {
    const side = sides(net, c.src, c.dst, mode);
    const n = BigInt(c.count);
    if (side.out) {
      const r = (ip[c.src] ??= zconn());
      r[c.proto].out += n;
      r.total.out += n;
      const p = (port[c.port] ??= zconn());
      p[c.proto].out += n;
      p.total.out += n;
    }
    if (side.in) {
      const r = (ip[c.dst] ??= zconn());
      r[c.proto].in += n;
      r.total.in += n;
      const p = (port[c.port] ??= zconn());
      p[c.proto].in += n;
      p.total.in += n;
    }
  }
  return { ip, port };
}
