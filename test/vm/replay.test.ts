// Replays the four real captures of ../shared/data/pcaps into a "monitor" namespace and
// compares /proc/net/xt_traffic/* byte for byte with the independent reference of
// test/lib/pcap.ts. Runs in the VM as root (vitest.vm.config.ts).
//
// Topology per run: netns R (replay) --veth rep0/mon0-- netns M (monitor).
//   M: tc clsact + matchall skbedit ptype host on mon0 (frames to other MACs would otherwise
//      be PACKET_OTHERHOST and dropped by ip_rcv before PREROUTING);
//      raw: PREROUTING -i mon0 -j PROMISC; PROMISC: per monitored net three -m traffic rules
//      (plain, --nointernal, ! --nointernal, each its own table), then DROP, so nothing is
//      routed, answered or tracked. IPv6 is off in both namespaces so no stray frames are sent.
//   R: tcpreplay -i rep0 --pps=2000 FILE.
// The reference sees the packets at the replay's timeline (frame i at (i-1)/2000 s), so no
// flow times out during a replay (every capture then fits in well under 30 s); a separate
// timed replay (afs.pcap at 5x with flow_timeout=5) checks flows that do time out.
//
// Checks per run, for iptables (nft backend) and iptables-legacy:
//   - tcpreplay sent every frame, mon0 received every frame, no backlog (softnet) drops;
//   - the raw PREROUTING jump counters (the kernel's own, independent of xt_traffic) saw
//     exactly the packets and bytes test/lib/pcap.ts says reach PREROUTING: this validates the
//     reference's skip rules (VLAN, MPLS, LLC, bad IP checksum, ...) against a real kernel;
//   - NAME, NAME_ipconn, NAME_portconn equal the reference byte for byte, NAME_info's
//     *_entries equal the row counts and overflow is 0.
// Fragments (afs.pcap): without any conntrack user in M, nf_defrag_ipv4 is not registered in
// M and each fragment is counted as its own packet (601 at PREROUTING). With a conntrack rule
// in M (filter INPUT -m conntrack), nf_defrag_ipv4 (priority -400) reassembles before the
// raw table (-300): 452 packets, the 51 datagrams counted whole, 149 fragment headers
// (2980 bytes) fewer for 131.151.1.146; the reference models that with { defrag: true }.
// VLAN (various_gre.pcap): its 30 GRE packets are tagged 1213. Without a VLAN interface
// nothing reaches PREROUTING (the kernel untags, finds no VLAN device and marks them
// PACKET_OTHERHOST after tc ingress); with mon0.1213 (and a PROMISC jump from it) all 30 are
// counted by their outer addresses (GRE payloads are not decapsulated).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { loadModule } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { REPO, sh } from '../lib/sh.js';
import {
  computeReference,
  diffProc,
  formatAll,
  net,
  preroutingPackets,
  readPcap,
  retime,
  scaleTime,
  type Pcap,
  type PreroutingResult,
  type Reference,
} from '../lib/pcap.js';

const PCAPS = process.env.XTT_PCAPS ?? path.resolve(REPO, '../shared/data/pcaps');
const PPS = 2000;
const BACKENDS = ['iptables', 'iptables-legacy'] as const;
type Backend = (typeof BACKENDS)[number];

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
  /** Give mon0 a VLAN sub-interface with this id (and jump to PROMISC from it too). */
  vlan?: number;
  /** Add a conntrack rule in M: nf_defrag_ipv4 then reassembles before the raw table. */
  conntrack?: boolean;
  /** Packets the raw PREROUTING jump rules must count (checked against the model too). */
  prerouting: number;
}

