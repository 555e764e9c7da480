// Exact IPv6 accounting (issue 13): namespaces talk IPv6 through router R (ping6, fragmented
// ping6 and UDP over 1280-byte links, TCP, UDP with a destination options header, a raw
// protocol that the receiver answers with an ICMPv6 parameter problem). Five revision-1
// tables on R's raw PREROUTING (per /64, /56 and /128, --nointernal, ! --nointernal) must
// equal an oracle of per-address ip6tables counter rules on the same hook, summed per host
// prefix; connections must equal what the test started. The kernel's files are read with
// userspace's own strict parser (src/proc/parse.ts): canonical RFC 5952 keys, sorted, one
// prefix length. Neighbours are static and DAD is off, so no NDP packet is counted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInfo, parseTable, rowsFromColumns } from '../../src/proc/parse.js';
import { loadModule } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { sh } from '../lib/sh.js';
import { keyOf6 as keyOf, PKT6, serve6 as serve } from '../lib/topo6.js';

const NET = '2001:db8:1::';
const NETLEN = 48;
const H1A = '2001:db8:1:1::1';
const H1B = '2001:db8:1:1::2';
const H1C = '2001:db8:1:2::1';
const H2 = '2001:db8:1:102::1';
const R1 = '2001:db8:1:1::fe';
const R2 = '2001:db8:1:102::fe';
const RX = '2001:db8:ff::1';
const X = '2001:db8:ff::2';
/** Every address of the net that can send or receive. */
const INNET = [H1A, H1B, H1C, H2, R1, R2];

type Scope = 'int' | 'ext';
type Mode = 'all' | 'nointernal' | 'onlyinternal';
// The module indexes a map directly by the prefix's bits when they lie in one 64-bit half and
// fit the buckets (P64, P56, L112: bits in the low half), and hashes otherwise (P128: 80 bits,
// P72: 24 bits straddling the halves): both kinds must count the same. L112 is a /112 inside
// the net (H1A, H1B, R1), counted per /128 in mode 'all' (its rows are then the oracle's, scope
// aside).
const TABLES: { name: string; hostprefix: number; mode: Mode; opt: string[]; net?: string; netlen?: number; members?: string[] }[] = [
  { name: 'P64', hostprefix: 64, mode: 'all', opt: [] },
  { name: 'P56', hostprefix: 56, mode: 'all', opt: ['--hostprefix', '56'] },
  { name: 'P128', hostprefix: 128, mode: 'all', opt: ['--hostprefix', '128'] },
  { name: 'P72', hostprefix: 72, mode: 'all', opt: ['--hostprefix', '72'] },
  { name: 'L112', hostprefix: 128, mode: 'all', opt: ['--hostprefix', '128'], net: '2001:db8:1:1::', netlen: 112, members: [H1A, H1B, R1] },
  { name: 'NOINT', hostprefix: 64, mode: 'nointernal', opt: ['--nointernal'] },
  { name: 'ONLY', hostprefix: 128, mode: 'onlyinternal', opt: ['--hostprefix', '128', '!', '--nointernal'] },
];

function counts(mode: Mode, scope: Scope): boolean {
  return mode === 'all' || (mode === 'nointernal' ? scope === 'ext' : scope === 'int');
}

interface SentConn {
  src: string;
  dst: string;
  proto: 'tcp' | 'udp' | 'icmp' | 'other';
  port: number;
}

const inNet = (a: string): boolean => INNET.includes(a);

let links = 0;

