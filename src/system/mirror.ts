/**
 * `xttraffic mirror`: a monitor interface on a switch's mirror (SPAN) port. Pure logic only:
 * parsing what ip, sysctl, tc and iptables-save say, and the plan of commands (argument arrays)
 * that enable or disable the mirror set-up. commands/mirror.ts runs them.
 *
 * What `enable IF` sets up (each step only if it is not in place already):
 *  - raw table of iptables and of ip6tables (the latter unless IF has no IPv6): chain PROMISC
 *    (created if absent), and at the top of PREROUTING
 *      -i IF -m comment --comment "xttraffic mirror IF: <previous state>" -j PROMISC
 *      -i IF -m comment --comment "xttraffic mirror IF: drop" -j DROP
 *    so the user's `iptables -t raw -A PROMISC -m traffic ...` (and `ip6tables ...`) rules see
 *    every mirrored packet, which is then dropped before conntrack, routing and the sockets
 *    (mirrored NDP, MLD queries and router advertisements included: the stack never sees them,
 *    so it neither answers them nor learns from them). The ip6tables comment is the iptables
 *    one with chain= saying whether ip6tables' PROMISC was created.
 *  - net/ipv4/conf/IF/forwarding=0, `ip link set IF arp off`, `ip link set IF promisc on`;
 *  - tc: a clsact qdisc (added if absent) and ingress filters (prefs PREF6_BASE..PREF_BASE+4)
 *    that set the packet type to host for IPv4 and IPv6 frames, after popping one 802.1Q tag
 *    or two tags (QinQ: 802.1ad or 802.1Q outer, 802.1Q inner). Frames of another host's MAC
 *    are PACKET_OTHERHOST and would be dropped in ip_rcv/ipv6_rcv before PREROUTING; tagged
 *    frames of a VLAN without a VLAN device are marked PACKET_OTHERHOST after tc ingress, hence
 *    the pop. Other frames (ARP, LLDP, ...) are left alone (passed and counted by the last
 *    filter) and the kernel drops them.
 *  - silence (a SPAN port must transmit nothing): a tc egress guard (`matchall action drop` at
 *    EGRESS_PREF, its counter = frames the port tried to send), added right after the clsact
 *    qdisc so it already catches what the next steps make the kernel send; then an nft netdev
 *    egress guard (table `netdev xttraffic_mirror_IF`, chain egress, `counter drop`), which
 *    also sees frames sent with PACKET_QDISC_BYPASS (they skip tc) and runs before tc egress
 *    on the normal path (kernel 5.16+; skipped with a note when nft is not installed, a
 *    warning when the kernel refuses it: the tc guard stays); then the IPv6
 *    sysctls of IF that make the kernel transmit (IPV6_SILENT: no RA processing, no SLAAC, no
 *    router solicitations, no DAD probes, no forwarding, addr_gen_mode none so no link-local
 *    address is made again), then `ip -6 addr flush dev IF scope link` if it has one (the
 *    kernel's "done" MLD report for it goes to the guard). IPv6 itself stays enabled, so
 *    mirrored IPv6 can reach ip6tables.
 * The state before enable is recorded in the comment of the PROMISC jump rule (per network
 * namespace, no state file), and `disable IF` restores exactly that. Comments of an older
 * xttraffic have no `ipv6=` field: disable then leaves the IPv6 settings alone (that enable did
 * not touch them), and enable records them by replacing the comment in place (-R, counters
 * kept) before it silences the port.
 */
import { tokenize } from './rule.js';

export const CHAIN = 'PROMISC';
export const COMMENT_PREFIX = 'xttraffic mirror';
/** First tc filter preference used (high numbers: the user's own filters come first). */
export const PREF_BASE = 49001;
/**
 * Preference of the egress guard (`tc filter add dev IF egress pref 49000 matchall action
 * drop`). Lower than the preferences tc picks by itself (49152 and down), so it comes before
 * filters added without one.
 */
export const EGRESS_PREF = 49000;
export const EGRESS_ARGS = ['protocol', 'all', 'matchall', 'action', 'drop'];
/** First tc preference of the IPv6 ingress filters (before PREF_BASE: 'other' must stay last). */
export const PREF6_BASE = 48996;

/**
 * The nft table of the netdev egress guard of `iface`: `xttraffic_mirror_IF`, with an `@` of the
 * interface name (not allowed in an nft identifier) written as `_`.
 */
