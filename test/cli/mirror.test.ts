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
  /** ip6tables' raw table */
  chain6: boolean;
  prerouting6: string[];
  promiscRules6: string[];
  /** the nft guard's drop counter, undefined when its table is absent */
  nft: number | undefined;
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
  for (const v6 of [false, true]) {
    const chain = v6 ? 'chain6' : 'chain';
    const pre = v6 ? 'prerouting6' : 'prerouting';
    const rules = v6 ? 'promiscRules6' : 'promiscRules';
    const n = v6 ? 5 : 7;
    fake.handlers.set(v6 ? 'ip6tables' : 'iptables', (a) => {
      const rest = a.slice(3);
      if (a[2] === '-N') s[chain] = true;
      else if (a[2] === '-X') s[chain] = false;
      else if (a[2] === '-I') s[pre].unshift(rest.slice(2).map(quote).join(' '));
      else if (a[2] === '-D') {
        const line = rest.slice(1).map(quote).join(' ');
        const i = s[pre].indexOf(line);
        if (i < 0) return { code: 1, stderr: `${v6 ? 'ip6tables' : 'iptables'}: Bad rule (does a matching rule exist in that chain?).\n` };
        s[pre].splice(i, 1);
      }
      return {};
    });
    fake.handlers.set(v6 ? 'ip6tables-save' : 'iptables-save', () => ({
      stdout: [
        '*raw',
        ':PREROUTING ACCEPT [0:0]',
        ...(s[chain] ? [':PROMISC - [0:0]'] : []),
        ...s[pre].map((r) => `[${n}:${n}00] -A PREROUTING ${r}`),
        ...s[rules].map((r) => `[${n}:${n}00] -A PROMISC ${r}`),
        'COMMIT',
        '',
      ].join('\n'),
    }));
  }
  fake.handlers.set('nft', (a) => {
    const table = 'xttraffic_mirror_eth1';
    if (a.join(' ') === `-j list table netdev ${table}`) {
      if (s.nft === undefined) return { code: 1, stderr: `Error: No such file or directory\nlist table netdev ${table}\n` };
      return {
        stdout: JSON.stringify({
          nftables: [
            { table: { family: 'netdev', name: table } },
            { chain: { family: 'netdev', table, name: 'egress', type: 'filter', hook: 'egress', prio: 0, policy: 'accept', dev: 'eth1' } },
            { rule: { family: 'netdev', table, chain: 'egress', expr: [{ counter: { packets: s.nft, bytes: s.nft * 60 } }, { drop: null }] } },
          ],
        }),
      };
    }
    if (a.length === 1 && a[0]!.startsWith(`add table netdev ${table}\n`)) {
      s.nft = 0;
      return {};
    }
    if (a.join(' ') === `delete table netdev ${table}`) {
      s.nft = undefined;
      return {};
    }
    return { code: 1, stderr: 'unexpected nft call' };
  });
}
const NFT_ADD = 'nft add table netdev xttraffic_mirror_eth1\n' +
  'add chain netdev xttraffic_mirror_eth1 egress { type filter hook egress device "eth1" priority 0; policy accept; }\n' +
  'add rule netdev xttraffic_mirror_eth1 egress counter drop';

const OLD_COMMENT = 'xttraffic mirror eth1: promisc=off arp=on forwarding=1 clsact=added chain=created';
const COMMENT = `${OLD_COMMENT} ipv6=ra:1,auto:1,rs:-1,dad:1,fwd:0,agm:0`;

beforeEach(() => {
  f = new Fake();
  sys = {
    flags: new Set(['BROADCAST', 'UP']), forwarding: '1', v6: { ...V6_DEFAULTS }, ll: [LL], clsact: false, filters: new Map(), guard: undefined, tx: 0,
    chain: false, prerouting: [], promiscRules: [], chain6: false, prerouting6: [], promiscRules6: [], nft: undefined,
  };
  install(f, sys);
});
afterEach(() => f.cleanup());

