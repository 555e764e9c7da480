// Replays the four real captures of ../shared/data/pcaps into a "monitor" namespace and
// compares /proc/net/xt_traffic/* byte for byte with the independent reference of
// test/lib/pcap.ts. Runs in the VM as root (vitest.vm.config.ts).
//
// Topology per run: netns R (replay) --veth rep0/mon0-- netns M (monitor).
//   M: the product's own mirror set-up, `xttraffic mirror enable mon0` (run as an operator
//      would, test/lib/cli.ts): promiscuous mode, no ARP, no forwarding, tc clsact ingress
//      filters that set the packet type to host for IPv4 frames, popping one 802.1Q tag or
//      two tags first (frames to other MACs would otherwise be PACKET_OTHERHOST and dropped
//      by ip_rcv before PREROUTING), and raw PREROUTING -i mon0 -j PROMISC then -j DROP, so
//      nothing is routed, answered or tracked. The test then appends, per monitored net,
//      three `iptables -t raw -A PROMISC -m traffic` rules (plain, --nointernal,
//      ! --nointernal, each its own table). IPv6 is off in both namespaces so no stray frames
//      are sent.
//   R: tcpreplay -i rep0 --pps=2000 FILE.
// The reference sees the packets at the replay's timeline (frame i at (i-1)/2000 s), so no
// flow times out during a replay (every capture then fits in well under 30 s); a separate
// timed replay (afs.pcap at 5x with flow_timeout=5) checks flows that do time out.
//
// Checks per run, for iptables (nft backend) and iptables-legacy (`--backend legacy`):
//   - tcpreplay sent every frame, mon0 received every frame, no backlog (softnet) drops;
//   - the raw PREROUTING jump counter (the kernel's own, independent of xt_traffic) saw
//     exactly the packets and bytes test/lib/pcap.ts says reach PREROUTING, with the mirror's
//     tc filters modelled by test/lib/mirror.ts: this validates the reference's skip rules
//     (VLAN, MPLS, LLC, bad IP checksum, ...) against a real kernel; `xttraffic mirror
//     status` reports the same counters, the drop rule dropped them all, and each tc filter
//     took the frames the model gives it;
//   - NAME, NAME_ipconn, NAME_portconn equal the reference byte for byte, NAME_info's
//     *_entries equal the row counts and overflow is 0;
//   - after the traffic rules are deleted, `xttraffic mirror disable mon0` leaves mon0, its tc
//     set-up, the raw table and forwarding exactly as they were before enable.
// Fragments (afs.pcap): without any conntrack user in M, nf_defrag_ipv4 is not registered in
// M and each fragment is counted as its own packet (601 at PREROUTING). With a conntrack rule
// in M (filter INPUT -m conntrack), nf_defrag_ipv4 (priority -400) reassembles before the
// raw table (-300): 452 packets, the 51 datagrams counted whole, 149 fragment headers
// (2980 bytes) fewer for 131.151.1.146; the reference models that with { defrag: true }.
// VLAN (various_gre.pcap): its 30 GRE packets are IPv4 tagged 1213 (802.1Q). Without the
// mirror's pop, nothing of them reaches PREROUTING (the kernel untags, finds no VLAN device
// and marks them PACKET_OTHERHOST after tc ingress); the mirror's 802.1Q filter pops the tag,
// so all 30 are counted by their outer addresses (GRE payloads are not decapsulated), as a
// mon0.1213 VLAN device would have them, with no VLAN device. Its 21 LLC frames in VLAN 1213
// keep their tag (not IPv4) and are dropped as before.
// IPv6 (issue 13): the captures' IPv6 packets (test.pcap: one TCP conversation with
// 2606:4700::6812:69c, 10 packets; wikipedia.pcap: 5 link-local UDP packets to ff02::fb and
// ff02::1:3) go through the mirror's IPv6 tc filter and ip6tables' raw PREROUTING -j PROMISC /
// -j DROP. For those two captures M keeps the kernel's IPv6 defaults (R's IPv6 stays off: it
// only replays) and two ip6tables tables per net (per /64 and per /128, --traffic --ipconn
// --portconn) must equal test/lib/pcap.ts's IPv6 reference byte for byte; ip6tables' jump
// and drop counters must equal the packets and bytes (40 + payload length) the IPv6 model
// says reach PREROUTING. Same replays as the IPv4 tables: no extra tcpreplay run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { ok, runCli } from '../lib/cli.js';
import { mirrorPrerouting, mirrorSnapshot, waitCarrier, type MirrorPreroutingResult, type MirrorStatusJson } from '../lib/mirror.js';
import { loadModule } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { REPO, shAsync } from '../lib/sh.js';
import {
  computeReference,
  computeReference6,
  diffProc,
  formatAll,
  formatAll6,
  ipv6Bits,
  net,
  preroutingPackets6,
  readPcap,
  retime,
  scaleTime,
  type Ipv6Packet,
  type Pcap,
  type Reference,
  type Reference6,
} from '../lib/pcap.js';
import { mirrorIngress } from '../lib/mirror.js';

