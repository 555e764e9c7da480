import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Fake } from './fakes.js';

// `xttraffic mirror` in-process against a small fake system: ip, sysctl, tc and iptables
// handlers that keep the interface flags, forwarding, the IPv6 settings and link-local
// address, qdisc, filters (ingress and the egress guard) and raw-table rules, so enable, a
// second enable, status and disable act on what the previous command left.

interface Sys {
  flags: Set<string>;
  forwarding: string;
  /** net/ipv6/conf/eth1/*; undefined: a kernel without IPv6. */
  v6: Record<string, string> | undefined;
  /** link-local addresses of eth1 */
  ll: string[];
  clsact: boolean;
  filters: Map<number, string>;
  /** the egress guard's drop counter, undefined when absent */
  guard: number | undefined;
  tx: number;
  chain: boolean;
  prerouting: string[];
  promiscRules: string[];
}

const V6_DEFAULTS = { accept_ra: '1', autoconf: '1', router_solicitations: '-1', dad_transmits: '1', forwarding: '0', addr_gen_mode: '0' };
const LL = 'fe80::a8c1:abff:fe4e:9c01';

let f: Fake;
let sys: Sys;

function quote(a: string): string {
  return /\s/.test(a) ? `"${a}"` : a;
}

function install(fake: Fake, s: Sys): void {
  fake.handlers.set('ip', (a) => {
    if (a.slice(0, 4).join(' ') === '-s -j link show') {
      if (a[5] !== 'eth1') return { code: 1, stderr: `Device "${a[5]}" does not exist.\n` };
      return { stdout: JSON.stringify([{ ifname: 'eth1', flags: [...s.flags], stats64: { rx: { packets: 99, bytes: 9900 }, tx: { packets: s.tx, bytes: s.tx * 90 } } }]) };
    }
    if (a.join(' ') === '-j -6 addr show dev eth1 scope link') {
      return { stdout: JSON.stringify([{ ifname: 'eth1', addr_info: s.ll.map((l) => ({ family: 'inet6', local: l, prefixlen: 64, scope: 'link' })) }]) };
    }
    if (a.join(' ') === '-6 addr flush dev eth1 scope link') {
      s.ll = [];
      return {};
    }
    if (a[0] === 'link' && a[1] === 'set') {
      const [what, val] = [a[4]!, a[5]!];
      const flag = what === 'promisc' ? 'PROMISC' : 'NOARP';
      const set = what === 'promisc' ? val === 'on' : val === 'off';
      if (set) s.flags.add(flag);
      else s.flags.delete(flag);
      return {};
    }
    return { code: 1, stderr: 'unexpected ip call' };
  });
  fake.handlers.set('sysctl', (a) => {
    const v6 = (key: string) => /^net\/ipv6\/conf\/eth1\/(\w+)/.exec(key)?.[1];
    if (a[0] === '-n') {
      const out: string[] = [];
      for (const key of a.slice(1)) {
        if (key === 'net/ipv4/conf/eth1/forwarding') out.push(s.forwarding);
        else if (v6(key) && s.v6) out.push(s.v6[v6(key)!]!);
        else return { code: 255, stdout: out.map((x) => `${x}\n`).join(''), stderr: `sysctl: cannot stat /proc/sys/${key}: No such file or directory\n` };
      }
      return { stdout: out.map((x) => `${x}\n`).join('') };
    }
    const [key, val] = a[1]!.split('=') as [string, string];
    if (key === 'net/ipv4/conf/eth1/forwarding') s.forwarding = val;
    else if (v6(key) && s.v6) {
      s.v6[v6(key)!] = val;
      // as the kernel does: a mode that makes one brings the link-local address back
      if (v6(key) === 'addr_gen_mode' && val === '0' && s.ll.length === 0) s.ll = [LL];
    } else return { code: 255, stderr: `sysctl: cannot stat /proc/sys/${key}: No such file or directory\n` };
    return {};
  });
  fake.handlers.set('tc', (a) => {
    if (a.join(' ') === '-j qdisc show dev eth1') return { stdout: JSON.stringify([{ kind: 'noqueue' }, ...(s.clsact ? [{ kind: 'clsact' }] : [])]) };
    if (a.join(' ') === '-s -j filter show dev eth1 ingress') {
      const out = [...s.filters.entries()].flatMap(([pref, kind]) => [
        { pref, kind },
        { pref, kind, options: { actions: [{ stats: { packets: pref - 49000, bytes: (pref - 49000) * 100 } }] } },
      ]);
      return { stdout: JSON.stringify(out) };
    }
    if (a.join(' ') === '-s -j filter show dev eth1 egress') {
      const act = { order: 1, kind: 'gact', control_action: { type: 'drop' }, stats: { packets: s.guard, bytes: (s.guard ?? 0) * 86 } };
      return { stdout: JSON.stringify(s.guard === undefined ? [] : [{ pref: 49000, kind: 'matchall' }, { pref: 49000, kind: 'matchall', options: { actions: [act] } }]) };
    }
    if (a.join(' ') === 'filter add dev eth1 egress pref 49000 protocol all matchall action drop') {
      if (!s.clsact) return { code: 2, stderr: 'Error: Cannot find specified qdisc on specified device.\n' };
      s.guard = 0;
      return {};
    }
    if (a.join(' ') === 'filter del dev eth1 egress pref 49000') {
      s.guard = undefined;
      return {};
    }
    if (a[0] === 'qdisc' && a[1] === 'add') {
      s.clsact = true;
      return {};
    }
    if (a[0] === 'qdisc' && a[1] === 'del') {
      s.clsact = false;
      s.filters.clear();
      s.guard = undefined;
      return {};
    }
    if (a[0] === 'filter' && a[1] === 'add') {
      if (!s.clsact) return { code: 2, stderr: 'Error: Cannot find specified qdisc on specified device.\n' };
      s.filters.set(Number(a[6]), a[9]!);
      return {};
    }
    if (a[0] === 'filter' && a[1] === 'del') {
      s.filters.delete(Number(a[6]));
      return {};
    }
    return { code: 1, stderr: 'unexpected tc call' };
  });
  fake.handlers.set('iptables', (a) => {
    const rest = a.slice(3);
    if (a[2] === '-N') s.chain = true;
    else if (a[2] === '-X') s.chain = false;
    else if (a[2] === '-I') s.prerouting.unshift(rest.slice(2).map(quote).join(' '));
    else if (a[2] === '-D') {
      const line = rest.slice(1).map(quote).join(' ');
      const i = s.prerouting.indexOf(line);
      if (i < 0) return { code: 1, stderr: 'iptables: Bad rule (does a matching rule exist in that chain?).\n' };
      s.prerouting.splice(i, 1);
    }
    return {};
  });
  fake.handlers.set('iptables-save', () => ({
    stdout: [
      '*raw',
      ':PREROUTING ACCEPT [0:0]',
      ...(s.chain ? [':PROMISC - [0:0]'] : []),
      ...s.prerouting.map((r) => `[7:700] -A PREROUTING ${r}`),
      ...s.promiscRules.map((r) => `[7:700] -A PROMISC ${r}`),
      'COMMIT',
      '',
    ].join('\n'),
  }));
}

