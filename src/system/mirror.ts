/**
 * `xttraffic mirror`: a monitor interface on a switch's mirror (SPAN) port. Pure logic only:
 * parsing what ip, sysctl, tc and iptables-save say, and the plan of commands (argument arrays)
 * that enable or disable the mirror set-up. commands/mirror.ts runs them.
 *
 * What `enable IF` sets up (each step only if it is not in place already):
 *  - raw table: chain PROMISC (created if absent), and at the top of PREROUTING
 *      -i IF -m comment --comment "xttraffic mirror IF: <previous state>" -j PROMISC
 *      -i IF -m comment --comment "xttraffic mirror IF: drop" -j DROP
 *    so the user's `iptables -t raw -A PROMISC -m traffic ...` rules see every mirrored packet,
 *    which is then dropped before conntrack, routing and the sockets.
 *  - net/ipv4/conf/IF/forwarding=0, `ip link set IF arp off`, `ip link set IF promisc on`;
 *  - tc: a clsact qdisc (added if absent) and ingress filters (prefs PREF_BASE..) that set the
 *    packet type to host for IPv4 frames, after popping one 802.1Q tag or two tags (QinQ:
 *    802.1ad or 802.1Q outer, 802.1Q inner). Frames of another host's MAC are PACKET_OTHERHOST
 *    and would be dropped in ip_rcv before PREROUTING; tagged frames of a VLAN without a VLAN
 *    device are marked PACKET_OTHERHOST after tc ingress, hence the pop. Non-IPv4 frames (ARP,
 *    IPv6) are left alone (passed and counted by the last filter) and the kernel drops them.
 * The state before enable is recorded in the comment of the PROMISC jump rule (per network
 * namespace, no state file), and `disable IF` restores exactly that.
 */
import { tokenize } from './rule.js';

export const CHAIN = 'PROMISC';
export const COMMENT_PREFIX = 'xttraffic mirror';
/** First tc filter preference used (high numbers: the user's own filters come first). */
export const PREF_BASE = 49001;

export type FilterKind = 'ipv4' | 'vlan' | 'qinq' | 'vlan-vlan' | 'other';

export interface FilterSpec {
  pref: number;
  kind: FilterKind;
  /** `tc filter add dev IF ingress` arguments after the device part. */
  args: string[];
  description: string;
}

const HOST = ['action', 'skbedit', 'ptype', 'host'];
const POP = ['action', 'vlan', 'pop', 'pipe'];

/** The ingress filters, in order. */
export const FILTERS: FilterSpec[] = [
  { pref: PREF_BASE, kind: 'ipv4', args: ['protocol', 'ip', 'matchall', ...HOST], description: 'untagged IPv4' },
  {
    pref: PREF_BASE + 1, kind: 'vlan', args: ['protocol', '802.1Q', 'flower', 'vlan_ethtype', 'ipv4', ...POP, ...HOST],
    description: 'IPv4 in one 802.1Q tag',
  },
  {
    pref: PREF_BASE + 2, kind: 'qinq', args: ['protocol', '802.1ad', 'flower', 'vlan_ethtype', '802.1Q', 'cvlan_ethtype', 'ipv4', ...POP, ...POP, ...HOST],
    description: 'IPv4 in 802.1ad + 802.1Q tags (QinQ)',
  },
  {
    pref: PREF_BASE + 3, kind: 'vlan-vlan', args: ['protocol', '802.1Q', 'flower', 'vlan_ethtype', '802.1Q', 'cvlan_ethtype', 'ipv4', ...POP, ...POP, ...HOST],
    description: 'IPv4 in two 802.1Q tags',
  },
  { pref: PREF_BASE + 4, kind: 'other', args: ['protocol', 'all', 'matchall', 'action', 'gact', 'pass'], description: 'anything else (left alone)' },
];

/** Interface names the kernel accepts, without the iptables wildcard `+`. */
export function validIfname(name: string): boolean {
  return /^[A-Za-z0-9_.@-]{1,15}$/.test(name) && name !== '.' && name !== '..';
}

