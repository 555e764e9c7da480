import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTraffic } from '../lib/proc-oracle.js';
import { loadModule } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { Oracle, expectedTraffic, parseNet, type ExpectedTraffic, type PairCount } from '../lib/oracle.js';
import { REPO, shAsync } from '../lib/sh.js';
import { PKT, link, tcpServe } from '../lib/topo.js';

// The original design's set-up, end to end, on the PROMISC patch series (patches/): the
// debug kernel carries patches/linux-6.1 (net.ipv4.ip_promisc_prerouting; 0002 marks those
// packets untracked), and scripts/iptables-promisc.sh builds iptables-legacy 1.8.9 with
// patches/iptables-1.8.9 (-A PROMISC creates the chain and its two pkttype rules).
// A (10.30.0.1) and B (10.30.0.2) talk over a veth; tc on B's end mirrors every frame to
// MON, whose peer IF is the promiscuous port of the monitor namespace M. M has no tc and no
// `xttraffic mirror`: only the sysctl, `ip link set IF promisc on arp off` (ARP is not
// IPv4: the patches do not cover it) and the one command of the 2.6.30 design,
//   iptables-legacy -t raw -A PROMISC -i IF -m traffic ...
// The mirrored frames are addressed to B's MAC (PACKET_OTHERHOST in M). M must count exactly
// what the oracles at B counted, and transmit, forward, track or deliver none of it, though
// it has B's address on lo, a UDP socket on the port A sends to, conntrack in use,
// forwarding on and a route to A through a fourth namespace S (so a routed packet would
// show as forwarded to S or delivered in M). Before the sysctl is set, the same traffic
// must reach no rule at all (the stock kernel's drop in ip_rcv_core). IPv6 is off in every
// namespace (IPv4 only, as the patches; the port's own IPv6 chatter is the mirror suite's
// subject). Runs on the debug kernel, with the patched iptables (scripts/iptables-promisc.sh,
// which `npm test` runs before the debug kernel's suites); skipped on kernels
// without the patches, failed when the patched kernel runs without the patched iptables.

const A = '10.30.0.1';
const B = '10.30.0.2';
const NET = parseNet('10.30.0.0/24');
const M_S = '10.40.0.1';
const S = '10.40.0.2';
const UDP_PORT = 7000;
const TCP_PORT = 5001;
const SYSCTL = '/proc/sys/net/ipv4/ip_promisc_prerouting';

function patchedIptables(): string | undefined {
  const r = spawnSync('bash', [`${REPO}/scripts/iptables-promisc.sh`, '--root'], { encoding: 'utf8' });
  const root = r.stdout.trim();
  return r.status === 0 && root && existsSync(`${root}/sbin/iptables-legacy`) ? root : undefined;
}

/** Only a kernel with patches/linux-6.1 (the debug kernel) has the sysctl. */
const patchedKernel = existsSync(SYSCTL);
const root = patchedKernel ? patchedIptables() : undefined;

function rowsByIp(text: string): Record<string, ExpectedTraffic> {
  const out: Record<string, ExpectedTraffic> = {};
  for (const r of parseTraffic(text)) out[r.ip] = { total: r.total, tcp: r.tcp, udp: r.udp, other: r.other };
  return out;
}

/** [packets, bytes] of each rule of a chain, from `iptables -L CHAIN -n -v -x`. */
function ruleCounters(listing: string): [bigint, bigint][] {
  return listing
    .split('\n')
    .slice(2)
    .filter((l) => l.trim())
    .map((l) => {
      const [p, b] = l.trim().split(/\s+/);
      return [BigInt(p!), BigInt(b!)];
    });
}

/** Packets the oracle chains counted (Oracle.read gives bytes only). */
async function oraclePackets(ns: Netns, table: string): Promise<bigint> {
  const all = await ns.run('iptables-legacy', ['-t', table, '-L', '-n', '-v', '-x']);
  let n = 0n;
  for (const block of all.split('\n\n')) {
    if (!/^Chain ORACLE\d+ /.test(block.trim())) continue;
    for (const [p] of ruleCounters(block.trim())) n += p;
  }
  return n;
}

