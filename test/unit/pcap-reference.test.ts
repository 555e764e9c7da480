// Host unit tests of test/lib/pcap.ts: the pcap reader, the "reaches PREROUTING" model and
// the reference counters, on the four real captures of ../shared/data/pcaps and on
// synthetic packets. Expected values come from facts checked independently of this code:
// SOURCES.md, and tcpdump 4.99 on the host while writing them, e.g.
//   tcpdump -r F -nn -e | awk '{...ethertype...}' | sort | uniq -c      (link types)
//   tcpdump -r F -nn -v ip | grep -v 'bad cksum' | sed ... proto/length | awk sum  (bytes)
//   tcpdump -r F -nn -tt 'udp and ip[6:2] & 0x1fff = 0' | awk (30 s flows)        (UDP conns)
//   tcpdump -r F -nn 'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn'               (SYNs)
// The tests themselves need nothing but node.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  IPCONN_HEADER,
  PORTCONN_HEADER,
  TRAFFIC_HEADER,
  computeReference,
  decodeFrame,
  diffProc,
  formatAll,
  formatIp,
  formatTraffic,
  formatIpconn,
  net,
  parseIp,
  parsePcap,
  preroutingPackets,
  readPcap,
  retime,
  scaleTime,
  writePcap,
  zeroSkipCounts,
  type ConnRow,
  type Ipv4Packet,
  type PcapFrame,
  type SkipCounts,
  type TrafficRow,
} from '../lib/pcap.js';

const PCAPS = process.env.XTT_PCAPS ?? join(import.meta.dirname, '../../../shared/data/pcaps');
const WIKI = join(PCAPS, 'zeek_zeek__wikipedia.pcap');
const TEST = join(PCAPS, 'appneta_tcpreplay__test.pcap');
const AFS = join(PCAPS, 'the-tcpdump-group_tcpdump__afs.pcap');
const GRE = join(PCAPS, 'the-tcpdump-group_tcpdump__various_gre.pcap');

function skips(partial: Partial<SkipCounts>): SkipCounts {
  return { ...zeroSkipCounts(), ...partial };
}
function t(v: number[]): TrafficRow {
  const [totalIn, totalOut, tcpIn, tcpOut, udpIn, udpOut, otherIn, otherOut] = v.map(BigInt) as bigint[];
  return { totalIn, totalOut, tcpIn, tcpOut, udpIn, udpOut, otherIn, otherOut } as TrafficRow;
}
function c(v: number[]): ConnRow {
  const [totalIn, totalOut, tcpIn, tcpOut, udpIn, udpOut, icmpIn, icmpOut, otherIn, otherOut] = v.map(BigInt) as bigint[];
  return { totalIn, totalOut, tcpIn, tcpOut, udpIn, udpOut, icmpIn, icmpOut, otherIn, otherOut } as ConnRow;
}
const ip = parseIp;

describe('captures are present', () => {
  it('finds the four captures', () => {
    for (const f of [WIKI, TEST, AFS, GRE]) expect(existsSync(f), f).toBe(true);
  });
});

describe('pcap reader', () => {
  it('reads the header and every frame of the captures (counts from SOURCES.md)', () => {
    const counts: [string, number, number][] = [
      [WIKI, 136, 27460],
      [TEST, 179, 71888],
      [AFS, 601, 521916],
      [GRE, 100, 10068],
    ];
    for (const [f, n, size] of counts) {
      const p = readPcap(f);
      expect(p.littleEndian).toBe(true);
      expect(p.nanosecond).toBe(false);
      expect([p.versionMajor, p.versionMinor]).toEqual([2, 4]);
      expect(p.linktype).toBe(1);
      expect(p.frames.length).toBe(n);
      // 24-byte file header + 16 bytes per record + captured bytes = file size.
      expect(24 + p.frames.reduce((s, fr) => s + 16 + fr.data.length, 0)).toBe(size);
      // SOURCES.md: no frame is truncated.
      expect(p.frames.every((fr) => fr.data.length === fr.origLen)).toBe(true);
    }
  });

  it('decodes timestamps (wikipedia: 2011-03-18 19:06:07 to 19:06:13 UTC)', () => {
    const p = readPcap(WIKI);
    const first = p.frames[0]!;
    const last = p.frames.at(-1)!;
    expect(new Date(first.tsSec * 1000).toISOString().slice(0, 19)).toBe('2011-03-18T19:06:07');
    expect(new Date(last.tsSec * 1000).toISOString().slice(0, 19)).toBe('2011-03-18T19:06:13');
    expect(first.tsNsec % 1000).toBe(0);
  });

  it('reads big-endian and nanosecond files the same as the original', () => {
    const orig = readPcap(TEST);
    const raw = writePcap(orig.frames);
    // writePcap of the parsed frames rebuilds the original file byte for byte (apart from
    // snaplen, which the writer sets itself).
    const onDisk = readPcap(TEST);
    expect(parsePcap(raw).frames.length).toBe(onDisk.frames.length);
    for (const variant of [
      { littleEndian: false, nanosecond: false },
      { littleEndian: true, nanosecond: true },
      { littleEndian: false, nanosecond: true },
    ]) {
      const buf = writePcap(orig.frames, variant);
      // Magic as it lies in the file.
      const magic = buf.subarray(0, 4).toString('hex');
      expect(magic).toBe(
        variant.littleEndian ? (variant.nanosecond ? '4d3cb2a1' : 'd4c3b2a1') : variant.nanosecond ? 'a1b23c4d' : 'a1b2c3d4',
      );
      const p = parsePcap(buf);
      expect(p.littleEndian).toBe(variant.littleEndian);
      expect(p.nanosecond).toBe(variant.nanosecond);
      expect(p.frames.length).toBe(179);
      for (let i = 0; i < orig.frames.length; i++) {
        const a = orig.frames[i]!;
        const b = p.frames[i]!;
        expect([b.number, b.tsSec, b.tsNsec, b.origLen]).toEqual([a.number, a.tsSec, a.tsNsec, a.origLen]);
        expect(Buffer.from(b.data).equals(Buffer.from(a.data))).toBe(true);
      }
      expect(preroutingPackets(p).skipped).toEqual(preroutingPackets(orig).skipped);
    }
  });

  it('keeps nanoseconds in ns files', () => {
    const f = readPcap(TEST).frames[0]!;
    const buf = writePcap([{ ...f, tsNsec: 123456789 }], { nanosecond: true, littleEndian: false });
    expect(parsePcap(buf).frames[0]!.tsNsec).toBe(123456789);
    expect(() => writePcap([{ ...f, tsNsec: 123456789 }])).toThrow(/ns timestamp/);
  });

  it('rejects what it cannot read', () => {
    expect(() => parsePcap(new Uint8Array(10))).toThrow(/too short/);
    // pcapng section header block
    const ng = Buffer.alloc(28);
    ng.writeUInt32BE(0x0a0d0d0a, 0);
    expect(() => parsePcap(ng)).toThrow(/unknown magic 0x0a0d0d0a/);
    const ok = writePcap(readPcap(TEST).frames.slice(0, 2));
    expect(() => parsePcap(ok.subarray(0, ok.length - 1))).toThrow(/truncated frame 2/);
    expect(() => parsePcap(ok.subarray(0, 24 + 8))).toThrow(/truncated record header/);
    const notEth = writePcap([], { linktype: 101 });
    expect(() => preroutingPackets(parsePcap(notEth))).toThrow(/link type 101/);
  });
});