/** What enable found before it changed anything; recorded in the jump rule's comment. */
export interface Previous {
  promisc: boolean;
  arp: boolean;
  /** net/ipv4/conf/IF/forwarding before enable ("0" or "1"). */
  forwarding: string;
  /** Whether enable added the clsact qdisc. */
  clsactAdded: boolean;
  /** Whether enable created the PROMISC chain. */
  chainCreated: boolean;
}

export function encodeComment(iface: string, p: Previous): string {
  return `${COMMENT_PREFIX} ${iface}: promisc=${p.promisc ? 'on' : 'off'} arp=${p.arp ? 'on' : 'off'} forwarding=${p.forwarding} clsact=${p.clsactAdded ? 'added' : 'kept'} chain=${p.chainCreated ? 'created' : 'kept'}`;
}

export function dropComment(iface: string): string {
  return `${COMMENT_PREFIX} ${iface}: drop`;
}

/** The previous state from a jump rule's comment; undefined if it is not one of ours. */
export function decodeComment(comment: string): { iface: string; previous: Previous } | undefined {
  const m = /^xttraffic mirror (\S+): promisc=(on|off) arp=(on|off) forwarding=(\d+) clsact=(added|kept) chain=(created|kept)$/.exec(comment);
  if (!m) return undefined;
  return {
    iface: m[1]!,
    previous: { promisc: m[2] === 'on', arp: m[3] === 'on', forwarding: m[4]!, clsactAdded: m[5] === 'added', chainCreated: m[6] === 'created' },
  };
}

// ---------------------------------------------------------------------------------------------
// iptables-save -t raw [-c]

export interface Counters {
  packets: bigint;
  bytes: bigint;
}

export interface MirrorRules {
  iface: string;
  previous: Previous;
  /** Arguments after `-A PREROUTING` of the jump and the drop rule (as saved). */
  jump: string[];
  drop: string[] | undefined;
  jumpCounters: Counters | undefined;
  dropCounters: Counters | undefined;
}

export interface RawState {
  chainExists: boolean;
  /** Our rules per interface. */
  mirrors: Map<string, MirrorRules>;
  /** Rules of PROMISC (arguments after `-A PROMISC`). */
  chainRules: string[][];
  /** Rules anywhere that jump to PROMISC and are not ours. */
  otherReferences: number;
}

function commentOf(args: string[]): string | undefined {
  const i = args.indexOf('--comment');
  return i >= 0 ? args[i + 1] : undefined;
}

/** Parses `iptables-save -t raw` (with or without -c counters). */
export function parseRawSave(text: string): RawState {
  const st: RawState = { chainExists: false, mirrors: new Map(), chainRules: [], otherReferences: 0 };
  let inRaw = false;
  const drops = new Map<string, { args: string[]; counters: Counters | undefined }>();
  for (const raw of text.split('\n')) {
    if (raw.startsWith('*')) {
      inRaw = raw.slice(1).trim() === 'raw';
      continue;
    }
    if (!inRaw) continue;
    if (raw.startsWith(`:${CHAIN} `)) st.chainExists = true;
    let line = raw;
    let counters: Counters | undefined;
    const c = /^\[(\d+):(\d+)\] /.exec(line);
    if (c) {
      counters = { packets: BigInt(c[1]!), bytes: BigInt(c[2]!) };
      line = line.slice(c[0].length);
    }
    if (!line.startsWith('-A ')) continue;
    const t = tokenize(line);
    const chain = t[1]!;
    const args = t.slice(2);
    if (chain === CHAIN) {
      st.chainRules.push(args);
      continue;
    }
    const comment = commentOf(args);
    const target = args[args.indexOf('-j') + 1];
    if (chain === 'PREROUTING' && comment !== undefined) {
      const d = decodeComment(comment);
      if (d && target === CHAIN) {
        st.mirrors.set(d.iface, { iface: d.iface, previous: d.previous, jump: args, drop: undefined, jumpCounters: counters, dropCounters: undefined });
        continue;
      }
      const dm = /^xttraffic mirror (\S+): drop$/.exec(comment);
      if (dm && target === 'DROP') {
        drops.set(dm[1]!, { args, counters });
        continue;
      }
    }
    if (args.includes('-j') && target === CHAIN) st.otherReferences++;
  }
  for (const [iface, d] of drops) {
    const m = st.mirrors.get(iface);
    if (m) {
      m.drop = d.args;
      m.dropCounters = d.counters;
    }
  }
  return st;
}