const OLD_COMMENT = 'xttraffic mirror eth1: promisc=off arp=on forwarding=1 clsact=added chain=created';
const COMMENT = `${OLD_COMMENT} ipv6=ra:1,auto:1,rs:-1,dad:1,fwd:0,agm:0`;

beforeEach(() => {
  f = new Fake();
  sys = {
    flags: new Set(['BROADCAST', 'UP']), forwarding: '1', v6: { ...V6_DEFAULTS }, ll: [LL], clsact: false, filters: new Map(), guard: undefined, tx: 0,
    chain: false, prerouting: [], promiscRules: [],
  };
  install(f, sys);
});
afterEach(() => f.cleanup());

function mutating(): string[] {
  return f.calls.filter((c) => !/-save$/.test(c.cmd) && !(c.args.includes('show') || c.args[0] === '-n')).map((c) => `${c.cmd} ${c.args.join(' ')}`);
}

describe('xttraffic mirror enable', () => {
  it('does every step once and prints them; a second enable changes nothing and says so', async () => {
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(0);
    expect(f.stderr).toBe('');
    expect(f.stdout).toBe([
      'mirror enabled on eth1:',
      '  create chain PROMISC in table raw',
      "  drop what comes in on eth1 at the end of raw PREROUTING's mirror rules",
      '  send what comes in on eth1 through PROMISC',
      '  no forwarding on eth1',
      '  no ARP on eth1',
      '  promiscuous mode on eth1',
      '  add a clsact qdisc to eth1',
      '  tc egress guard 49000: drop anything eth1 would send',
      '  IPv6 accept_ra 0 on eth1',
      '  IPv6 autoconf 0 on eth1',
      '  IPv6 router_solicitations 0 on eth1',
      '  IPv6 dad_transmits 0 on eth1',
      '  IPv6 addr_gen_mode 1 on eth1',
      `  remove the IPv6 link-local address of eth1 (${LL}/64)`,
      '  tc ingress filter 49001: untagged IPv4',
      '  tc ingress filter 49002: IPv4 in one 802.1Q tag',
      '  tc ingress filter 49003: IPv4 in 802.1ad + 802.1Q tags (QinQ)',
      '  tc ingress filter 49004: IPv4 in two 802.1Q tags',
      '  tc ingress filter 49005: anything else (left alone)',
      'count it: xttraffic rule add --table raw --chain PROMISC --name NAME --net CIDR ...',
      '',
    ].join('\n'));
    expect(mutating().slice(0, 4)).toEqual([
      'iptables -t raw -N PROMISC',
      'iptables -t raw -I PREROUTING 1 -i eth1 -m comment --comment xttraffic mirror eth1: drop -j DROP',
      `iptables -t raw -I PREROUTING 1 -i eth1 -m comment --comment ${COMMENT} -j PROMISC`,
      'sysctl -qw net/ipv4/conf/eth1/forwarding=0',
    ]);
    expect(sys.prerouting).toEqual([`-i eth1 -m comment --comment "${COMMENT}" -j PROMISC`, '-i eth1 -m comment --comment "xttraffic mirror eth1: drop" -j DROP']);
    expect([...sys.flags].sort()).toEqual(['BROADCAST', 'NOARP', 'PROMISC', 'UP']);
    expect([sys.forwarding, sys.clsact, [...sys.filters.keys()], sys.guard]).toEqual(['0', true, [49001, 49002, 49003, 49004, 49005], 0]);
    expect([sys.v6, sys.ll]).toEqual([{ accept_ra: '0', autoconf: '0', router_solicitations: '0', dad_transmits: '0', forwarding: '0', addr_gen_mode: '1' }, []]);

    f.calls = [];
    expect(await f.run('mirror', 'enable', 'eth1', '--json')).toBe(0);
    expect(f.json()).toEqual({
      mirror: {
        iface: 'eth1', enabled: true, changed: false, previous: { promisc: false, arp: true, forwarding: '1', clsactAdded: true, chainCreated: true, ipv6: V6_DEFAULTS },
        steps: [],
      },
    });
    expect(mutating()).toEqual([]);
  });

  it('--backend legacy runs iptables-legacy and iptables-legacy-save', async () => {
    f.handlers.set('iptables-legacy', f.handlers.get('iptables')!);
    f.handlers.set('iptables-legacy-save', f.handlers.get('iptables-save')!);
    f.handlers.delete('iptables');
    f.handlers.delete('iptables-save');
    expect(await f.run('mirror', 'enable', 'eth1', '--backend', 'legacy')).toBe(0);
    expect(f.runsOf('iptables-legacy-save')).toEqual([['-c', '-t', 'raw']]);
    expect(f.runsOf('iptables-legacy').map((a) => a[2])).toEqual(['-N', '-I', '-I']);
  });

  it('usage and resource errors', async () => {
    expect(await f.run('mirror', 'enable', 'eth+')).toBe(2);
    expect(f.stderr).toBe('xttraffic: bad interface name "eth+"\nhint: 1 to 15 characters of [A-Za-z0-9_.@-]\n');
    expect(await f.run('mirror', 'enable', 'eth9', '--json')).toBe(4);
    expect(f.errorJson().error).toMatchObject({ code: 'ENODEV', message: 'no interface eth9 in this network namespace' });
    expect(await f.run('mirror', 'enable', 'eth1', '--backend', 'xdp')).toBe(2);
    expect(f.calls.filter((c) => c.cmd === 'iptables').length).toBe(0);
  });

  it('a kernel without IPv6: no IPv6 step, recorded as ipv6=none, disable restores the rest', async () => {
    sys.v6 = undefined;
    sys.ll = [];
    expect(await f.run('mirror', 'enable', 'eth1', '--json')).toBe(0);
    expect((f.json() as { mirror: { previous: unknown } }).mirror.previous).toEqual({ promisc: false, arp: true, forwarding: '1', clsactAdded: true, chainCreated: true, ipv6: null });
    expect(mutating().filter((c) => c.includes('ipv6') || c.startsWith('ip -6'))).toEqual([
      `iptables -t raw -I PREROUTING 1 -i eth1 -m comment --comment ${OLD_COMMENT} ipv6=none -j PROMISC`,
    ]);
    expect(sys.guard).toBe(0);
    expect(await f.run('mirror', 'status', '--json')).toBe(0);
    expect((f.json() as { mirrors: Array<{ silence: unknown }> }).mirrors[0]!.silence).toEqual({ silent: true, ipv6: null, linkLocal: [], guard: true, triedToSend: { packets: 0, bytes: 0 }, sent: { packets: 0, bytes: 0 } });
    expect(await f.run('mirror', 'disable', 'eth1')).toBe(0);
    expect([sys.guard, sys.clsact, sys.prerouting]).toEqual([undefined, false, []]);
  });

  it('sysctl failing otherwise than "no such file": an error naming the command', async () => {
    f.handlers.set('sysctl', () => ({ code: 255, stderr: 'sysctl: permission denied on key "net.ipv6.conf.eth1.accept_ra"\n' }));
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(4);
    expect(f.stderr).toBe('xttraffic: sysctl -n net/ipv4/conf/eth1/forwarding: sysctl: permission denied on key "net.ipv6.conf.eth1.accept_ra"\nhint: run it as root (sudo)\n');
  });

  it('enabled by an older xttraffic: enable records the IPv6 settings in place (-R, counters kept) and silences the port', async () => {
    // what an older enable left: its comment, no guard, IPv6 untouched
    Object.assign(sys, { flags: new Set(['BROADCAST', 'UP', 'PROMISC', 'NOARP']), forwarding: '0', clsact: true, chain: true });
    for (const [p, kind] of [[49001, 'matchall'], [49002, 'flower'], [49003, 'flower'], [49004, 'flower'], [49005, 'matchall']] as const) sys.filters.set(p, kind);
    sys.prerouting = [`-i eth1 -m comment --comment "${OLD_COMMENT}" -j PROMISC`, '-i eth1 -m comment --comment "xttraffic mirror eth1: drop" -j DROP'];
    f.handlers.set('iptables', ((orig) => (a: string[], o: Parameters<typeof orig>[1]) => {
      if (a[2] !== '-R') return orig(a, o);
      // -t raw -R PREROUTING N -c P B rule...
      sys.prerouting[Number(a[4]) - 1] = a.slice(8).map(quote).join(' ');
      return {};
    })(f.handlers.get('iptables')!));
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(0);
    expect(mutating()).toEqual([
      `iptables -t raw -R PREROUTING 1 -c 7 700 -i eth1 -m comment --comment ${COMMENT} -j PROMISC`,
      'tc filter add dev eth1 egress pref 49000 protocol all matchall action drop',
      'sysctl -qw net/ipv6/conf/eth1/accept_ra=0',
      'sysctl -qw net/ipv6/conf/eth1/autoconf=0',
      'sysctl -qw net/ipv6/conf/eth1/router_solicitations=0',
      'sysctl -qw net/ipv6/conf/eth1/dad_transmits=0',
      'sysctl -qw net/ipv6/conf/eth1/addr_gen_mode=1',
      'ip -6 addr flush dev eth1 scope link',
    ]);
    expect(f.stdout.split('\n')[1]).toBe('  record the IPv6 settings of eth1 in the comment of its PROMISC rule (made by an older xttraffic)');
    expect(sys.prerouting[0]).toBe(`-i eth1 -m comment --comment "${COMMENT}" -j PROMISC`);
    // and disable now restores the IPv6 settings and the address
    expect(await f.run('mirror', 'disable', 'eth1')).toBe(0);
    expect([sys.v6, sys.ll, sys.prerouting]).toEqual([V6_DEFAULTS, [LL], []]);
  });

  it('a failing step stops enable and says what was done and how to undo it', async () => {
    f.handlers.set('tc', (a) => (a[0] === '-j' ? { stdout: '[]' } : { code: 2, stderr: 'Error: Specified qdisc kind is unknown.\n' }));
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(1);
    expect(f.stderr).toBe(
      'xttraffic: tc qdisc add dev eth1 clsact: Error: Specified qdisc kind is unknown.\n' +
      'hint: enable eth1 stopped at "add a clsact qdisc to eth1" after: create chain PROMISC in table raw, ' +
      "drop what comes in on eth1 at the end of raw PREROUTING's mirror rules, send what comes in on eth1 through PROMISC, " +
      'no forwarding on eth1, no ARP on eth1, promiscuous mode on eth1; `xttraffic mirror disable eth1` undoes it\n',
    );
  });
});

