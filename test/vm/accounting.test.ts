import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIpConn, parsePortConn, parseTraffic } from '../lib/proc-oracle.js';
import { loadModule } from '../lib/module.js';
import {
  expectedConns,
  expectedTraffic,
  Oracle,
  parseNet,
  type InternalMode,
  type PairCount,
  type SentConn,
} from '../lib/oracle.js';
import type { Netns } from '../lib/netns.js';
import { PKT, RoutedTopo, tcpServe } from '../lib/topo.js';

// Exact accounting: real traffic (ping, TCP transfers and connects, UDP flows,
// fragmented datagrams, raw protocols 47 and 253) crosses router R; three xt_traffic
// tables on R count it (all, --nointernal, ! --nointernal) and an independent oracle
// of plain iptables rules on the same hook gives the expected bytes per IP, protocol
// and direction. Connections are compared with what the test started.

const { H1, H2, X } = RoutedTopo;
const NET = parseNet(RoutedTopo.NET);
const MODES: { name: string; mode: InternalMode; opt: string[] }[] = [
  { name: 'ALL', mode: 'all', opt: [] },
  { name: 'NOINT', mode: 'nointernal', opt: ['--nointernal'] },
  { name: 'ONLYINT', mode: 'onlyinternal', opt: ['!', '--nointernal'] },
];

/** Plain objects keyed by IP/port with bigint counters, as the oracle builds them. */
function trafficRows(text: string) {
  return Object.fromEntries(
    parseTraffic(text).map((r) => [r.ip, { total: r.total, tcp: r.tcp, udp: r.udp, other: r.other }]),
  );
}
function ipConnRows(text: string) {
  return Object.fromEntries(
    parseIpConn(text).map((r) => [r.ip, { total: r.total, tcp: r.tcp, udp: r.udp, icmp: r.icmp, other: r.other }]),
  );
}
function portConnRows(text: string) {
  return Object.fromEntries(
    parsePortConn(text).map((r) => [r.port, { total: r.total, tcp: r.tcp, udp: r.udp, icmp: r.icmp, other: r.other }]),
  );
}