// ---------------------------------------------------------------------------------------------
// ip -j link show dev IF, tc -j qdisc show, tc -s -j filter show

export interface LinkState {
  promisc: boolean;
  arp: boolean;
  up: boolean;
}

/** Parses `ip -j link show dev IF`. */
export function parseLink(json: string): LinkState {
  const a = JSON.parse(json) as Array<{ flags?: string[] }>;
  const flags = a[0]?.flags ?? [];
  return { promisc: flags.includes('PROMISC'), arp: !flags.includes('NOARP'), up: flags.includes('UP') };
}

/** Whether `tc -j qdisc show dev IF` lists a clsact qdisc. */
export function hasClsact(json: string): boolean {
  const a = (json.trim() === '' ? [] : JSON.parse(json)) as Array<{ kind?: string }>;
  return a.some((q) => q.kind === 'clsact');
}

export interface FilterStats {
  pref: number;
  kind: FilterKind;
  packets: bigint;
  bytes: bigint;
}

interface TcFilterJson {
  pref?: number;
  kind?: string;
  protocol?: string;
  options?: { actions?: Array<{ stats?: { packets?: number; bytes?: number } }> };
}

/**
 * Our filters found in `tc -s -j filter show dev IF ingress`, with the frames each saw (the
 * statistics of its first action). Filters at our prefs of another kind count as absent.
 */
