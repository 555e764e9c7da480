import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mirrorIngress, mirrorPrerouting } from '../lib/mirror.js';
import {
  computeReference6, decodeFrame6, formatAll6, ipv6Bits, key6, preroutingPackets6, readPcap, retime, type PcapFrame,
} from '../lib/pcap.js';
import { REPO } from '../lib/sh.js';

// The IPv6 reference of test/lib/pcap.ts (test/vm/replay.test.ts compares the module with it)
// and the mirror model's IPv6 filters (test/lib/mirror.ts), checked against numbers read off
// tcpdump by hand: test.pcap has one TCP conversation of 10 IPv6 frames (Ethernet lengths 94,
// 86, 74, 219, 74, 789, 74, 74, 74, 74: 1492 IPv6 bytes, 525 from the client
// 2001:4958:15a0:24:c1b3:b766:7fff:d0b3, 967 to it, one SYN to port 80); wikipedia.pcap 5
// link-local UDP frames (213, then 4 x 95: 523 bytes; mDNS 5353 -> ff02::fb once, LLMNR to
// ff02::1:3 from ports 65373 twice and 54213 twice: 3 UDP flows).

const PCAPS = process.env.XTT_PCAPS ?? path.resolve(REPO, '../shared/data/pcaps');
const frames6 = (file: string) => preroutingPackets6(readPcap(path.join(PCAPS, file)).frames.map((f) => mirrorIngress(f).frame));

function frame(data: Uint8Array): PcapFrame {
  return { number: 1, tsSec: 0, tsNsec: 0, origLen: data.length, data };
}
/** An Ethernet frame (optionally tagged) carrying an IPv6 packet. */
function eth6(opts: { src?: string; dst?: string; nh?: number; payload?: number[]; tags?: number[][] } = {}): Uint8Array {
  const payload = opts.payload ?? [0, 0, 0, 0, 0, 0, 0, 0];
  const ip = new Uint8Array(40 + payload.length);
  ip.set(payload, 40);
  ip[0] = 0x60;
  ip[4] = payload.length >> 8;
  ip[5] = payload.length & 255;
  ip[6] = opts.nh ?? 59;
  ip[7] = 64;
  const put = (a: string, o: number) => {
    const x = ipv6Bits(a);
    for (let i = 0; i < 16; i++) ip[o + i] = Number((x >> BigInt(8 * (15 - i))) & 0xffn);
  };
  put(opts.src ?? '2001:db8::1', 8);
  put(opts.dst ?? '2001:db8::2', 24);
  const tags = (opts.tags ?? []).flatMap(([tpid, vid]) => [tpid! >> 8, tpid! & 255, vid! >> 8, vid! & 255]);
  return Uint8Array.from([...Array(12).fill(2), ...tags, 0x86, 0xdd, ...ip]);
}

describe('IPv6 reference against the captures', () => {
  it('test.pcap: 10 packets, 1492 bytes; per /64 and per /128 in 2001:4958:15a0::/48', () => {
    const { packets, skipped } = frames6('appneta_tcpreplay__test.pcap');
    const n = readPcap(path.join(PCAPS, 'appneta_tcpreplay__test.pcap')).frames.length;
    expect([packets.length, packets.reduce((s, p) => s + p.bytes, 0), skipped['not-ipv6']]).toEqual([10, 1492, n - 10]);
    expect(packets.every((p) => p.proto === 6)).toBe(true);
    const t = retime(packets, 2000);
    const c = '2001:4958:15a0:24:c1b3:b766:7fff:d0b3';
    const p64 = formatAll6(computeReference6(t, { base: ipv6Bits('2001:4958:15a0::'), prefix: 48, hostprefix: 64 }));
    expect(p64.traffic).toBe('IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n2001:4958:15a0:24::/64\t967\t525\t967\t525\t0\t0\t0\t0\n');
    expect(p64.ipconn).toBe('IP\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n2001:4958:15a0:24::/64\t0\t1\t0\t1\t0\t0\t0\t0\t0\t0\n');
    expect(p64.portconn).toBe('PORT\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n80\t0\t1\t0\t1\t0\t0\t0\t0\t0\t0\n');
    const p128 = formatAll6(computeReference6(t, { base: ipv6Bits('2001:4958:15a0::'), prefix: 48, hostprefix: 128 }));
    expect(p128.traffic.split('\n')[1]).toBe(`${c}\t967\t525\t967\t525\t0\t0\t0\t0`);
    // the server's net: the same bytes the other way round
    const srv = formatAll6(computeReference6(t, { base: ipv6Bits('2606:4700::'), prefix: 32, hostprefix: 64 }));
    expect(srv.traffic.split('\n')[1]).toBe('2606:4700::/64\t525\t967\t525\t967\t0\t0\t0\t0');
  });

  it('wikipedia.pcap: 5 link-local UDP packets, 523 bytes, 3 flows; multicast destinations outside fe80::/10', () => {
    const { packets } = frames6('zeek_zeek__wikipedia.pcap');
    expect([packets.length, packets.reduce((n, p) => n + p.bytes, 0)]).toEqual([5, 523]);
    const ref = computeReference6(retime(packets, 2000), { base: ipv6Bits('fe80::'), prefix: 10, hostprefix: 64 });
    const f = formatAll6(ref);
    expect(f.traffic).toBe('IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\nfe80::/64\t0\t523\t0\t0\t0\t523\t0\t0\n');
    expect(f.portconn).toBe('PORT\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n5353\t0\t1\t0\t0\t0\t1\t0\t0\t0\t0\n5355\t0\t2\t0\t0\t0\t2\t0\t0\t0\t0\n');
    const f128 = formatAll6(computeReference6(retime(packets, 2000), { base: ipv6Bits('fe80::'), prefix: 10, hostprefix: 128 }));
    expect(f128.traffic.split('\n').slice(1, 3)).toEqual(['fe80::217:f2ff:fed7:cf65\t0\t199\t0\t0\t0\t199\t0\t0', 'fe80::3074:17d5:2052:c324\t0\t324\t0\t0\t0\t324\t0\t0']);
  });

  it('the mirror model: the IPv6 frames go to the ipv6 filter, none to other', () => {
    const r = mirrorPrerouting(readPcap(path.join(PCAPS, 'appneta_tcpreplay__test.pcap')));
    expect([r.byKind.ipv6, r.skipped.ipv6]).toEqual([10, 10]);
  });
});

