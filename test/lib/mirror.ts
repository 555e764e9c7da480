/*
 * Helpers for the VM suites that use `xttraffic mirror` (test/vm/mirror.test.ts,
 * test/vm/replay.test.ts):
 *  - mirrorSnapshot(): the state `disable` must restore (interface, its addresses, tc ingress
 *    and egress, the raw tables of iptables and ip6tables, the netdev nft tables, every
 *    net/ipv4 and net/ipv6 conf setting of the interface);
 *  - mirrorIngress() / mirrorPrerouting(): an independent model of what the mirror's tc
 *    ingress filters do to a captured frame (README "Monitor box on a mirror port"), written
 *    from the documented behaviour, not from src/lib/mirror.ts, so the kernel's own counters
 *    can check the product against it.
 */
import type { Netns } from './netns.js';
import { preroutingPackets, type Pcap, type PcapFrame, type PreroutingOptions, type PreroutingResult } from './pcap.js';

/**
 * Waits until `iface` in `ns` has carrier (a veth's peer came up): its `ip link` line, part
 * of the snapshot, changes from NO-CARRIER/DOWN to UP a moment after both ends are set up;
 * and until no IPv6 address of it is still tentative (its DAD done: `ip -6 addr`, part of the
 * snapshot too, shows the flag for a second or so after the link, or `disable`, made one).
 */
