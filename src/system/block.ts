/**
 * The quota block: an ipset `xttraffic-block` (hash:ip, family inet, created with `timeout 0`
 * so an entry may carry its own timeout, 0 = until removed) and two DROP rules in the filter
 * table's FORWARD chain that reference it:
 *
 *   -I FORWARD 1 -m set --match-set xttraffic-block src -m comment --comment "xttraffic block src" -j DROP
 *   -I FORWARD 1 -m set --match-set xttraffic-block dst -m comment --comment "xttraffic block dst" -j DROP
 *
 * IPv6 hosts are host prefixes (`2001:db8:0:1::/64`, or an address for tables per /128): an
 * ipset `xttraffic-block6` (hash:net, family inet6, timeout 0) and the same two rules through
 * ip6tables (comments "xttraffic block6 src|dst"). The IPv6 set and rules are created by the
 * first IPv6 block (block() ensures them), so a router that bills IPv4 only never needs
 * ip6tables; ensureBlockRules(deps, backend, 'ipv6') creates them up front.
 *
 * FORWARD only, not INPUT: the hosts billed are customers behind the router, and what they
 * pay for is what the router forwards for them. A blocked host can still reach the router
 * itself (DHCP, DNS, a page saying the quota is used up); dropped packets come before any
 * `-m traffic` rule in FORWARD, so they are not counted either. Blocking a host in the
 * router's own traffic (INPUT/OUTPUT) is left to the operator's firewall.
 *
 * The set is the kernel's (ip_set), the same for both iptables backends; the rules are per
 * backend (`iptables` = the system default, `iptables-nft`, `iptables-legacy`). Every call
 * looks first (`ipset list -t`, `ipset test`, `iptables -C`) and changes only what is
 * missing: a second call changes nothing and says so (`changed: false`).
 *
 * The plans (which commands to run for what was observed) are pure; the rest runs them
 * through deps.run.
 */
import type { Deps, RunResult } from '../core/deps.js';
import { ResourceError, RuntimeError, UsageError, type XtError } from '../core/errors.js';
import { alignTo6, compare6, formatIPv6, ipToNumber, isAligned6, isIPv4, parseIPv6 } from '../core/ip.js';
import type { Step } from './mirror.js';
import { iptablesCmd, iptablesError, runIptables, type Backend } from './xtables.js';

export const BLOCK_SET = 'xttraffic-block';
export const BLOCK_SET6 = 'xttraffic-block6';
export type Family = 'ipv4' | 'ipv6';
/** The set of a family. */
export const setOf = (family: Family): string => (family === 'ipv6' ? BLOCK_SET6 : BLOCK_SET);
export const BLOCK_TABLE = 'filter';
export const BLOCK_CHAIN = 'FORWARD';
export type Direction = 'src' | 'dst';
export const DIRECTIONS: readonly Direction[] = ['src', 'dst'];

/** The rule's arguments after `-A FORWARD` (also what `-C` and `-D` take). */
export function blockRule(dir: Direction, family: Family = 'ipv4'): string[] {
  return ['-m', 'set', '--match-set', setOf(family), dir, '-m', 'comment', '--comment', `xttraffic block${family === 'ipv6' ? '6' : ''} ${dir}`, '-j', 'DROP'];
}

export const CREATE_ARGS = ['create', BLOCK_SET, 'hash:ip', 'family', 'inet', 'timeout', '0'];
export const CREATE_ARGS6 = ['create', BLOCK_SET6, 'hash:net', 'family', 'inet6', 'timeout', '0'];
const TYPE: Record<Family, { type: string; family: string }> = { ipv4: { type: 'hash:ip', family: 'inet' }, ipv6: { type: 'hash:net', family: 'inet6' } };

// ---------------------------------------------------------------------------------------------
// What ipset says

export interface SetInfo {
  type: string;
  family: string | undefined;
  /** Created with `timeout N` (entries may carry a timeout). */
  timeout: boolean;
  /** Rules (of any backend) referencing the set. */
  references: number;
}

/** Parses `ipset list -t NAME`. */
export function parseSetHeader(text: string): SetInfo {
  const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const header = field('Header') ?? '';
  return {
    type: field('Type') ?? '',
    family: /(?:^|\s)family (\S+)/.exec(header)?.[1],
    timeout: /(?:^|\s)timeout \d+/.test(header),
    references: Number(field('References') ?? '0'),
  };
}

export interface BlockedEntry {
  ip: string;
  /** Seconds left; 0 = until removed. */
  timeout: number;
}

