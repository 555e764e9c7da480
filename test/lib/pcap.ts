/*
 * Classic pcap reader and an independent reference calculator for xt_traffic.
 *
 * The reference implements the counting rules of docs/design.md ("Counting rules" and the
 * /proc formats) from the packets of a capture, without looking at the module. It models
 * which frames of a capture reach the IPv4 PREROUTING hook of a plain Linux receiver
 * (ip_rcv_core() of Linux 6.1/6.12, after `tc ... skbedit ptype host` turned every frame
 * into PACKET_HOST), optionally after nf_defrag_ipv4 reassembly.
 *
 * Pure TypeScript, node built-ins only.
 */
import { readFileSync } from 'node:fs';
import { formatIPv6 } from '../../src/core/ip.js';

// ---------------------------------------------------------------------------------------
// pcap files
// ---------------------------------------------------------------------------------------

export const LINKTYPE_ETHERNET = 1;

export interface PcapFrame {
  /** 1-based frame number, as tcpdump -# and Wireshark number them. */
  readonly number: number;
  /** Seconds part of the timestamp. */
  readonly tsSec: number;
  /** Sub-second part of the timestamp in nanoseconds (microsecond files are scaled). */
  readonly tsNsec: number;
  /** Length on the wire (the capture may hold less: data.length is the captured length). */
  readonly origLen: number;
  readonly data: Uint8Array;
}

export interface Pcap {
  readonly littleEndian: boolean;
  readonly nanosecond: boolean;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly snaplen: number;
  readonly linktype: number;
  readonly frames: PcapFrame[];
}

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;