export function parseFilters(json: string): FilterStats[] {
  const a = (json.trim() === '' ? [] : JSON.parse(json)) as TcFilterJson[];
  const out: FilterStats[] = [];
  for (const spec of FILTERS) {
    const kindWord = spec.args[2]!;
    const entry = a.find((f) => f.pref === spec.pref && f.kind === kindWord && f.options?.actions !== undefined);
    if (!entry) continue;
    const s = entry.options!.actions![0]?.stats;
    out.push({ pref: spec.pref, kind: spec.kind, packets: BigInt(s?.packets ?? 0), bytes: BigInt(s?.bytes ?? 0) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Plans

export interface Step {
  cmd: string;
  args: string[];
  what: string;
}

export interface Observed {
  iface: string;
  link: LinkState;
  forwarding: string;
  clsact: boolean;
  /** Prefs of our filters present. */
  filters: number[];
  raw: RawState;
}

export function forwardingKey(iface: string): string {
  return `net/ipv4/conf/${iface}/forwarding`;
}

/** The steps that enable the mirror on `o.iface` (empty when everything is in place). */
export function enablePlan(o: Observed, ipt: string): { steps: Step[]; previous: Previous } {
  const iface = o.iface;
  const existing = o.raw.mirrors.get(iface);
  // The chain counts as created by xttraffic if a mirror rule of another interface says so.
  const chainCreatedBefore = [...o.raw.mirrors.values()].some((m) => m.previous.chainCreated);
  const previous: Previous = existing?.previous ?? {
    promisc: o.link.promisc,
    arp: o.link.arp,
    forwarding: o.forwarding,
    clsactAdded: !o.clsact,
    chainCreated: !o.raw.chainExists || chainCreatedBefore,
  };
  const steps: Step[] = [];
  if (!o.raw.chainExists) steps.push({ cmd: ipt, args: ['-t', 'raw', '-N', CHAIN], what: `create chain ${CHAIN} in table raw` });
  // The drop first, then the jump above it: no mirrored packet gets past before it is dropped.
  if (!existing?.drop) {
    steps.push({
      cmd: ipt,
      args: ['-t', 'raw', '-I', 'PREROUTING', '1', '-i', iface, '-m', 'comment', '--comment', dropComment(iface), '-j', 'DROP'],
      what: `drop what comes in on ${iface} at the end of raw PREROUTING's mirror rules`,
    });
  }
  if (!existing) {
    steps.push({
      cmd: ipt,
      args: ['-t', 'raw', '-I', 'PREROUTING', '1', '-i', iface, '-m', 'comment', '--comment', encodeComment(iface, previous), '-j', CHAIN],
      what: `send what comes in on ${iface} through ${CHAIN}`,
    });
  }
  if (o.forwarding !== '0') steps.push({ cmd: 'sysctl', args: ['-qw', `${forwardingKey(iface)}=0`], what: `no forwarding on ${iface}` });
  if (o.link.arp) steps.push({ cmd: 'ip', args: ['link', 'set', 'dev', iface, 'arp', 'off'], what: `no ARP on ${iface}` });
  if (!o.link.promisc) steps.push({ cmd: 'ip', args: ['link', 'set', 'dev', iface, 'promisc', 'on'], what: `promiscuous mode on ${iface}` });
  if (!o.clsact) steps.push({ cmd: 'tc', args: ['qdisc', 'add', 'dev', iface, 'clsact'], what: `add a clsact qdisc to ${iface}` });
  for (const f of FILTERS) {
    if (o.filters.includes(f.pref)) continue;
    steps.push({ cmd: 'tc', args: ['filter', 'add', 'dev', iface, 'ingress', 'pref', String(f.pref), ...f.args], what: `tc ingress filter ${f.pref}: ${f.description}` });
  }
  return { steps, previous };
}

/** The steps that undo enable on `o.iface`; undefined when it is not enabled there. */
export function disablePlan(o: Observed, ipt: string): { steps: Step[]; previous: Previous; keptChain: boolean } | undefined {
  const iface = o.iface;
  const m = o.raw.mirrors.get(iface);
  if (!m) return undefined;
  const p = m.previous;
  const steps: Step[] = [];
  if (p.clsactAdded && o.clsact) {
    steps.push({ cmd: 'tc', args: ['qdisc', 'del', 'dev', iface, 'clsact'], what: `remove the clsact qdisc of ${iface} (and its filters)` });
  } else {
    for (const f of FILTERS) {
      if (!o.filters.includes(f.pref)) continue;
      steps.push({ cmd: 'tc', args: ['filter', 'del', 'dev', iface, 'ingress', 'pref', String(f.pref)], what: `remove tc ingress filter ${f.pref}` });
    }
  }
  if (!p.promisc && o.link.promisc) steps.push({ cmd: 'ip', args: ['link', 'set', 'dev', iface, 'promisc', 'off'], what: `promiscuous mode off on ${iface}` });
  if (p.arp && !o.link.arp) steps.push({ cmd: 'ip', args: ['link', 'set', 'dev', iface, 'arp', 'on'], what: `ARP on again on ${iface}` });
  if (o.forwarding !== p.forwarding) {
    steps.push({ cmd: 'sysctl', args: ['-qw', `${forwardingKey(iface)}=${p.forwarding}`], what: `forwarding on ${iface} back to ${p.forwarding}` });
  }
  steps.push({ cmd: ipt, args: ['-t', 'raw', '-D', 'PREROUTING', ...m.jump], what: `stop sending ${iface} through ${CHAIN}` });
  if (m.drop) steps.push({ cmd: ipt, args: ['-t', 'raw', '-D', 'PREROUTING', ...m.drop], what: `remove the drop rule of ${iface}` });
  const othersLeft = o.raw.mirrors.size > 1 || o.raw.otherReferences > 0;
  let keptChain = false;
  if (p.chainCreated && !othersLeft) {
    if (o.raw.chainRules.length === 0) steps.push({ cmd: ipt, args: ['-t', 'raw', '-X', CHAIN], what: `delete chain ${CHAIN}` });
    else keptChain = true;
  }
  return { steps, previous: p, keptChain };
}