/** The members in `ipset save NAME` output, in address order. */
export function parseSetSave(text: string, family: Family = 'ipv4'): BlockedEntry[] {
  const out: BlockedEntry[] = [];
  const set = setOf(family);
  for (const line of text.split('\n')) {
    const m = /^add (\S+) (\S+)(?: timeout (\d+))?/.exec(line.trim());
    if (!m || m[1] !== set) continue;
    out.push({ ip: m[2]!, timeout: Number(m[3] ?? '0') });
  }
  if (family === 'ipv4') return out.sort((a, b) => ipToNumber(a.ip) - ipToNumber(b.ip));
  const w = (e: BlockedEntry) => {
    const x = new Uint32Array(4);
    parseIPv6(e.ip.split('/')[0]!, x);
    return x;
  };
  return out.sort((a, b) => compare6(w(a), 0, w(b), 0) || Number(a.ip.split('/')[1] ?? 128) - Number(b.ip.split('/')[1] ?? 128));
}

// ---------------------------------------------------------------------------------------------
// Plans (pure)

export interface BlockObserved {
  set: SetInfo | undefined;
  rules: Record<Direction, boolean>;
}

/** Why an existing set of our name cannot be used, or undefined when it can. */
export function unusableSet(s: SetInfo, family: Family = 'ipv4'): string | undefined {
  const t = TYPE[family];
  if (s.type !== t.type || (s.family !== undefined && s.family !== t.family)) {
    return `ipset ${setOf(family)} exists with type ${s.type || '?'}${s.family ? ` family ${s.family}` : ''}, not ${t.type} family ${t.family}`;
  }
  return undefined;
}

/** The steps that create the set and the two rules (empty when all are in place). */
export function ensurePlan(o: BlockObserved, ipt: string, family: Family = 'ipv4'): Step[] {
  const steps: Step[] = [];
  const set = setOf(family);
  if (!o.set) steps.push({ cmd: 'ipset', args: family === 'ipv6' ? [...CREATE_ARGS6] : [...CREATE_ARGS], what: `create ipset ${set} (${TYPE[family].type}, family ${TYPE[family].family}, timeout 0)` });
  // dst first, then src above it: src ends up first in the chain
  for (const dir of ['dst', 'src'] as const) {
    if (o.rules[dir]) continue;
    steps.push({
      cmd: ipt,
      args: ['-t', BLOCK_TABLE, '-I', BLOCK_CHAIN, '1', ...blockRule(dir, family)],
      what: `drop forwarded packets whose ${dir === 'src' ? 'source' : 'destination'} is in ${set}`,
    });
  }
  return steps;
}

/** The steps that remove the two rules and the set (empty when none is there). */
export function removePlan(o: BlockObserved, ipt: string, family: Family = 'ipv4'): Step[] {
  const steps: Step[] = [];
  for (const dir of DIRECTIONS) {
    if (!o.rules[dir]) continue;
    steps.push({ cmd: ipt, args: ['-t', BLOCK_TABLE, '-D', BLOCK_CHAIN, ...blockRule(dir, family)], what: `remove the ${dir} DROP rule${family === 'ipv6' ? ' (ip6tables)' : ''}` });
  }
  if (o.set) steps.push({ cmd: 'ipset', args: ['destroy', setOf(family)], what: `destroy ipset ${setOf(family)}` });
  return steps;
}

// ---------------------------------------------------------------------------------------------
// Running

export function checkIp(ip: string): string {
  if (typeof ip !== 'string' || !isIPv4(ip)) {
    throw new UsageError(`bad IPv4 address ${JSON.stringify(ip)}`, { hint: 'a dotted quad such as 192.168.1.20 (no prefix, no leading zeros)' });
  }
  return ip;
}

/**
 * A host of the ledger as a set entry: an IPv4 address (set xttraffic-block), or an IPv6 host
 * prefix or address in RFC 5952 form (set xttraffic-block6; an address is its /128); host bits
 * must be zero. Anything else (an IPv4 prefix of a table counted per /N included): a UsageError
 * naming it.
 */