const SCENARIOS: Scenario[] = [
  // /16 makes the DNS server 141.142.2.2 a host of the net.
  { id: 'wiki /24 and /16', file: 'wiki', nets: [{ base: '141.142.220.0', prefix: 24 }, { base: '141.142.0.0', prefix: 16 }], prerouting: 121 },
  { id: 'test /24', file: 'test', nets: [{ base: '172.16.11.0', prefix: 24 }], prerouting: 148 },
  // /16 makes every packet internal.
  { id: 'afs /24 and /16, fragments one by one', file: 'afs', nets: [{ base: '131.151.1.0', prefix: 24 }, { base: '131.151.0.0', prefix: 16 }], prerouting: 601 },
  { id: 'afs /24 with conntrack (defrag)', file: 'afs', nets: [{ base: '131.151.1.0', prefix: 24 }], conntrack: true, prerouting: 452 },
  { id: 'gre /24, no VLAN interface', file: 'gre', nets: [{ base: '10.172.64.0', prefix: 24 }], prerouting: 0 },
  { id: 'gre /24, VLAN 1213 interface', file: 'gre', nets: [{ base: '10.172.64.0', prefix: 24 }], vlan: 1213, prerouting: 30 },
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

/**
 * The two namespaces of one run. Files of the monitor namespace are read through
 * /proc/PID/net of a process parked in it (a `sleep`): /proc/PID/net is that process's
 * namespace view, so no `ip netns exec cat` per file is needed.
 */
class Monitor {
  readonly r = new Netns('rp');
  readonly m = new Netns('mo');
  readonly ifaces = ['mon0'];
  private readonly parked: ChildProcess;

  constructor(
    readonly ipt: Backend,
    tables: readonly { name: string; base: string; prefix: number; opts: readonly string[] }[],
    opts: { vlan?: number; conntrack?: boolean } = {},
  ) {
    for (const ns of [this.r, this.m]) {
      ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    sh('ip', ['link', 'add', 'rep0', 'netns', this.r.name, 'type', 'veth', 'peer', 'name', 'mon0', 'netns', this.m.name]);
    // GRO off: every frame stays one packet (the module would count a GRO packet by its
    // segments, but the PREROUTING packet counter checked below would not be per frame).
    for (const [ns, dev] of [
      [this.r, 'rep0'],
      [this.m, 'mon0'],
    ] as const) {
      ns.exec('ethtool', ['-K', dev, 'gro', 'off']);
      ns.exec('ip', ['link', 'set', dev, 'up']);
    }
    this.m.exec('tc', ['qdisc', 'add', 'dev', 'mon0', 'clsact']);
    this.m.exec('tc', ['filter', 'add', 'dev', 'mon0', 'ingress', 'matchall', 'action', 'skbedit', 'ptype', 'host']);
    if (opts.vlan !== undefined) {
      const dev = `mon0.${opts.vlan}`;
      this.m.exec('ip', ['link', 'add', 'link', 'mon0', 'name', dev, 'type', 'vlan', 'id', String(opts.vlan)]);
      this.m.exec('ip', ['link', 'set', dev, 'up']);
      this.ifaces.push(dev);
    }
    // One iptables-restore (through the same libxt_traffic.so parser as `iptables -A`):
    //   raw: PREROUTING -i mon0 -j PROMISC; PROMISC: the traffic rules, then DROP.
    const q = (a: string): string => (/^[\w.!/-]+$/.test(a) ? a : JSON.stringify(a));
    const lines = ['*raw', ':PROMISC - [0:0]'];
    for (const dev of this.ifaces) lines.push(`-A PREROUTING -i ${dev} -j PROMISC`);
    for (const t of tables) {
      const args = ['-m', 'traffic', '--traffic', '--ipconn', '--portconn', '--netbase', t.base, '--netmask', String(t.prefix), ...t.opts, '--name', t.name];
      lines.push(`-A PROMISC ${args.map(q).join(' ')}`);
    }
    lines.push('-A PROMISC -j DROP', 'COMMIT');
    if (opts.conntrack) {
      // Any conntrack user in the namespace registers conntrack and nf_defrag_ipv4 (priority
      // -400, before raw at -300) there. Nothing reaches INPUT (PROMISC drops everything):
      // the rule only has to exist.
      lines.push('*filter', '-A INPUT -m conntrack --ctstate NEW', 'COMMIT');
    }
    this.m.exec(`${ipt}-restore`, ['--noflush'], { input: `${lines.join('\n')}\n` });
    this.parked = spawn('ip', ['netns', 'exec', this.m.name, 'sleep', '100000'], { stdio: 'ignore' });
    const pid = this.parked.pid;
    if (pid === undefined) throw new Error('could not start a process in the monitor namespace');
    // Wait until `ip netns exec` has switched namespace and exec'd sleep.
    const t0 = Date.now();
    while (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep')) {
      if (Date.now() - t0 > 20_000) throw new Error('sleep in the monitor namespace did not start');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
    if (!existsSync(`/proc/${pid}/net/xt_traffic/${tables[0]!.name}`)) throw new Error('no xt_traffic table in the monitor namespace');
  }

  private procNet(file: string): string {
    return readFileSync(`/proc/${this.parked.pid}/net/${file}`, 'utf8');
  }

  /** mon0's receive counters from /proc/net/dev of M. */
  rx(): { packets: number; dropped: number } {
    const line = this.procNet('dev')
      .split('\n')
      .find((l) => l.trim().startsWith('mon0:'));
    if (!line) throw new Error('mon0 not in /proc/net/dev');
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

  /** Packets and bytes counted by the raw PREROUTING jumps to PROMISC. */
  prerouting(): { packets: number; bytes: number } {
    const out = this.m.exec(this.ipt, ['-t', 'raw', '-L', 'PREROUTING', '-n', '-v', '-x']);
    let packets = 0;
    let bytes = 0;
    for (const l of out.split('\n')) {
      const f = l.trim().split(/\s+/);
      if (f[2] !== 'PROMISC') continue;
      packets += Number(f[0]);
      bytes += Number(f[1]);
    }
    return { packets, bytes };
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

  delete(): void {
    this.parked.kill();
    this.r.delete();
    this.m.delete();
  }
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
    let mon: Monitor | undefined;
    let pr: PreroutingResult;
    let refs: Map<string, Reference>;
    let replayed: { sent: number; failed: number; out: string };
    let rxDelta: { packets: number; dropped: number };
    let softnetDelta: number;
    let got: Map<string, ReturnType<Monitor['read']>>;

    beforeAll(async () => {
      const pcap = pcapOf(sc.file);
      pr = preroutingPackets(pcap, { vlanIds: sc.vlan === undefined ? [] : [sc.vlan], defrag: sc.conntrack });
      const timed = retime(pr.packets, PPS);
      refs = new Map(tables.map((t) => [t.name, computeReference(timed, { net: net(t.base, t.prefix), ...t.ref })]));
      mon = new Monitor(ipt, tables, { vlan: sc.vlan, conntrack: sc.conntrack });
      const rx0 = mon.rx();
      const sn0 = softnetDropped();
      replayed = await mon.replay(path.join(PCAPS, FILES[sc.file]), [`--pps=${PPS}`]);
      const rx1 = mon.rx();
      softnetDelta = softnetDropped() - sn0;
      rxDelta = { packets: rx1.packets - rx0.packets, dropped: rx1.dropped - rx0.dropped };
      got = new Map(tables.map((t) => [t.name, mon!.read(t.name)]));
    });
    afterAll(() => mon?.delete());

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

    it('raw PREROUTING saw exactly the packets the model says reach it', () => {
      // The kernel's own rule counters, independent of xt_traffic: validates the skip rules
      // (and the defrag model) of the reference. Bytes = skb->len = IPv4 total length.
      const c = mon!.prerouting();
      const bytes = pr.packets.reduce((s, p) => s + p.totLen, 0);
      expect(pr.packets.length).toBe(sc.prerouting);
      expect(c).toEqual({ packets: sc.prerouting, bytes });
    });

    if (!sc.conntrack && sc.file === 'afs') {
      it('nf_defrag_ipv4 is not active in the monitor namespace', () => {
        // No conntrack user in M (a conntrack/state/CT rule or nft ct expression is what
        // registers the defrag hook in a namespace), and the fragments were counted one by one.
        const rules = mon!.m.exec(`${ipt}-save`) + mon!.m.exec('nft', ['list', 'ruleset']);
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
      const pr = preroutingPackets(pcap);
      const N = net('131.151.1.0', 24);
      const ref = computeReference(scaleTime(pr.packets, MULT, pcap.frames[0]!), { net: N, flowTimeout: TIMEOUT });
      const fast = computeReference(retime(pr.packets, PPS), { net: N });
      // The timed replay must differ from the fast one, or this test proves nothing.
      expect(ref.connections.length - fast.connections.length).toBe(3);
      writeFileSync(param, String(TIMEOUT));
      const mon = new Monitor('iptables', [{ name: 'timed', base: '131.151.1.0', prefix: 24, opts: [] }]);
      try {
        const r = await mon.replay(path.join(PCAPS, FILES.afs), [`--multiplier=${MULT}`]);
        expect(r.sent).toBe(pcap.frames.length);
        const g = mon.read('timed');
        const exp = formatAll(ref);
        expectProc('traffic', exp.traffic, g.traffic);
        expectProc('ipconn', exp.ipconn, g.ipconn);
        expectProc('portconn', exp.portconn, g.portconn);
      } finally {
        mon.delete();
      }
    },
    120_000,
  );
});