// ---------------------------------------------------------------------------------------
// Synthetic frames: one per skip rule
// ---------------------------------------------------------------------------------------

function csum(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[off + i]! << 8) | (b[off + i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

interface IpOpts {
  src?: string;
  dst?: string;
  proto?: number;
  payload?: number[];
  ihl?: number;
  version?: number;
  totLen?: number;
  id?: number;
  fragOffset?: number; // bytes
  mf?: boolean;
  badCsum?: boolean;
}
function ipv4(o: IpOpts = {}): Uint8Array {
  const ihl = o.ihl ?? 20;
  const payload = o.payload ?? [];
  const hdrLen = Math.max(ihl, 20);
  const b = new Uint8Array(hdrLen + payload.length);
  b[0] = ((o.version ?? 4) << 4) | (ihl / 4);
  const tot = o.totLen ?? hdrLen + payload.length;
  b[2] = tot >> 8;
  b[3] = tot & 255;
  const id = o.id ?? 1;
  b[4] = id >> 8;
  b[5] = id & 255;
  const frag = ((o.fragOffset ?? 0) / 8) | (o.mf ? 0x2000 : 0);
  b[6] = frag >> 8;
  b[7] = frag & 255;
  b[8] = 64;
  b[9] = o.proto ?? 17;
  const s = ip(o.src ?? '10.0.0.1');
  const d = ip(o.dst ?? '10.0.0.2');
  new DataView(b.buffer).setUint32(12, s);
  new DataView(b.buffer).setUint32(16, d);
  const cs = csum(b, 0, Math.max(20, ihl));
  b[10] = cs >> 8;
  b[11] = (cs & 255) ^ (o.badCsum ? 1 : 0);
  b.set(payload, hdrLen);
  return b;
}
function eth(type: number, body: Uint8Array, tags: number[] = []): Uint8Array {
  const b = new Uint8Array(14 + tags.length * 4 + body.length);
  b.fill(0x02, 0, 12);
  let off = 12;
  for (const vid of tags) {
    b[off] = 0x81;
    b[off + 1] = 0x00;
    b[off + 2] = vid >> 8;
    b[off + 3] = vid & 255;
    off += 4;
  }
  b[off] = type >> 8;
  b[off + 1] = type & 255;
  b.set(body, off + 2);
  return b;
}
let frameNo = 0;
function frame(data: Uint8Array, tsSec = 1000, tsNsec = 0): PcapFrame {
  return { number: ++frameNo, tsSec, tsNsec, origLen: data.length, data };
}
function udp(sport: number, dport: number, len = 8): number[] {
  const b = new Array<number>(len).fill(0);
  b[0] = sport >> 8;
  b[1] = sport & 255;
  b[2] = dport >> 8;
  b[3] = dport & 255;
  return b;
}
function tcp(sport: number, dport: number, flags: number): number[] {
  const b = new Array<number>(20).fill(0);
  b[0] = sport >> 8;
  b[1] = sport & 255;
  b[2] = dport >> 8;
  b[3] = dport & 255;
  b[12] = 5 << 4;
  b[13] = flags;
  return b;
}
function icmp(type: number, code: number, id = 0): number[] {
  return [type, code, 0, 0, id >> 8, id & 255, 0, 1];
}

describe('decodeFrame: what reaches ip_rcv_core and PREROUTING', () => {
  const good = ipv4({ payload: udp(1, 2) });
  it('passes a plain IPv4 frame, padded or not', () => {
    const p = decodeFrame(frame(eth(0x0800, good)));
    expect(typeof p).toBe('object');
    const padded = new Uint8Array(60);
    padded.set(eth(0x0800, good));
    const q = decodeFrame(frame(padded)) as Ipv4Packet;
    // ip_rcv_core trims to tot_len: the Ethernet padding is not counted.
    expect(q.totLen).toBe(28);
    expect(q.payload.length).toBe(8);
  });
  it.each([
    ['runt', new Uint8Array(13)],
    ['llc', eth(0x05dc, new Uint8Array(40))],
    ['llc', eth(0x0026, new Uint8Array(40))],
    ['arp', eth(0x0806, new Uint8Array(28))],
    ['ipv6', eth(0x86dd, new Uint8Array(40))],
    ['mpls', eth(0x8847, new Uint8Array(40))],
    ['mpls', eth(0x8848, new Uint8Array(40))],
    ['loopback', eth(0x9000, new Uint8Array(40))],
    ['ethertype', eth(0x88cc, new Uint8Array(40))],
    ['vlan', eth(0x0800, good, [1213])],
    ['ip-short', eth(0x0800, good.subarray(0, 19))],
    ['ip-version', eth(0x0800, ipv4({ version: 6 }))],
    ['ip-ihl', eth(0x0800, ipv4({ ihl: 16 }))],
    ['ip-ihl', eth(0x0800, ipv4({ ihl: 60 }).subarray(0, 40))],
    ['ip-checksum', eth(0x0800, ipv4({ badCsum: true }))],
    ['ip-totlen-long', eth(0x0800, ipv4({ totLen: 29, payload: udp(1, 2) }))],
    ['ip-totlen-short', eth(0x0800, ipv4({ totLen: 19 }))],
    // A VLAN tag cut short: type 0x8100 and 2 of its 4 bytes.
    ['runt', Uint8Array.from([...new Array<number>(12).fill(2), 0x81, 0x00, 0x04, 0xbd])],
  ] as const)('%s', (reason, data) => {
    expect(decodeFrame(frame(data))).toBe(reason);
  });
  it('accepts options (ihl 6) and checks the checksum over them', () => {
    const p = decodeFrame(frame(eth(0x0800, ipv4({ ihl: 24, payload: udp(5, 6) })))) as Ipv4Packet;
    expect(p.ihl).toBe(24);
    expect(p.totLen).toBe(32);
    expect(p.payload.length).toBe(8);
  });
  it('strips listed VLAN ids and priority tags (id 0); QinQ needs both ids listed', () => {
    expect(typeof decodeFrame(frame(eth(0x0800, good, [1213])), [1213])).toBe('object');
    expect(typeof decodeFrame(frame(eth(0x0800, good, [0])))).toBe('object');
    expect(decodeFrame(frame(eth(0x0800, good, [1213])), [7])).toBe('vlan');
    expect(decodeFrame(frame(eth(0x0800, good, [10, 20])), [10])).toBe('vlan');
    expect(typeof decodeFrame(frame(eth(0x0800, good, [10, 20])), [10, 20])).toBe('object');
    expect(decodeFrame(frame(eth(0x86dd, new Uint8Array(40), [1213])), [1213])).toBe('ipv6');
  });
});

// ---------------------------------------------------------------------------------------
// Synthetic packets: the counting rules of design.md
// ---------------------------------------------------------------------------------------

function at(sec: number, nsec: number, body: Uint8Array): Ipv4Packet {
  return decodeFrame(frame(eth(0x0800, body), sec, nsec)) as Ipv4Packet;
}
const N = net('10.0.0.0', 24);

describe('computeReference rules', () => {
  it('bytes = IPv4 total length, in = destination inside, out = source inside', () => {
    const ps = [
      at(1, 0, ipv4({ src: '10.0.0.1', dst: '8.8.8.8', proto: 17, payload: udp(1000, 53) })), // 28 out udp
      at(1, 1, ipv4({ src: '8.8.8.8', dst: '10.0.0.1', proto: 6, payload: tcp(80, 1000, 0x12) })), // 40 in tcp
      at(1, 2, ipv4({ src: '8.8.8.8', dst: '10.0.0.1', proto: 47, payload: [0, 0, 0, 0] })), // 24 in other
      at(1, 3, ipv4({ src: '8.8.8.8', dst: '9.9.9.9', proto: 17, payload: udp(1, 2) })), // outside
      at(1, 4, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 1, payload: icmp(8, 0, 7) })), // 28 internal
    ];
    const r = computeReference(ps, { net: N });
    expect(r.traffic.get(ip('10.0.0.1'))).toEqual(t([64, 56, 40, 0, 0, 28, 24, 28]));
    expect(r.traffic.get(ip('10.0.0.2'))).toEqual(t([28, 0, 0, 0, 0, 0, 28, 0]));
    expect(r.traffic.size).toBe(2);
    expect(r.stats).toMatchObject({ packets: 5, counted: 4, outside: 1 });
    expect(formatTraffic(r)).toBe(
      `${TRAFFIC_HEADER}10.0.0.1\t64\t56\t40\t0\t0\t28\t24\t28\n10.0.0.2\t28\t0\t0\t0\t0\t0\t28\t0\n`,
    );
    const ni = computeReference(ps, { net: N, nointernal: true });
    expect(ni.traffic.get(ip('10.0.0.1'))).toEqual(t([64, 28, 40, 0, 0, 28, 24, 0]));
    expect(ni.traffic.has(ip('10.0.0.2'))).toBe(false);
    expect(ni.stats.internalSkipped).toBe(1);
    const oi = computeReference(ps, { net: N, onlyInternal: true });
    expect(oi.traffic.get(ip('10.0.0.1'))).toEqual(t([0, 28, 0, 0, 0, 0, 0, 28]));
    expect(oi.stats.externalSkipped).toBe(3);
    expect(() => computeReference(ps, { net: N, nointernal: true, onlyInternal: true })).toThrow();
  });

  it('TCP: a connection per SYN without ACK, port = destination port; SYN/ACK, ACK are none', () => {
    const ps = [
      at(1, 0, ipv4({ src: '10.0.0.1', dst: '1.1.1.1', proto: 6, payload: tcp(40000, 443, 0x02) })),
      at(1, 1, ipv4({ src: '1.1.1.1', dst: '10.0.0.1', proto: 6, payload: tcp(443, 40000, 0x12) })),
      at(1, 2, ipv4({ src: '10.0.0.1', dst: '1.1.1.1', proto: 6, payload: tcp(40000, 443, 0x10) })),
      at(1, 3, ipv4({ src: '10.0.0.1', dst: '1.1.1.1', proto: 6, payload: tcp(40000, 443, 0x02) })), // retransmitted SYN
      at(1, 4, ipv4({ src: '2.2.2.2', dst: '10.0.0.9', proto: 6, payload: tcp(5555, 22, 0x02 | 0x08) })), // SYN+PSH
      at(1, 5, ipv4({ src: '2.2.2.2', dst: '10.0.0.9', proto: 6, payload: tcp(5555, 22, 0x02).slice(0, 19) })), // short
    ];
    const r = computeReference(ps, { net: N });
    expect(r.ipconn.get(ip('10.0.0.1'))).toEqual(c([0, 2, 0, 2, 0, 0, 0, 0, 0, 0]));
    expect(r.ipconn.get(ip('10.0.0.9'))).toEqual(c([1, 0, 1, 0, 0, 0, 0, 0, 0, 0]));
    expect(r.portconn.get(443)).toEqual(c([0, 2, 0, 2, 0, 0, 0, 0, 0, 0]));
    expect(r.portconn.get(22)).toEqual(c([1, 0, 1, 0, 0, 0, 0, 0, 0, 0]));
    expect(r.portconn.has(40000)).toBe(false);
    expect(r.stats.shortTransport).toBe(1);
  });

  it('UDP: direction-less flows with a timeout, port = destination of the first packet', () => {
    const q = (s: number, ns: number, src: string, dst: string, sp: number, dp: number): Ipv4Packet =>
      at(s, ns, ipv4({ src, dst, proto: 17, payload: udp(sp, dp) }));
    const ps = [
      q(100, 0, '10.0.0.1', '9.9.9.9', 5000, 53), // new
      q(101, 0, '9.9.9.9', '10.0.0.1', 53, 5000), // reply: same flow
      q(131, 0, '9.9.9.9', '10.0.0.1', 53, 5000), // gap exactly 30 s: same flow
      q(161, 1, '9.9.9.9', '10.0.0.1', 53, 5000), // gap 30 s + 1 ns: new, port 5000, in
      q(161, 2, '10.0.0.1', '9.9.9.9', 5001, 53), // other source port: new
    ];
    const r = computeReference(ps, { net: N });
    expect(r.connections.map((x) => [x.frame - ps[0]!.frame, x.port])).toEqual([
      [0, 53],
      [3, 5000],
      [4, 53],
    ]);
    expect(r.ipconn.get(ip('10.0.0.1'))).toEqual(c([1, 2, 0, 0, 1, 2, 0, 0, 0, 0]));
    expect(r.portconn.get(53)).toEqual(c([0, 2, 0, 0, 0, 2, 0, 0, 0, 0]));
    expect(r.portconn.get(5000)).toEqual(c([1, 0, 0, 0, 1, 0, 0, 0, 0, 0]));
    // flowTimeout is a parameter.
    expect(computeReference(ps, { net: N, flowTimeout: 0.5 }).connections.length).toBe(5);
    expect(computeReference(ps, { net: N, flowTimeout: 1000 }).connections.length).toBe(2);
  });

  it('ICMP: echo request/reply share a flow by id; other types by type,code; port 0', () => {
    const q = (s: number, src: string, dst: string, b: number[]): Ipv4Packet => at(s, 0, ipv4({ src, dst, proto: 1, payload: b }));
    const ps = [
      q(1, '10.0.0.1', '9.9.9.9', icmp(8, 0, 77)), // new (icmp out)
      q(2, '9.9.9.9', '10.0.0.1', icmp(0, 0, 77)), // reply: same
      q(3, '10.0.0.1', '9.9.9.9', icmp(8, 0, 78)), // other id: new
      q(4, '9.9.9.9', '10.0.0.1', icmp(3, 3)), // unreachable: new (icmp in)
      q(5, '10.0.0.1', '9.9.9.9', icmp(3, 3)), // same type,code, reverse direction: same flow
      q(6, '9.9.9.9', '10.0.0.1', icmp(3, 1)), // other code: new
      q(7, '9.9.9.9', '10.0.0.1', icmp(3, 1).slice(0, 7)), // short header
    ];
    const r = computeReference(ps, { net: N });
    expect(r.ipconn.get(ip('10.0.0.1'))).toEqual(c([2, 2, 0, 0, 0, 0, 2, 2, 0, 0]));
    expect(r.portconn.get(0)).toEqual(c([2, 2, 0, 0, 0, 0, 2, 2, 0, 0]));
    expect(r.portconn.size).toBe(1);
    expect(r.stats.shortTransport).toBe(1);
    // ICMP bytes are OTHER in the traffic table.
    expect(r.traffic.get(ip('10.0.0.1'))!.otherIn).toBe(28n * 3n + 27n);
  });

  it('other protocols: one flow per address pair and protocol', () => {
    const q = (s: number, src: string, dst: string, proto: number): Ipv4Packet =>
      at(s, 0, ipv4({ src, dst, proto, payload: [1, 2, 3, 4] }));
    const ps = [q(1, '10.0.0.1', '10.0.0.2', 47), q(2, '10.0.0.2', '10.0.0.1', 47), q(3, '10.0.0.1', '10.0.0.2', 50), q(40, '10.0.0.2', '10.0.0.1', 47)];
    const r = computeReference(ps, { net: N });
    // 47 at t=1 (.1 -> .2), 50 at 3 (.1 -> .2), 47 again at 40 (.2 -> .1; 38 s after t=2).
    expect(r.ipconn.get(ip('10.0.0.1'))).toEqual(c([1, 2, 0, 0, 0, 0, 0, 0, 1, 2]));
    expect(r.ipconn.get(ip('10.0.0.2'))).toEqual(c([2, 1, 0, 0, 0, 0, 0, 0, 2, 1]));
    // An internal connection counts in and out on its port (0 here).
    expect(r.portconn.get(0)).toEqual(c([3, 3, 0, 0, 0, 0, 0, 0, 3, 3]));
  });

  it('fragments: bytes by the protocol field, connections only from the first', () => {
    const ps = [
      at(1, 0, ipv4({ src: '10.0.0.1', dst: '9.9.9.9', proto: 17, id: 5, mf: true, payload: udp(7000, 7001, 16) })),
      at(1, 1, ipv4({ src: '10.0.0.1', dst: '9.9.9.9', proto: 17, id: 5, fragOffset: 16, payload: [1, 2, 3, 4] })),
      at(1, 2, ipv4({ src: '9.9.9.9', dst: '10.0.0.1', proto: 6, id: 6, fragOffset: 8, payload: tcp(1, 2, 0x02) })),
    ];
    const r = computeReference(ps, { net: N });
    expect(r.traffic.get(ip('10.0.0.1'))).toEqual(t([40, 60, 40, 0, 0, 60, 0, 0]));
    expect(r.connections.map((x) => [x.kind, x.port])).toEqual([['udp', 7001]]);
    expect(r.stats).toMatchObject({ firstFragments: 1, nonFirstFragments: 2 });
  });

  it('/proc text: headers with double tabs, single-tab rows, numeric sort, zero rows left out', () => {
    const max = { ...t([0, 0, 0, 0, 0, 0, 0, 0]), totalOut: 2n ** 64n - 1n };
    const traffic = new Map<number, TrafficRow>([
      [ip('10.0.0.10'), t([1, 0, 0, 0, 0, 0, 1, 0])],
      [ip('10.0.0.9'), t([0, 0, 0, 0, 0, 0, 0, 0])],
      [ip('10.0.0.2'), max],
    ]);
    expect(formatTraffic({ traffic })).toBe(
      'IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n10.0.0.2\t0\t18446744073709551615\t0\t0\t0\t0\t0\t0\n10.0.0.10\t1\t0\t0\t0\t0\t0\t1\t0\n',
    );
    expect(IPCONN_HEADER).toBe('IP\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n');
    expect(PORTCONN_HEADER).toBe('PORT\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n');
    const ipconn = new Map<number, ConnRow>([[ip('255.255.255.255'), c([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])]]);
    expect(formatIpconn({ ipconn })).toBe(`${IPCONN_HEADER}255.255.255.255\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\n`);
    expect(formatIp(ip('0.0.0.0'))).toBe('0.0.0.0');
  });

  it('diffProc names the rows that differ', () => {
    const a = `${TRAFFIC_HEADER}1.1.1.1\t1\t0\t0\t0\t0\t0\t1\t0\n2.2.2.2\t1\t0\t1\t0\t0\t0\t0\t0\n`;
    const b = `${TRAFFIC_HEADER}1.1.1.1\t2\t0\t0\t0\t0\t0\t2\t0\n3.3.3.3\t1\t0\t1\t0\t0\t0\t0\t0\n`;
    expect(diffProc(a, b).split('\n')).toEqual([
      'row 1.1.1.1: expected "1.1.1.1\\t1\\t0\\t0\\t0\\t0\\t0\\t1\\t0" got "1.1.1.1\\t2\\t0\\t0\\t0\\t0\\t0\\t2\\t0"',
      'missing row: "2.2.2.2\\t1\\t0\\t1\\t0\\t0\\t0\\t0\\t0"',
      'unexpected row: "3.3.3.3\\t1\\t0\\t1\\t0\\t0\\t0\\t0\\t0"',
    ]);
    expect(diffProc(a, a)).toBe('');
  });

  it('retime spaces frames by 1/pps from frame 1', () => {
    const p = at(5, 5, ipv4({ payload: udp(1, 2) }));
    const r = retime([{ ...p, frame: 1 }, { ...p, frame: 2001 }, { ...p, frame: 2 }], 2000, { tsSec: 10, tsNsec: 999_999_999 });
    expect([r[0]!.tsSec, r[0]!.tsNsec]).toEqual([10, 999_999_999]);
    expect([r[2]!.tsSec, r[2]!.tsNsec]).toEqual([11, 500_000 - 1]);
    expect([r[1]!.tsSec, r[1]!.tsNsec]).toEqual([11, 999_999_999]);
  });
});