function mutating(): string[] {
  return f.calls.filter((c) => !/-save$/.test(c.cmd) && !(c.args.includes('show') || c.args.includes('list') || c.args[0] === '-n')).map((c) => `${c.cmd} ${c.args.join(' ')}`);
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
      "  create chain PROMISC in ip6tables' table raw",
      "  drop what comes in on eth1 at the end of ip6tables' raw PREROUTING mirror rules",
      "  send what comes in on eth1 through ip6tables' PROMISC",
      '  no forwarding on eth1',
      '  no ARP on eth1',
      '  promiscuous mode on eth1',
      '  add a clsact qdisc to eth1',
      '  tc egress guard 49000: drop anything eth1 would send',
      '  nft egress guard (table netdev xttraffic_mirror_eth1): drop anything eth1 would send, PACKET_QDISC_BYPASS frames included',
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
      '  tc ingress filter 48996: untagged IPv6',
      '  tc ingress filter 48997: IPv6 in one 802.1Q tag',
      '  tc ingress filter 48998: IPv6 in 802.1ad + 802.1Q tags (QinQ)',
      '  tc ingress filter 48999: IPv6 in two 802.1Q tags',
      '  tc ingress filter 49005: anything else (left alone)',
      'count it: xttraffic rule add --table raw --chain PROMISC --name NAME --net CIDR ...',
      '',
    ].join('\n'));
    expect(mutating().slice(0, 4)).toEqual([
      'iptables -t raw -N PROMISC',
      'iptables -t raw -I PREROUTING 1 -i eth1 -m comment --comment xttraffic mirror eth1: drop -j DROP',
      `iptables -t raw -I PREROUTING 1 -i eth1 -m comment --comment ${COMMENT} -j PROMISC`,
      'ip6tables -t raw -N PROMISC',
    ]);
    expect(mutating()).toContain(NFT_ADD);
    expect(sys.prerouting).toEqual([`-i eth1 -m comment --comment "${COMMENT}" -j PROMISC`, '-i eth1 -m comment --comment "xttraffic mirror eth1: drop" -j DROP']);
    expect(sys.prerouting6).toEqual(sys.prerouting);
    expect([sys.chain6, sys.nft]).toEqual([true, 0]);
    expect([...sys.flags].sort()).toEqual(['BROADCAST', 'NOARP', 'PROMISC', 'UP']);
    expect([sys.forwarding, sys.clsact, [...sys.filters.keys()], sys.guard]).toEqual(['0', true, [49001, 49002, 49003, 49004, 48996, 48997, 48998, 48999, 49005], 0]);
    expect([sys.v6, sys.ll]).toEqual([{ accept_ra: '0', autoconf: '0', router_solicitations: '0', dad_transmits: '0', forwarding: '0', addr_gen_mode: '1' }, []]);

    f.calls = [];
    expect(await f.run('mirror', 'enable', 'eth1', '--json')).toBe(0);
    expect(f.json()).toEqual({
      mirror: {
        iface: 'eth1', enabled: true, changed: false, previous: { promisc: false, arp: true, forwarding: '1', clsactAdded: true, chainCreated: true, ipv6: V6_DEFAULTS },
        steps: [], warnings: [],
      },
    });
    expect(mutating()).toEqual([]);
  });

  it('nft not installed: enabled with a warning saying what the tc guard does not stop; status says it too', async () => {
    f.handlers.set('nft', () => undefined); // not found
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(0);
    expect(f.stderr).toBe('xttraffic: warning: nft not found: no nft egress guard on eth1; the tc guard drops what the port would send except frames sent with PACKET_QDISC_BYPASS (install nftables and run enable again)\n');
    expect(mutating().filter((c) => c.startsWith('nft'))).toEqual([]);
    expect(sys.guard).toBe(0);
    expect(await f.run('mirror', 'status', 'eth1')).toBe(0);
    expect(f.stdout.split('\n')[5]).toBe('  nft guard:    netdev xttraffic_mirror_eth1 not installed: frames sent with PACKET_QDISC_BYPASS would leave (install nftables, enable again)');
    expect(await f.run('mirror', 'disable', 'eth1')).toBe(0);
    expect([sys.guard, sys.prerouting, sys.prerouting6]).toEqual([undefined, [], []]);
  });

  it('a kernel that refuses the netdev egress hook: enabled with a warning, the tc guard kept', async () => {
    const orig = f.handlers.get('nft')!;
    f.handlers.set('nft', (a, o) => (a[0]!.startsWith('add table') ? { code: 1, stderr: 'Error: Could not process rule: No such file or directory\nadd chain netdev ...\n' } : orig(a, o)));
    expect(await f.run('mirror', 'enable', 'eth1', '--json')).toBe(0);
    expect((f.json() as { mirror: { warnings: string[] } }).mirror.warnings).toEqual([
      'the nft egress guard could not be added (the netdev egress hook needs Linux 5.16+ with CONFIG_NETFILTER_EGRESS): the tc guard drops what the port would send except frames sent with PACKET_QDISC_BYPASS ' +
      '(nft: Error: Could not process rule: No such file or directory add chain netdev ...)',
    ]);
    expect(f.stderr).toMatch(/^xttraffic: warning: the nft egress guard could not be added/);
    expect([sys.guard, sys.nft, [...sys.filters.keys()].length]).toEqual([0, undefined, 9]);
  });

  it('--backend legacy runs iptables-legacy and iptables-legacy-save', async () => {
    f.handlers.set('iptables-legacy', f.handlers.get('iptables')!);
    f.handlers.set('iptables-legacy-save', f.handlers.get('iptables-save')!);
    f.handlers.set('ip6tables-legacy', f.handlers.get('ip6tables')!);
    f.handlers.set('ip6tables-legacy-save', f.handlers.get('ip6tables-save')!);
    for (const c of ['iptables', 'iptables-save', 'ip6tables', 'ip6tables-save']) f.handlers.delete(c);
    expect(await f.run('mirror', 'enable', 'eth1', '--backend', 'legacy')).toBe(0);
    expect(f.runsOf('iptables-legacy-save')).toEqual([['-c', '-t', 'raw']]);
    expect(f.runsOf('iptables-legacy').map((a) => a[2])).toEqual(['-N', '-I', '-I']);
    expect(f.runsOf('ip6tables-legacy').map((a) => a[2])).toEqual(['-N', '-I', '-I']);
    expect(f.runsOf('ip6tables-legacy-save')).toEqual([['-c', '-t', 'raw']]);
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
    expect(mutating().filter((c) => c.includes('ipv6') || c.startsWith('ip -6') || c.startsWith('ip6tables'))).toEqual([
      `iptables -t raw -I PREROUTING 1 -i eth1 -m comment --comment ${OLD_COMMENT} ipv6=none -j PROMISC`,
      'tc filter add dev eth1 ingress pref 48996 protocol ipv6 matchall action skbedit ptype host',
      'tc filter add dev eth1 ingress pref 48997 protocol 802.1Q flower vlan_ethtype ipv6 action vlan pop pipe action skbedit ptype host',
      'tc filter add dev eth1 ingress pref 48998 protocol 802.1ad flower vlan_ethtype 802.1Q cvlan_ethtype ipv6 action vlan pop pipe action vlan pop pipe action skbedit ptype host',
      'tc filter add dev eth1 ingress pref 48999 protocol 802.1Q flower vlan_ethtype 802.1Q cvlan_ethtype ipv6 action vlan pop pipe action vlan pop pipe action skbedit ptype host',
    ]);
    expect(f.runsOf('ip6tables-save')).toEqual([]);
    expect(sys.guard).toBe(0);
    expect(await f.run('mirror', 'status', '--json')).toBe(0);
    const st = (f.json() as { mirrors: Array<{ silence: unknown; ip6tables: unknown }> }).mirrors[0]!;
    expect(st.ip6tables).toBeNull();
    expect(st.silence).toEqual({
      silent: true, ipv6: null, linkLocal: [], guard: true, nft: { table: 'netdev xttraffic_mirror_eth1', state: 'present', dropped: { packets: 0, bytes: 0 } },
      triedToSend: { packets: 0, bytes: 0 }, sent: { packets: 0, bytes: 0 },
    });
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
      'ip6tables -t raw -N PROMISC',
      'ip6tables -t raw -I PREROUTING 1 -i eth1 -m comment --comment xttraffic mirror eth1: drop -j DROP',
      `ip6tables -t raw -I PREROUTING 1 -i eth1 -m comment --comment ${COMMENT} -j PROMISC`,
      'tc filter add dev eth1 egress pref 49000 protocol all matchall action drop',
      NFT_ADD,
      'sysctl -qw net/ipv6/conf/eth1/accept_ra=0',
      'sysctl -qw net/ipv6/conf/eth1/autoconf=0',
      'sysctl -qw net/ipv6/conf/eth1/router_solicitations=0',
      'sysctl -qw net/ipv6/conf/eth1/dad_transmits=0',
      'sysctl -qw net/ipv6/conf/eth1/addr_gen_mode=1',
      'ip -6 addr flush dev eth1 scope link',
      'tc filter add dev eth1 ingress pref 48996 protocol ipv6 matchall action skbedit ptype host',
      'tc filter add dev eth1 ingress pref 48997 protocol 802.1Q flower vlan_ethtype ipv6 action vlan pop pipe action skbedit ptype host',
      'tc filter add dev eth1 ingress pref 48998 protocol 802.1ad flower vlan_ethtype 802.1Q cvlan_ethtype ipv6 action vlan pop pipe action vlan pop pipe action skbedit ptype host',
      'tc filter add dev eth1 ingress pref 48999 protocol 802.1Q flower vlan_ethtype 802.1Q cvlan_ethtype ipv6 action vlan pop pipe action vlan pop pipe action skbedit ptype host',
    ]);
    expect(f.stdout.split('\n')[1]).toBe('  record the IPv6 settings of eth1 in the comment of its PROMISC rule (made by an older xttraffic)');
    expect(sys.prerouting[0]).toBe(`-i eth1 -m comment --comment "${COMMENT}" -j PROMISC`);
    // and disable now restores the IPv6 settings and the address
    expect(await f.run('mirror', 'disable', 'eth1')).toBe(0);
    expect([sys.v6, sys.ll, sys.prerouting, sys.prerouting6, sys.chain6, sys.nft]).toEqual([V6_DEFAULTS, [LL], [], [], false, undefined]);
  });

  it('a failing step stops enable and says what was done and how to undo it', async () => {
    f.handlers.set('tc', (a) => (a[0] === '-j' ? { stdout: '[]' } : { code: 2, stderr: 'Error: Specified qdisc kind is unknown.\n' }));
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(1);
    expect(f.stderr).toBe(
      'xttraffic: tc qdisc add dev eth1 clsact: Error: Specified qdisc kind is unknown.\n' +
      'hint: enable eth1 stopped at "add a clsact qdisc to eth1" after: create chain PROMISC in table raw, ' +
      "drop what comes in on eth1 at the end of raw PREROUTING's mirror rules, send what comes in on eth1 through PROMISC, " +
      "create chain PROMISC in ip6tables' table raw, drop what comes in on eth1 at the end of ip6tables' raw PREROUTING mirror rules, " +
      "send what comes in on eth1 through ip6tables' PROMISC, no forwarding on eth1, no ARP on eth1, promiscuous mode on eth1; `xttraffic mirror disable eth1` undoes it\n",
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
      'nft delete table netdev xttraffic_mirror_eth1',
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
      `ip6tables -t raw -D PREROUTING -i eth1 -m comment --comment ${COMMENT} -j PROMISC`,
      'ip6tables -t raw -D PREROUTING -i eth1 -m comment --comment xttraffic mirror eth1: drop -j DROP',
      'ip6tables -t raw -X PROMISC',
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
    expect(sys.chain6).toBe(false);
    // the same for ip6tables' chain
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(0);
    sys.promiscRules6.push('-m traffic --traffic --netbase 2001:db8:: --netmask 48 --hostprefix 64 --name SPAN6');
    expect(await f.run('mirror', 'disable', 'eth1')).toBe(0);
    // (iptables' PROMISC was there at this enable: kept, not the enable's to delete)
    expect(f.stdout.split('\n').slice(-2)).toEqual(["kept ip6tables' chain PROMISC: it still has rules (xttraffic rule list --table raw)", '']);
    expect([sys.chain6, sys.prerouting6]).toEqual([true, []]);
  });
});

