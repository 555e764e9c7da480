/**
 * The quota block: an ipset `xttraffic-block` (hash:ip, family inet, created with `timeout 0`
 * so an entry may carry its own timeout, 0 = until removed) and two DROP rules in the filter
 * table's FORWARD chain that reference it:
 *
 *   -I FORWARD 1 -m set --match-set xttraffic-block src -m comment --comment "xttraffic block src" -j DROP
 *   -I FORWARD 1 -m set --match-set xttraffic-block dst -m comment --comment "xttraffic block dst" -j DROP
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
import { ipToNumber, isIPv4 } from '../core/ip.js';
import type { Step } from './mirror.js';
import { iptablesCmd, iptablesError, runIptables, type Backend } from './xtables.js';

export const BLOCK_SET = 'xttraffic-block';
export const BLOCK_TABLE = 'filter';
export const BLOCK_CHAIN = 'FORWARD';
export type Direction = 'src' | 'dst';
export const DIRECTIONS: readonly Direction[] = ['src', 'dst'];

/** The rule's arguments after `-A FORWARD` (also what `-C` and `-D` take). */
export function blockRule(dir: Direction): string[] {
  return ['-m', 'set', '--match-set', BLOCK_SET, dir, '-m', 'comment', '--comment', `xttraffic block ${dir}`, '-j', 'DROP'];
}

export const CREATE_ARGS = ['create', BLOCK_SET, 'hash:ip', 'family', 'inet', 'timeout', '0'];

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
export function parseSetSave(text: string): BlockedEntry[] {
  const out: BlockedEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^add (\S+) (\S+)(?: timeout (\d+))?/.exec(line.trim());
    if (!m || m[1] !== BLOCK_SET) continue;
    out.push({ ip: m[2]!, timeout: Number(m[3] ?? '0') });
  }
  return out.sort((a, b) => ipToNumber(a.ip) - ipToNumber(b.ip));
}

// ---------------------------------------------------------------------------------------------
// Plans (pure)

export interface BlockObserved {
  set: SetInfo | undefined;
  rules: Record<Direction, boolean>;
}

/** Why an existing set of our name cannot be used, or undefined when it can. */
export function unusableSet(s: SetInfo): string | undefined {
  if (s.type !== 'hash:ip' || (s.family !== undefined && s.family !== 'inet')) {
    return `ipset ${BLOCK_SET} exists with type ${s.type || '?'}${s.family ? ` family ${s.family}` : ''}, not hash:ip family inet`;
  }
  return undefined;
}

/** The steps that create the set and the two rules (empty when all are in place). */
export function ensurePlan(o: BlockObserved, ipt: string): Step[] {
  const steps: Step[] = [];
  if (!o.set) steps.push({ cmd: 'ipset', args: [...CREATE_ARGS], what: `create ipset ${BLOCK_SET} (hash:ip, family inet, timeout 0)` });
  // dst first, then src above it: src ends up first in the chain
  for (const dir of ['dst', 'src'] as const) {
    if (o.rules[dir]) continue;
    steps.push({
      cmd: ipt,
      args: ['-t', BLOCK_TABLE, '-I', BLOCK_CHAIN, '1', ...blockRule(dir)],
      what: `drop forwarded packets whose ${dir === 'src' ? 'source' : 'destination'} is in ${BLOCK_SET}`,
    });
  }
  return steps;
}