function link(a: Netns, ipA: string[], b: Netns, ipB: string[], offloads: [boolean, boolean] = [false, false]): { ifA: string; ifB: string } {
  const ifA = `x6l${process.pid % 10000}n${links}a`;
  const ifB = `x6l${process.pid % 10000}n${links++}b`;
  sh('ip', ['link', 'add', ifA, 'netns', a.name, 'type', 'veth', 'peer', 'name', ifB, 'netns', b.name]);
  for (const [ns, dev, ips, off] of [[a, ifA, ipA, offloads[0]], [b, ifB, ipB, offloads[1]]] as const) {
    ns.exec('ip', ['link', 'set', dev, 'mtu', '1280']);
    const v = off ? 'on' : 'off';
    ns.exec('ethtool', ['-K', dev, 'tso', v, 'gso', v, 'gro', v, 'tx', v, 'rx', v]);
    for (const ip of ips) ns.exec('ip', ['-6', 'addr', 'add', `${ip}/64`, 'dev', dev, 'nodad']);
    ns.exec('ip', ['link', 'set', dev, 'up']);
  }
  const mac = (ns: Netns, dev: string): string => JSON.parse(ns.exec('ip', ['-j', 'link', 'show', 'dev', dev]))[0].address;
  const macA = mac(a, ifA);
  const macB = mac(b, ifB);
  // static neighbours: no neighbour discovery (ICMPv6) during the test
  for (const ip of ipB) a.exec('ip', ['-6', 'neigh', 'replace', ip, 'lladdr', macB, 'dev', ifA, 'nud', 'permanent']);
  for (const ip of ipA) b.exec('ip', ['-6', 'neigh', 'replace', ip, 'lladdr', macA, 'dev', ifB, 'nud', 'permanent']);
  return { ifA, ifB };
}