describe('xttraffic mirror status', () => {
  it('nothing enabled', async () => {
    expect(await f.run('mirror', 'status')).toBe(0);
    expect(f.stdout).toBe('mirror: not enabled on any interface\ntraffic rules in PROMISC: none (add one: xttraffic rule add --table raw --chain PROMISC ...; an IPv6 --net runs ip6tables)\n');
  });

  it('text and JSON: state, frames seen per filter, packets through PROMISC, the traffic rules', async () => {
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(0);
    sys.promiscRules.push('-m traffic --traffic --ipconn --netbase 10.30.0.0 --netmask 255.255.255.0 --name SPAN');
    sys.promiscRules6.push('-m traffic --traffic --netbase 2001:db8:: --netmask 48 --hostprefix 64 --name SPAN6');
    sys.guard = 3;
    sys.nft = 2;
    expect(await f.run('mirror', 'status')).toBe(0);
    // the fake's filters count pref - 49000 frames: the IPv6 ones (below 49000) negative
    expect(f.stdout).toBe([
      'eth1: enabled (promisc on, arp off, forwarding 0, tc filters 9/9)',
      '  frames seen:  5 (ipv4 1, 802.1Q 2, QinQ 3, 802.1Q+802.1Q 4; ipv6 -4, 802.1Q -3, QinQ -2, 802.1Q+802.1Q -1; other 5)',
      '  to PROMISC:   IPv4 7 packets, 700 bytes; IPv6 5 packets, 500 bytes',
      '  dropped:      IPv4 7 packets, 700 bytes; IPv6 5 packets, 500 bytes',
      '  silence:      silent (tc egress guard 49000, IPv6 accept_ra 0, autoconf 0, router_solicitations 0, dad_transmits 0, forwarding 0, addr_gen_mode 1, link-local none)',
      '  nft guard:    netdev xttraffic_mirror_eth1 present',
      '  tried to send: 5 frames, 378 bytes (dropped: nft 2, tc 3)',
      '  sent:         0 frames, 0 bytes',
      'traffic rules in PROMISC:',
      '  NAME   NET            OPTIONS',
      '  SPAN   10.30.0.0/24   traffic ipconn',
      '  SPAN6  2001:db8::/48  traffic hostprefix=64',
      '',
    ].join('\n'));
    expect(await f.run('mirror', 'status', 'eth1', '--json')).toBe(0);
    expect(f.json()).toEqual({
      mirrors: [{
        iface: 'eth1', enabled: true, promisc: true, arp: false, forwarding: '0',
        previous: { promisc: false, arp: true, forwarding: '1', clsactAdded: true, chainCreated: true, ipv6: V6_DEFAULTS },
        filters: { present: 9, expected: 9, frames: 5, byKind: { ipv4: 1, vlan: 2, qinq: 3, 'vlan-vlan': 4, ipv6: -4, vlan6: -3, qinq6: -2, 'vlan-vlan6': -1, other: 5 } },
        toChain: { packets: 7, bytes: 700 },
        dropped: { packets: 7, bytes: 700 },
        ip6tables: { enabled: true, toChain: { packets: 5, bytes: 500 }, dropped: { packets: 5, bytes: 500 } },
        silence: {
          silent: true, ipv6: { accept_ra: '0', autoconf: '0', router_solicitations: '0', dad_transmits: '0', forwarding: '0', addr_gen_mode: '1' },
          linkLocal: [], guard: true, nft: { table: 'netdev xttraffic_mirror_eth1', state: 'present', dropped: { packets: 2, bytes: 120 } },
          triedToSend: { packets: 5, bytes: 378 }, sent: { packets: 0, bytes: 0 },
        },
      }],
      rules: [
        expect.objectContaining({ name: 'SPAN', net: '10.30.0.0/24', traffic: true, ipconn: true }),
        expect.objectContaining({ name: 'SPAN6', net: '2001:db8::/48', traffic: true }),
      ],
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
    sys.nft = undefined;
    sys.tx = 4;
    expect(await f.run('mirror', 'status', 'eth1')).toBe(0);
    expect(f.stdout.split('\n').slice(4, 8)).toEqual([
      `  silence:      NOT silent (tc egress guard absent, IPv6 accept_ra 1, autoconf 0, router_solicitations 0, dad_transmits 0, forwarding 0, addr_gen_mode 1, link-local ${LL}/64)`,
      '  nft guard:    netdev xttraffic_mirror_eth1 ABSENT (`xttraffic mirror enable` adds it)',
      '  tried to send: 0 frames, 0 bytes (dropped: nft 0, tc 0)',
      '  sent:         4 frames, 360 bytes',
    ]);
    // a second enable silences it again
    f.calls = [];
    expect(await f.run('mirror', 'enable', 'eth1')).toBe(0);
    expect(mutating()).toEqual([
      'tc filter add dev eth1 egress pref 49000 protocol all matchall action drop',
      NFT_ADD,
      'sysctl -qw net/ipv6/conf/eth1/accept_ra=0',
      'ip -6 addr flush dev eth1 scope link',
    ]);
  });
});