/** The steps that remove the two rules and the set (empty when none is there). */
export function removePlan(o: BlockObserved, ipt: string): Step[] {
  const steps: Step[] = [];
  for (const dir of DIRECTIONS) {
    if (!o.rules[dir]) continue;
    steps.push({ cmd: ipt, args: ['-t', BLOCK_TABLE, '-D', BLOCK_CHAIN, ...blockRule(dir)], what: `remove the ${dir} DROP rule` });
  }
  if (o.set) steps.push({ cmd: 'ipset', args: ['destroy', BLOCK_SET], what: `destroy ipset ${BLOCK_SET}` });
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
export async function setInfo(deps: Deps): Promise<SetInfo | undefined> {
  const args = ['list', '-t', BLOCK_SET];
  const r = await ipset(deps, args);
  if (r.code === 0) return parseSetHeader(r.stdout);
  if (/does not exist/i.test(r.stderr)) return undefined;
  throw ipsetError(args, r);
}

/** Whether the rule is in the chain (`iptables -C`: exit 1 "Bad rule" means absent). */
async function hasRule(deps: Deps, ipt: string, dir: Direction): Promise<boolean> {
  const args = ['-t', BLOCK_TABLE, '-C', BLOCK_CHAIN, ...blockRule(dir)];
  const r = await runIptables(deps, ipt, args);
  if (r.code === 0) return true;
  if (r.code === 1 && /Bad rule|does a matching rule exist|doesn't exist|does not exist/i.test(`${r.stderr}${r.stdout}`)) return false;
  throw iptablesError(deps, ipt, args, r, 'list');
}

export async function observeBlock(deps: Deps, backend: Backend | undefined): Promise<BlockObserved> {
  const set = await setInfo(deps);
  const ipt = iptablesCmd(backend);
  // Without the set, `-C` cannot name it (iptables: "Set xttraffic-block doesn't exist"): no rule can reference it.
  const rules = set ? { src: await hasRule(deps, ipt, 'src'), dst: await hasRule(deps, ipt, 'dst') } : { src: false, dst: false };
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

/** Creates the set and the two DROP rules where missing. */
export async function ensureBlockRules(deps: Deps, backend?: Backend): Promise<PlanResult> {
  const o = await observeBlock(deps, backend);
  if (o.set) {
    const why = unusableSet(o.set);
    if (why) throw new ResourceError('EIPSET', why, { hint: `the quota block needs its own set: rename or destroy that one (ipset destroy ${BLOCK_SET})` });
  }
  const steps = ensurePlan(o, iptablesCmd(backend));
  await runSteps(deps, steps);
  return { changed: steps.length > 0, steps };
}

/** Removes the two rules and the set (kept, and said why, when other rules still use it). */
export async function removeBlockRules(deps: Deps, backend?: Backend): Promise<PlanResult & { keptSet?: string }> {
  const o = await observeBlock(deps, backend);
  const steps = removePlan(o, iptablesCmd(backend));
  const rules = steps.filter((s) => s.cmd !== 'ipset');
  await runSteps(deps, rules);
  const destroy = steps.find((s) => s.cmd === 'ipset');
  if (!destroy) return { changed: rules.length > 0, steps: rules };
  const r = await ipset(deps, destroy.args);
  if (r.code !== 0) {
    if (/in use by a kernel component/i.test(lastLine(r))) {
      return { changed: rules.length > 0, steps: rules, keptSet: `ipset ${BLOCK_SET} is still referenced by other rules (the other iptables backend?)` };
    }
    throw ipsetError(destroy.args, r);
  }
  return { changed: true, steps };
}

async function requireSet(deps: Deps): Promise<SetInfo> {
  const s = await setInfo(deps);
  if (!s) throw new ResourceError('ENOBLOCKSET', `ipset ${BLOCK_SET} does not exist`, { hint: 'ensureBlockRules() (xttraffic quota with --action block) creates it and its DROP rules' });
  return s;
}

async function member(deps: Deps, ip: string): Promise<boolean> {
  const args = ['test', BLOCK_SET, ip];
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
export async function block(deps: Deps, ip: string, o: { timeoutSeconds?: number } = {}): Promise<{ ip: string; changed: boolean }> {
  checkIp(ip);
  const t = o.timeoutSeconds;
  if (t !== undefined && (!Number.isInteger(t) || t < 0 || t > 2147483)) throw new UsageError(`timeout ${t}: must be 0..2147483 seconds`);
  const s = await requireSet(deps);
  if (await member(deps, ip)) return { ip, changed: false };
  const args = ['add', BLOCK_SET, ip, ...(t !== undefined && s.timeout ? ['timeout', String(t)] : [])];
  const r = await ipset(deps, args);
  if (r.code !== 0) {
    if (/already added/i.test(lastLine(r))) return { ip, changed: false }; // added meanwhile
    throw ipsetError(args, r);
  }
  return { ip, changed: true };
}

/** Removes `ip` from the set; a host not blocked (or no set at all) changes nothing. */
export async function unblock(deps: Deps, ip: string): Promise<{ ip: string; changed: boolean }> {
  checkIp(ip);
  if (!(await setInfo(deps))) return { ip, changed: false };
  if (!(await member(deps, ip))) return { ip, changed: false };
  const args = ['del', BLOCK_SET, ip];
  const r = await ipset(deps, args);
  if (r.code !== 0) {
    if (/not added/i.test(lastLine(r))) return { ip, changed: false }; // removed meanwhile
    throw ipsetError(args, r);
  }
  return { ip, changed: true };
}

/** The blocked hosts (none when the set does not exist). */
export async function listBlocked(deps: Deps): Promise<BlockedEntry[]> {
  if (!(await setInfo(deps))) return [];
  const args = ['save', BLOCK_SET];
  const r = await ipset(deps, args);
  if (r.code !== 0) throw ipsetError(args, r);
  return parseSetSave(r.stdout);
}
