import { spawn } from 'node:child_process';
import { Netns } from './netns.js';
import { REPO, shAsync } from './sh.js';

export const PKT = `${REPO}/test/lib/pkt.py`;

let links = 0;

/**
 * Joins two namespaces by a veth pair, with few process spawns (they are slow under
 * TCG). Offloads are off so every packet the stack sees is one wire packet: the
 * oracle's iptables counters and xt_traffic's bytes then measure the same thing.
 */
export async function link(a: Netns, aCmds: (dev: string) => string[], b: Netns, bCmds: (dev: string) => string[]): Promise<[string, string]> {
  const ifA = `l${links}a`;
  const ifB = `l${links++}b`;
  await shAsync('ip', ['link', 'add', ifA, 'netns', a.name, 'type', 'veth', 'peer', 'name', ifB, 'netns', b.name]);
  for (const [ns, dev, cmds] of [[a, ifA, aCmds], [b, ifB, bCmds]] as const) {
    await ns.run('ethtool', ['-K', dev, 'tso', 'off', 'gso', 'off', 'gro', 'off', 'tx', 'off', 'rx', 'off']);
    await shAsync('ip', ['-n', ns.name, '-batch', '-'], { input: [`link set ${dev} up`, ...cmds(dev)].join('\n') + '\n' });
  }
  return [ifA, ifB];
}

/**
 * A router R between two hosts of the monitored net 10.1.0.0/16 (H1 10.1.1.2 and
 * H2 10.1.2.2, each on its own leg) and an outside host X 203.0.113.2. Everything
 * between them crosses R's PREROUTING, where the rules under test sit. IPv6 is off
 * and the hosts drop UDP and protocols 253/47 on input, so no host answers with ICMP
 * errors the test did not ask for.
 */
export class RoutedTopo {
  readonly r = new Netns('r');
  readonly h1 = new Netns('h1');
  readonly h2 = new Netns('h2');
  readonly x = new Netns('x');
  static readonly NET = '10.1.0.0/16';
  static readonly H1 = '10.1.1.2';
  static readonly H2 = '10.1.2.2';
  static readonly X = '203.0.113.2';
  static readonly R_ADDRS = ['10.1.1.1', '10.1.2.1', '203.0.113.1'];

  private constructor(readonly ipt: string) {}

  static async create(ipt: string): Promise<RoutedTopo> {
    const t = new RoutedTopo(ipt);
    for (const ns of [t.r, t.h1, t.h2, t.x]) {
      await ns.run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv4.ip_forward=' + (ns === t.r ? 1 : 0)]);
    }
    const legs: [Netns, string, string][] = [
      [t.h1, RoutedTopo.H1, '10.1.1.1'],
      [t.h2, RoutedTopo.H2, '10.1.2.1'],
      [t.x, RoutedTopo.X, '203.0.113.1'],
    ];
    for (const [host, ip, gw] of legs) {
      await link(
        host,
        (dev) => [`addr add ${ip}/24 dev ${dev}`, `route add default via ${gw}`],
        t.r,
        (dev) => [`addr add ${gw}/24 dev ${dev}`],
      );
      await host.run(`${ipt}-restore`, [], {
        input: ['*filter', '-A INPUT -p udp -j DROP', '-A INPUT -p 253 -j DROP', '-A INPUT -p 47 -j DROP', 'COMMIT', ''].join('\n'),
      });
    }
    return t;
  }

  /** Every address packets come from (into R) and go to. */
  static sources(): string[] {
    return [RoutedTopo.H1, RoutedTopo.H2, RoutedTopo.X];
  }

  static dests(): string[] {
    return [RoutedTopo.H1, RoutedTopo.H2, RoutedTopo.X, ...RoutedTopo.R_ADDRS];
  }

  destroy(): void {
    for (const ns of [this.r, this.h1, this.h2, this.x]) ns.delete();
  }
}

/**
 * Starts a python server script (`pkt.py`/`pkt6.py` tcpserve, udpsink ...) in a namespace and
 * waits until it prints "listening". `done` resolves with the last number it prints (in an
 * object: an async function returning a bare promise would wait for it); both promises exist
 * from the start, so no event can be missed.
 */
export async function startServer(ns: Netns, script: string, args: string[]): Promise<{ done: Promise<number> }> {
  const label = `${script.split('/').pop()} ${args.join(' ')}`;
  const srv = spawn('ip', ['netns', 'exec', ns.name, 'python3', script, ...args]);
  let out = '';
  let err = '';
  srv.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<number>((resolve, reject) =>
    srv.on('close', (code) => (code === 0 ? resolve(Number(out.trim().split('\n').pop())) : reject(new Error(`${label}: ${err}`)))),
  );
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${label} did not start: ${out}${err}`)), 60_000);
    srv.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening')) {
        clearTimeout(t);
        resolve();
      }
    });
    done.catch(reject);
  });
  return { done };
}

/** `pkt.py tcpserve PORT` in a namespace: `done` resolves with the byte count it received. */
export async function tcpServe(ns: Netns, port: number): Promise<{ done: Promise<number> }> {
  return startServer(ns, PKT, ['tcpserve', String(port)]);
}