export function nftTable(iface: string): string {
  return `xttraffic_mirror_${iface.replace(/@/g, '_')}`;
}
export const NFT_CHAIN = 'egress';

/** The one nft command (one transaction) that adds the netdev egress guard of `iface`. */
export function nftGuardScript(iface: string): string {
  const t = nftTable(iface);
  return [
    `add table netdev ${t}`,
    `add chain netdev ${t} ${NFT_CHAIN} { type filter hook egress device "${iface}" priority 0; policy accept; }`,
    `add rule netdev ${t} ${NFT_CHAIN} counter drop`,
  ].join('\n');
}

/**
 * The IPv6 settings of IF (net/ipv6/conf/IF/KEY) that make the kernel transmit on its own, in
 * the order enable writes them and disable restores them (addr_gen_mode last: restoring it
 * makes the kernel generate the link-local address again, with DAD and router solicitations
 * as the other settings then say).
 */
export const IPV6_KEYS = ['accept_ra', 'autoconf', 'router_solicitations', 'dad_transmits', 'forwarding', 'addr_gen_mode'] as const;
export type Ipv6Key = (typeof IPV6_KEYS)[number];
export type Ipv6Conf = Record<Ipv6Key, string>;
/** What enable sets them to. */
export const IPV6_SILENT: Ipv6Conf = { accept_ra: '0', autoconf: '0', router_solicitations: '0', dad_transmits: '0', forwarding: '0', addr_gen_mode: '1' };
/** Their short names in the rule comment (256 characters at most). */
const IPV6_ABBREV: Record<Ipv6Key, string> = { accept_ra: 'ra', autoconf: 'auto', router_solicitations: 'rs', dad_transmits: 'dad', forwarding: 'fwd', addr_gen_mode: 'agm' };

export type FilterKind = 'ipv4' | 'vlan' | 'qinq' | 'vlan-vlan' | 'ipv6' | 'vlan6' | 'qinq6' | 'vlan-vlan6' | 'other';

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
  { pref: PREF6_BASE, kind: 'ipv6', args: ['protocol', 'ipv6', 'matchall', ...HOST], description: 'untagged IPv6' },
  {
    pref: PREF6_BASE + 1, kind: 'vlan6', args: ['protocol', '802.1Q', 'flower', 'vlan_ethtype', 'ipv6', ...POP, ...HOST],
    description: 'IPv6 in one 802.1Q tag',
  },
  {
    pref: PREF6_BASE + 2, kind: 'qinq6', args: ['protocol', '802.1ad', 'flower', 'vlan_ethtype', '802.1Q', 'cvlan_ethtype', 'ipv6', ...POP, ...POP, ...HOST],
    description: 'IPv6 in 802.1ad + 802.1Q tags (QinQ)',
  },
  {
    pref: PREF6_BASE + 3, kind: 'vlan-vlan6', args: ['protocol', '802.1Q', 'flower', 'vlan_ethtype', '802.1Q', 'cvlan_ethtype', 'ipv6', ...POP, ...POP, ...HOST],
    description: 'IPv6 in two 802.1Q tags',
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
  /**
   * net/ipv6/conf/IF/* before enable silenced the port; null: IF had no IPv6 (a kernel without
   * it); undefined: recorded by an older xttraffic that did not change them.
   */
  ipv6?: Ipv6Conf | null | undefined;
}

function encodeIpv6(c: Ipv6Conf | null): string {
  return c === null ? 'none' : IPV6_KEYS.map((k) => `${IPV6_ABBREV[k]}:${c[k]}`).join(',');
}

export function encodeComment(iface: string, p: Previous): string {
  const base = `${COMMENT_PREFIX} ${iface}: promisc=${p.promisc ? 'on' : 'off'} arp=${p.arp ? 'on' : 'off'} forwarding=${p.forwarding} clsact=${p.clsactAdded ? 'added' : 'kept'} chain=${p.chainCreated ? 'created' : 'kept'}`;
  return p.ipv6 === undefined ? base : `${base} ipv6=${encodeIpv6(p.ipv6)}`;
}

export function dropComment(iface: string): string {
  return `${COMMENT_PREFIX} ${iface}: drop`;
}

