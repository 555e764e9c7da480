import { sh, shAsync } from './sh.js';

let seq = 0;

/** A network namespace made by a test; `exec` runs a program inside it. */
export class Netns {
  readonly name: string;

  constructor(prefix: string) {
    this.name = `${prefix}${process.pid}x${seq++}`;
    sh('ip', ['netns', 'add', this.name]);
    this.exec('ip', ['link', 'set', 'lo', 'up']);
  }

  exec(cmd: string, args: string[] = [], opts: { input?: string } = {}): string {
    return sh('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  run(cmd: string, args: string[] = [], opts: { input?: string } = {}): Promise<string> {
    return shAsync('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Reads a file as seen from inside the namespace (/proc/net is per netns). */
  cat(file: string): string {
    return this.exec('cat', [file]);
  }

  delete(): void {
    sh('ip', ['netns', 'del', this.name]);
  }
}

export interface Link {
  a: Netns;
  b: Netns;
  ifA: string;
  ifB: string;
}

/**
 * Joins two namespaces by a veth pair with the given addresses (/24 unless given).
 * Offloads are off so every packet the stack sees is one wire packet: the
 * oracle's iptables counters and our byte counts then measure the same thing.
 */
export function veth(a: Netns, ipA: string, b: Netns, ipB: string, opts: { prefix?: number; offloads?: boolean; mtu?: number } = {}): Link {
  const ifA = `v${seq++}a`;
  const ifB = `v${seq++}b`;
  const prefix = opts.prefix ?? 24;
  sh('ip', ['link', 'add', ifA, 'netns', a.name, 'type', 'veth', 'peer', 'name', ifB, 'netns', b.name]);
  a.exec('ip', ['addr', 'add', `${ipA}/${prefix}`, 'dev', ifA]);
  b.exec('ip', ['addr', 'add', `${ipB}/${prefix}`, 'dev', ifB]);
  for (const [ns, dev] of [[a, ifA], [b, ifB]] as const) {
    if (opts.mtu) ns.exec('ip', ['link', 'set', dev, 'mtu', String(opts.mtu)]);
    if (!opts.offloads) ns.exec('ethtool', ['-K', dev, 'tso', 'off', 'gso', 'off', 'gro', 'off', 'tx', 'off', 'rx', 'off']);
    ns.exec('ip', ['link', 'set', dev, 'up']);
  }
  return { a, b, ifA, ifB };
}