/** A UDP socket in `ns` on 0.0.0.0:port; `count()` stops it and says how many datagrams it got. */
async function udpListener(ns: Netns, port: number): Promise<{ count: () => Promise<number> }> {
  const code = [
    'import socket, sys',
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    `s.bind(('0.0.0.0', ${port}))`,
    "print('ready', flush=True)",
    'n = 0',
    'sys.stdin.read(1)',
    's.setblocking(False)',
    'while True:',
    '    try:',
    '        s.recv(65535)',
    '        n += 1',
    '    except BlockingIOError:',
    '        break',
    'print(n, flush=True)',
  ].join('\n');
  const p = spawn('ip', ['netns', 'exec', ns.name, 'python3', '-c', code], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<void>((resolve) => p.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('udp listener did not start')), 60_000);
    p.stdout.on('data', () => {
      if (out.includes('ready')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return {
    count: async () => {
      p.stdin.end('x');
      await closed;
      return Number(out.trim().split('\n').pop());
    },
  };
}

/** Frames sent by `dev` in `ns` (its tx counter). */
async function txPackets(ns: Netns, dev: string): Promise<number> {
  return Number((await ns.run('cat', [`/sys/class/net/${dev}/statistics/tx_packets`])).trim());
}

describe.skipIf(!patchedKernel)('PROMISC patches: iptables -t raw -A PROMISC -m traffic on mirror-port frames', () => {
  const IPT = `${root}/sbin/iptables-legacy`;
  const env = { XTABLES_LIBDIR: `${REPO}/libxt:${root}/lib/xtables` };
  let a: Netns;
  let b: Netns;
  let m: Netns;
  let s: Netns;
  let vb: string;
  let mon: string;
  let mif: string;
  let mToS: string;
  let sIf: string;
  let oracles: Oracle[];
  /** the patched iptables-legacy in M */
  const ipt = (args: string[]): Promise<string> => shAsync('ip', ['netns', 'exec', m.name, IPT, ...args], { env });
  /** Debian's (unpatched) iptables-legacy in M */
  const stockIpt = (args: string[]): Promise<string> => m.run('iptables-legacy', args);

  async function zeroAll(): Promise<void> {
    await Promise.all([b.run('iptables-legacy', ['-t', 'raw', '-Z']), b.run('iptables-legacy', ['-t', 'mangle', '-Z'])]);
  }

  /** Sends every kind of traffic between A and B at once; returns what the oracles counted. */
  async function drive(): Promise<{ pairs: PairCount[]; packets: bigint; udpInM: number }> {
    const [listener, srv] = await Promise.all([udpListener(m, UDP_PORT), tcpServe(b, TCP_PORT)]);
    await Promise.all([
      a.run('ping', ['-q', '-c', '3', '-i', '0.2', '-s', '100', '-W', '2', B]),
      a.run('python3', [PKT, 'tcpsend', B, String(TCP_PORT), '30000']),
      a.run('python3', [PKT, 'udp', B, String(UDP_PORT), '200', '4']),
      b.run('python3', [PKT, 'udp', A, String(UDP_PORT + 1), '50', '2']),
    ]);
    expect(await srv.done).toBe(30000);
    await new Promise((r) => setTimeout(r, 500));
    const pairs = (await Promise.all(oracles.map((o) => o.read()))).flat();
    // the oracles saw every kind of traffic the test sent
    expect(pairs.every((p) => p.tcp > 0n && p.udp > 0n && p.other > 0n)).toBe(true);
    const packets = (await oraclePackets(b, 'raw')) + (await oraclePackets(b, 'mangle'));
    return { pairs, packets, udpInM: await listener.count() };
  }

  beforeAll(async () => {
    // on the patched kernel the patched iptables must be there (npm test builds it)
    if (!root) throw new Error('no patched iptables-legacy: run scripts/iptables-promisc.sh on the host');
    loadModule();
    a = new Netns('pa');
    b = new Netns('pb');
    m = new Netns('pm');
    s = new Netns('ps');
    for (const ns of [a, b, m, s]) {
      await ns.run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    [, vb] = await link(a, (d) => [`addr add ${A}/24 dev ${d}`], b, (d) => [`addr add ${B}/24 dev ${d}`]);
    [mon, mif] = await link(b, () => [], m, (d) => [`link set ${d} promisc on arp off`]);
    [mToS, sIf] = await link(m, (d) => [`addr add ${M_S}/24 dev ${d}`, `route add ${A}/32 via ${S}`], s, (d) => [`addr add ${S}/24 dev ${d}`]);
    await shAsync('tc', ['-n', b.name, '-batch', '-'], {
      input: [
        `qdisc add dev ${vb} clsact`,
        `filter add dev ${vb} ingress matchall action mirred egress mirror dev ${mon}`,
        `filter add dev ${vb} egress matchall action mirred egress mirror dev ${mon}`,
        '',
      ].join('\n'),
    });
    // B's address is local in M, and M forwards to A through S: a packet that got past the
    // patch's drop would be delivered (UDP socket, INPUT counters) or forwarded (FORWARD
    // counters, S's rx counter)
    await m.run('ip', ['addr', 'add', `${B}/32`, 'dev', 'lo']);
    await m.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', `net.ipv4.conf.${mif}.rp_filter=0`]);
    // conntrack in use in M (INPUT): mirrored packets must still not be tracked (patch 0002)
    await stockIpt(['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'NEW,ESTABLISHED,INVALID,UNTRACKED']);
    await stockIpt(['-A', 'FORWARD']);
    oracles = [new Oracle(b, 'iptables-legacy', 'raw', 'PREROUTING'), new Oracle(b, 'iptables-legacy', 'mangle', 'POSTROUTING')];
    await oracles[0]!.install([A], [B]);
    await oracles[1]!.install([B], [A]);
  });

  afterAll(() => {
    for (const ns of [a, b, m, s]) ns?.delete();
  });

  it('sysctl off (the default, as on a stock kernel): the frames reach no rule of M', async () => {
    expect((await m.run('cat', [SYSCTL])).trim()).toBe('0');
    // a plain counting rule at the top of raw PREROUTING, taken out again afterwards
    await stockIpt(['-t', 'raw', '-A', 'PREROUTING', '-i', mif]);
    await zeroAll();
    const { packets, udpInM } = await drive();
    expect(packets).toBeGreaterThan(0n);
    expect(udpInM).toBe(0);
    expect(ruleCounters(await stockIpt(['-t', 'raw', '-L', 'PREROUTING', '-n', '-v', '-x']))).toEqual([[0n, 0n]]);
    await stockIpt(['-t', 'raw', '-D', 'PREROUTING', '-i', mif]);
    expect(await txPackets(m, mif)).toBe(0);
  });

  it('the original set-up command creates the PROMISC chain, its two pkttype rules and the rule', async () => {
    await m.run('sysctl', ['-qw', 'net.ipv4.ip_promisc_prerouting=1']);
    await ipt(['-t', 'raw', '-A', 'PROMISC', '-i', mif, '-m', 'traffic', '--traffic', '--netbase', '10.30.0.0', '--netmask', '24', '--name', 'PROMISC1']);
    const save = (await ipt(['-t', 'raw', '-S'])).trim().split('\n');
    expect(save).toEqual([
      '-P PREROUTING ACCEPT',
      '-P OUTPUT ACCEPT',
      '-N PROMISC',
      '-A PREROUTING -m pkttype --pkt-type otherhost -j PROMISC',
      '-A PREROUTING -m pkttype --pkt-type otherhost -j DROP',
      `-A PROMISC -i ${mif} -m traffic --traffic --netbase 10.30.0.0 --netmask 255.255.255.0 --name PROMISC1`,
    ]);
    // ordinary rules: Debian's unpatched iptables-legacy lists the same
    expect((await stockIpt(['-t', 'raw', '-S'])).trim().split('\n')).toEqual(save);
    // a counting rule after it: every packet in PROMISC must be untracked already (patch 0002)
    await ipt(['-t', 'raw', '-A', 'PROMISC', '-m', 'conntrack', '--ctstate', 'UNTRACKED']);
  });

  it('counts the frames for another host exactly; never forwards, answers, tracks or delivers them', async () => {
    await zeroAll();
    const tx0 = await Promise.all([txPackets(m, mif), txPackets(m, mToS)]);
    const sRx0 = await s.run('cat', [`/sys/class/net/${sIf}/statistics/rx_packets`]);
    const { pairs, packets, udpInM } = await drive();
    const expected = expectedTraffic(pairs, NET, 'all');
    expect(rowsByIp(await m.run('cat', ['/proc/net/xt_traffic/PROMISC1']))).toEqual(expected);
    // every mirrored IPv4 packet went through PROMISC (both rules there) and then DROP
    const total = pairs.reduce((sum, p) => sum + p.tcp + p.udp + p.other, 0n);
    expect(ruleCounters(await ipt(['-t', 'raw', '-L', 'PREROUTING', '-n', '-v', '-x']))).toEqual([
      [packets, total],
      [packets, total],
    ]);
    expect(ruleCounters(await ipt(['-t', 'raw', '-L', 'PROMISC', '-n', '-v', '-x']))).toEqual([
      [packets, total],
      [packets, total],
    ]);
    // M delivered nothing (UDP socket, INPUT), forwarded nothing (FORWARD, the link to S),
    // sent nothing on the port (no ICMP, no TCP RST) and tracked nothing
    expect(udpInM).toBe(0);
    expect(ruleCounters(await stockIpt(['-L', 'INPUT', '-n', '-v', '-x']))).toEqual([[0n, 0n]]);
    expect(ruleCounters(await stockIpt(['-L', 'FORWARD', '-n', '-v', '-x']))).toEqual([[0n, 0n]]);
    expect(await Promise.all([txPackets(m, mif), txPackets(m, mToS)])).toEqual(tx0);
    expect(await s.run('cat', [`/sys/class/net/${sIf}/statistics/rx_packets`])).toBe(sRx0);
    expect(await m.run('conntrack', ['-L']).catch((e: Error) => e.message)).toBe('');
  });
});