/** The previous state from a jump rule's comment; undefined if it is not one of ours. */
export function decodeComment(comment: string): { iface: string; previous: Previous } | undefined {
  const v6 = IPV6_KEYS.map((k) => `${IPV6_ABBREV[k]}:(-?\\d+)`).join(',');
  const re = new RegExp(`^xttraffic mirror (\\S+): promisc=(on|off) arp=(on|off) forwarding=(\\d+) clsact=(added|kept) chain=(created|kept)(?: ipv6=(?:(none)|${v6}))?$`);
  const m = re.exec(comment);
  if (!m) return undefined;
  const previous: Previous = { promisc: m[2] === 'on', arp: m[3] === 'on', forwarding: m[4]!, clsactAdded: m[5] === 'added', chainCreated: m[6] === 'created' };
  if (m[7] === 'none') previous.ipv6 = null;
  else if (m[8] !== undefined) previous.ipv6 = Object.fromEntries(IPV6_KEYS.map((k, i) => [k, m[8 + i]!])) as Ipv6Conf;
  return { iface: m[1]!, previous };
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
  /** Position of the jump rule in PREROUTING (1 = first), for `-R`. */
  jumpIndex: number;
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
  let prerouting = 0;
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
    if (chain === 'PREROUTING') prerouting++;
    const comment = commentOf(args);
    const target = args[args.indexOf('-j') + 1];
    if (chain === 'PREROUTING' && comment !== undefined) {
      const d = decodeComment(comment);
      if (d && target === CHAIN) {
        st.mirrors.set(d.iface, { iface: d.iface, previous: d.previous, jump: args, drop: undefined, jumpCounters: counters, dropCounters: undefined, jumpIndex: prerouting });
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
  /** What the interface transmitted (its tx counters; zero when `ip` printed no statistics). */
  tx: Counters;
}

/** Parses `ip -s -j link show dev IF` (or without -s). */
export function parseLink(json: string): LinkState {
  const a = JSON.parse(json) as Array<{ flags?: string[]; stats64?: { tx?: { packets?: number; bytes?: number } } }>;
  const flags = a[0]?.flags ?? [];
  const tx = a[0]?.stats64?.tx;
  return {
    promisc: flags.includes('PROMISC'), arp: !flags.includes('NOARP'), up: flags.includes('UP'),
    tx: { packets: BigInt(tx?.packets ?? 0), bytes: BigInt(tx?.bytes ?? 0) },
  };
}

/** The IPv6 link-local addresses in `ip -j -6 addr show dev IF scope link`. */
export function parseLinkLocal(json: string): string[] {
  const a = (json.trim() === '' ? [] : JSON.parse(json)) as Array<{ addr_info?: Array<{ family?: string; local?: string; prefixlen?: number; scope?: string }> }>;
  return a.flatMap((l) => (l.addr_info ?? []).filter((x) => x.family === 'inet6' && x.scope === 'link').map((x) => `${x.local}/${x.prefixlen}`));
}

/** The values of `sysctl -n` for IPV6_KEYS of IF, one per line in that order. */
export function parseIpv6Conf(text: string): Ipv6Conf {
  const v = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (v.length !== IPV6_KEYS.length || !v.every((x) => /^-?\d+$/.test(x))) {
    throw new Error(`unexpected sysctl output for ${IPV6_KEYS.join(', ')}: ${JSON.stringify(text)}`);
  }
  return Object.fromEntries(IPV6_KEYS.map((k, i) => [k, v[i]!])) as Ipv6Conf;
}

export function ipv6Key(iface: string, k: Ipv6Key): string {
  return `net/ipv6/conf/${iface}/${k}`;
}

/** Whether every IPv6 setting is at its silent value. */
export function ipv6Silent(c: Ipv6Conf): boolean {
  return IPV6_KEYS.every((k) => c[k] === IPV6_SILENT[k]);
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

/**
 * The egress guard in `tc -s -j filter show dev IF egress` (a matchall at EGRESS_PREF whose
 * first action drops): undefined when absent, else what it dropped.
 */
export function parseEgress(json: string): Counters | undefined {
  const a = (json.trim() === '' ? [] : JSON.parse(json)) as Array<TcFilterJson & { options?: { actions?: Array<{ kind?: string; control_action?: { type?: string } }> } }>;
  const e = a.find((f) => f.pref === EGRESS_PREF && f.kind === 'matchall' && f.options?.actions !== undefined);
  const act = e?.options?.actions?.[0];
  if (!e || act?.kind !== 'gact' || act.control_action?.type !== 'drop') return undefined;
  const s = (act as { stats?: { packets?: number; bytes?: number } }).stats;
  return { packets: BigInt(s?.packets ?? 0), bytes: BigInt(s?.bytes ?? 0) };
}

/** The nft egress guard of an interface as `nft -j list table netdev xttraffic_mirror_IF` shows it. */
export interface NftGuard {
  /** nft is installed (else nothing below is known). */
  available: boolean;
  /** The table exists (enable made it; disable deletes it). */
  table: boolean;
  /** It has an egress chain on the interface with a rule that drops: the guard works. */
  guard: boolean;
  /** What that rule's counter dropped: frames the port tried to send. */
  dropped: Counters;
}

/** Parses `nft -j list table netdev T` of the interface `iface`. */
export function parseNftGuard(json: string, iface: string): NftGuard {
  type Expr = { counter?: { packets?: number; bytes?: number }; drop?: unknown };
  const items = (JSON.parse(json) as { nftables?: Array<{ chain?: { name?: string; hook?: string; dev?: string | string[] }; rule?: { chain?: string; expr?: Expr[] } }> }).nftables ?? [];
  // nft 1.0.6 (Debian 12) leaves a netdev chain's device out of its JSON: the table's name is per
  // interface; a device it does name must be this one
  const chain = items.find((i) => i.chain?.name === NFT_CHAIN && i.chain.hook === 'egress' && (i.chain.dev === undefined || [i.chain.dev].flat().includes(iface)));
  const rule = items.find((i) => i.rule?.chain === NFT_CHAIN && (i.rule.expr ?? []).some((e) => e.drop !== undefined));
  const c = rule?.rule?.expr?.find((e) => e.counter)?.counter;
  return { available: true, table: true, guard: chain !== undefined && rule !== undefined, dropped: { packets: BigInt(c?.packets ?? 0), bytes: BigInt(c?.bytes ?? 0) } };
}

// ---------------------------------------------------------------------------------------------
// Plans

export interface Step {
  cmd: string;
  args: string[];
  what: string;
  /** When set, a failure of this step does not stop enable: it is reported as this warning. */
  optional?: string;
}

export interface Observed {
  iface: string;
  link: LinkState;
  forwarding: string;
  clsact: boolean;
  /** Prefs of our filters present. */
  filters: number[];
  /** Whether the egress guard is present. */
  egress: boolean;
  /** net/ipv6/conf/IF/* now; null when IF has no IPv6 (no net/ipv6/conf/IF). */
  ipv6: Ipv6Conf | null;
  /** IPv6 link-local addresses of IF (ADDR/LEN). */
  linkLocal: string[];
  raw: RawState;
  /** `ip6tables-save -t raw`; undefined when IF has no IPv6 (ip6tables is then left alone). */
  raw6: RawState | undefined;
  /** The nft egress guard. */
  nft: NftGuard;
}

export function forwardingKey(iface: string): string {
  return `net/ipv4/conf/${iface}/forwarding`;
}

/** The steps that enable the mirror on `o.iface` (empty when everything is in place). */
export function enablePlan(o: Observed, ipt: string, ipt6: string): { steps: Step[]; previous: Previous; notes: string[] } {
  const iface = o.iface;
  const existing = o.raw.mirrors.get(iface);
  // The chain counts as created by xttraffic if a mirror rule of another interface says so.
  const chainCreatedBefore = [...o.raw.mirrors.values()].some((m) => m.previous.chainCreated);
  // A comment of an older xttraffic has no IPv6 settings: they are still the operator's (it did
  // not change them), so they are recorded now, and the comment is replaced below.
  const upgrade = existing !== undefined && existing.previous.ipv6 === undefined;
  const previous: Previous = existing
    ? upgrade ? { ...existing.previous, ipv6: o.ipv6 } : existing.previous
    : {
      promisc: o.link.promisc,
      arp: o.link.arp,
      forwarding: o.forwarding,
      clsactAdded: !o.clsact,
      chainCreated: !o.raw.chainExists || chainCreatedBefore,
      ipv6: o.ipv6,
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
  if (existing && upgrade) {
    // In place (-R), with its counters: no moment without the jump, and never two of them.
    const args = [...existing.jump];
    args[args.indexOf('--comment') + 1] = encodeComment(iface, previous);
    const counters = existing.jumpCounters ? ['-c', String(existing.jumpCounters.packets), String(existing.jumpCounters.bytes)] : [];
    steps.push({
      cmd: ipt,
      args: ['-t', 'raw', '-R', 'PREROUTING', String(existing.jumpIndex), ...counters, ...args],
      what: `record the IPv6 settings of ${iface} in the comment of its ${CHAIN} rule (made by an older xttraffic)`,
    });
  }
  if (o.raw6) {
    // ip6tables: the same rules; its comment says whether ip6tables' PROMISC was created.
    const raw6 = o.raw6;
    const existing6 = raw6.mirrors.get(iface);
    const created6 = existing6 ? existing6.previous.chainCreated : !raw6.chainExists || [...raw6.mirrors.values()].some((m) => m.previous.chainCreated);
    const previous6: Previous = { ...previous, chainCreated: created6 };
    if (!raw6.chainExists) steps.push({ cmd: ipt6, args: ['-t', 'raw', '-N', CHAIN], what: `create chain ${CHAIN} in ip6tables' table raw` });
    if (!existing6?.drop) {
      steps.push({
        cmd: ipt6,
        args: ['-t', 'raw', '-I', 'PREROUTING', '1', '-i', iface, '-m', 'comment', '--comment', dropComment(iface), '-j', 'DROP'],
        what: `drop what comes in on ${iface} at the end of ip6tables' raw PREROUTING mirror rules`,
      });
    }
    if (!existing6) {
      steps.push({
        cmd: ipt6,
        args: ['-t', 'raw', '-I', 'PREROUTING', '1', '-i', iface, '-m', 'comment', '--comment', encodeComment(iface, previous6), '-j', CHAIN],
        what: `send what comes in on ${iface} through ip6tables' ${CHAIN}`,
      });
    }
  }
  if (o.forwarding !== '0') steps.push({ cmd: 'sysctl', args: ['-qw', `${forwardingKey(iface)}=0`], what: `no forwarding on ${iface}` });
  if (o.link.arp) steps.push({ cmd: 'ip', args: ['link', 'set', 'dev', iface, 'arp', 'off'], what: `no ARP on ${iface}` });
  if (!o.link.promisc) steps.push({ cmd: 'ip', args: ['link', 'set', 'dev', iface, 'promisc', 'on'], what: `promiscuous mode on ${iface}` });
  if (!o.clsact) steps.push({ cmd: 'tc', args: ['qdisc', 'add', 'dev', iface, 'clsact'], what: `add a clsact qdisc to ${iface}` });
  // Silence. The guard first: it also drops what the next steps make the kernel send (the MLD
  // report that leaves the link-local address's group when the address goes).
  if (!o.egress) {
    steps.push({ cmd: 'tc', args: ['filter', 'add', 'dev', iface, 'egress', 'pref', String(EGRESS_PREF), ...EGRESS_ARGS], what: `tc egress guard ${EGRESS_PREF}: drop anything ${iface} would send` });
  }
  const notes: string[] = [];
  if (!o.nft.available) {
    notes.push(`nft not found: no nft egress guard on ${iface}; the tc guard drops what the port would send except frames sent with PACKET_QDISC_BYPASS (install nftables and run enable again)`);
  } else if (!o.nft.table) {
    steps.push({
      cmd: 'nft', args: [nftGuardScript(iface)],
      what: `nft egress guard (table netdev ${nftTable(iface)}): drop anything ${iface} would send, PACKET_QDISC_BYPASS frames included`,
      optional: `the nft egress guard could not be added (the netdev egress hook needs Linux 5.16+ with CONFIG_NETFILTER_EGRESS): the tc guard drops what the port would send except frames sent with PACKET_QDISC_BYPASS`,
    });
  }
  if (o.ipv6) {
    for (const k of IPV6_KEYS) {
      if (o.ipv6[k] === IPV6_SILENT[k]) continue;
      steps.push({ cmd: 'sysctl', args: ['-qw', `${ipv6Key(iface, k)}=${IPV6_SILENT[k]}`], what: `IPv6 ${k} ${IPV6_SILENT[k]} on ${iface}` });
    }
  }
  if (o.linkLocal.length > 0) {
    steps.push({ cmd: 'ip', args: ['-6', 'addr', 'flush', 'dev', iface, 'scope', 'link'], what: `remove the IPv6 link-local address of ${iface} (${o.linkLocal.join(', ')})` });
  }
  for (const f of FILTERS) {
    if (o.filters.includes(f.pref)) continue;
    steps.push({ cmd: 'tc', args: ['filter', 'add', 'dev', iface, 'ingress', 'pref', String(f.pref), ...f.args], what: `tc ingress filter ${f.pref}: ${f.description}` });
  }
  return { steps, previous, notes };
}

/** The steps that undo enable on `o.iface`; undefined when it is not enabled there. */
export function disablePlan(o: Observed, ipt: string, ipt6: string): { steps: Step[]; previous: Previous; keptChain: boolean; keptChain6: boolean } | undefined {
  const iface = o.iface;
  const m = o.raw.mirrors.get(iface);
  const m6 = o.raw6?.mirrors.get(iface);
  if (!m && !m6) return undefined;
  const p = m ? m.previous : { ...m6!.previous, chainCreated: false };
  const steps: Step[] = [];
  if (o.nft.table) steps.push({ cmd: 'nft', args: ['delete', 'table', 'netdev', nftTable(iface)], what: `remove the nft egress guard (table netdev ${nftTable(iface)})` });
  if (p.clsactAdded && o.clsact) {
    steps.push({ cmd: 'tc', args: ['qdisc', 'del', 'dev', iface, 'clsact'], what: `remove the clsact qdisc of ${iface} (and its filters)` });
  } else {
    for (const f of FILTERS) {
      if (!o.filters.includes(f.pref)) continue;
      steps.push({ cmd: 'tc', args: ['filter', 'del', 'dev', iface, 'ingress', 'pref', String(f.pref)], what: `remove tc ingress filter ${f.pref}` });
    }
    if (o.egress) steps.push({ cmd: 'tc', args: ['filter', 'del', 'dev', iface, 'egress', 'pref', String(EGRESS_PREF)], what: `remove the tc egress guard ${EGRESS_PREF}` });
  }
  if (!p.promisc && o.link.promisc) steps.push({ cmd: 'ip', args: ['link', 'set', 'dev', iface, 'promisc', 'off'], what: `promiscuous mode off on ${iface}` });
  if (p.arp && !o.link.arp) steps.push({ cmd: 'ip', args: ['link', 'set', 'dev', iface, 'arp', 'on'], what: `ARP on again on ${iface}` });
  if (o.forwarding !== p.forwarding) {
    steps.push({ cmd: 'sysctl', args: ['-qw', `${forwardingKey(iface)}=${p.forwarding}`], what: `forwarding on ${iface} back to ${p.forwarding}` });
  }
  // addr_gen_mode last: going back to a mode that makes a link-local address makes the kernel
  // add it again (with DAD and router solicitations as the settings restored before say).
  if (p.ipv6 && o.ipv6) {
    for (const k of IPV6_KEYS) {
      if (o.ipv6[k] === p.ipv6[k]) continue;
      steps.push({ cmd: 'sysctl', args: ['-qw', `${ipv6Key(iface, k)}=${p.ipv6[k]}`], what: `IPv6 ${k} on ${iface} back to ${p.ipv6[k]}` });
    }
  }
  const rules = (cmd: string, raw: RawState, r: MirrorRules | undefined, who: string): boolean => {
    if (!r) return false;
    steps.push({ cmd, args: ['-t', 'raw', '-D', 'PREROUTING', ...r.jump], what: `stop sending ${iface} through ${who}${CHAIN}` });
    if (r.drop) steps.push({ cmd, args: ['-t', 'raw', '-D', 'PREROUTING', ...r.drop], what: `remove the ${who}drop rule of ${iface}` });
    const othersLeft = raw.mirrors.size > 1 || raw.otherReferences > 0;
    if (!r.previous.chainCreated || othersLeft) return false;
    if (raw.chainRules.length > 0) return true;
    steps.push({ cmd, args: ['-t', 'raw', '-X', CHAIN], what: `delete ${who}chain ${CHAIN}` });
    return false;
  };
  const keptChain = rules(ipt, o.raw, m, '');
  const keptChain6 = o.raw6 ? rules(ipt6, o.raw6, m6, "ip6tables' ") : false;
  return { steps, previous: p, keptChain, keptChain6 };
}
