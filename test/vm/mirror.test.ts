import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTraffic } from '../lib/proc-oracle.js';
import { loadModule } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { Oracle, expectedTraffic, parseNet, type ExpectedTraffic, type PairCount } from '../lib/oracle.js';
import { ok, runCli, type CliResult } from '../lib/cli.js';
import { mirrorSnapshot, waitCarrier, type MirrorStatusJson } from '../lib/mirror.js';
import { shAsync } from '../lib/sh.js';
import { PKT, link, tcpServe } from '../lib/topo.js';

// `xttraffic mirror` on a simulated SPAN port. A (10.30.0.1) and B (10.30.0.2) talk over a
// veth; tc on B's end copies every frame B receives and sends (`mirred egress mirror`) to MON,
// one end of a second veth whose other end, IF, is in the monitor namespace M. M runs
// `xttraffic mirror enable IF` and a -m traffic rule in raw PROMISC. Oracles at B (raw
// PREROUTING for A->B, mangle POSTROUTING for B->A) count the same packets; M's table must
// equal them exactly, M must never transmit, track or deliver anything, even though it has
// B's address (on lo) and a UDP socket on the port A sends to, and conntrack is in use in M.
// Then the same with the mirrored copies tagged (802.1Q, and 802.1ad + 802.1Q), and
// `disable` must leave IF, tc and the raw table exactly as before `enable`.

const A = '10.30.0.1';
const B = '10.30.0.2';
const NET = parseNet('10.30.0.0/24');
const UDP_PORT = 7000;
const TCP_PORT = 5001;

const cli = (ns: Netns, args: string[]): Promise<CliResult> => runCli(args, ns.name);

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
    const t = setTimeout(() => reject(new Error('udp listener did not start')), 30_000);
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

type Tagging = 'none' | '802.1Q' | 'QinQ';

/** tc batch for B's end of the A-B link: mirror both directions to MON, tagged as asked. */
function mirrorBatch(dev: string, mon: string, tagging: Tagging): string {
  const push = tagging === 'none' ? '' : tagging === '802.1Q' ? 'action vlan push id 100 pipe ' : 'action vlan push id 100 pipe action vlan push id 200 protocol 802.1ad pipe ';
  const pop = tagging === 'none' ? '' : tagging === '802.1Q' ? ' pipe action vlan pop' : ' pipe action vlan pop pipe action vlan pop';
  return [
    `qdisc add dev ${dev} clsact`,
    `filter add dev ${dev} ingress matchall ${push}action mirred egress mirror dev ${mon}${pop}`,
    `filter add dev ${dev} egress matchall ${push}action mirred egress mirror dev ${mon}${pop}`,
    '',
  ].join('\n');
}

function rowsByIp(text: string): Record<string, ExpectedTraffic> {
  const out: Record<string, ExpectedTraffic> = {};
  for (const r of parseTraffic(text)) out[r.ip] = { total: r.total, tcp: r.tcp, udp: r.udp, other: r.other };
  return out;
}