describe('defragmentation model (nf_defrag_ipv4)', () => {
  const f = (o: IpOpts, s = 1): PcapFrame => frame(eth(0x0800, ipv4({ src: '10.0.0.1', dst: '9.9.9.9', id: 9, ...o })), s);
  const cap = (frames: PcapFrame[]) => ({
    littleEndian: true,
    nanosecond: false,
    versionMajor: 2,
    versionMinor: 4,
    snaplen: 65535,
    linktype: 1,
    frames: frames.map((x, i) => ({ ...x, number: i + 1 })),
  });
  const a = udp(1, 2, 16); // bytes 0..16
  const b = Array.from({ length: 16 }, (_, i) => i); // 16..32
  const z = [9, 9, 9]; // last: 32..35

  it('reassembles out of order and emits at the completing fragment', () => {
    const r = preroutingPackets(cap([f({ fragOffset: 32, payload: z }), f({ mf: true, payload: a }), f({ fragOffset: 16, mf: true, payload: b })]), {
      defrag: true,
    });
    expect(r.packets.length).toBe(1);
    const p = r.packets[0]!;
    expect([p.frame, p.totLen, p.fragOffset, p.moreFragments, p.fragments]).toEqual([3, 20 + 35, 0, false, [1, 2, 3]]);
    expect(Array.from(p.payload.subarray(16, 35))).toEqual([...b, ...z]);
    expect(r.defrag).toEqual({ fragmentsIn: 3, reassembled: 1, duplicates: 0, lost: 0, incompleteQueues: 0 });
    // Unfragmented packets pass through unchanged.
    expect(preroutingPackets(cap([f({ payload: a })]), { defrag: true }).packets.length).toBe(1);
  });
  it('drops duplicates, kills a queue on overlap, holds incomplete ones', () => {
    const dup = preroutingPackets(cap([f({ mf: true, payload: a }), f({ mf: true, payload: a }), f({ fragOffset: 16, payload: b })]), { defrag: true });
    expect(dup.packets.length).toBe(1);
    expect(dup.defrag).toMatchObject({ duplicates: 1, reassembled: 1, lost: 0 });
    const ovl = preroutingPackets(cap([f({ mf: true, payload: a }), f({ fragOffset: 8, mf: true, payload: b }), f({ fragOffset: 24, payload: z })]), {
      defrag: true,
    });
    // The overlap kills the queue (2 fragments lost); the last fragment opens a new queue
    // that never completes.
    expect(ovl.packets.length).toBe(0);
    expect(ovl.defrag).toMatchObject({ reassembled: 0, lost: 3, incompleteQueues: 1 });
    const held = preroutingPackets(cap([f({ fragOffset: 16, payload: b })]), { defrag: true });
    expect(held.packets.length).toBe(0);
    expect(held.defrag).toMatchObject({ lost: 1, incompleteQueues: 1 });
  });
  it('expires a queue after fragTimeout', () => {
    const frames = [f({ mf: true, payload: a }, 1), f({ fragOffset: 16, payload: b }, 40)];
    expect(preroutingPackets(cap(frames), { defrag: true }).packets.length).toBe(0);
    expect(preroutingPackets(cap(frames), { defrag: true, fragTimeout: 60 }).packets.length).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------
// The four captures
// ---------------------------------------------------------------------------------------

function sumTraffic(m: Map<number, TrafficRow>, k: keyof TrafficRow): bigint {
  let s = 0n;
  for (const r of m.values()) s += r[k];
  return s;
}

describe('zeek wikipedia.pcap', () => {
  const pcap = readPcap(WIKI);
  const pr = preroutingPackets(pcap);
  it('skips ARP 6, IPv6 5, STP 4 (802.3 LLC); 121 IPv4 packets reach PREROUTING', () => {
    expect(pr.skipped).toEqual(skips({ arp: 6, ipv6: 5, llc: 4 }));
    expect(pr.packets.length).toBe(121);
    // SOURCES.md: TCP 78, UDP 43.
    expect(pr.packets.filter((p) => p.proto === 6).length).toBe(78);
    expect(pr.packets.filter((p) => p.proto === 17).length).toBe(43);
  });
  it('/24: the client .118, DNS server outside, directed broadcast .255 counted as a host', () => {
    const r = computeReference(pr.packets, { net: net('141.142.220.0', 24) });
    // tcpdump: TCP 78 packets, 17987 bytes, all between .118/.235 and outside.
    expect(sumTraffic(r.traffic, 'tcpIn') + sumTraffic(r.traffic, 'tcpOut')).toBe(17987n);
    // .118: TCP in 7072 / out 10867 (HTTP), DNS replies in 2205 / queries out 976.
    expect(r.traffic.get(ip('141.142.220.118'))).toEqual(t([9277, 11843, 7072, 10867, 2205, 976, 0, 0]));
    // NBNS broadcasts to .255: 8 packets, 624 bytes, internal (counted in for .255).
    expect(r.traffic.get(ip('141.142.220.255'))).toEqual(t([624, 0, 0, 0, 624, 0, 0, 0]));
    expect(r.traffic.has(ip('141.142.2.2'))).toBe(false);
    // 8 pure SYNs (SOURCES.md), all from .118 to port 80.
    expect(r.ipconn.get(ip('141.142.220.118'))).toEqual(c([0, 22, 0, 8, 0, 14, 0, 0, 0, 0]));
    expect(r.portconn.get(80)).toEqual(c([0, 8, 0, 8, 0, 0, 0, 0, 0, 0]));
    // 28 DNS packets = 14 query/answer flows to 141.142.2.2:53.
    expect(r.portconn.get(53)).toEqual(c([0, 14, 0, 0, 0, 14, 0, 0, 0, 0]));
    // NBNS: two flows .x:137 -> .255:137, internal: in and out on port 137.
    expect(r.portconn.get(137)).toEqual(c([2, 2, 0, 0, 2, 2, 0, 0, 0, 0]));
    expect([...r.portconn.keys()].sort((x, y) => x - y)).toEqual([53, 80, 137, 5353, 5355]);
    expect(r.stats).toMatchObject({ packets: 121, counted: 121, outside: 0 });
    // 8 traffic rows: .44 .50 .118 .202 .226 .235 .238 .255 (SOURCES.md hosts).
    expect([...r.traffic.keys()].map(formatIp).sort()).toEqual(
      ['141.142.220.118', '141.142.220.202', '141.142.220.226', '141.142.220.235', '141.142.220.238', '141.142.220.255', '141.142.220.44', '141.142.220.50'],
    );
  });
  it('/16 flips the DNS server 141.142.2.2 inside', () => {
    const r = computeReference(pr.packets, { net: net('141.142.0.0', 16) });
    expect(r.traffic.get(ip('141.142.2.2'))).toEqual(t([976, 2205, 0, 0, 976, 2205, 0, 0]));
    expect(r.ipconn.get(ip('141.142.2.2'))).toEqual(c([14, 0, 0, 0, 14, 0, 0, 0, 0, 0]));
    expect(r.portconn.get(53)).toEqual(c([14, 14, 0, 0, 14, 14, 0, 0, 0, 0]));
    const ni = computeReference(pr.packets, { net: net('141.142.0.0', 16), nointernal: true });
    // Left with HTTP (external) and the multicast mDNS/LLMNR (destination outside).
    expect(ni.traffic.has(ip('141.142.2.2'))).toBe(false);
    expect(ni.traffic.get(ip('141.142.220.118'))).toEqual(t([7072, 10867, 7072, 10867, 0, 0, 0, 0]));
    expect(ni.portconn.has(53)).toBe(false);
  });
});

describe('appneta test.pcap', () => {
  const pcap = readPcap(TEST);
  const pr = preroutingPackets(pcap);
  it('skips MPLS 16, IPv6 10, ARP 1, IS-IS 1 (LLC), loopback 1, bad IP checksum 2 (frames 12, 14)', () => {
    expect(pr.skipped).toEqual(skips({ mpls: 16, ipv6: 10, arp: 1, llc: 1, loopback: 1, 'ip-checksum': 2 }));
    expect(pr.packets.length).toBe(148);
    const bad = pcap.frames.filter((fr) => decodeFrame(fr) === 'ip-checksum').map((fr) => fr.number);
    expect(bad).toEqual([12, 14]);
  });
  it('/24: TCP external, DNS and ICMP unreachables internal (.12 <-> resolver .1)', () => {
    const r = computeReference(pr.packets, { net: net('172.16.11.0', 24) });
    // tcpdump: TCP 106 packets 58214 bytes, UDP 28 packets 2152 bytes.
    expect(r.traffic.get(ip('172.16.11.12'))).toEqual(t([52633, 8069, 51407, 6807, 1226, 926, 0, 336]));
    expect(r.traffic.get(ip('172.16.11.1'))).toEqual(t([1262, 1226, 0, 0, 926, 1226, 336, 0]));
    expect(r.traffic.size).toBe(2);
    // 5 SYNs from .12 to port 80; 12 DNS flows; 6 port unreachables .12 -> .1 = one flow.
    expect(r.ipconn.get(ip('172.16.11.12'))).toEqual(c([0, 18, 0, 5, 0, 12, 0, 1, 0, 0]));
    expect(r.ipconn.get(ip('172.16.11.1'))).toEqual(c([13, 0, 0, 0, 12, 0, 1, 0, 0, 0]));
    expect(formatAll(r).portconn).toBe(
      `${PORTCONN_HEADER}0\t1\t1\t0\t0\t0\t0\t1\t1\t0\t0\n53\t12\t12\t0\t0\t12\t12\t0\t0\t0\t0\n80\t0\t5\t0\t5\t0\t0\t0\t0\t0\t0\n`,
    );
    // Outside the net: ICMP echo 10.x/192.168.x (6), IGMP 235.247.89.226 -> 224.0.0.1 (1 of 2
    // with a good checksum), EIGRP 10.1.2.2 -> 224.0.0.10 (1).
    expect(r.stats).toMatchObject({ packets: 148, counted: 140, outside: 8 });
    const ni = computeReference(pr.packets, { net: net('172.16.11.0', 24), nointernal: true });
    expect(formatTraffic(ni)).toBe(`${TRAFFIC_HEADER}172.16.11.12\t51407\t6807\t51407\t6807\t0\t0\t0\t0\n`);
    const oi = computeReference(pr.packets, { net: net('172.16.11.0', 24), onlyInternal: true });
    expect(formatIpconn(oi)).toBe(`${IPCONN_HEADER}172.16.11.1\t13\t0\t0\t0\t12\t0\t1\t0\t0\t0\n172.16.11.12\t0\t13\t0\t0\t0\t12\t0\t1\t0\t0\n`);
  });
});

describe('tcpdump afs.pcap', () => {
  const pcap = readPcap(AFS);
  const pr = preroutingPackets(pcap);
  const N24 = net('131.151.1.0', 24);
  it('all 601 frames reach PREROUTING: 576 UDP, 25 ICMP, 51 first and 149 non-first fragments', () => {
    expect(pr.skipped).toEqual(zeroSkipCounts());
    expect(pr.packets.length).toBe(601);
    expect(pr.packets.filter((p) => p.proto === 17).length).toBe(576);
    expect(pr.packets.filter((p) => p.proto === 1).length).toBe(25);
    expect(pr.packets.filter((p) => p.fragOffset === 0 && p.moreFragments).length).toBe(51);
    expect(pr.packets.filter((p) => p.fragOffset !== 0).length).toBe(149);
  });
  it('/24: bytes per fragment, connections from first fragments only', () => {
    const r = computeReference(pr.packets, { net: N24 });
    // tcpdump: UDP 493998 bytes, ICMP 9864 bytes, no internal traffic in the /24.
    expect(sumTraffic(r.traffic, 'udpIn') + sumTraffic(r.traffic, 'udpOut')).toBe(493998n);
    expect(sumTraffic(r.traffic, 'otherIn') + sumTraffic(r.traffic, 'otherOut')).toBe(9864n);
    // .146 sends all 200 fragments (to 131.151.32.21).
    expect(r.traffic.get(ip('131.151.1.146'))).toEqual(t([4666, 289878, 0, 0, 4206, 289878, 460, 0]));
    expect(r.stats).toMatchObject({ counted: 601, firstFragments: 51, nonFirstFragments: 149 });
    // Capture time: 17 UDP flows with the 30 s timeout (the .146/.70/.59 flows to 32.x restart
    // after gaps of 30.6, 53.6 and 74.0 s), 3 ICMP port-unreachable flows.
    expect(r.connections.filter((x) => x.kind === 'udp').length).toBe(17);
    expect(r.connections.filter((x) => x.kind === 'icmp').length).toBe(3);
    expect(r.portconn.get(7000)).toEqual(c([6, 0, 0, 0, 6, 0, 0, 0, 0, 0]));
    expect(r.portconn.get(7001)).toEqual(c([0, 3, 0, 0, 0, 3, 0, 0, 0, 0]));
    expect(r.ipconn.get(ip('131.151.1.146'))).toEqual(c([5, 0, 0, 0, 4, 0, 1, 0, 0, 0]));
    // Compressed time (a replay at 2000 pps): no flow ever times out, so the three restarts
    // (frames 122 .146:7000 after 30.6 s, 281 .59->32.91:7001 after 74.0 s, 404 .70:7000
    // after 53.6 s) are not new connections.
    const fast = computeReference(retime(pr.packets, 2000), { net: N24 });
    const fastFrames = new Set(fast.connections.map((x) => x.frame));
    expect(r.connections.map((x) => x.frame).filter((fr) => !fastFrames.has(fr))).toEqual([122, 281, 404]);
    expect(fast.connections.length).toBe(17);
    expect(fast.portconn.get(7000)).toEqual(c([4, 0, 0, 0, 4, 0, 0, 0, 0, 0]));
    expect(fast.portconn.get(7001)).toEqual(c([0, 2, 0, 0, 0, 2, 0, 0, 0, 0]));
    // A timed replay 5 times faster with flow_timeout 5 s is the capture with a 25 s
    // timeout: same-flow gaps are 19.86 s or less, or 30.61 s or more, so the same 20.
    const timed = computeReference(scaleTime(pr.packets, 5, pcap.frames[0]!), { net: N24, flowTimeout: 5 });
    expect(timed.connections.map((x) => x.frame)).toEqual(r.connections.map((x) => x.frame));
    expect(computeReference(pr.packets, { net: N24, flowTimeout: 19 }).connections.length).toBe(21);
  });
  it('with nf_defrag_ipv4: 51 datagrams out of 200 fragments, 149 headers (2980 bytes) fewer', () => {
    const d = preroutingPackets(pcap, { defrag: true });
    expect(d.defrag).toEqual({ fragmentsIn: 200, reassembled: 51, duplicates: 0, lost: 0, incompleteQueues: 0 });
    expect(d.packets.length).toBe(601 - 200 + 51);
    const r = computeReference(d.packets, { net: N24 });
    expect(r.traffic.get(ip('131.151.1.146'))).toEqual(t([4666, 289878 - 149 * 20, 0, 0, 4206, 289878 - 149 * 20, 460, 0]));
    // The connections are the same: each datagram's first fragment started its flow anyway.
    expect(formatIpconn(r)).toBe(formatIpconn(computeReference(pr.packets, { net: N24 })));
  });
  it('/16 makes everything internal', () => {
    const r = computeReference(pr.packets, { net: net('131.151.0.0', 16), nointernal: true });
    expect(r.traffic.size).toBe(0);
    expect(r.stats.internalSkipped).toBe(601);
    expect(formatAll(r)).toEqual({ traffic: TRAFFIC_HEADER, ipconn: IPCONN_HEADER, portconn: PORTCONN_HEADER });
  });
});

describe('tcpdump various_gre.pcap', () => {
  const pcap = readPcap(GRE);
  it('without a VLAN interface nothing reaches PREROUTING', () => {
    const pr = preroutingPackets(pcap);
    // 51 tagged (30 GRE + 21 STP), 42 untagged STP + DTP + CDP = 44 LLC, 5 loopback.
    expect(pr.skipped).toEqual(skips({ vlan: 51, llc: 44, loopback: 5 }));
    expect(pr.packets.length).toBe(0);
  });
  it('with VLAN 1213 stripped: 30 GRE packets, 15 each way, one "other" flow', () => {
    const pr = preroutingPackets(pcap, { vlanIds: [1213] });
    expect(pr.skipped).toEqual(skips({ llc: 65, loopback: 5 }));
    expect(pr.packets.length).toBe(30);
    expect(pr.packets.every((p) => p.proto === 47)).toBe(true);
    const r = computeReference(pr.packets, { net: net('10.172.64.0', 24) });
    // Inner IPs (172.17.1.x) are not counted: only the outer GRE header addresses.
    expect(formatAll(r)).toEqual({
      traffic: `${TRAFFIC_HEADER}10.172.64.6\t1523\t1523\t0\t0\t0\t0\t1523\t1523\n10.172.64.7\t1523\t1523\t0\t0\t0\t0\t1523\t1523\n`,
      ipconn: `${IPCONN_HEADER}10.172.64.6\t1\t0\t0\t0\t0\t0\t0\t0\t1\t0\n10.172.64.7\t0\t1\t0\t0\t0\t0\t0\t0\t0\t1\n`,
      portconn: `${PORTCONN_HEADER}0\t1\t1\t0\t0\t0\t0\t0\t0\t1\t1\n`,
    });
    expect(pr.packets.filter((p) => formatIp(p.src) === '10.172.64.6').length).toBe(15);
  });
});