describe.each(['ip6tables', 'ip6tables-legacy'])('exact IPv6 accounting through %s', (ipt) => {
  let r: Netns;
  let h1: Netns;
  let h2: Netns;
  let x: Netns;
  const conns: SentConn[] = [];
  /** oracle counters: `${addr} ${dir} ${scope} ${proto}` -> bytes (proto all/tcp/udp) */
  const oracle = new Map<string, bigint>();

  beforeAll(async () => {
    loadModule();
    r = new Netns('a6r');
    h1 = new Netns('a6h');
    h2 = new Netns('a6i');
    x = new Netns('a6x');
    r.exec('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    const l1 = link(h1, [H1A, H1B, H1C], r, [R1]);
    link(h2, [H2], r, [R2]);
    link(x, [X], r, [RX]);
    r.exec('ip', ['-6', 'route', 'add', '2001:db8:1:2::/64', 'dev', l1.ifB]);
    h1.exec('ip', ['-6', 'route', 'add', 'default', 'via', R1]);
    h2.exec('ip', ['-6', 'route', 'add', 'default', 'via', R2]);
    x.exec('ip', ['-6', 'route', 'add', 'default', 'via', RX]);

    for (const t of TABLES) {
      await r.run(ipt, [
        '-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--traffic', '--ipconn', '--portconn',
        '--netbase', t.net ?? NET, '--netmask', String(t.netlen ?? NETLEN), ...t.opt, '--name', t.name,
      ]);
    }
    // the oracle: per address, direction, scope (other side inside the net or not), protocol
    const lines = ['*raw', ':ORACLE - [0:0]', '-A PREROUTING -j ORACLE'];
    for (const a of INNET) {
      for (const dir of ['out', 'in'] as const) {
        for (const scope of ['int', 'ext'] as const) {
          for (const proto of ['all', 'tcp', 'udp']) {
            const me = dir === 'out' ? `-s ${a}/128` : `-d ${a}/128`;
            const other = `${scope === 'ext' ? '! ' : ''}${dir === 'out' ? '-d' : '-s'} ${NET}/${NETLEN}`;
            const p = proto === 'all' ? '' : ` -p ${proto}`;
            lines.push(`-A ORACLE ${me} ${other}${p} -m comment --comment "${a} ${dir} ${scope} ${proto}"`);
          }
        }
      }
    }
    lines.push('COMMIT', '');
    await r.run(`${ipt}-restore`, ['--noflush'], { input: lines.join('\n') });

    const sink5353 = await serve(x, ['udpsink', '5353', '3', '240']);
    const sink5354 = await serve(x, ['udpsink', '5354', '2', '240']);
    const sink6000 = await serve(h1, ['udpsink', '6000', '3', '240']);
    // ICMPv6 echo: one ping process is one flow (its identifier)
    await h1.run('timeout', ['60', 'ping', '-6', '-c', '3', '-s', '56', '-i', '0.2', '-W', '2', '-I', H1A, X]);
    conns.push({ src: H1A, dst: X, proto: 'icmp', port: 0 });
    await h2.run('timeout', ['60', 'ping', '-6', '-c', '2', '-s', '200', '-i', '0.2', '-W', '2', '-I', H2, H1C]);
    conns.push({ src: H2, dst: H1C, proto: 'icmp', port: 0 });
    await x.run('timeout', ['60', 'ping', '-6', '-c', '1', '-s', '1000', '-W', '2', H1B]);
    conns.push({ src: X, dst: H1B, proto: 'icmp', port: 0 });
    // fragments over the 1280-byte links, both ways: the non-first ones count as OTHER
    await h1.run('timeout', ['60', 'ping', '-6', '-c', '1', '-s', '3000', '-W', '2', '-I', H1A, X]);
    conns.push({ src: H1A, dst: X, proto: 'icmp', port: 0 });
    // UDP: one socket is one flow; a fragmented datagram; a destination options header
    await h1.run('timeout', ['120', 'python3', PKT6, 'udp', X, '5353', '1000', '2', H1A]);
    conns.push({ src: H1A, dst: X, proto: 'udp', port: 5353 });
    await h2.run('timeout', ['120', 'python3', PKT6, 'udp', X, '5353', '3000', '1', H2]);
    conns.push({ src: H2, dst: X, proto: 'udp', port: 5353 });
    await h1.run('timeout', ['120', 'python3', PKT6, 'udpdst', X, '5354', '500', '2', H1B]);
    conns.push({ src: H1B, dst: X, proto: 'udp', port: 5354 });
    await x.run('timeout', ['120', 'python3', PKT6, 'udp', H1C, '6000', '100', '3']);
    conns.push({ src: X, dst: H1C, proto: 'udp', port: 6000 });
    // another protocol (253): X answers with an ICMPv6 parameter problem (one type/code flow)
    await h1.run('timeout', ['120', 'python3', PKT6, 'raw', X, '253', '200', '2', H1A]);
    conns.push({ src: H1A, dst: X, proto: 'other', port: 0 });
    conns.push({ src: X, dst: H1A, proto: 'icmp', port: 0 });
    // TCP: one SYN per connection; one external, one internal
    const srv1 = await serve(x, ['tcpserve', '8080']);
    await h1.run('timeout', ['120', 'python3', PKT6, 'tcpsend', X, '8080', '20000', H1B]);
    expect(await srv1.done).toBe(20000);
    conns.push({ src: H1B, dst: X, proto: 'tcp', port: 8080 });
    const srv2 = await serve(h1, ['tcpserve', '8081']);
    await h2.run('timeout', ['120', 'python3', PKT6, 'tcpsend', H1A, '8081', '5000', H2]);
    expect(await srv2.done).toBe(5000);
    conns.push({ src: H2, dst: H1A, proto: 'tcp', port: 8081 });
    expect(await sink5353.done).toBe(3);
    expect(await sink5354.done).toBe(2);
    expect(await sink6000.done).toBe(3);

    const save = await r.run(`${ipt}-save`, ['-c', '-t', 'raw']);
    for (const l of save.split('\n')) {
      const m = /^\[(\d+):(\d+)\] -A ORACLE .*--comment "([^"]+)"/.exec(l);
      if (m) oracle.set(m[3]!, BigInt(m[2]!));
    }
    expect(oracle.size).toBe(INNET.length * 12);
  }, 600_000);

  afterAll(() => {
    for (const ns of [r, h1, h2, x]) ns?.delete();
  });

  it('the oracle saw the traffic it should: every kind, both scopes', () => {
    const sum = (f: (k: string) => boolean): bigint => [...oracle].filter(([k]) => f(k)).reduce((s, [, v]) => s + v, 0n);
    expect(sum((k) => k.endsWith(' int tcp'))).toBeGreaterThan(5000n);
    expect(sum((k) => k.endsWith(' ext tcp'))).toBeGreaterThan(20000n);
    expect(sum((k) => k.endsWith(' ext udp'))).toBeGreaterThan(5000n);
    expect(sum((k) => k.endsWith(' int all'))).toBeGreaterThan(sum((k) => k.endsWith(' int tcp')));
  });

  it.each(TABLES)('$name (per /$hostprefix, $mode): every row equals the oracle summed per prefix', (t) => {
    const want = new Map<string, Record<string, bigint>>();
    for (const a of t.members ?? INNET) {
      const k = keyOf(a, t.hostprefix);
      const row = want.get(k) ?? { tcp_in: 0n, tcp_out: 0n, udp_in: 0n, udp_out: 0n, other_in: 0n, other_out: 0n };
      for (const dir of ['in', 'out'] as const) {
        for (const scope of ['int', 'ext'] as const) {
          if (!counts(t.mode, scope)) continue;
          const get = (p: string): bigint => oracle.get(`${a} ${dir} ${scope} ${p}`)!;
          row[`tcp_${dir}`]! += get('tcp');
          row[`udp_${dir}`]! += get('udp');
          row[`other_${dir}`]! += get('all') - get('tcp') - get('udp');
        }
      }
      want.set(k, row);
    }
    const wantRows = [...want]
      .filter(([, v]) => Object.values(v).some((n) => n !== 0n))
      .map(([ip, v]) => ({
        ip,
        total: { in: v.tcp_in! + v.udp_in! + v.other_in!, out: v.tcp_out! + v.udp_out! + v.other_out! },
        tcp: { in: v.tcp_in!, out: v.tcp_out! },
        udp: { in: v.udp_in!, out: v.udp_out! },
        other: { in: v.other_in!, out: v.other_out! },
      }))
      .sort((a, b) => (a.ip < b.ip ? -1 : 1));
    const text = r.cat(`/proc/net/xt_traffic/${t.name}`);
    const rows = rowsFromColumns('traffic', parseTable('traffic', text, {}, { family: 'ipv6', hostPrefix: t.hostprefix }));
    // the kernel sorts numerically; compare as sets of rows in string order
    expect([...rows].sort((a, b) => (a.ip < b.ip ? -1 : 1))).toEqual(wantRows);
    expect(rows.length).toBeGreaterThan(0);
  });

  it.each(TABLES)('$name: connections per prefix and per port equal what was started', (t) => {
    const ip = new Map<string, Record<string, bigint>>();
    const port = new Map<number, Record<string, bigint>>();
    const zero = (): Record<string, bigint> => ({ tcp_in: 0n, tcp_out: 0n, udp_in: 0n, udp_out: 0n, icmp_in: 0n, icmp_out: 0n, other_in: 0n, other_out: 0n });
    for (const c of conns) {
      const scope: Scope = inNet(c.src) && inNet(c.dst) ? 'int' : 'ext';
      if (!counts(t.mode, scope)) continue;
      for (const [addr, dir] of [[c.src, 'out'], [c.dst, 'in']] as const) {
        if (!(t.members ?? INNET).includes(addr)) continue;
        const k = keyOf(addr, t.hostprefix);
        const row = ip.get(k) ?? zero();
        row[`${c.proto}_${dir}`]! += 1n;
        ip.set(k, row);
        const prow = port.get(c.port) ?? zero();
        prow[`${c.proto}_${dir}`]! += 1n;
        port.set(c.port, prow);
      }
    }
    const shape = (v: Record<string, bigint>) => ({
      total: { in: v.tcp_in! + v.udp_in! + v.icmp_in! + v.other_in!, out: v.tcp_out! + v.udp_out! + v.icmp_out! + v.other_out! },
      tcp: { in: v.tcp_in!, out: v.tcp_out! },
      udp: { in: v.udp_in!, out: v.udp_out! },
      icmp: { in: v.icmp_in!, out: v.icmp_out! },
      other: { in: v.other_in!, out: v.other_out! },
    });
    const wantIp = [...ip].map(([k, v]) => ({ ip: k, ...shape(v) })).sort((a, b) => (a.ip < b.ip ? -1 : 1));
    const wantPort = [...port].map(([k, v]) => ({ port: k, ...shape(v) })).sort((a, b) => a.port - b.port);
    const gotIp = rowsFromColumns('ipconn', parseTable('ipconn', r.cat(`/proc/net/xt_traffic/${t.name}_ipconn`), {}, { family: 'ipv6', hostPrefix: t.hostprefix }));
    const gotPort = rowsFromColumns('portconn', parseTable('portconn', r.cat(`/proc/net/xt_traffic/${t.name}_portconn`)));
    expect([...gotIp].sort((a, b) => (a.ip < b.ip ? -1 : 1))).toEqual(wantIp);
    expect(gotPort).toEqual(wantPort);
    const info = r.cat(`/proc/net/xt_traffic/${t.name}_info`);
    expect(info).toContain('\nflow_evictions: 0\n');
  });

  it('NAME_info and the counters file carry family and hostprefix; counters equal the table', () => {
    const info = parseInfo(r.cat('/proc/net/xt_traffic/P56_info'));
    expect({ family: info.family, netbase: info.netbase, netmask: info.netmask, hostPrefix: info.hostPrefix }).toEqual({
      family: 'ipv6',
      netbase: '2001:db8:1::',
      netmask: 'ffff:ffff:ffff::',
      hostPrefix: 56,
    });
    const lines = r.cat('/proc/net/xt_traffic_counters/P56').split('\n');
    const at = lines.indexOf('netmask: ffff:ffff:ffff::');
    expect(lines.slice(at - 1, at + 3)).toEqual(['netbase: 2001:db8:1::', 'netmask: ffff:ffff:ffff::', 'family: ipv6', 'hostprefix: 56']);
    const sec = lines.slice(lines.indexOf('[traffic]') + 1, lines.indexOf('[ipconn]')).sort();
    const table = r.cat('/proc/net/xt_traffic/P56').split('\n').slice(1).filter(Boolean).sort();
    expect(sec).toEqual(table);
    expect(sec.map((l) => l.split('\t')[0])).toEqual([keyOf(H1A, 56), keyOf(H2, 56)].sort());
  });
});