describe('IPv6 decode and counting rules', () => {
  it('tags are popped by the mirror (802.1Q, QinQ, 802.1Q + 802.1Q); then decoded', () => {
    const e = eth6({ nh: 17, payload: [0, 53, 0, 53, 0, 8, 0, 0] });
    for (const [tags, kind] of [[[], 'ipv6'], [[[0x8100, 7]], 'vlan6'], [[[0x88a8, 7], [0x8100, 8]], 'qinq6'], [[[0x8100, 7], [0x8100, 8]], 'vlan-vlan6']] as const) {
      const r = mirrorIngress(frame(eth6({ nh: 17, payload: [0, 53, 0, 53, 0, 8, 0, 0], tags: tags.map((t) => [...t]) })));
      expect(r.kind).toBe(kind);
      expect([...r.frame.data]).toEqual([...e]);
    }
    expect(decodeFrame6(frame(eth6({ tags: [[0x8100, 7]] })))).toBe('not-ipv6');
  });

  it('ip6_rcv_core drops: multicast or loopback source, loopback destination, multicast scope 0/1, short, long payload, jumbo', () => {
    expect(decodeFrame6(frame(eth6({ src: 'ff02::1' })))).toBe('ip6-addr');
    expect(decodeFrame6(frame(eth6({ src: '::1' })))).toBe('ip6-addr');
    expect(decodeFrame6(frame(eth6({ dst: 'ff01::1' })))).toBe('ip6-addr');
    expect(decodeFrame6(frame(eth6({ dst: 'ff00::1' })))).toBe('ip6-addr');
    expect(decodeFrame6(frame(eth6({ dst: 'ff02::1' })))).toMatchObject({ bytes: 48 });
    const e = eth6({ payload: [1, 2, 3, 4] });
    expect(decodeFrame6(frame(e.subarray(0, 50)))).toBe('ip6-short');
    expect(decodeFrame6(frame(e.subarray(0, 14 + 43)))).toBe('ip6-plen-long');
    const j = eth6();
    j[14 + 5] = 0;
    expect(decodeFrame6(frame(j))).toBe('ip6-jumbo');
    const v = eth6();
    v[14] = 0x40;
    expect(decodeFrame6(frame(v))).toBe('ip6-version');
  });

  it('extension headers are walked to the upper layer; a non-first fragment keeps its next header and starts no connection', () => {
    const udp = [0, 9, 0, 53, 0, 8, 0, 0];
    // destination options (8 bytes) then UDP: UDP, 56 bytes
    const p = decodeFrame6(frame(eth6({ nh: 60, payload: [17, 0, 1, 4, 0, 0, 0, 0, ...udp] })));
    expect(p).toMatchObject({ proto: 17, bytes: 56, nonFirstFragment: false });
    // fragment header, offset 8: UDP by next header, no transport header
    const nf = decodeFrame6(frame(eth6({ nh: 44, payload: [17, 0, 0, 8, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8] })));
    expect(nf).toMatchObject({ proto: 17, bytes: 56, nonFirstFragment: true });
    const ref = computeReference6([p, nf].map((x) => x as Exclude<typeof x, string>), { base: ipv6Bits('2001:db8::'), prefix: 32, hostprefix: 128 });
    expect(ref.connections.map((c) => [c.kind, c.port])).toEqual([['udp', 53]]);
    expect(ref.traffic.get(ipv6Bits('2001:db8::1'))).toMatchObject({ udpOut: 112n, totalOut: 112n });
  });

  it('ICMPv6 is OTHER for traffic and ICMP for connections: echo by id, others by type and code', () => {
    const echo = (type: number, id: number, src = '2001:db8::1', dst = '2001:db8:1::9') =>
      decodeFrame6(frame(eth6({ nh: 58, src, dst, payload: [type, 0, 0, 0, 0, id, 0, 1] }))) as Exclude<ReturnType<typeof decodeFrame6>, string>;
    const pk = [echo(128, 1), echo(129, 1, '2001:db8:1::9', '2001:db8::1'), echo(128, 2), echo(135, 0), echo(135, 0)];
    const ref = computeReference6(pk, { base: ipv6Bits('2001:db8::'), prefix: 48, hostprefix: 64 });
    expect(ref.connections.map((c) => c.kind)).toEqual(['icmp', 'icmp', 'icmp']);
    expect(ref.traffic.get(ipv6Bits('2001:db8::'))).toMatchObject({ otherOut: 4n * 48n, otherIn: 48n, tcpOut: 0n, udpOut: 0n });
    expect(key6(ipv6Bits('2001:db8::'), 64)).toBe('2001:db8::/64');
  });
});