describe.each(['iptables', 'iptables-legacy'])('exact accounting through %s', (ipt) => {
  let topo: RoutedTopo;
  let pairs: PairCount[];
  const conns: SentConn[] = [];

  beforeAll(async () => {
    loadModule();
    topo = await RoutedTopo.create(ipt);
    const { r, h1, h2, x } = topo;
    for (const m of MODES) {
      await r.run(ipt, [
        '-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--traffic', '--ipconn', '--portconn',
        '--netbase', '10.1.0.0', '--netmask', '255.255.0.0', ...m.opt, '--name', m.name,
      ]);
    }
    const oracle = new Oracle(r, ipt);
    await oracle.install(RoutedTopo.sources(), RoutedTopo.dests());

    // ICMP: one ping process is one flow (its echo id); replies belong to it.
    await h1.run('ping', ['-c', '3', '-s', '56', '-i', '0.2', '-W', '2', X]);
    conns.push({ src: H1, dst: X, proto: 'icmp', port: 0, count: 1 });
    await h2.run('ping', ['-c', '2', '-s', '200', '-i', '0.2', '-W', '2', H1]);
    conns.push({ src: H2, dst: H1, proto: 'icmp', port: 0, count: 1 });
    await x.run('ping', ['-c', '1', '-s', '1000', '-W', '2', H2]);
    conns.push({ src: X, dst: H2, proto: 'icmp', port: 0, count: 1 });
    for (let i = 0; i < 3; i++) await x.run('ping', ['-c', '1', '-W', '2', H1]);
    conns.push({ src: X, dst: H1, proto: 'icmp', port: 0, count: 3 });
    // fragmented ICMP (3000 + 8 bytes over a 1500 MTU), internal
    await h1.run('ping', ['-c', '1', '-s', '3000', '-W', '2', H2]);
    conns.push({ src: H1, dst: H2, proto: 'icmp', port: 0, count: 1 });

    // UDP: two datagrams of one socket are one flow; four sockets are four flows.
    await h1.run('python3', [PKT, 'udp', X, '5353', '1000', '2']);
    conns.push({ src: H1, dst: X, proto: 'udp', port: 5353, count: 1 });
    await h1.run('python3', [PKT, 'udpflows', X, '6000', '4', '10']);
    for (let p = 6000; p < 6004; p++) conns.push({ src: H1, dst: X, proto: 'udp', port: p, count: 1 });
    // a fragmented datagram: only its first fragment has ports
    await x.run('python3', [PKT, 'udp', H2, '7000', '3000', '1']);
    conns.push({ src: X, dst: H2, proto: 'udp', port: 7000, count: 1 });

    // other protocols: 253 (experimental) and 47 (GRE), each one flow
    await x.run('python3', [PKT, 'raw', H2, '253', '100', '5']);
    conns.push({ src: X, dst: H2, proto: 'other', port: 0, count: 1 });
    await h1.run('python3', [PKT, 'raw', X, '47', '60', '2']);
    conns.push({ src: H1, dst: X, proto: 'other', port: 0, count: 1 });

    // TCP: connects to closed ports (SYN, RST) and two real transfers
    await x.run('python3', [PKT, 'syn', H1, '9', '3']);
    conns.push({ src: X, dst: H1, proto: 'tcp', port: 9, count: 3 });
    await h2.run('python3', [PKT, 'syn', X, '22', '2']);
    conns.push({ src: H2, dst: X, proto: 'tcp', port: 22, count: 2 });
    await transfer(x, h1, X, 8080, 100_000);
    conns.push({ src: H1, dst: X, proto: 'tcp', port: 8080, count: 1 });
    await transfer(h2, h1, H2, 8081, 50_000);
    conns.push({ src: H1, dst: H2, proto: 'tcp', port: 8081, count: 1 });

    pairs = await oracle.read();

  }, 600_000);

  afterAll(() => topo?.destroy());

  async function transfer(server: Netns, client: Netns, serverIp: string, port: number, bytes: number) {
    const srv = await tcpServe(server, port);
    await client.run('python3', [PKT, 'tcpsend', serverIp, String(port), String(bytes)]);
    expect(await srv.done).toBe(bytes);
  }

  it('the oracle saw every kind of traffic the test sent', () => {
    const get = (s: string, d: string) => pairs.find((p) => p.src === s && p.dst === d)!;
    // spot checks that the traffic really happened, computed from what was sent
    // H1's 3 echo requests, H1's replies to X's 3 pings, 2 GRE packets
    expect(get(H1, X).other).toBe(3n * (56n + 8n + 20n) + 3n * (56n + 8n + 20n) + 2n * (60n + 20n));
    expect(get(H1, X).udp).toBe(2n * (1000n + 8n + 20n) + 4n * (10n + 8n + 20n));
    expect(get(X, H2).udp).toBe(3008n + 3n * 20n); // 3 fragments: 1480 + 1480 + 48 payload
    expect(get(X, H2).other).toBe(1000n + 8n + 20n + 5n * (100n + 20n));
    // H2's 2 echo requests, and H2's fragmented reply to H1's 3000-byte ping
    expect(get(H2, H1).other).toBe(2n * (200n + 8n + 20n) + 3008n + 3n * 20n);
    // H1's fragmented 3000-byte echo request, and H1's replies to H2's 2 pings
    expect(get(H1, H2).other).toBe(3008n + 3n * 20n + 2n * (200n + 8n + 20n));
    expect(get(H2, H1).tcp).toBeGreaterThan(0n); // transfer to H2 (ACKs back)
    expect(get(H1, X).tcp).toBeGreaterThan(100_000n);
  });

  describe.each(MODES)('table $name', ({ name, mode }) => {
    it(`traffic rows equal the oracle for every IP, protocol and direction`, () => {
      const got = trafficRows(topo.r.cat(`/proc/net/xt_traffic/${name}`));
      expect(got).toEqual(expectedTraffic(pairs, NET, mode));
    });

    it('connections per IP equal what was started', () => {
      const got = ipConnRows(topo.r.cat(`/proc/net/xt_traffic/${name}_ipconn`));
      expect(got).toEqual(expectedConns(conns, NET, mode).ip);
    });

    it('connections per port equal what was started', () => {
      const got = portConnRows(topo.r.cat(`/proc/net/xt_traffic/${name}_portconn`));
      expect(got).toEqual(expectedConns(conns, NET, mode).port);
    });
  });

  it('the files are byte-exact: header, tabs, sort order, TOTAL = sum', () => {
    const text = topo.r.cat('/proc/net/xt_traffic/ALL');
    const lines = text.split('\n');
    expect(lines[0]).toBe('IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER');
    expect(lines.slice(1, -1).map((l) => l.split('\t')[0])).toEqual([H1, H2]);
    for (const l of lines.slice(1, -1)) {
      const f = l.split('\t');
      expect(f).toHaveLength(9);
      const n = f.slice(1).map(BigInt);
      expect(n[0]).toBe(n[2]! + n[4]! + n[6]!);
      expect(n[1]).toBe(n[3]! + n[5]! + n[7]!);
    }
    expect(lines.at(-1)).toBe('');
    expect(topo.r.cat('/proc/net/xt_traffic/ALL_portconn').split('\n')[0]).toBe('PORT\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER');
    expect(topo.r.cat('/proc/net/xt_traffic/ALL_ipconn').split('\n')[0]).toBe('IP\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER');
  });
});
