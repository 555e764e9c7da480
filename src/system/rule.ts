/**
 * `-m traffic` rules: from friendly options to iptables argument arrays, and back from
 * iptables-save lines. Pure.
 */
import { UsageError } from '../core/errors.js';
import { XT_TRAFFIC_HASHSIZE_MAX, checkTableName } from '../proc/names.js';
import { ipToNumber, isIPv4, maskToPrefix, numberToIp } from '../core/ip.js';

export type Internal = 'all' | 'no' | 'only';

export interface TrafficMatch {
  name: string;
  netbase: string;
  netmask: string;
  prefix: number;
  traffic: boolean;
  ipconn: boolean;
  portconn: boolean;
  hashsize?: number | undefined;
  clearonread: boolean;
  /** all: count everything; no: --nointernal; only: ! --nointernal */
  internal: Internal;
}

export interface Net {
  netbase: string;
  netmask: string;
  prefix: number;
}

function prefixToMask(prefix: number): string {
  return numberToIp(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

/** A netmask given as a prefix length ("20") or a dotted quad ("255.255.240.0"). */
export function parseMask(mask: string): { netmask: string; prefix: number } {
  if (/^\d{1,2}$/.test(mask)) {
    const prefix = Number(mask);
    if (prefix < 1 || prefix > 32) throw new UsageError(`netmask /${mask}: the prefix length must be 1..32`);
    return { netmask: prefixToMask(prefix), prefix };
  }
  if (!isIPv4(mask)) throw new UsageError(`netmask "${mask}" is neither a prefix length nor a dotted quad`);
  const prefix = maskToPrefix(mask);
  if (prefix < 0) throw new UsageError(`netmask ${mask} is not contiguous`);
  if (prefix === 0) throw new UsageError('netmask 0.0.0.0 would make every address part of the net', { hint: 'use a prefix of 1..32' });
  return { netmask: mask, prefix };
}

/** netbase + netmask, checked: the base must be aligned to the mask. */
export function makeNet(netbase: string, mask: string): Net {
  if (!isIPv4(netbase)) throw new UsageError(`netbase "${netbase}" is not a dotted-quad IPv4 address`);
  const { netmask, prefix } = parseMask(mask);
  const base = ipToNumber(netbase);
  const m = ipToNumber(netmask);
  if ((base & ~m) >>> 0 !== 0) {
    const aligned = numberToIp((base & m) >>> 0);
    throw new UsageError(`${netbase}/${prefix} is not aligned to its mask (host bits are set)`, {
      hint: `did you mean ${aligned}/${prefix}?`,
    });
  }
  return { netbase, netmask, prefix };
}

/** "193.11.176.0/20" or "193.11.176.0/255.255.240.0". */
export function parseNet(cidr: string): Net {
  const slash = cidr.indexOf('/');
  if (slash < 0) throw new UsageError(`--net ${cidr}: expected ADDRESS/PREFIX, e.g. 193.11.176.0/20`);
  return makeNet(cidr.slice(0, slash), cidr.slice(slash + 1));
}

export interface RuleOptions {
  name?: string | undefined;
  net?: string | undefined;
  netbase?: string | undefined;
  netmask?: string | undefined;
  traffic?: boolean | undefined;
  ipconn?: boolean | undefined;
  portconn?: boolean | undefined;
  hashsize?: string | undefined;
  clearonread?: boolean | undefined;
  nointernal?: boolean | undefined;
  onlyinternal?: boolean | undefined;
}

/** The match from command-line options (counting defaults to --traffic). */
export function matchFromOptions(o: RuleOptions): TrafficMatch {
  if (o.name === undefined) throw new UsageError('--name is required');
  checkTableName(o.name);
  let net: Net;
  if (o.net !== undefined) {
    if (o.netbase !== undefined || o.netmask !== undefined) throw new UsageError('give either --net or --netbase and --netmask, not both');
    net = parseNet(o.net);
  } else {
    if (o.netbase === undefined || o.netmask === undefined) {
      throw new UsageError('the monitored net is required', { hint: 'e.g. --net 193.11.176.0/20 (or --netbase 193.11.176.0 --netmask 255.255.240.0)' });
    }
    net = makeNet(o.netbase, o.netmask);
  }
  if (o.nointernal && o.onlyinternal) throw new UsageError('--nointernal and --onlyinternal exclude each other');
  let hashsize: number | undefined;
  if (o.hashsize !== undefined) {
    if (!/^\d+$/.test(o.hashsize) || Number(o.hashsize) < 1 || Number(o.hashsize) > XT_TRAFFIC_HASHSIZE_MAX) {
      throw new UsageError(`--hashsize ${o.hashsize}: must be 1..${XT_TRAFFIC_HASHSIZE_MAX}`);
    }
    hashsize = Number(o.hashsize);
  }
  const any = !!(o.traffic || o.ipconn || o.portconn);
  return {
    name: o.name,
    ...net,
    traffic: any ? !!o.traffic : true,
    ipconn: !!o.ipconn,
    portconn: !!o.portconn,
    hashsize,
    clearonread: !!o.clearonread,
    internal: o.nointernal ? 'no' : o.onlyinternal ? 'only' : 'all',
  };
}

/** `-m traffic ...` as an argument array, in the order libxt's save prints it. */
export function matchArgs(m: TrafficMatch): string[] {
  const a = ['-m', 'traffic'];
  if (m.traffic) a.push('--traffic');
  if (m.portconn) a.push('--portconn');
  if (m.ipconn) a.push('--ipconn');
  a.push('--netbase', m.netbase, '--netmask', m.netmask, '--name', m.name);
  if (m.hashsize !== undefined) a.push('--hashsize', String(m.hashsize));
  if (m.clearonread) a.push('--clearonread');
  if (m.internal === 'no') a.push('--nointernal');
  if (m.internal === 'only') a.push('!', '--nointernal');
  return a;
}

export interface Placement {
  table: string;
  chain: string;
}

/** Arguments of `iptables` to append (-A), insert at the top (-I) or delete (-D) the rule. */
export function ruleArgs(op: '-A' | '-I' | '-D', p: Placement, m: TrafficMatch): string[] {
  return ['-t', p.table, op, p.chain, ...matchArgs(m)];
}

// ---------------------------------------------------------------------------------------------
// iptables-save

/** Splits an iptables-save line into arguments (double quotes with backslash escapes). */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    let tok = '';
    while (i < line.length && line[i] !== ' ' && line[i] !== '\t') {
      if (line[i] === '"') {
        i++;
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && i + 1 < line.length) i++;
          tok += line[i++];
        }
        i++;
      } else {
        tok += line[i++];
      }
    }
    out.push(tok);
  }
  return out;
}