const PCAPS = process.env.XTT_PCAPS ?? path.resolve(REPO, '../shared/data/pcaps');
const PPS = 2000;
const BACKENDS = ['iptables', 'iptables-legacy'] as const;
type Backend = (typeof BACKENDS)[number];
const IFACE = 'mon0';

const FILES = {
  wiki: 'zeek_zeek__wikipedia.pcap',
  test: 'appneta_tcpreplay__test.pcap',
  afs: 'the-tcpdump-group_tcpdump__afs.pcap',
  gre: 'the-tcpdump-group_tcpdump__various_gre.pcap',
} as const;

interface Scenario {
  id: string;
  file: keyof typeof FILES;
  /** Monitored nets: each gets three tables in the same PROMISC chain (one replay for all). */
  nets: { base: string; prefix: number }[];
  /** Add a conntrack rule in M: nf_defrag_ipv4 then reassembles before the raw table. */
  conntrack?: boolean;
  /** Packets the raw PREROUTING jump rule must count (checked against the model too). */
  prerouting: number;
  /**
   * IPv6: M keeps its IPv6 defaults, and each net gets an ip6tables table per /64 and per
   * /128; `prerouting6` packets must reach ip6tables' raw PREROUTING.
   */
  ipv6?: { nets: { base: string; prefix: number }[]; prerouting6: number };
}

const SCENARIOS: Scenario[] = [
  // /16 makes the DNS server 141.142.2.2 a host of the net.
  { id: 'wiki /24 and /16', file: 'wiki', nets: [{ base: '141.142.220.0', prefix: 24 }, { base: '141.142.0.0', prefix: 16 }], prerouting: 121,
    ipv6: { nets: [{ base: 'fe80::', prefix: 10 }], prerouting6: 5 } },
  { id: 'test /24', file: 'test', nets: [{ base: '172.16.11.0', prefix: 24 }], prerouting: 148,
    ipv6: { nets: [{ base: '2001:4958:15a0::', prefix: 48 }], prerouting6: 10 } },
  // /16 makes every packet internal.
  { id: 'afs /24 and /16, fragments one by one', file: 'afs', nets: [{ base: '131.151.1.0', prefix: 24 }, { base: '131.151.0.0', prefix: 16 }], prerouting: 601 },
  { id: 'afs /24 with conntrack (defrag)', file: 'afs', nets: [{ base: '131.151.1.0', prefix: 24 }], conntrack: true, prerouting: 452 },
  { id: 'gre /24, VLAN 1213 popped by the mirror', file: 'gre', nets: [{ base: '10.172.64.0', prefix: 24 }], prerouting: 30 },
];

/** The three tables per net: name prefix and the extra match options. */
const KINDS = [
  { name: 'all', opts: [] as string[], ref: {} },
  { name: 'noint', opts: ['--nointernal'], ref: { nointernal: true } },
  { name: 'onlyint', opts: ['!', '--nointernal'], ref: { onlyInternal: true } },
] as const;

interface Table {
  name: string;
  base: string;
  prefix: number;
  opts: readonly string[];
  ref: { nointernal?: boolean; onlyInternal?: boolean };
}
function tablesOf(sc: Scenario): Table[] {
  return sc.nets.flatMap((n) => KINDS.map((k) => ({ name: `${k.name}${n.prefix}`, base: n.base, prefix: n.prefix, opts: k.opts, ref: k.ref })));
}

/** The IPv6 tables of a scenario: per /64 and per /128 for each net. */
interface Table6 {
  name: string;
  base: string;
  prefix: number;
  hostprefix: number;
}
function tables6Of(sc: Scenario): Table6[] {
  return (sc.ipv6?.nets ?? []).flatMap((n) => [64, 128].map((hp) => ({ name: `v6p${n.prefix}h${hp}`, base: n.base, prefix: n.prefix, hostprefix: hp })));
}