// GSO on veth: H sends TCP with TSO on, so R's PREROUTING sees GSO packets (several wire
// segments in one skb); R segments them on its way to X (offloads off there). The table on R
// must count the wire bytes: exactly what a per-source rule on X's PREROUTING counts, and
// more than R's own per-skb rule counts (which proves GSO packets were there).
describe('IPv6 GSO on veth (TSO from the sender, segmented by the router)', () => {
  const HG = '2001:db8:2:1::1';
  const RG = '2001:db8:2:1::fe';
  const RXG = '2001:db8:2:ff::1';
  const XG = '2001:db8:2:ff::2';
  let r: Netns;
  let h: Netns;
  let x: Netns;

  beforeAll(() => {
    loadModule();
    // no segment may be dropped between R and X (a burst of segments into X's backlog)
    sh('sysctl', ['-qw', 'net.core.netdev_max_backlog=100000']);
    r = new Netns('g6r');
    h = new Netns('g6h');
    x = new Netns('g6x');
    r.exec('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    link(h, [HG], r, [RG], [true, true]);
    link(x, [XG], r, [RXG], [false, false]);
    h.exec('ip', ['-6', 'route', 'add', 'default', 'via', RG]);
    x.exec('ip', ['-6', 'route', 'add', 'default', 'via', RXG]);
  });

  afterAll(() => {
    for (const ns of [r, h, x]) ns?.delete();
  });

  it('counts the wire segments of every GSO packet, exactly', async () => {
    r.exec('ip6tables', ['-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--traffic', '--netbase', '2001:db8:2::', '--netmask', '48', '--hostprefix', '128', '--name', 'G6']);
    r.exec('ip6tables', ['-t', 'raw', '-A', 'PREROUTING', '-s', HG, '-p', 'tcp']);
    x.exec('ip6tables', ['-t', 'raw', '-A', 'PREROUTING', '-s', HG, '-p', 'tcp']);
    const srv = await serve(x, ['tcpserve', '8090']);
    await h.run('timeout', ['300', 'python3', PKT6, 'tcpsend', XG, '8090', '1000000', HG]);
    expect(await srv.done).toBe(1000000);
    const bytes = (ns: Netns): bigint => {
      const m = /^\[\d+:(\d+)\] -A PREROUTING -s 2001:db8:2:1::1\/128 -p tcp/m.exec(ns.exec('ip6tables-save', ['-c', '-t', 'raw']));
      return BigInt(m![1]!);
    };
    const wire = bytes(x);
    const skbs = bytes(r);
    const rows = rowsFromColumns('traffic', parseTable('traffic', r.cat('/proc/net/xt_traffic/G6'), {}, { family: 'ipv6', hostPrefix: 128 }));
    const row = rows.find((w) => w.ip === HG)!;
    // GSO packets were seen (each counted once by the skb rule, headers not repeated)
    expect(skbs).toBeLessThan(wire);
    expect(row.tcp.out).toBe(wire);
    expect(row.other.out).toBe(0n);
  }, 600_000);
});