/** Parses a classic pcap file (not pcapng): either byte order, µs or ns timestamps. */
export function parsePcap(buf: Uint8Array): Pcap {
  if (buf.length < 24) throw new Error(`pcap: file too short for a global header (${buf.length} bytes)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let littleEndian: boolean;
  let nanosecond: boolean;
  const le = dv.getUint32(0, true);
  const be = dv.getUint32(0, false);
  if (le === MAGIC_US || le === MAGIC_NS) {
    littleEndian = true;
    nanosecond = le === MAGIC_NS;
  } else if (be === MAGIC_US || be === MAGIC_NS) {
    littleEndian = false;
    nanosecond = be === MAGIC_NS;
  } else {
    throw new Error(`pcap: unknown magic 0x${be.toString(16).padStart(8, '0')} (pcapng is not supported)`);
  }
  const versionMajor = dv.getUint16(4, littleEndian);
  const versionMinor = dv.getUint16(6, littleEndian);
  const snaplen = dv.getUint32(16, littleEndian);
  // The upper bits of the link type field may carry FCS information (LINKTYPE_FCS_LEN).
  const linktype = dv.getUint32(20, littleEndian) & 0x0fffffff;
  const frames: PcapFrame[] = [];
  let off = 24;
  while (off < buf.length) {
    if (off + 16 > buf.length) throw new Error(`pcap: truncated record header at offset ${off}`);
    const tsSec = dv.getUint32(off, littleEndian);
    const frac = dv.getUint32(off + 4, littleEndian);
    const capLen = dv.getUint32(off + 8, littleEndian);
    const origLen = dv.getUint32(off + 12, littleEndian);
    if (nanosecond ? frac >= 1e9 : frac >= 1e6) throw new Error(`pcap: bad sub-second timestamp ${frac} in frame ${frames.length + 1}`);
    if (off + 16 + capLen > buf.length) throw new Error(`pcap: truncated frame ${frames.length + 1} at offset ${off}`);
    frames.push({
      number: frames.length + 1,
      tsSec,
      tsNsec: nanosecond ? frac : frac * 1000,
      origLen,
      data: buf.subarray(off + 16, off + 16 + capLen),
    });
    off += 16 + capLen;
  }
  return { littleEndian, nanosecond, versionMajor, versionMinor, snaplen, linktype, frames };
}

export function readPcap(path: string): Pcap {
  return parsePcap(readFileSync(path));
}

/** Writes a classic pcap file (for fixtures: other byte orders, ns stamps, edited frames). */
export function writePcap(
  frames: readonly Pick<PcapFrame, 'tsSec' | 'tsNsec' | 'origLen' | 'data'>[],
  opts: { littleEndian?: boolean; nanosecond?: boolean; snaplen?: number; linktype?: number } = {},
): Buffer {
  const littleEndian = opts.littleEndian ?? true;
  const nanosecond = opts.nanosecond ?? false;
  const size = 24 + frames.reduce((n, f) => n + 16 + f.data.length, 0);
  const out = Buffer.alloc(size);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  dv.setUint32(0, nanosecond ? MAGIC_NS : MAGIC_US, littleEndian);
  dv.setUint16(4, 2, littleEndian);
  dv.setUint16(6, 4, littleEndian);
  dv.setUint32(16, opts.snaplen ?? 262144, littleEndian);
  dv.setUint32(20, opts.linktype ?? LINKTYPE_ETHERNET, littleEndian);
  let off = 24;
  for (const f of frames) {
    if (!nanosecond && f.tsNsec % 1000 !== 0) throw new Error('pcap: a µs file cannot hold a ns timestamp');
    dv.setUint32(off, f.tsSec, littleEndian);
    dv.setUint32(off + 4, nanosecond ? f.tsNsec : f.tsNsec / 1000, littleEndian);
    dv.setUint32(off + 8, f.data.length, littleEndian);
    dv.setUint32(off + 12, f.origLen, littleEndian);
    out.set(f.data, off + 16);
    off += 16 + f.data.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Which frames reach IPv4 PREROUTING
// ---------------------------------------------------------------------------------------

/**
 * Why a frame never reaches the IPv4 PREROUTING hook of the receiver. Each reason is one
 * rule of the kernel's receive path; the comments name where the kernel decides it.
 */
export const SKIP_REASONS = [
  /** Shorter than an Ethernet header (eth_type_trans needs 14 bytes). */
  'runt',
  /**
   * Type/length field < 0x600: an IEEE 802.3 frame (LLC/SNAP: STP, CDP, DTP, IS-IS...).
   * eth_type_trans() gives it ETH_P_802_2/ETH_P_802_3, never ETH_P_IP.
   */
  'llc',
  /** ARP (0x0806): arp_rcv, not ip_rcv. */
  'arp',
  /** IPv6 (0x86dd): ipv6_rcv; an IPv4 rule never sees it. */
  'ipv6',
  /**
   * 802.1Q / 802.1ad tagged (0x8100 / 0x88a8) with a non-zero VLAN id that has no VLAN
   * sub-interface on the receiver: __netif_receive_skb_core() untags it, finds no VLAN
   * device and marks it PACKET_OTHERHOST *after* the tc ingress hook, so ip_rcv_core()
   * drops it. (The caller lists the VLAN ids that have a sub-interface in `vlanIds`; a frame
   * of those is decoded further with its inner type. VLAN id 0, priority tagging, is
   * untagged and delivered on the base device. Stacked tags are counted here too unless the
   * outer id is a listed one and the inner tag is then judged by the same rule.)
   */
  'vlan',
  /** MPLS (0x8847 / 0x8848): mpls_forward is inactive without net.mpls.platform_labels. */
  'mpls',
  /** Ethernet configuration testing protocol "Loopback" (0x9000): no handler. */
  'loopback',
  /** Any other Ethernet II type (LLDP, PPPoE, EAPOL, ...): not IPv4. */
  'ethertype',
  /** IPv4 type, but fewer than 20 bytes after the link header (pskb_may_pull(iphdr) fails). */
  'ip-short',
  /** IPv4 version field != 4 (ip_rcv_core: `iph->version != 4`). */
  'ip-version',
  /** IHL < 5 (ip_rcv_core: `iph->ihl < 5`), or the header is longer than the frame. */
  'ip-ihl',
  /** Header checksum wrong (ip_rcv_core: ip_fast_csum() != 0). */
  'ip-checksum',
  /** tot_len larger than the bytes received (ip_rcv_core: `skb->len < len`). */
  'ip-totlen-long',
  /** tot_len smaller than the header (ip_rcv_core: `len < iph->ihl * 4`). */
  'ip-totlen-short',
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];
export type SkipCounts = Record<SkipReason, number>;

export function zeroSkipCounts(): SkipCounts {
  return Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as SkipCounts;
}

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** An IPv4 packet as the PREROUTING hook sees it (after ip_rcv_core trimmed it to tot_len). */
export interface Ipv4Packet {
  /** Frame number in the capture (for a reassembled datagram: the frame that completed it). */
  readonly frame: number;
  readonly tsSec: number;
  readonly tsNsec: number;
  readonly src: number; // host-order unsigned 32-bit
  readonly dst: number;
  readonly proto: number;
  /** IPv4 total length: the bytes the module counts. */
  readonly totLen: number;
  readonly ihl: number; // bytes
  readonly id: number;
  /** Fragment offset in bytes. */
  readonly fragOffset: number;
  readonly moreFragments: boolean;
  /** The IP payload (tot_len - ihl bytes). */
  readonly payload: Uint8Array;
  /** Frame numbers of the fragments it was reassembled from (only for reassembled ones). */
  readonly fragments?: readonly number[];
}

export interface PreroutingOptions {
  /** VLAN ids that have a VLAN sub-interface on the receiver (the tag is stripped). */
  vlanIds?: readonly number[];
  /** Model nf_defrag_ipv4 (conntrack active in the netns): reassemble before PREROUTING. */
  defrag?: boolean;
  /** ipfrag_time in seconds for `defrag` (default 30, net.ipv4.ipfrag_time). */
  fragTimeout?: number;
}

export interface DefragStats {
  /** Fragments that went into the defrag engine. */
  fragmentsIn: number;
  /** Datagrams that came out reassembled. */
  reassembled: number;
  /** Exact duplicates dropped (IPFRAG_DUP), queue kept. */
  duplicates: number;
  /** Fragments lost in queues killed for overlap, inconsistency or timeout, or left incomplete. */
  lost: number;
  /** Queues still incomplete at the end of the capture. */
  incompleteQueues: number;
}

export interface PreroutingResult {
  readonly frames: number;
  readonly packets: Ipv4Packet[];
  readonly skipped: SkipCounts;
  /** Only when options.defrag. */
  readonly defrag?: DefragStats;
}

const ETH_P_IP = 0x0800;
const ETH_P_ARP = 0x0806;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_MPLS_UC = 0x8847;
const ETH_P_MPLS_MC = 0x8848;
const ETH_P_LOOPBACK = 0x9000;
const ETH_P_802_3_MIN = 0x0600;

function be16(d: Uint8Array, o: number): number {
  return ((d[o] ?? 0) << 8) | (d[o + 1] ?? 0);
}
function be32(d: Uint8Array, o: number): number {
  return (((d[o] ?? 0) << 24) | ((d[o + 1] ?? 0) << 16) | ((d[o + 2] ?? 0) << 8) | (d[o + 3] ?? 0)) >>> 0;
}

/** RFC 1071 one's complement sum over `len` bytes; 0xffff (i.e. result 0 after ~) = valid. */
export function ipChecksumOk(d: Uint8Array, off: number, len: number): boolean {
  let sum = 0;
  for (let i = 0; i < len; i += 2) sum += be16(d, off + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

/**
 * Classifies one Ethernet frame: either the IPv4 packet that ip_rcv_core() passes on to
 * PREROUTING, or the reason it never gets there.
 */
export function decodeFrame(frame: PcapFrame, vlanIds: readonly number[] = []): Ipv4Packet | SkipReason {
  const d = frame.data;
  if (d.length < 14) return 'runt';
  let type = be16(d, 12);
  let off = 14;
  // VLAN tags: the kernel untags (skb_vlan_untag) and either hands the frame to the VLAN
  // device of that id or marks it PACKET_OTHERHOST (dropped by ip_rcv_core).
  while (type === ETH_P_8021Q || type === ETH_P_8021AD) {
    if (d.length < off + 4) return 'runt';
    const vid = be16(d, off) & 0x0fff;
    if (vid !== 0 && !vlanIds.includes(vid)) return 'vlan';
    type = be16(d, off + 2);
    off += 4;
  }
  if (type < ETH_P_802_3_MIN) return 'llc';
  switch (type) {
    case ETH_P_IP:
      break;
    case ETH_P_ARP:
      return 'arp';
    case ETH_P_IPV6:
      return 'ipv6';
    case ETH_P_MPLS_UC:
    case ETH_P_MPLS_MC:
      return 'mpls';
    case ETH_P_LOOPBACK:
      return 'loopback';
    default:
      return 'ethertype';
  }
  // ip_rcv_core(): skb->len is what follows the link header(s), as captured and replayed.
  const len = d.length - off;
  if (len < 20) return 'ip-short';
  const v = d[off]!;
  const version = v >> 4;
  const ihl = (v & 0x0f) * 4;
  // The kernel tests `iph->ihl < 5 || iph->version != 4` in one condition; the order here
  // only decides which name a doubly broken header gets.
  if (version !== 4) return 'ip-version';
  if (ihl < 20 || ihl > len) return 'ip-ihl';
  if (!ipChecksumOk(d, off, ihl)) return 'ip-checksum';
  const totLen = be16(d, off + 2);
  if (len < totLen) return 'ip-totlen-long';
  if (totLen < ihl) return 'ip-totlen-short';
  const frag = be16(d, off + 6);
  return {
    frame: frame.number,
    tsSec: frame.tsSec,
    tsNsec: frame.tsNsec,
    src: be32(d, off + 12),
    dst: be32(d, off + 16),
    proto: d[off + 9]!,
    totLen,
    ihl,
    id: be16(d, off + 4),
    fragOffset: (frag & 0x1fff) * 8,
    moreFragments: (frag & 0x2000) !== 0,
    payload: d.subarray(off + ihl, off + totLen),
  };
}

/** Nanoseconds from `a` to `b` (exact for gaps up to ~100 days). */
export function gapNs(a: { tsSec: number; tsNsec: number }, b: { tsSec: number; tsNsec: number }): number {
  return (b.tsSec - a.tsSec) * 1e9 + (b.tsNsec - a.tsNsec);
}

interface FragQueue {
  first: Ipv4Packet | undefined; // fragment with offset 0
  created: { tsSec: number; tsNsec: number };
  /** Received ranges [offset, end) with their payloads, sorted by offset. */
  runs: { offset: number; end: number; data: Uint8Array; frame: number }[];
  len: number; // known datagram payload length so far (max end, or exact once last is in)
  lastIn: boolean;
  frames: number[];
}

/**
 * Models ip_defrag() as nf_defrag_ipv4 runs it at priority -400, before the raw table:
 * queues keyed by (src, dst, id, proto); a fragment wholly inside received data is a
 * duplicate (dropped, queue kept: IPFRAG_DUP); a partial overlap, a second different last
 * fragment, data past the last fragment's end or an empty fragment kill the queue; a queue
 * older than ipfrag_time dies when its timer fires (modelled lazily at the next packet time,
 * which is all the reference can observe). A complete datagram continues to PREROUTING as
 * one packet with tot_len = first fragment's header + whole payload, at the position of the
 * fragment that completed it. Fragments of incomplete queues never reach PREROUTING.
 */
class Defragmenter {
  readonly stats: DefragStats = { fragmentsIn: 0, reassembled: 0, duplicates: 0, lost: 0, incompleteQueues: 0 };
  private readonly queues = new Map<string, FragQueue>();
  constructor(private readonly timeoutNs: number) {}

  private expire(now: { tsSec: number; tsNsec: number }): void {
    for (const [k, q] of this.queues) {
      if (gapNs(q.created, now) > this.timeoutNs) {
        this.stats.lost += q.frames.length;
        this.queues.delete(k);
      }
    }
  }

  private kill(key: string, q: FragQueue, extra: number): undefined {
    this.stats.lost += q.frames.length + extra;
    this.queues.delete(key);
    return undefined;
  }

  /** Returns the reassembled datagram when `p` completes one. */
  push(p: Ipv4Packet): Ipv4Packet | undefined {
    this.stats.fragmentsIn++;
    this.expire(p);
    const key = `${p.src}/${p.dst}/${p.id}/${p.proto}`;
    let q = this.queues.get(key);
    if (!q) {
      q = { first: undefined, created: p, runs: [], len: 0, lastIn: false, frames: [] };
      this.queues.set(key, q);
    }
    const offset = p.fragOffset;
    let end = offset + p.payload.length;
    let data = p.payload;
    if (!p.moreFragments) {
      // Last fragment: must not end before data already seen, nor disagree with a last one.
      if (end < q.len || (q.lastIn && end !== q.len)) return this.kill(key, q, 1);
      q.lastIn = true;
      q.len = end;
    } else {
      // Not last: the kernel trims the payload to a multiple of 8.
      if (end & 7) {
        end &= ~7;
        data = data.subarray(0, end - offset);
      }
      if (end > q.len) {
        if (q.lastIn) return this.kill(key, q, 1);
        q.len = end;
      }
    }
    if (end === offset) return this.kill(key, q, 1);
    // inet_frag_queue_insert(): duplicates are dropped, overlaps kill the queue.
    for (const r of q.runs) {
      if (end <= r.offset || offset >= r.end) continue;
      if (offset >= r.offset && end <= r.end) {
        this.stats.duplicates++;
        return undefined;
      }
      return this.kill(key, q, 1);
    }
    q.runs.push({ offset, end, data, frame: p.frame });
    q.runs.sort((a, b) => a.offset - b.offset);
    q.frames.push(p.frame);
    if (offset === 0) q.first = p;
    if (!q.first || !q.lastIn) return undefined;
    let covered = 0;
    for (const r of q.runs) {
      if (r.offset !== covered) return undefined;
      covered = r.end;
    }
    if (covered !== q.len) return undefined;
    this.queues.delete(key);
    if (q.first.ihl + q.len > 0xffff) {
      this.stats.lost += q.frames.length;
      return undefined;
    }
    const payload = new Uint8Array(q.len);
    for (const r of q.runs) payload.set(r.data, r.offset);
    this.stats.reassembled++;
    return {
      frame: p.frame,
      tsSec: p.tsSec,
      tsNsec: p.tsNsec,
      src: p.src,
      dst: p.dst,
      proto: p.proto,
      totLen: q.first.ihl + q.len,
      ihl: q.first.ihl,
      id: p.id,
      fragOffset: 0,
      moreFragments: false,
      payload,
      fragments: [...q.frames],
    };
  }

  finish(): void {
    for (const q of this.queues.values()) {
      this.stats.lost += q.frames.length;
      this.stats.incompleteQueues++;
    }
    this.queues.clear();
  }
}

/** The IPv4 packets of a capture that reach PREROUTING, in order, and why the rest do not. */
export function preroutingPackets(pcap: Pcap, opts: PreroutingOptions = {}): PreroutingResult {
  if (pcap.linktype !== LINKTYPE_ETHERNET) throw new Error(`pcap: link type ${pcap.linktype} is not Ethernet`);
  const skipped = zeroSkipCounts();
  const packets: Ipv4Packet[] = [];
  const defrag = opts.defrag ? new Defragmenter((opts.fragTimeout ?? 30) * 1e9) : undefined;
  for (const f of pcap.frames) {
    const r = decodeFrame(f, opts.vlanIds);
    if (typeof r === 'string') {
      skipped[r]++;
      continue;
    }
    if (defrag && (r.moreFragments || r.fragOffset !== 0)) {
      const whole = defrag.push(r);
      if (whole) packets.push(whole);
      continue;
    }
    packets.push(r);
  }
  defrag?.finish();
  return defrag
    ? { frames: pcap.frames.length, packets, skipped, defrag: defrag.stats }
    : { frames: pcap.frames.length, packets, skipped };
}

// ---------------------------------------------------------------------------------------
// The reference counters
// ---------------------------------------------------------------------------------------

export interface Net {
  /** Host-order base address. */
  readonly base: number;
  /** Host-order mask. */
  readonly mask: number;
}

export function parseIp(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) throw new Error(`not a dotted-quad IPv4 address: ${s}`);
  const parts = m.slice(1).map(Number);
  if (parts.some((x) => x > 255)) throw new Error(`not a dotted-quad IPv4 address: ${s}`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function formatIp(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** `net('141.142.220.0', 24)` or `net('141.142.220.0', '255.255.255.0')`. */
export function net(base: string, mask: string | number): Net {
  const m = typeof mask === 'number' ? (mask === 0 ? 0 : (0xffffffff << (32 - mask)) >>> 0) : parseIp(mask);
  const b = parseIp(base);
  if ((b & ~m) >>> 0 !== 0) throw new Error(`net base ${base} is not aligned to the mask`);
  return { base: b, mask: m };
}

export function inNet(n: Net, ip: number): boolean {
  return (ip & n.mask) >>> 0 === n.base;
}

export interface ReferenceOptions {
  readonly net: Net;
  /** --nointernal: leave out packets whose source and destination are both inside. */
  readonly nointernal?: boolean;
  /** ! --nointernal: count only those packets. */
  readonly onlyInternal?: boolean;
  /** The module's flow_timeout in seconds (default 30). */
  readonly flowTimeout?: number;
}

/** Columns of a traffic row, in /proc order after the IP. */
export interface TrafficRow {
  totalIn: bigint;
  totalOut: bigint;
  tcpIn: bigint;
  tcpOut: bigint;
  udpIn: bigint;
  udpOut: bigint;
  otherIn: bigint;
  otherOut: bigint;
}

/** Columns of an ipconn / portconn row, in /proc order after the key. */
export interface ConnRow {
  totalIn: bigint;
  totalOut: bigint;
  tcpIn: bigint;
  tcpOut: bigint;
  udpIn: bigint;
  udpOut: bigint;
  icmpIn: bigint;
  icmpOut: bigint;
  otherIn: bigint;
  otherOut: bigint;
}

export type ConnKind = 'tcp' | 'udp' | 'icmp' | 'other';

/** One new connection as the reference decided it (for explaining a difference). */
export interface NewConnection {
  readonly frame: number;
  readonly kind: ConnKind;
  readonly src: number;
  readonly dst: number;
  readonly port: number;
}

export interface ReferenceStats {
  /** Packets that reached PREROUTING. */
  packets: number;
  /** Counted (at least one address inside and allowed by the internal option). */
  counted: number;
  /** Neither address inside. */
  outside: number;
  /** Both inside, left out by --nointernal. */
  internalSkipped: number;
  /** One side inside, left out by ! --nointernal. */
  externalSkipped: number;
  /** Counted packets that are fragments (offset 0 with MF / offset > 0). */
  firstFragments: number;
  nonFirstFragments: number;
  /** Counted first packets (not non-first fragments) whose transport header is incomplete. */
  shortTransport: number;
}

export interface Reference {
  readonly traffic: Map<number, TrafficRow>;
  readonly ipconn: Map<number, ConnRow>;
  readonly portconn: Map<number, ConnRow>;
  readonly connections: NewConnection[];
  readonly stats: ReferenceStats;
}

function zeroTraffic(): TrafficRow {
  return { totalIn: 0n, totalOut: 0n, tcpIn: 0n, tcpOut: 0n, udpIn: 0n, udpOut: 0n, otherIn: 0n, otherOut: 0n };
}
function zeroConn(): ConnRow {
  return {
    totalIn: 0n,
    totalOut: 0n,
    tcpIn: 0n,
    tcpOut: 0n,
    udpIn: 0n,
    udpOut: 0n,
    icmpIn: 0n,
    icmpOut: 0n,
    otherIn: 0n,
    otherOut: 0n,
  };
}
function row<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) {
    v = make();
    m.set(k, v);
  }
  return v;
}

function addConn(r: ConnRow, kind: ConnKind, dir: 'In' | 'Out'): void {
  r[`total${dir}`]++;
  r[`${kind}${dir}`]++;
}

/**
 * The direction-less flow key of a UDP / ICMP / other packet (design.md "Counting rules"),
 * or undefined when the transport header needed for the key is incomplete. The two
 * endpoints are ordered so that a reply maps to its request's key.
 */
function flowKey(p: Ipv4Packet): string | undefined {
  const d = p.payload;
  const ends = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);
  const addr = (ip: number): string => ip.toString(16).padStart(8, '0');
  if (p.proto === IPPROTO_UDP) {
    if (d.length < 8) return undefined;
    const sp = be16(d, 0);
    const dp = be16(d, 2);
    return `u ${ends(`${addr(p.src)}:${sp}`, `${addr(p.dst)}:${dp}`)}`;
  }
  if (p.proto === IPPROTO_ICMP) {
    if (d.length < 8) return undefined;
    const type = d[0]!;
    const code = d[1]!;
    // Echo request (8) and reply (0) share one flow per echo identifier.
    if (type === 8 || type === 0) return `e ${ends(addr(p.src), addr(p.dst))} ${be16(d, 4)}`;
    return `i ${ends(addr(p.src), addr(p.dst))} ${type},${code}`;
  }
  return `o ${ends(addr(p.src), addr(p.dst))} ${p.proto}`;
}

/**
 * Computes the three tables from the packets that reach PREROUTING, in order. Packet time is
 * the capture timestamp: pass retimed packets (see `retime`) when the replay compresses time.
 */
export function computeReference(packets: readonly Ipv4Packet[], opts: ReferenceOptions): Reference {
  if (opts.nointernal && opts.onlyInternal) throw new Error('nointernal and onlyInternal are exclusive');
  const timeoutNs = (opts.flowTimeout ?? 30) * 1e9;
  const traffic = new Map<number, TrafficRow>();
  const ipconn = new Map<number, ConnRow>();
  const portconn = new Map<number, ConnRow>();
  const connections: NewConnection[] = [];
  const flows = new Map<string, { tsSec: number; tsNsec: number }>();
  const stats: ReferenceStats = {
    packets: 0,
    counted: 0,
    outside: 0,
    internalSkipped: 0,
    externalSkipped: 0,
    firstFragments: 0,
    nonFirstFragments: 0,
    shortTransport: 0,
  };
  for (const p of packets) {
    stats.packets++;
    const srcIn = inNet(opts.net, p.src);
    const dstIn = inNet(opts.net, p.dst);
    if (!srcIn && !dstIn) {
      stats.outside++;
      continue;
    }
    const internal = srcIn && dstIn;
    if (internal && opts.nointernal) {
      stats.internalSkipped++;
      continue;
    }
    if (!internal && opts.onlyInternal) {
      stats.externalSkipped++;
      continue;
    }
    stats.counted++;
    if (p.fragOffset !== 0) stats.nonFirstFragments++;
    else if (p.moreFragments) stats.firstFragments++;

    // Traffic: IPv4 total length, split by the protocol field (fragments included).
    const bytes = BigInt(p.totLen);
    const t = p.proto === IPPROTO_TCP ? 'tcp' : p.proto === IPPROTO_UDP ? 'udp' : 'other';
    if (dstIn) {
      const r = row(traffic, p.dst, zeroTraffic);
      r.totalIn += bytes;
      r[`${t}In`] += bytes;
    }
    if (srcIn) {
      const r = row(traffic, p.src, zeroTraffic);
      r.totalOut += bytes;
      r[`${t}Out`] += bytes;
    }

    // Connections: never from a non-first fragment.
    if (p.fragOffset !== 0) continue;
    let kind: ConnKind;
    let port = 0;
    const d = p.payload;
    if (p.proto === IPPROTO_TCP) {
      if (d.length < 20) {
        stats.shortTransport++;
        continue;
      }
      const flags = d[13]!;
      const syn = (flags & 0x02) !== 0;
      const ack = (flags & 0x10) !== 0;
      if (!syn || ack) continue;
      kind = 'tcp';
      port = be16(d, 2);
    } else {
      const key = flowKey(p);
      if (key === undefined) {
        stats.shortTransport++;
        continue;
      }
      const last = flows.get(key);
      flows.set(key, { tsSec: p.tsSec, tsNsec: p.tsNsec });
      // "not seen for flow_timeout": a gap of exactly flow_timeout still belongs to the flow.
      if (last !== undefined && gapNs(last, p) <= timeoutNs) continue;
      if (p.proto === IPPROTO_UDP) {
        kind = 'udp';
        port = be16(d, 2);
      } else {
        kind = p.proto === IPPROTO_ICMP ? 'icmp' : 'other';
      }
    }
    connections.push({ frame: p.frame, kind, src: p.src, dst: p.dst, port });
    if (dstIn) {
      addConn(row(ipconn, p.dst, zeroConn), kind, 'In');
      addConn(row(portconn, port, zeroConn), kind, 'In');
    }
    if (srcIn) {
      addConn(row(ipconn, p.src, zeroConn), kind, 'Out');
      addConn(row(portconn, port, zeroConn), kind, 'Out');
    }
  }
  return { traffic, ipconn, portconn, connections, stats };
}

/**
 * Gives the packets the timestamps a rate-limited replay (tcpreplay --pps=RATE) gives them:
 * the i-th packet of the capture (by frame number) at start + (frame-1)/RATE seconds.
 */
export function retime<P extends { readonly frame: number; readonly tsSec: number; readonly tsNsec: number }>(packets: readonly P[], pps: number, start = { tsSec: 0, tsNsec: 0 }): P[] {
  return packets.map((p) => {
    const ns = start.tsNsec + Math.round(((p.frame - 1) * 1e9) / pps);
    return { ...p, tsSec: start.tsSec + Math.floor(ns / 1e9), tsNsec: ns % 1e9 };
  });
}

/**
 * Gives the packets the timestamps a timed replay (tcpreplay --multiplier=K) gives them:
 * offsets from the first frame of the capture divided by K. `first` is that first frame's
 * timestamp (it may be a frame that never reaches PREROUTING).
 */
export function scaleTime(
  packets: readonly Ipv4Packet[],
  multiplier: number,
  first: { tsSec: number; tsNsec: number },
): Ipv4Packet[] {
  return packets.map((p) => {
    const ns = Math.round(gapNs(first, p) / multiplier);
    return { ...p, tsSec: Math.floor(ns / 1e9), tsNsec: ns % 1e9 };
  });
}

// ---------------------------------------------------------------------------------------
// /proc text (design.md "Files under /proc/net/xt_traffic/")
// ---------------------------------------------------------------------------------------

export const TRAFFIC_HEADER = 'IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n';
export const IPCONN_HEADER = 'IP\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n';
export const PORTCONN_HEADER = 'PORT\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n';

function trafficFields(r: TrafficRow): bigint[] {
  return [r.totalIn, r.totalOut, r.tcpIn, r.tcpOut, r.udpIn, r.udpOut, r.otherIn, r.otherOut];
}
function connFields(r: ConnRow): bigint[] {
  return [r.totalIn, r.totalOut, r.tcpIn, r.tcpOut, r.udpIn, r.udpOut, r.icmpIn, r.icmpOut, r.otherIn, r.otherOut];
}

function formatRows<V>(header: string, m: Map<number, V>, key: (k: number) => string, fields: (v: V) => bigint[]): string {
  let s = header;
  for (const k of [...m.keys()].sort((a, b) => a - b)) {
    const f = fields(m.get(k)!);
    if (f.every((x) => x === 0n)) continue;
    s += `${[key(k), ...f.map(String)].join('\t')}\n`;
  }
  return s;
}

/** The exact text of /proc/net/xt_traffic/NAME for this reference. */
export function formatTraffic(ref: Pick<Reference, 'traffic'>): string {
  return formatRows(TRAFFIC_HEADER, ref.traffic, formatIp, trafficFields);
}
/** The exact text of /proc/net/xt_traffic/NAME_ipconn. */
export function formatIpconn(ref: Pick<Reference, 'ipconn'>): string {
  return formatRows(IPCONN_HEADER, ref.ipconn, formatIp, connFields);
}
/** The exact text of /proc/net/xt_traffic/NAME_portconn. */
export function formatPortconn(ref: Pick<Reference, 'portconn'>): string {
  return formatRows(PORTCONN_HEADER, ref.portconn, String, connFields);
}

/** All three files, keyed by the suffix of the /proc name ('' for traffic). */
export function formatAll(ref: Reference): { traffic: string; ipconn: string; portconn: string } {
  return { traffic: formatTraffic(ref), ipconn: formatIpconn(ref), portconn: formatPortconn(ref) };
}

/**
 * A line-by-line description of how two /proc texts differ (for failure messages that name
 * the rows, not just "not equal").
 */
export function diffProc(expected: string, got: string): string {
  const e = expected.split('\n');
  const g = got.split('\n');
  const keyOf = (l: string): string => l.split('\t')[0] ?? '';
  const em = new Map(e.filter(Boolean).map((l) => [keyOf(l), l]));
  const gm = new Map(g.filter(Boolean).map((l) => [keyOf(l), l]));
  const out: string[] = [];
  if (e[0] !== g[0]) out.push(`header: expected ${JSON.stringify(e[0])} got ${JSON.stringify(g[0])}`);
  for (const [k, l] of em) {
    if (k === keyOf(e[0] ?? '')) continue;
    const gl = gm.get(k);
    if (gl === undefined) out.push(`missing row: ${JSON.stringify(l)}`);
    else if (gl !== l) out.push(`row ${k}: expected ${JSON.stringify(l)} got ${JSON.stringify(gl)}`);
  }
  for (const [k, l] of gm) if (!em.has(k) && k !== keyOf(g[0] ?? '')) out.push(`unexpected row: ${JSON.stringify(l)}`);
  if (out.length === 0 && expected !== got) out.push('same rows, different bytes (order or whitespace)');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------
// IPv6 (revision 1, design.md "Counting rules": IPv6)
// ---------------------------------------------------------------------------------------

/** An IPv6 packet as the IPv6 PREROUTING hook sees it (after ip6_rcv_core trimmed it). */
export interface Ipv6Packet {
  readonly frame: number;
  readonly tsSec: number;
  readonly tsNsec: number;
  /** 128-bit addresses. */
  readonly src: bigint;
  readonly dst: bigint;
  /** 40 + payload length: the bytes the module counts (and skb->len at PREROUTING). */
  readonly bytes: number;
  /** The upper-layer protocol after the extension headers (a non-first fragment: its next header). */
  readonly proto: number;
  readonly nonFirstFragment: boolean;
  /** The upper-layer header and what follows (empty for a non-first fragment). */
  readonly l4: Uint8Array;
}

export type Skip6Reason = 'not-ipv6' | 'runt' | 'ip6-short' | 'ip6-version' | 'ip6-plen-long' | 'ip6-addr' | 'ip6-jumbo' | 'ip6-exthdr';

export const IPPROTO_ICMPV6 = 58;
const IPV6_EXT = new Set([0, 43, 60]); // hop-by-hop, routing, destination options (AH 51, fragment 44 below)

function be128(d: Uint8Array, o: number): bigint {
  let x = 0n;
  for (let i = 0; i < 16; i++) x = (x << 8n) | BigInt(d[o + i] ?? 0);
  return x;
}

/**
 * Classifies one Ethernet frame as the IPv6 packet ip6_rcv_core() passes to PREROUTING (the
 * frame as the mirror's tc filters leave it: untagged, PACKET_HOST), or why it does not.
 * Modelled drops: not IPv6 (or still tagged), shorter than the header, version != 6, payload
 * length beyond the frame, a multicast or loopback source, a loopback destination, a
 * multicast destination of scope 0 or 1; jumbograms (payload length 0) are not modelled.
 */
export function decodeFrame6(frame: PcapFrame): Ipv6Packet | Skip6Reason {
  const d = frame.data;
  if (d.length < 14) return 'runt';
  if (be16(d, 12) !== ETH_P_IPV6) return 'not-ipv6';
  const off = 14;
  const len = d.length - off;
  if (len < 40) return 'ip6-short';
  if (d[off]! >> 4 !== 6) return 'ip6-version';
  const plen = be16(d, off + 4);
  if (plen === 0) return 'ip6-jumbo';
  if (40 + plen > len) return 'ip6-plen-long';
  const src = be128(d, off + 8);
  const dst = be128(d, off + 24);
  const LOOP = 1n;
  const mc = (a: bigint) => a >> 120n === 0xffn;
  const scope = (a: bigint) => Number((a >> 112n) & 0xfn);
  if (mc(src) || src === LOOP || dst === LOOP || (mc(dst) && scope(dst) <= 1)) return 'ip6-addr';
  // ipv6_find_hdr(): walk the extension headers to the upper-layer protocol
  const pkt = d.subarray(off, off + 40 + plen);
  let nh = pkt[6]!;
  let p = 40;
  let nonFirstFragment = false;
  for (;;) {
    if (IPV6_EXT.has(nh) || nh === 51) {
      if (p + 2 > pkt.length) return 'ip6-exthdr';
      const hl = nh === 51 ? (pkt[p + 1]! + 2) * 4 : (pkt[p + 1]! + 1) * 8;
      nh = pkt[p]!;
      p += hl;
      if (p > pkt.length) return 'ip6-exthdr';
      continue;
    }
    if (nh === 44) {
      if (p + 8 > pkt.length) return 'ip6-exthdr';
      const fo = be16(pkt, p + 2) & 0xfff8;
      nh = pkt[p]!;
      p += 8;
      if (fo !== 0) {
        nonFirstFragment = true;
        break;
      }
      continue;
    }
    break;
  }
  return {
    frame: frame.number, tsSec: frame.tsSec, tsNsec: frame.tsNsec, src, dst, bytes: 40 + plen, proto: nh, nonFirstFragment,
    l4: nonFirstFragment ? new Uint8Array(0) : pkt.subarray(p),
  };
}

/** The IPv6 packets among (mirror-processed) frames that reach PREROUTING, and why the rest do not. */
export function preroutingPackets6(frames: readonly PcapFrame[]): { packets: Ipv6Packet[]; skipped: Record<Skip6Reason, number> } {
  const skipped: Record<Skip6Reason, number> = { 'not-ipv6': 0, runt: 0, 'ip6-short': 0, 'ip6-version': 0, 'ip6-plen-long': 0, 'ip6-addr': 0, 'ip6-jumbo': 0, 'ip6-exthdr': 0 };
  const packets: Ipv6Packet[] = [];
  for (const f of frames) {
    const r = decodeFrame6(f);
    if (typeof r === 'string') skipped[r]++;
    else packets.push(r);
  }
  return { packets, skipped };
}

export interface Reference6Options {
  /** The net: its first address and prefix length. */
  readonly base: bigint;
  readonly prefix: number;
  /** Rows per prefix of this length (64 by default; 128: per address). */
  readonly hostprefix: number;
  readonly nointernal?: boolean;
  readonly onlyInternal?: boolean;
  readonly flowTimeout?: number;
}

export interface Reference6 {
  readonly hostprefix: number;
  readonly traffic: Map<bigint, TrafficRow>;
  readonly ipconn: Map<bigint, ConnRow>;
  readonly portconn: Map<number, ConnRow>;
  readonly connections: { frame: number; kind: ConnKind; port: number }[];
}

const mask128 = (len: number): bigint => (len === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - len)) - 1n));

/** Parses an IPv6 address into 128 bits (the reference's own parser, for test constants). */
export function ipv6Bits(s: string): bigint {
  const [head, tail] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  const groups = (x: string) => (x === '' ? [] : x.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (all.length !== 8 || all.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) throw new Error(`not an IPv6 address: ${s}`);
  return all.reduce((x, g) => (x << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** The three tables of an IPv6 table from the packets that reach PREROUTING, in order. */
export function computeReference6(packets: readonly Ipv6Packet[], opts: Reference6Options): Reference6 {
  const netMask = mask128(opts.prefix);
  const hostMask = mask128(opts.hostprefix);
  if ((opts.base & ~netMask) !== 0n) throw new Error('net base has host bits set');
  const inNet6 = (a: bigint) => (a & netMask) === opts.base;
  const timeoutNs = (opts.flowTimeout ?? 30) * 1e9;
  const traffic = new Map<bigint, TrafficRow>();
  const ipconn = new Map<bigint, ConnRow>();
  const portconn = new Map<number, ConnRow>();
  const connections: Reference6['connections'] = [];
  const flows = new Map<string, { tsSec: number; tsNsec: number }>();
  for (const p of packets) {
    const srcIn = inNet6(p.src);
    const dstIn = inNet6(p.dst);
    if (!srcIn && !dstIn) continue;
    const internal = srcIn && dstIn;
    if ((internal && opts.nointernal) || (!internal && opts.onlyInternal)) continue;
    const bytes = BigInt(p.bytes);
    const t = p.proto === IPPROTO_TCP ? 'tcp' : p.proto === IPPROTO_UDP ? 'udp' : 'other';
    if (dstIn) {
      const r = row(traffic, p.dst & hostMask, zeroTraffic);
      r.totalIn += bytes;
      r[`${t}In`] += bytes;
    }
    if (srcIn) {
      const r = row(traffic, p.src & hostMask, zeroTraffic);
      r.totalOut += bytes;
      r[`${t}Out`] += bytes;
    }
    if (p.nonFirstFragment) continue;
    const d = p.l4;
    const ends = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);
    const hex = (x: bigint) => x.toString(16).padStart(32, '0');
    let kind: ConnKind;
    let port = 0;
    let key: string | undefined;
    if (p.proto === IPPROTO_TCP) {
      if (d.length < 20) continue;
      const flags = d[13]!;
      if (!(flags & 0x02) || flags & 0x10) continue;
      kind = 'tcp';
      port = be16(d, 2);
    } else {
      if (p.proto === IPPROTO_UDP) {
        if (d.length < 8) continue;
        key = `u ${ends(`${hex(p.src)}:${be16(d, 0)}`, `${hex(p.dst)}:${be16(d, 2)}`)}`;
        kind = 'udp';
        port = be16(d, 2);
      } else if (p.proto === IPPROTO_ICMPV6) {
        if (d.length < 8) continue;
        const type = d[0]!;
        key = type === 128 || type === 129 ? `e ${ends(hex(p.src), hex(p.dst))} ${be16(d, 4)}` : `i ${ends(hex(p.src), hex(p.dst))} ${type},${d[1]}`;
        kind = 'icmp';
      } else {
        key = `o ${ends(hex(p.src), hex(p.dst))} ${p.proto}`;
        kind = 'other';
      }
      const last = flows.get(key);
      flows.set(key, { tsSec: p.tsSec, tsNsec: p.tsNsec });
      if (last !== undefined && gapNs(last, p) <= timeoutNs) continue;
    }
    connections.push({ frame: p.frame, kind, port });
    if (dstIn) {
      addConn(row(ipconn, p.dst & hostMask, zeroConn), kind, 'In');
      addConn(row(portconn, port, zeroConn), kind, 'In');
    }
    if (srcIn) {
      addConn(row(ipconn, p.src & hostMask, zeroConn), kind, 'Out');
      addConn(row(portconn, port, zeroConn), kind, 'Out');
    }
  }
  return { hostprefix: opts.hostprefix, traffic, ipconn, portconn, connections };
}

/** A row's key: the prefix in RFC 5952 form (the formatter of src/core/ip.ts), /LEN below 128. */
export function key6(x: bigint, hostprefix: number): string {
  const w = [96n, 64n, 32n, 0n].map((sh) => Number((x >> sh) & 0xffffffffn));
  const t = formatIPv6(w);
  return hostprefix === 128 ? t : `${t}/${hostprefix}`;
}

function formatRows6<V>(header: string, m: Map<bigint, V>, key: (k: bigint) => string, fields: (v: V) => bigint[]): string {
  let s = header;
  for (const k of [...m.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const f = fields(m.get(k)!);
    if (f.every((x) => x === 0n)) continue;
    s += `${[key(k), ...f.map(String)].join('\t')}\n`;
  }
  return s;
}

/** The exact texts of NAME, NAME_ipconn and NAME_portconn of an IPv6 table. */
export function formatAll6(ref: Reference6): { traffic: string; ipconn: string; portconn: string } {
  const k = (x: bigint) => key6(x, ref.hostprefix);
  return {
    traffic: formatRows6(TRAFFIC_HEADER, ref.traffic, k, trafficFields),
    ipconn: formatRows6(IPCONN_HEADER, ref.ipconn, k, connFields),
    portconn: formatRows(PORTCONN_HEADER, ref.portconn, String, connFields),
  };
}