const pcaps = new Map<string, Pcap>();
function pcapOf(file: keyof typeof FILES): Pcap {
  let p = pcaps.get(file);
  if (!p) {
    p = readPcap(path.join(PCAPS, FILES[file]));
    pcaps.set(file, p);
  }
  return p;
}

/** Sum of the "dropped" column of /proc/net/softnet_stat (backlog overflows), all CPUs. */
function softnetDropped(): number {
  return readFileSync('/proc/net/softnet_stat', 'utf8')
    .trim()
    .split('\n')
    .reduce((n, l) => n + parseInt(l.trim().split(/\s+/)[1] ?? '0', 16), 0);
}

const execFileP = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface EnableJson {
  mirror: { iface: string; changed: boolean; previous: Record<string, unknown> };
}
interface DisableJson {
  mirror: { iface: string; changed: boolean; keptChain: boolean };
}

/**
 * The two namespaces of one run, the mirror enabled on mon0 by `xttraffic mirror enable` and
 * the traffic rules appended to PROMISC. Files of the monitor namespace are read through
 * /proc/PID/net of a process parked in it (a `sleep`): /proc/PID/net is that process's
 * namespace view, so no `ip netns exec cat` per file is needed.
 */
class Monitor {
  readonly r = new Netns('rp');
  readonly m = new Netns('mo');
  /** mirrorSnapshot() of M before `mirror enable`. */
  before = '';
  enabled: EnableJson | undefined;
  private parked: ChildProcess | undefined;

  private constructor(
    readonly ipt: Backend,
    readonly tables: readonly { name: string; base: string; prefix: number; opts: readonly string[] }[],
    readonly tables6: readonly Table6[] = [],
  ) {}

  get ip6t(): string {
    return this.ipt.replace('iptables', 'ip6tables');
  }

  static async create(
    ipt: Backend,
    tables: readonly { name: string; base: string; prefix: number; opts: readonly string[] }[],
    opts: { conntrack?: boolean; tables6?: readonly Table6[] } = {},
  ): Promise<Monitor> {
    const mon = new Monitor(ipt, tables, opts.tables6);
    try {
      await mon.setUp(opts);
    } catch (e) {
      mon.delete();
      throw e;
    }
    return mon;
  }

  /** `xttraffic` in M, with --backend legacy for iptables-legacy. */
  async cli(args: string[]): Promise<string> {
    const bk = this.ipt === 'iptables-legacy' ? ['--backend', 'legacy'] : [];
    return ok(await runCli([...args, ...bk], this.m.name)).stdout;
  }

  private ruleArgs(t: { name: string; base: string; prefix: number; opts: readonly string[] }): string[] {
    return ['-m', 'traffic', '--traffic', '--ipconn', '--portconn', '--netbase', t.base, '--netmask', String(t.prefix), ...t.opts, '--name', t.name];
  }