export interface SavedRule extends Placement {
  match: TrafficMatch;
  /** The rule's arguments after `-A CHAIN`, as iptables-save printed them. */
  args: string[];
  /** The line as printed. */
  line: string;
}

const VALUE_OPTS = new Set(['--netbase', '--netmask', '--name', '--hashsize']);
const FLAG_OPTS = new Set(['--traffic', '--portconn', '--ipconn', '--clearonread', '--nointernal']);

/** The traffic match of a rule's arguments, or undefined if it has none. */
export function matchFromArgs(args: string[]): TrafficMatch | undefined {
  const at = args.findIndex((a, i) => a === 'traffic' && (args[i - 1] === '-m' || args[i - 1] === '--match'));
  if (at < 0) return undefined;
  const o: Record<string, string | boolean> = {};
  let negate = false;
  for (let i = at + 1; i < args.length; i++) {
    const a = args[i]!;
    if (a === '!') {
      negate = true;
      continue;
    }
    if (VALUE_OPTS.has(a)) {
      o[a.slice(2)] = args[++i] ?? '';
    } else if (FLAG_OPTS.has(a)) {
      o[a === '--nointernal' && negate ? 'onlyinternal' : a.slice(2)] = true;
    } else {
      break; // the next match, target or rule option
    }
    negate = false;
  }
  if (typeof o['name'] !== 'string' || typeof o['netbase'] !== 'string' || typeof o['netmask'] !== 'string') return undefined;
  const { netmask, prefix } = parseMask(o['netmask']);
  const hs = o['hashsize'];
  return {
    name: o['name'],
    netbase: o['netbase'],
    netmask,
    prefix,
    traffic: o['traffic'] === true,
    ipconn: o['ipconn'] === true,
    portconn: o['portconn'] === true,
    hashsize: typeof hs === 'string' ? Number(hs) : undefined,
    clearonread: o['clearonread'] === true,
    internal: o['nointernal'] === true ? 'no' : o['onlyinternal'] === true ? 'only' : 'all',
  };
}

/** Every rule with a traffic match in iptables-save output. */
export function parseSave(text: string): SavedRule[] {
  const rules: SavedRule[] = [];
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      continue;
    }
    if (!line.startsWith('-A ')) continue;
    const t = tokenize(line);
    const chain = t[1]!;
    const args = t.slice(2);
    let match: TrafficMatch | undefined;
    try {
      match = matchFromArgs(args);
    } catch {
      match = undefined;
    }
    if (match) rules.push({ table, chain, match, args, line });
  }
  return rules;
}

/** Arguments that delete a saved rule exactly as it was saved. */
export function deleteArgs(r: SavedRule): string[] {
  return ['-t', r.table, '-D', r.chain, ...r.args];
}

export function netString(m: Pick<TrafficMatch, 'netbase' | 'prefix'>): string {
  return `${m.netbase}/${m.prefix}`;
}

export function optionWords(m: TrafficMatch): string {
  const w: string[] = [];
  if (m.traffic) w.push('traffic');
  if (m.portconn) w.push('portconn');
  if (m.ipconn) w.push('ipconn');
  if (m.internal === 'no') w.push('nointernal');
  if (m.internal === 'only') w.push('onlyinternal');
  if (m.clearonread) w.push('clearonread');
  if (m.hashsize !== undefined) w.push(`hashsize=${m.hashsize}`);
  return w.join(' ');
}