describe('xttraffic mirror disable', () => {
  it('not enabled: nothing changed, exit 0', async () => {
    expect(await f.run('mirror', 'disable', 'eth1')).toBe(0);
    expect(f.stdout).toBe('mirror not enabled on eth1: nothing changed\n');
    expect(mutating()).toEqual([]);
  });

  it('restores exactly what enable changed', async () => {
    const before = JSON.stringify({ ...sys, flags: [...sys.flags].sort(), filters: [...sys.filters] });
    expect(before).toContain(LL);
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(0);
    f.calls = [];
    expect(await f.run('mirror', 'disable', 'eth1', '--json')).toBe(0);
    expect(f.json()).toMatchObject({ mirror: { iface: 'eth1', enabled: false, changed: true, keptChain: false } });
    expect(mutating()).toEqual([
      'tc qdisc del dev eth1 clsact',
      'ip link set dev eth1 promisc off',
      'ip link set dev eth1 arp on',
      'sysctl -qw net/ipv4/conf/eth1/forwarding=1',
      'sysctl -qw net/ipv6/conf/eth1/accept_ra=1',
      'sysctl -qw net/ipv6/conf/eth1/autoconf=1',
      'sysctl -qw net/ipv6/conf/eth1/router_solicitations=-1',
      'sysctl -qw net/ipv6/conf/eth1/dad_transmits=1',
      'sysctl -qw net/ipv6/conf/eth1/addr_gen_mode=0',
      `iptables -t raw -D PREROUTING -i eth1 -m comment --comment ${COMMENT} -j PROMISC`,
      'iptables -t raw -D PREROUTING -i eth1 -m comment --comment xttraffic mirror eth1: drop -j DROP',
      'iptables -t raw -X PROMISC',
    ]);
    expect(JSON.stringify({ ...sys, flags: [...sys.flags].sort(), filters: [...sys.filters] })).toBe(before);
  });

  it('keeps PROMISC while it still has rules, and says so', async () => {
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(0);
    sys.promiscRules.push('-m traffic --traffic --netbase 10.30.0.0 --netmask 255.255.255.0 --name SPAN');
    expect(await f.run('mirror', 'disable', 'eth1')).toBe(0);
    expect(f.stdout.split('\n').slice(-2)).toEqual(['kept chain PROMISC: it still has rules (xttraffic rule list --table raw)', '']);
    expect(sys.chain).toBe(true);
    expect(sys.prerouting).toEqual([]);
  });
});