  private async setUp(opts: { conntrack?: boolean }): Promise<void> {
    // R only replays: no IPv6 of its own. M keeps the kernel's IPv6 defaults when it counts
    // IPv6 (`mirror enable` silences the port itself).
    for (const ns of this.tables6.length > 0 ? [this.r] : [this.r, this.m]) {
      await ns.run('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    await shAsync('ip', ['link', 'add', 'rep0', 'netns', this.r.name, 'type', 'veth', 'peer', 'name', IFACE, 'netns', this.m.name]);
    // GRO off: every frame stays one packet (the module would count a GRO packet by its
    // segments, but the PREROUTING packet counter checked below would not be per frame).
    for (const [ns, dev] of [
      [this.r, 'rep0'],
      [this.m, IFACE],
    ] as const) {
      await ns.run('ethtool', ['-K', dev, 'gro', 'off']);
      await ns.run('ip', ['link', 'set', dev, 'up']);
    }
    if (opts.conntrack) {
      // Any conntrack user in the namespace registers conntrack and nf_defrag_ipv4 (priority
      // -400, before raw at -300) there. Nothing reaches INPUT (the mirror drops everything
      // in raw PREROUTING): the rule only has to exist.
      await this.m.run(this.ipt, ['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'NEW']);
    }
    // The snapshot must not catch the link before its carrier is up (it would then differ
    // from the state after disable for a reason that has nothing to do with the mirror).
    await waitCarrier(this.m, IFACE);
    this.before = await mirrorSnapshot(this.m, IFACE, this.ipt);
    this.enabled = JSON.parse(await this.cli(['mirror', 'enable', IFACE, '--json'])) as EnableJson;
    // What an operator does next: the traffic rules, appended to PROMISC.
    for (const t of this.tables) await this.m.run(this.ipt, ['-t', 'raw', '-A', 'PROMISC', ...this.ruleArgs(t)]);
    for (const t of this.tables6) {
      await this.m.run(this.ip6t, ['-t', 'raw', '-A', 'PROMISC', '-m', 'traffic', '--traffic', '--ipconn', '--portconn', '--netbase', t.base, '--netmask', String(t.prefix),
        '--hostprefix', String(t.hostprefix), '--name', t.name]);
    }

    this.parked = spawn('ip', ['netns', 'exec', this.m.name, 'sleep', '100000'], { stdio: 'ignore' });
    const pid = this.parked.pid;
    if (pid === undefined) throw new Error('could not start a process in the monitor namespace');
    // Wait until `ip netns exec` has switched namespace and exec'd sleep.
    const t0 = Date.now();
    while (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep')) {
      if (Date.now() - t0 > 20_000) throw new Error('sleep in the monitor namespace did not start');
      await sleep(20);
    }
    if (!existsSync(`/proc/${pid}/net/xt_traffic/${this.tables[0]!.name}`)) throw new Error('no xt_traffic table in the monitor namespace');
  }

  private procNet(file: string): string {
    return readFileSync(`/proc/${this.parked!.pid}/net/${file}`, 'utf8');
  }

  /** mon0's receive counters from /proc/net/dev of M. */
  rx(): { packets: number; dropped: number } {
    const line = this.procNet('dev')
      .split('\n')
      .find((l) => l.trim().startsWith(`${IFACE}:`));
    if (!line) throw new Error(`${IFACE} not in /proc/net/dev`);
    const f = line.split(':')[1]!.trim().split(/\s+/).map(Number);
    // Receive: bytes packets errs drop fifo frame compressed multicast
    return { packets: f[1]!, dropped: f[3]! };
  }

  /** tcpreplay from R (asynchronous: a timed replay must not block vitest's worker). */
  async replay(file: string, rate: string[]): Promise<{ sent: number; failed: number; out: string }> {
    const { stdout } = await execFileP('ip', ['netns', 'exec', this.r.name, 'tcpreplay', '-i', 'rep0', ...rate, file], {
      encoding: 'utf8',
    });
    const sent = /Successful packets:\s+(\d+)/.exec(stdout);
    const failed = /Failed packets:\s+(\d+)/.exec(stdout);
    if (!sent || !failed) throw new Error(`unexpected tcpreplay output:\n${stdout}`);
    return { sent: Number(sent[1]), failed: Number(failed[1]), out: stdout };
  }

  /**
   * Packets and bytes counted by raw PREROUTING's jump to PROMISC and its DROP rule (iptables
   * -L: pkts bytes target prot opt in out source destination), and the input interfaces of
   * those rules.
   */
  async prerouting(family: 'ipv4' | 'ipv6' = 'ipv4'): Promise<{ jump: { packets: number; bytes: number }; drop: { packets: number; bytes: number }; ins: string[] }> {
    const out = await this.m.run(family === 'ipv6' ? this.ip6t : this.ipt, ['-t', 'raw', '-L', 'PREROUTING', '-n', '-v', '-x']);
    const jump = { packets: 0, bytes: 0 };
    const drop = { packets: 0, bytes: 0 };
    const ins: string[] = [];
    for (const l of out.split('\n')) {
      const f = l.trim().split(/\s+/);
      const c = f[2] === 'PROMISC' ? jump : f[2] === 'DROP' ? drop : undefined;
      if (!c) continue;
      ins.push(f[5]!);
      c.packets += Number(f[0]);
      c.bytes += Number(f[1]);
    }
    return { jump, drop, ins };
  }

  async status(): Promise<MirrorStatusJson> {
    return JSON.parse(await this.cli(['mirror', 'status', IFACE, '--json'])) as MirrorStatusJson;
  }

  read(name: string): { traffic: string; ipconn: string; portconn: string; info: string } {
    const d = 'xt_traffic';
    return {
      traffic: this.procNet(`${d}/${name}`),
      ipconn: this.procNet(`${d}/${name}_ipconn`),
      portconn: this.procNet(`${d}/${name}_portconn`),
      info: this.procNet(`${d}/${name}_info`),
    };
  }

  /**
   * Removes the traffic rules (one flush of PROMISC: a process per rule is slow under TCG),
   * then `xttraffic mirror disable mon0`; returns its JSON and M's state afterwards, to
   * compare with `before`.
   */
  async disable(): Promise<{ off: DisableJson; after: string }> {
    await this.m.run(this.ipt, ['-t', 'raw', '-F', 'PROMISC']);
    await this.m.run(this.ip6t, ['-t', 'raw', '-F', 'PROMISC']);
    const off = JSON.parse(await this.cli(['mirror', 'disable', IFACE, '--json'])) as DisableJson;
    return { off, after: await mirrorSnapshot(this.m, IFACE, this.ipt) };
  }

  delete(): void {
    this.parked?.kill();
    this.r.delete();
    this.m.delete();
  }
}

/** What `mirror enable` must have found in a fresh namespace and recorded. */
function expectEnabled(mon: Monitor): void {
  expect(mon.enabled?.mirror).toMatchObject({
    iface: IFACE,
    changed: true,
    previous: { promisc: false, arp: true, forwarding: '0', clsactAdded: true, chainCreated: true },
  });
}

/** Disables the mirror and checks M is back to its state before enable. */
async function expectRestored(mon: Monitor): Promise<void> {
  const { off, after } = await mon.disable();
  expect(off.mirror).toMatchObject({ iface: IFACE, changed: true, keptChain: false });
  expect(after).toBe(mon.before);
  expect(after).not.toMatch(/PROMISC|clsact/);
}

function infoMap(info: string): Map<string, string> {
  return new Map(
    info
      .trim()
      .split('\n')
      .map((l) => {
        const i = l.indexOf(': ');
        return [l.slice(0, i), l.slice(i + 2)] as [string, string];
      }),
  );
}

function rows(text: string): number {
  return text.split('\n').filter(Boolean).length - 1;
}

function expectProc(kind: string, expected: string, got: string): void {
  expect(got, `${kind} differs from the reference:\n${diffProc(expected, got)}\n`).toBe(expected);
}

let backlogBefore: string | undefined;
beforeAll(() => {
  loadModule();
  expect(existsSync('/sys/module/xt_traffic')).toBe(true);
  for (const f of Object.values(FILES)) expect(existsSync(path.join(PCAPS, f)), f).toBe(true);
  // The replay's frames are queued on the receiving CPU's backlog (veth -> netif_rx): make
  // that queue longer than any capture so a burst cannot overflow it.
  backlogBefore = readFileSync('/proc/sys/net/core/netdev_max_backlog', 'utf8').trim();
  writeFileSync('/proc/sys/net/core/netdev_max_backlog', '10000');
});
afterAll(() => {
  if (backlogBefore) writeFileSync('/proc/sys/net/core/netdev_max_backlog', backlogBefore);
});

describe.each(BACKENDS)('replay with %s', (ipt) => {
  describe.each(SCENARIOS)('$id', (sc) => {
    const tables = tablesOf(sc);
    const tables6 = tables6Of(sc);
    let mon: Monitor | undefined;
    let pr: MirrorPreroutingResult;
    let refs: Map<string, Reference>;
    let pr6: Ipv6Packet[];
    let refs6: Map<string, Reference6>;
    let counters6: Awaited<ReturnType<Monitor['prerouting']>>;
    let got6: Map<string, ReturnType<Monitor['read']>>;
    let replayed: { sent: number; failed: number; out: string };
    let rxDelta: { packets: number; dropped: number };
    let softnetDelta: number;
    let got: Map<string, ReturnType<Monitor['read']>>;
    let counters: Awaited<ReturnType<Monitor['prerouting']>>;
    let status: MirrorStatusJson;

    beforeAll(async () => {
      const pcap = pcapOf(sc.file);
      pr = mirrorPrerouting(pcap, { defrag: sc.conntrack });
      const timed = retime(pr.packets, PPS);
      refs = new Map(tables.map((t) => [t.name, computeReference(timed, { net: net(t.base, t.prefix), ...t.ref })]));
      pr6 = preroutingPackets6(pcap.frames.map((f) => mirrorIngress(f).frame)).packets;
      const timed6 = retime(pr6, PPS);
      refs6 = new Map(tables6.map((t) => [t.name, computeReference6(timed6, { base: ipv6Bits(t.base), prefix: t.prefix, hostprefix: t.hostprefix })]));
      mon = await Monitor.create(ipt, tables, { conntrack: sc.conntrack, tables6 });
      const rx0 = mon.rx();
      const sn0 = softnetDropped();
      replayed = await mon.replay(path.join(PCAPS, FILES[sc.file]), [`--pps=${PPS}`]);
      const rx1 = mon.rx();
      softnetDelta = softnetDropped() - sn0;
      rxDelta = { packets: rx1.packets - rx0.packets, dropped: rx1.dropped - rx0.dropped };
      got = new Map(tables.map((t) => [t.name, mon!.read(t.name)]));
      counters = await mon.prerouting();
      got6 = new Map(tables6.map((t) => [t.name, mon!.read(t.name)]));
      counters6 = await mon.prerouting('ipv6');
      status = await mon.status();
    });
    afterAll(() => mon?.delete());

    it('xttraffic mirror enable set mon0 up from scratch', () => {
      expectEnabled(mon!);
    });

    it('every frame was sent and arrived on mon0 (no backlog drops)', () => {
      const n = pcapOf(sc.file).frames.length;
      expect(replayed.failed).toBe(0);
      expect(replayed.sent).toBe(n);
      // veth counts a frame received once netif_rx queued it; a full backlog drops it there
      // and counts it in softnet_stat instead.
      expect(rxDelta.packets).toBe(n);
      expect(softnetDelta).toBe(0);
      // rx "drop" counts frames no protocol handler took (MPLS, loopback, LLC while the llc
      // module is not loaded, also inside an unknown VLAN): at most the frames of those kinds.
      const k = pr.skipped;
      expect(rxDelta.dropped).toBeLessThanOrEqual(k.mpls + k.loopback + k.llc + k.ethertype + k.vlan);
    });

    it('raw PREROUTING saw exactly the packets the model says reach it, and the mirror dropped them all', () => {
      // The kernel's own rule counters, independent of xt_traffic: validates the skip rules,
      // the mirror model and the defrag model of the reference. Bytes = skb->len = IPv4 total
      // length.
      const bytes = pr.packets.reduce((s, p) => s + p.totLen, 0);
      expect(pr.packets.length).toBe(sc.prerouting);
      const c = { packets: sc.prerouting, bytes };
      expect(counters).toEqual({ jump: c, drop: c, ins: [IFACE, IFACE] });
      // `xttraffic mirror status` reports the same, and each tc filter took the frames the
      // model gives it (every frame exactly once).
      expect(status.mirrors.length).toBe(1);
      const s = status.mirrors[0]!;
      expect([s.iface, s.enabled, s.promisc, s.arp, s.forwarding, s.filters.present]).toEqual([IFACE, true, true, false, '0', 9]);
      expect(s.toChain).toEqual(c);
      expect(s.dropped).toEqual(c);
      expect(s.filters.byKind).toEqual(pr.byKind);
      expect(s.filters.frames).toBe(pcapOf(sc.file).frames.length);
      expect(status.rules.map((r) => [r.name, r.net])).toEqual([...tables, ...tables6].map((t) => [t.name, `${t.base}/${t.prefix}`]));
    });

    if (sc.ipv6) {
      it('ip6tables raw PREROUTING saw exactly the IPv6 packets the model says reach it, and the mirror dropped them all', () => {
        expect(pr6.length).toBe(sc.ipv6!.prerouting6);
        const c = { packets: pr6.length, bytes: pr6.reduce((n, p) => n + p.bytes, 0) };
        expect(counters6).toEqual({ jump: c, drop: c, ins: [IFACE, IFACE] });
        expect(status.mirrors[0]!.ip6tables).toEqual({ enabled: true, toChain: c, dropped: c });
        // and the port is silent (guards, settings, no link-local address)
        expect(status.mirrors[0]!.silence.silent).toBe(true);
      });
    }

    for (const t of tables6) {
      it(`IPv6 table ${t.name} (${t.base}/${t.prefix} per /${t.hostprefix}): traffic, ipconn and portconn match the reference byte for byte`, () => {
        const exp = formatAll6(refs6.get(t.name)!);
        const g = got6.get(t.name)!;
        expectProc('traffic', exp.traffic, g.traffic);
        expectProc('ipconn', exp.ipconn, g.ipconn);
        expectProc('portconn', exp.portconn, g.portconn);
        // the reference has rows to compare (the capture's IPv6 is in the net)
        expect(rows(exp.traffic)).toBeGreaterThan(0);
        const info = infoMap(g.info);
        expect([info.get('name'), info.get('family'), info.get('hostprefix'), info.get('overflow')]).toEqual([t.name, 'ipv6', String(t.hostprefix), '0']);
        expect(info.get('traffic_entries')).toBe(String(rows(exp.traffic)));
        expect(info.get('ipconn_entries')).toBe(String(rows(exp.ipconn)));
        expect(info.get('portconn_entries')).toBe(String(rows(exp.portconn)));
      });
    }

    if (!sc.conntrack && sc.file === 'afs') {
      it('nf_defrag_ipv4 is not active in the monitor namespace', async () => {
        // No conntrack user in M (a conntrack/state/CT rule or nft ct expression is what
        // registers the defrag hook in a namespace), and the fragments were counted one by one.
        const rules = (await mon!.m.run(`${ipt}-save`)) + (await mon!.m.run('nft', ['list', 'ruleset']));
        expect(rules).not.toMatch(/conntrack|--state|-j CT|\bct (state|status)/);
        for (const t of tables) if (t.name.startsWith('all')) expect(refs.get(t.name)!.stats.nonFirstFragments).toBe(149);
      });
    }

    for (const t of tables) {
      it(`table ${t.name} (${t.base}/${t.prefix} ${t.opts.join(' ')}): traffic, ipconn and portconn match the reference byte for byte`, () => {
        const exp = formatAll(refs.get(t.name)!);
        const g = got.get(t.name)!;
        expectProc('traffic', exp.traffic, g.traffic);
        expectProc('ipconn', exp.ipconn, g.ipconn);
        expectProc('portconn', exp.portconn, g.portconn);
        const info = infoMap(g.info);
        expect(info.get('name')).toBe(t.name);
        expect(info.get('overflow')).toBe('0');
        expect(info.get('traffic_entries')).toBe(String(rows(exp.traffic)));
        expect(info.get('ipconn_entries')).toBe(String(rows(exp.ipconn)));
        expect(info.get('portconn_entries')).toBe(String(rows(exp.portconn)));
      });
    }

    it('xttraffic mirror disable mon0 restores mon0, tc, the raw table and forwarding exactly', async () => {
      await expectRestored(mon!);
    });
  });
});

describe('flow_timeout during a timed replay', () => {
  // afs.pcap replayed 5x faster than captured (26 s) with flow_timeout=5: equivalent to the
  // capture with a 25 s timeout. Same-flow gaps in the capture are <= 19.86 s or >= 30.61 s,
  // so every decision has >= 1 s of margin at replay speed. Three flows restart (frames 122,
  // 281, 404), which the 2000 pps replays above never show.
  const MULT = 5;
  const TIMEOUT = 5;
  let before: string | undefined;
  const param = '/sys/module/xt_traffic/parameters/flow_timeout';
  beforeAll(() => {
    before = readFileSync(param, 'utf8').trim();
  });
  afterAll(() => {
    if (before) writeFileSync(param, before);
  });

  it(
    'restarts UDP flows after flow_timeout of silence (iptables)',
    async () => {
      const pcap = pcapOf('afs');
      const pr = mirrorPrerouting(pcap);
      const N = net('131.151.1.0', 24);
      const ref = computeReference(scaleTime(pr.packets, MULT, pcap.frames[0]!), { net: N, flowTimeout: TIMEOUT });
      const fast = computeReference(retime(pr.packets, PPS), { net: N });
      // The timed replay must differ from the fast one, or this test proves nothing.
      expect(ref.connections.length - fast.connections.length).toBe(3);
      writeFileSync(param, String(TIMEOUT));
      const mon = await Monitor.create('iptables', [{ name: 'timed', base: '131.151.1.0', prefix: 24, opts: [] }]);
      try {
        expectEnabled(mon);
        const r = await mon.replay(path.join(PCAPS, FILES.afs), [`--multiplier=${MULT}`]);
        expect(r.sent).toBe(pcap.frames.length);
        const g = mon.read('timed');
        const exp = formatAll(ref);
        expectProc('traffic', exp.traffic, g.traffic);
        expectProc('ipconn', exp.ipconn, g.ipconn);
        expectProc('portconn', exp.portconn, g.portconn);
        await expectRestored(mon);
      } finally {
        mon.delete();
      }
    },
    120_000,
  );
});