function suite(backend: 'iptables' | 'legacy'): void {
  const ipt = backend === 'legacy' ? 'iptables-legacy' : 'iptables';
  const bk = backend === 'legacy' ? ['--backend', 'legacy'] : [];

  describe(`xttraffic mirror on a simulated SPAN port (${ipt})`, () => {
    let a: Netns;
    let b: Netns;
    let m: Netns;
    let vb: string;
    let mon: string;
    let mif: string;
    let before: string;
    let oracles: Oracle[];

    /** What must be restored by disable: the interface, its tc set-up, the raw table. */
    const snapshot = (): Promise<string> => mirrorSnapshot(m, mif, ipt);

    async function oraclePairs(): Promise<PairCount[]> {
      return (await Promise.all(oracles.map((o) => o.read()))).flat();
    }

    beforeAll(async () => {
      loadModule();
      a = new Netns('ma');
      b = new Netns('mb');
      m = new Netns('mm');
      for (const ns of [a, b, m]) {
        await ns.run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      }
      [, vb] = await link(a, (d) => [`addr add ${A}/24 dev ${d}`], b, (d) => [`addr add ${B}/24 dev ${d}`]);
      [mon, mif] = await link(b, () => [], m, () => []);
      await shAsync('tc', ['-n', b.name, '-batch', '-'], { input: mirrorBatch(vb, mon, 'none') });
      // M has B's address (on lo, not on the mirror port) and uses conntrack: without the
      // mirror set-up's DROP, mirrored packets for B would be tracked and delivered in M.
      await m.run('ip', ['addr', 'add', `${B}/32`, 'dev', 'lo']);
      // forwarding on for the mirror port, so enable has something to change and restore
      await m.run('sysctl', ['-qw', `net/ipv4/conf/${mif}/forwarding=1`]);
      await m.run(ipt, ['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'NEW,ESTABLISHED,RELATED', '-j', 'ACCEPT']);
      oracles = [new Oracle(b, ipt, 'raw', 'PREROUTING'), new Oracle(b, ipt, 'mangle', 'POSTROUTING')];
      await oracles[0]!.install([A], [B]);
      await oracles[1]!.install([B], [A]);
      await waitCarrier(m, mif); // not a snapshot of a link still coming up
      before = await snapshot();
    });

    afterAll(() => {
      for (const ns of [a, b, m]) ns?.delete();
    });

    it('enable: every step once; a second enable changes nothing and says so', async () => {
      const first = JSON.parse(ok(await cli(m, ['mirror', 'enable', mif, ...bk, '--json'])).stdout) as {
        mirror: { iface: string; changed: boolean; previous: Record<string, unknown>; steps: Array<{ cmd: string; args: string[] }> };
      };
      expect(first.mirror.iface).toBe(mif);
      expect(first.mirror.changed).toBe(true);
      expect(first.mirror.previous).toEqual({ promisc: false, arp: true, forwarding: '1', clsactAdded: true, chainCreated: true });
      expect(first.mirror.steps.map((s) => [s.cmd, s.args.slice(0, 4).join(' ')])).toEqual([
        [ipt, '-t raw -N PROMISC'],
        [ipt, '-t raw -I PREROUTING'],
        [ipt, '-t raw -I PREROUTING'],
        ['sysctl', `-qw net/ipv4/conf/${mif}/forwarding=0`],
        ['ip', `link set dev ${mif}`],
        ['ip', `link set dev ${mif}`],
        ['tc', `qdisc add dev ${mif}`],
        ['tc', `filter add dev ${mif}`],
        ['tc', `filter add dev ${mif}`],
        ['tc', `filter add dev ${mif}`],
        ['tc', `filter add dev ${mif}`],
        ['tc', `filter add dev ${mif}`],
      ]);
      const enabled = await snapshot();
      expect(enabled).not.toBe(before);
      const again = ok(await cli(m, ['mirror', 'enable', mif, ...bk]));
      expect(again.stdout).toBe(`mirror already enabled on ${mif}: nothing changed\n`);
      expect(await snapshot()).toBe(enabled);
      const link = await m.run('ip', ['-j', 'link', 'show', 'dev', mif]);
      const flags = (JSON.parse(link) as Array<{ flags: string[] }>)[0]!.flags;
      expect(flags).toContain('PROMISC');
      expect(flags).toContain('NOARP');
      expect(await m.run(ipt, ['-t', 'raw', '-S', 'PREROUTING'])).toBe(
        `-P PREROUTING ACCEPT\n-A PREROUTING -i ${mif} -m comment --comment "xttraffic mirror ${mif}: promisc=off arp=on forwarding=1 clsact=added chain=created" -j PROMISC\n` +
        `-A PREROUTING -i ${mif} -m comment --comment "xttraffic mirror ${mif}: drop" -j DROP\n`,
      );
      await m.run(ipt, ['-t', 'raw', '-A', 'PROMISC', '-m', 'traffic', '--traffic', '--ipconn', '--portconn', '--netbase', '10.30.0.0', '--netmask', '24', '--name', 'SPAN']);
    });

    async function driveAndCheck(tagging: Tagging): Promise<void> {
      if (tagging !== 'none') {
        await b.run('tc', ['qdisc', 'del', 'dev', vb, 'clsact']);
        await shAsync('tc', ['-n', b.name, '-batch', '-'], { input: mirrorBatch(vb, mon, tagging) });
      }
      const [, , , , txBefore] = await Promise.all([
        b.run(ipt, ['-t', 'raw', '-Z']),
        b.run(ipt, ['-t', 'mangle', '-Z']),
        m.run('tee', ['/proc/net/xt_traffic/SPAN'], { input: 'clear\n' }),
        m.run(ipt, ['-t', 'raw', '-Z']),
        m.run('cat', [`/sys/class/net/${mif}/statistics/tx_packets`]),
      ]);
      expect(txBefore.trim()).toBe('0');
      const [listener, srv] = await Promise.all([udpListener(m, UDP_PORT), tcpServe(b, TCP_PORT)]);
      // all at once: the counts are exact whatever the interleaving
      await Promise.all([
        a.run('ping', ['-q', '-c', '3', '-i', '0.2', '-s', '100', '-W', '2', B]),
        a.run('python3', [PKT, 'tcpsend', B, String(TCP_PORT), '30000']),
        a.run('python3', [PKT, 'udp', B, String(UDP_PORT), '200', '4']),
        b.run('python3', [PKT, 'udp', A, String(UDP_PORT + 1), '50', '2']),
      ]);
      expect(await srv.done).toBe(30000);
      await new Promise((r) => setTimeout(r, 300));
      expect(await listener.count()).toBe(0);

      const pairs = await oraclePairs();
      const expected = expectedTraffic(pairs, NET, 'all');
      // the oracles saw every kind of traffic the test sent
      expect(pairs.every((p) => p.tcp > 0n && p.udp > 0n && p.other > 0n)).toBe(true);
      expect(rowsByIp(await m.run('cat', ['/proc/net/xt_traffic/SPAN']))).toEqual(expected);

      expect((await m.run('cat', [`/sys/class/net/${mif}/statistics/tx_packets`])).trim()).toBe('0');
      const ct = await m.run('conntrack', ['-L']).catch((e: Error) => e.message);
      expect(ct).toBe('');
      const total = pairs.reduce((s, p) => s + p.tcp + p.udp + p.other, 0n);
      const st = JSON.parse(ok(await cli(m, ['mirror', 'status', ...bk, '--json'])).stdout) as MirrorStatusJson;
      expect(st.mirrors.length).toBe(1);
      const s = st.mirrors[0]!;
      expect([s.iface, s.enabled, s.promisc, s.arp, s.forwarding, s.filters.present]).toEqual([mif, true, true, false, '0', 5]);
      expect(BigInt(s.toChain.bytes)).toBe(total);
      expect(s.dropped).toEqual(s.toChain);
      const kind = tagging === 'none' ? 'ipv4' : tagging === '802.1Q' ? 'vlan' : 'qinq';
      expect(s.filters.byKind[kind] ?? 0).toBeGreaterThanOrEqual(s.toChain.packets);
      expect(st.rules.map((r) => [r.name, r.net])).toEqual([['SPAN', '10.30.0.0/24']]);
    }

    it('untagged: M counts exactly what the oracles at B counted, sends, tracks and delivers nothing', () => driveAndCheck('none'));
    it('802.1Q-tagged mirror copies: the same exact counts', () => driveAndCheck('802.1Q'));
    it('QinQ (802.1ad outer, 802.1Q inner) mirror copies: the same exact counts', () => driveAndCheck('QinQ'));

    it('disable restores the interface, tc and the raw table exactly; the PROMISC chain it created is gone', async () => {
      await m.run(ipt, ['-t', 'raw', '-F', 'PROMISC']);
      const off = JSON.parse(ok(await cli(m, ['mirror', 'disable', mif, ...bk, '--json'])).stdout) as { mirror: { changed: boolean; keptChain: boolean } };
      expect(off.mirror).toMatchObject({ changed: true, keptChain: false });
      expect(await snapshot()).toBe(before);
    });
  });
}

suite('iptables');
suite('legacy');