describe('xttraffic mirror status', () => {
  it('nothing enabled', async () => {
    expect(await f.run('mirror', 'status')).toBe(0);
    expect(f.stdout).toBe('mirror: not enabled on any interface\ntraffic rules in PROMISC: none (add one: xttraffic rule add --table raw --chain PROMISC ...)\n');
  });

  it('text and JSON: state, frames seen per filter, packets through PROMISC, the traffic rules', async () => {
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(0);
    sys.promiscRules.push('-m traffic --traffic --ipconn --netbase 10.30.0.0 --netmask 255.255.255.0 --name SPAN');
    sys.guard = 3;
    expect(await f.run('mirror', 'status')).toBe(0);
    expect(f.stdout).toBe([
      'eth1: enabled (promisc on, arp off, forwarding 0, tc filters 5/5)',
      '  frames seen:  15 (ipv4 1, 802.1Q 2, QinQ 3, 802.1Q+802.1Q 4, other 5)',
      '  to PROMISC:   7 packets, 700 bytes',
      '  dropped:      7 packets, 700 bytes',
      '  silence:      silent (egress guard 49000, IPv6 accept_ra 0, autoconf 0, router_solicitations 0, dad_transmits 0, forwarding 0, addr_gen_mode 1, link-local none)',
      '  tried to send: 3 frames, 258 bytes (dropped by the egress guard)',
      '  sent:         0 frames, 0 bytes',
      'traffic rules in PROMISC:',
      '  NAME  NET           OPTIONS',
      '  SPAN  10.30.0.0/24  traffic ipconn',
      '',
    ].join('\n'));
    expect(await f.run('mirror', 'status', 'eth1', '--json')).toBe(0);
    expect(f.json()).toEqual({
      mirrors: [{
        iface: 'eth1', enabled: true, promisc: true, arp: false, forwarding: '0',
        previous: { promisc: false, arp: true, forwarding: '1', clsactAdded: true, chainCreated: true, ipv6: V6_DEFAULTS },
        filters: { present: 5, expected: 5, frames: 15, byKind: { ipv4: 1, vlan: 2, qinq: 3, 'vlan-vlan': 4, other: 5 } },
        toChain: { packets: 7, bytes: 700 },
        dropped: { packets: 7, bytes: 700 },
        silence: {
          silent: true, ipv6: { accept_ra: '0', autoconf: '0', router_solicitations: '0', dad_transmits: '0', forwarding: '0', addr_gen_mode: '1' },
          linkLocal: [], guard: true, triedToSend: { packets: 3, bytes: 258 }, sent: { packets: 0, bytes: 0 },
        },
      }],
      rules: [expect.objectContaining({ name: 'SPAN', net: '10.30.0.0/24', traffic: true, ipconn: true })],
    });
  });
});

describe('xttraffic mirror status: a port that is not silent', () => {
  it('says NOT silent and shows what it sent and what is missing', async () => {
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(0);
    // someone put accept_ra back, a link-local address came back, the guard was deleted
    sys.v6!['accept_ra'] = '1';
    sys.ll = [LL];
    sys.guard = undefined;
    sys.tx = 4;
    expect(await f.run('mirror', 'status', 'eth1')).toBe(0);
    expect(f.stdout.split('\n').slice(4, 7)).toEqual([
      `  silence:      NOT silent (egress guard absent, IPv6 accept_ra 1, autoconf 0, router_solicitations 0, dad_transmits 0, forwarding 0, addr_gen_mode 1, link-local ${LL}/64)`,
      '  tried to send: 0 frames, 0 bytes (dropped by the egress guard)',
      '  sent:         4 frames, 360 bytes',
    ]);
    // a second enable silences it again
    f.calls = [];
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(0);
    expect(mutating()).toEqual([
      'tc filter add dev eth1 egress pref 49000 protocol all matchall action drop',
      'sysctl -qw net/ipv6/conf/eth1/accept_ra=0',
      'ip -6 addr flush dev eth1 scope link',
    ]);
  });
});