export function checkHost(host: string): { family: Family; entry: string } {
  if (typeof host === 'string' && host.includes(':')) {
    const slash = host.indexOf('/');
    const addr = slash < 0 ? host : host.slice(0, slash);
    const len = slash < 0 ? 128 : /^(0|[1-9]\d{0,2})$/.test(host.slice(slash + 1)) ? Number(host.slice(slash + 1)) : -1;
    const w = new Uint32Array(4);
    if (!parseIPv6(addr, w) || len < 1 || len > 128) {
      throw new UsageError(`bad IPv6 host ${JSON.stringify(host)}`, { hint: 'an IPv6 address or host prefix such as 2001:db8:0:1::/64 (prefix length 1..128)' });
    }
    if (!isAligned6(w, len)) throw new UsageError(`bad IPv6 host ${JSON.stringify(host)}: host bits are set (the prefix is ${formatIPv6(alignTo6(w, len))}/${len})`);
    return { family: 'ipv6', entry: len === 128 ? formatIPv6(w) : `${formatIPv6(w)}/${len}` };
  }
  if (typeof host === 'string' && host.includes('/')) {
    throw new UsageError(`cannot block ${JSON.stringify(host)}: an IPv4 host prefix (a table with --hostprefix below 32) has no block set yet`, { hint: 'block IPv4 hosts by address, or use --action exec for prefixes' });
  }
  return { family: 'ipv4', entry: checkIp(host) };
}

function lastLine(r: RunResult): string {
  return (r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).split('\n').filter((l) => l !== '').pop()!;
}

export function ipsetError(args: readonly string[], r: RunResult): XtError {
  if (r.notFound) return new ResourceError('ENOTOOL', 'ipset not found', { hint: 'install it: apt install ipset' });
  const msg = lastLine(r);
  const what = `ipset ${args.join(' ')}: ${msg}`;
  if (/Permission denied|must be root|Operation not permitted/i.test(msg)) return new ResourceError('EPERM', what, { hint: 'run it as root (sudo)' });
  if (/Kernel error received: (set type not supported|Protocol not supported)|Cannot open session to kernel/i.test(msg)) {
    return new ResourceError('EIPSET', what, { hint: 'the kernel lacks ip_set (modprobe ip_set_hash_ip)' });
  }
  return new RuntimeError('EIPSET', what);
}

async function ipset(deps: Deps, args: string[]): Promise<RunResult> {
  const r = await deps.run('ipset', args);
  if (r.notFound) throw ipsetError(args, r);
  return r;
}

/** The set as ipset lists it; undefined when it does not exist. */
export async function setInfo(deps: Deps, family: Family = 'ipv4'): Promise<SetInfo | undefined> {
  const args = ['list', '-t', setOf(family)];
  const r = await ipset(deps, args);
  if (r.code === 0) return parseSetHeader(r.stdout);
  if (/does not exist/i.test(r.stderr)) return undefined;
  throw ipsetError(args, r);
}