export async function waitCarrier(ns: Netns, iface: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const line = await ns.run('ip', ['-o', 'link', 'show', 'dev', iface]);
    const v6 = await ns.run('ip', ['-6', '-o', 'addr', 'show', 'dev', iface]);
    if (!line.includes('NO-CARRIER') && line.includes('state UP') && !v6.includes('tentative')) return;
    if (Date.now() > end) throw new Error(`${iface} in ${ns.name} has no carrier or a tentative address after ${timeoutMs} ms: ${line}${v6}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * What `disable IF` must restore: the interface (`ip -d link` shows addrgenmode too), its
 * IPv6 addresses (the link-local one enable removes), its tc set-up (ingress and egress),
 * the raw table, every net/ipv4/conf/IF and net/ipv6/conf/IF setting. Waits for DAD of an
 * address restored by disable first (see waitCarrier).
 */
export async function mirrorSnapshot(ns: Netns, iface: string, ipt: string): Promise<string> {
  await waitCarrier(ns, iface);
  const conf = `for d in /proc/sys/net/ipv4/conf/${iface} /proc/sys/net/ipv6/conf/${iface}; do for f in "$d"/*; do v=$(cat "$f" 2>/dev/null) && echo "$f=$v"; done; done`;
  const parts = await Promise.all([
    ns.run('ip', ['-d', 'link', 'show', 'dev', iface]),
    ns.run('ip', ['-6', 'addr', 'show', 'dev', iface]),
    ns.run('tc', ['qdisc', 'show', 'dev', iface]),
    ns.run('tc', ['filter', 'show', 'dev', iface, 'ingress']),
    ns.run('tc', ['filter', 'show', 'dev', iface, 'egress']),
    ns.run(`${ipt}-save`, ['-t', 'raw']),
    ns.run(`${ipt.replace('iptables', 'ip6tables')}-save`, ['-t', 'raw']),
    ns.run('nft', ['list', 'tables', 'netdev']),
    ns.run('sh', ['-c', conf]),
  ]);
  // built-in chains' policy counters (iptables-legacy-save prints them) count the box's own
  // packets (the IPv6 the restored link-local address sends after disable), not the set-up
  return parts.map((p) => p.split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/^(:\S+ (?:ACCEPT|DROP)) \[\d+:\d+\]$/, '$1 [0:0]')).join('\n')).join('\n----\n');
}

/** `xttraffic mirror status --json`, as far as the tests read it. */
export interface MirrorStatusJson {
  mirrors: Array<{
    iface: string;
    enabled: boolean;
    promisc: boolean;
    arp: boolean;
    forwarding: string;
    filters: { present: number; expected: number; frames: number; byKind: Record<string, number> };
    toChain: { packets: number; bytes: number };
    dropped: { packets: number; bytes: number };
    ip6tables: { enabled: boolean; toChain: { packets: number; bytes: number }; dropped: { packets: number; bytes: number } } | null;
    silence: {
      silent: boolean;
      ipv6: Record<string, string> | null;
      linkLocal: string[];
      guard: boolean;
      nft: { table: string; state: string; dropped: { packets: number; bytes: number } };
      triedToSend: { packets: number; bytes: number };
      sent: { packets: number; bytes: number };
    };
  }>;
  rules: Array<{ name: string; net: string }>;
}

/** The mirror's tc ingress filter that takes a frame (the first that matches wins). */
export type MirrorFilterKind = 'ipv4' | 'vlan' | 'qinq' | 'vlan-vlan' | 'ipv6' | 'vlan6' | 'qinq6' | 'vlan-vlan6' | 'other';
export const MIRROR_FILTER_KINDS: readonly MirrorFilterKind[] = ['ipv4', 'vlan', 'qinq', 'vlan-vlan', 'ipv6', 'vlan6', 'qinq6', 'vlan-vlan6', 'other'];

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;

/**
 * Which filter of the mirror takes `frame`, and the frame as it leaves tc ingress: IPv4 or
 * IPv6 untagged, in one 802.1Q tag, in 802.1ad + 802.1Q or in 802.1Q + 802.1Q has its tags
 * popped (and its packet type set to host); anything else, including a tagged frame with
 * another payload than IPv4 or IPv6, is left as it is.
 */
export function mirrorIngress(frame: PcapFrame): { kind: MirrorFilterKind; frame: PcapFrame } {
  const d = frame.data;
  const type = (o: number): number | undefined => (d.length >= o + 2 ? (d[o]! << 8) | d[o + 1]! : undefined);
  const pop = (tags: number): PcapFrame => {
    const data = new Uint8Array(d.length - 4 * tags);
    data.set(d.subarray(0, 12), 0);
    data.set(d.subarray(12 + 4 * tags), 12);
    return { ...frame, data, origLen: frame.origLen - 4 * tags };
  };
  const [t0, t1, t2] = [type(12), type(16), type(20)];
  if (t0 === ETH_P_IP) return { kind: 'ipv4', frame };
  if (t0 === ETH_P_8021Q && t1 === ETH_P_IP) return { kind: 'vlan', frame: pop(1) };
  if (t0 === ETH_P_8021AD && t1 === ETH_P_8021Q && t2 === ETH_P_IP) return { kind: 'qinq', frame: pop(2) };
  if (t0 === ETH_P_8021Q && t1 === ETH_P_8021Q && t2 === ETH_P_IP) return { kind: 'vlan-vlan', frame: pop(2) };
  if (t0 === ETH_P_IPV6) return { kind: 'ipv6', frame };
  if (t0 === ETH_P_8021Q && t1 === ETH_P_IPV6) return { kind: 'vlan6', frame: pop(1) };
  if (t0 === ETH_P_8021AD && t1 === ETH_P_8021Q && t2 === ETH_P_IPV6) return { kind: 'qinq6', frame: pop(2) };
  if (t0 === ETH_P_8021Q && t1 === ETH_P_8021Q && t2 === ETH_P_IPV6) return { kind: 'vlan-vlan6', frame: pop(2) };
  return { kind: 'other', frame };
}

export interface MirrorPreroutingResult extends PreroutingResult {
  /** Frames taken by each tc filter of the mirror. */
  readonly byKind: Record<MirrorFilterKind, number>;
}

/**
 * The IPv4 packets of a capture that reach raw PREROUTING on an interface with the mirror
 * enabled (and no VLAN sub-interface): test/lib/pcap.ts's model of the receive path, applied
 * to the frames as the mirror's tc filters leave them.
 */
export function mirrorPrerouting(pcap: Pcap, opts: Omit<PreroutingOptions, 'vlanIds'> = {}): MirrorPreroutingResult {
  const byKind = Object.fromEntries(MIRROR_FILTER_KINDS.map((k) => [k, 0])) as Record<MirrorFilterKind, number>;
  const frames = pcap.frames.map((f) => {
    const r = mirrorIngress(f);
    byKind[r.kind]++;
    return r.frame;
  });
  return { ...preroutingPackets({ ...pcap, frames }, { ...opts, vlanIds: [] }), byKind };
}