/** Whether the rule is in the chain (`iptables -C`: exit 1 "Bad rule" means absent). */
async function hasRule(deps: Deps, ipt: string, dir: Direction, family: Family): Promise<boolean> {
  const args = ['-t', BLOCK_TABLE, '-C', BLOCK_CHAIN, ...blockRule(dir, family)];
  const r = await runIptables(deps, ipt, args);
  if (r.code === 0) return true;
  if (r.code === 1 && /Bad rule|does a matching rule exist|doesn't exist|does not exist/i.test(`${r.stderr}${r.stdout}`)) return false;
  throw iptablesError(deps, ipt, args, r, 'list');
}

export async function observeBlock(deps: Deps, backend: Backend | undefined, family: Family = 'ipv4'): Promise<BlockObserved> {
  const set = await setInfo(deps, family);
  const ipt = iptablesCmd(backend, family);
  // Without the set, `-C` cannot name it (iptables: "Set xttraffic-block doesn't exist"): no rule can reference it.
  const rules = set ? { src: await hasRule(deps, ipt, 'src', family), dst: await hasRule(deps, ipt, 'dst', family) } : { src: false, dst: false };
  return { set, rules };
}

async function runSteps(deps: Deps, steps: Step[]): Promise<void> {
  for (const s of steps) {
    if (s.cmd === 'ipset') {
      const r = await ipset(deps, s.args);
      if (r.code !== 0) throw ipsetError(s.args, r);
    } else {
      const r = await runIptables(deps, s.cmd, s.args);
      if (r.code !== 0) throw iptablesError(deps, s.cmd, s.args, r, 'chain');
    }
  }
}

export interface PlanResult {
  changed: boolean;
  steps: Step[];
}

/** Creates the set and the two DROP rules of a family (iptables or ip6tables) where missing. */
export async function ensureBlockRules(deps: Deps, backend?: Backend, family: Family = 'ipv4'): Promise<PlanResult> {
  const o = await observeBlock(deps, backend, family);
  if (o.set) {
    const why = unusableSet(o.set, family);
    if (why) throw new ResourceError('EIPSET', why, { hint: `the quota block needs its own set: rename or destroy that one (ipset destroy ${setOf(family)})` });
  }
  const steps = ensurePlan(o, iptablesCmd(backend, family), family);
  await runSteps(deps, steps);
  return { changed: steps.length > 0, steps };
}

/** Removes the two rules and the set of a family (the set kept, and said why, when other rules still use it). */
export async function removeBlockRules(deps: Deps, backend?: Backend, family: Family = 'ipv4'): Promise<PlanResult & { keptSet?: string }> {
  const o = await observeBlock(deps, backend, family);
  const steps = removePlan(o, iptablesCmd(backend, family), family);
  const rules = steps.filter((s) => s.cmd !== 'ipset');
  await runSteps(deps, rules);
  const destroy = steps.find((s) => s.cmd === 'ipset');
  if (!destroy) return { changed: rules.length > 0, steps: rules };
  const r = await ipset(deps, destroy.args);
  if (r.code !== 0) {
    if (/in use by a kernel component/i.test(lastLine(r))) {
      return { changed: rules.length > 0, steps: rules, keptSet: `ipset ${setOf(family)} is still referenced by other rules (the other iptables backend?)` };
    }
    throw ipsetError(destroy.args, r);
  }
  return { changed: true, steps };
}

async function requireSet(deps: Deps, family: Family): Promise<SetInfo> {
  let s = await setInfo(deps, family);
  if (!s && family === 'ipv6') {
    // the first IPv6 block: the IPv6 set and its ip6tables rules (an IPv4-only router never needs them)
    await ensureBlockRules(deps, undefined, 'ipv6');
    s = await setInfo(deps, family);
  }
  if (!s) throw new ResourceError('ENOBLOCKSET', `ipset ${setOf(family)} does not exist`, { hint: 'ensureBlockRules() (xttraffic quota with --action block) creates it and its DROP rules' });
  return s;
}

async function member(deps: Deps, family: Family, ip: string): Promise<boolean> {
  const args = ['test', setOf(family), ip];
  const r = await ipset(deps, args);
  if (r.code === 0) return true;
  if (/is NOT in set/i.test(`${r.stderr}${r.stdout}`)) return false;
  throw ipsetError(args, r);
}

/**
 * Adds `ip` to the set (its packets are then dropped by the FORWARD rules). `timeoutSeconds`:
 * the kernel removes it by itself after that long (the set has timeout support); default 0,
 * until unblock. Adding a member already there changes nothing.
 */
export async function block(deps: Deps, host: string, o: { timeoutSeconds?: number } = {}): Promise<{ ip: string; changed: boolean }> {
  const { family, entry: ip } = checkHost(host);
  const t = o.timeoutSeconds;
  if (t !== undefined && (!Number.isInteger(t) || t < 0 || t > 2147483)) throw new UsageError(`timeout ${t}: must be 0..2147483 seconds`);
  const s = await requireSet(deps, family);
  if (await member(deps, family, ip)) return { ip, changed: false };
  const args = ['add', setOf(family), ip, ...(t !== undefined && s.timeout ? ['timeout', String(t)] : [])];
  const r = await ipset(deps, args);
  if (r.code !== 0) {
    if (/already added/i.test(lastLine(r))) return { ip, changed: false }; // added meanwhile
    throw ipsetError(args, r);
  }
  return { ip, changed: true };
}

/** Removes `ip` from the set; a host not blocked (or no set at all) changes nothing. */
export async function unblock(deps: Deps, host: string): Promise<{ ip: string; changed: boolean }> {
  const { family, entry: ip } = checkHost(host);
  if (!(await setInfo(deps, family))) return { ip, changed: false };
  if (!(await member(deps, family, ip))) return { ip, changed: false };
  const args = ['del', setOf(family), ip];
  const r = await ipset(deps, args);
  if (r.code !== 0) {
    if (/not added/i.test(lastLine(r))) return { ip, changed: false }; // removed meanwhile
    throw ipsetError(args, r);
  }
  return { ip, changed: true };
}

/** The blocked hosts of a family (none when its set does not exist). */
export async function listBlocked(deps: Deps, family: Family = 'ipv4'): Promise<BlockedEntry[]> {
  if (!(await setInfo(deps, family))) return [];
  const args = ['save', setOf(family)];
  const r = await ipset(deps, args);
  if (r.code !== 0) throw ipsetError(args, r);
  return parseSetSave(r.stdout, family);
}
