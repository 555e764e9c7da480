/**
 * `-m traffic` rules: from friendly options to iptables/ip6tables argument arrays, and back from
 * iptables-save/ip6tables-save lines (docs/design.md, "IPv6 and host prefixes"). Pure.
 */
import { UsageError } from '../core/errors.js';
import { XT_TRAFFIC_HASHSIZE_MAX, checkTableName } from '../proc/names.js';
import { alignTo6, formatIPv6, ipToNumber, isIPv4, mask6ToPrefix, maskToPrefix, numberToIp, parseIPv6, prefixToMask6 } from '../core/ip.js';

export type Internal = 'all' | 'no' | 'only';
export type Family = 'ipv4' | 'ipv6';

/** Address length in bits. */
export function familyBits(f: Family): 32 | 128 {
  return f === 'ipv6' ? 128 : 32;
}

/** --hostprefix when none is given: per address for IPv4, per /64 for IPv6. */
export function defaultHostPrefix(f: Family): number {
  return f === 'ipv6' ? 64 : 32;
}

export interface TrafficMatch {
  name: string;
  /** ipv4: an iptables rule; ipv6: an ip6tables rule. */
  family: Family;
  /** The net's first address (IPv6 in RFC 5952 form). */
  netbase: string;
  /** A dotted quad (IPv4), the mask in RFC 5952 form (IPv6, `ffff:ffff:ffff::`). */
  netmask: string;
  prefix: number;
  /** Count per prefix of this length inside the net (32 / 128: per address). */
  hostprefix: number;
  traffic: boolean;
  ipconn: boolean;
  portconn: boolean;
  hashsize?: number | undefined;
  clearonread: boolean;
  /** all: count everything; no: --nointernal; only: ! --nointernal */
  internal: Internal;
}

export interface Net {
  family: Family;
  netbase: string;
  netmask: string;
  prefix: number;
}

function prefixToMask(prefix: number): string {
  return numberToIp(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

/**
 * A netmask given as a prefix length ("20", "48"), a dotted quad ("255.255.240.0", IPv4) or an
 * IPv6 mask ("ffff:ffff:ffff::", IPv6), for a net of `family`.
 */
export function parseMask(mask: string, family: Family = 'ipv4'): { netmask: string; prefix: number } {
  const bits = familyBits(family);
  if (/^\d{1,3}$/.test(mask)) {
    const prefix = Number(mask);
    if (prefix < 1 || prefix > bits) {
      throw new UsageError(`netmask /${mask}: the prefix length of an ${family === 'ipv6' ? 'IPv6' : 'IPv4'} net must be 1..${bits}${prefix === 0 ? ' (a /0 "net" would be every address)' : ''}`);
    }
    return { netmask: family === 'ipv6' ? formatIPv6(prefixToMask6(prefix)) : prefixToMask(prefix), prefix };
  }
  if (family === 'ipv6') {
    const w = new Uint32Array(4);
    if (!parseIPv6(mask, w)) {
      if (isIPv4(mask)) throw new UsageError(`netmask ${mask} is an IPv4 mask, the net is IPv6`, { hint: 'give the prefix length, e.g. --netmask 48' });
      throw new UsageError(`netmask "${mask}" is neither a prefix length nor an IPv6 mask`);
    }
    const prefix = mask6ToPrefix(w);
    if (prefix < 0) throw new UsageError(`netmask ${mask} is not contiguous`);
    if (prefix === 0) throw new UsageError(`netmask ${mask} would make every address part of the net`, { hint: 'use a prefix of 1..128' });
    return { netmask: formatIPv6(w), prefix };
  }
  if (!isIPv4(mask)) {
    if (mask.includes(':')) throw new UsageError(`netmask ${mask} is an IPv6 mask, the net is IPv4`, { hint: 'give a prefix length 1..32 or a dotted quad' });
    throw new UsageError(`netmask "${mask}" is neither a prefix length nor a dotted quad`);
  }
  const prefix = maskToPrefix(mask);
  if (prefix < 0) throw new UsageError(`netmask ${mask} is not contiguous`);
  if (prefix === 0) throw new UsageError('netmask 0.0.0.0 would make every address part of the net', { hint: 'use a prefix of 1..32' });
  return { netmask: mask, prefix };
}

/** netbase + netmask, checked: the base must be aligned to the mask. The family is the base's. */
export function makeNet(netbase: string, mask: string): Net {
  if (netbase.includes(':')) {
    const w = new Uint32Array(4);
    if (!parseIPv6(netbase, w)) throw new UsageError(`netbase "${netbase}" is not an IPv6 address`);
    const { netmask, prefix } = parseMask(mask, 'ipv6');
    const canon = formatIPv6(w);
    const aligned = formatIPv6(alignTo6(w, prefix));
    if (aligned !== canon) {
      throw new UsageError(`${canon}/${prefix} is not aligned to its mask (host bits are set)`, { hint: `did you mean ${aligned}/${prefix}?` });
    }
    return { family: 'ipv6', netbase: canon, netmask, prefix };
  }
  if (!isIPv4(netbase)) throw new UsageError(`netbase "${netbase}" is neither a dotted-quad IPv4 address nor an IPv6 address`);
  const { netmask, prefix } = parseMask(mask, 'ipv4');
  const base = ipToNumber(netbase);
  const m = ipToNumber(netmask);
  if ((base & ~m) >>> 0 !== 0) {
    const aligned = numberToIp((base & m) >>> 0);
    throw new UsageError(`${netbase}/${prefix} is not aligned to its mask (host bits are set)`, {
      hint: `did you mean ${aligned}/${prefix}?`,
    });
  }
  return { family: 'ipv4', netbase, netmask, prefix };
}

/** "193.11.176.0/20", "193.11.176.0/255.255.240.0", "2001:db8::/48". */
export function parseNet(cidr: string): Net {
  const slash = cidr.indexOf('/');
  if (slash < 0) throw new UsageError(`--net ${cidr}: expected ADDRESS/PREFIX, e.g. 193.11.176.0/20 or 2001:db8::/48`);
  return makeNet(cidr.slice(0, slash), cidr.slice(slash + 1));
}

/**
 * The host prefix of a net: `given` (decimal) checked to lie in net length..address length, or
 * the family's default (32; 64 for IPv6, which a net longer than /64 cannot take).
 */
export function hostPrefixOf(net: Net, given: string | undefined): number {
  const bits = familyBits(net.family);
  const v = net.family === 'ipv6' ? 'IPv6' : 'IPv4';
  const netText = `${net.netbase}/${net.prefix}`;
  if (given === undefined) {
    const d = defaultHostPrefix(net.family);
    if (d < net.prefix) {
      throw new UsageError(`--net ${netText} is longer than the default host prefix /${d}: give --hostprefix ${net.prefix}..${bits}`, {
        hint: `--hostprefix ${bits} counts per address`,
      });
    }
    return d;
  }
  if (!/^\d{1,3}$/.test(given)) throw new UsageError(`--hostprefix ${given}: not a prefix length (${net.prefix}..${bits} for ${netText})`);
  const n = Number(given);
  if (n > bits) throw new UsageError(`--hostprefix ${given} is longer than an ${v} address (${bits} bits)`, { hint: `use ${net.prefix}..${bits} for ${netText}` });
  if (n < net.prefix) {
    throw new UsageError(`--hostprefix ${given} is shorter than the net ${netText}: a host prefix lies inside the net`, { hint: `use ${net.prefix}..${bits}` });
  }
  return n;
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
  hostprefix?: string | undefined;
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
  const hostprefix = hostPrefixOf(net, o.hostprefix);
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
    hostprefix,
    traffic: any ? !!o.traffic : true,
    ipconn: !!o.ipconn,
    portconn: !!o.portconn,
    hashsize,
    clearonread: !!o.clearonread,
    internal: o.nointernal ? 'no' : o.onlyinternal ? 'only' : 'all',
  };
}

/**
 * `-m traffic ...` as an argument array, in the order libxt's save prints it: IPv6 nets with
 * the mask as a prefix length and always --hostprefix; IPv4 with --hostprefix only when it is
 * not 32 (a revision-0 rule otherwise, as before).
 */
export function matchArgs(m: TrafficMatch): string[] {
  const a = ['-m', 'traffic'];
  if (m.traffic) a.push('--traffic');
  if (m.portconn) a.push('--portconn');
  if (m.ipconn) a.push('--ipconn');
  const v6 = m.family === 'ipv6';
  a.push('--netbase', m.netbase, '--netmask', v6 ? String(m.prefix) : m.netmask);
  if (v6 || m.hostprefix !== 32) a.push('--hostprefix', String(m.hostprefix));
  a.push('--name', m.name);
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
  /** ipv4: from iptables-save; ipv6: from ip6tables-save. */
  family: Family;
  match: TrafficMatch;
  /** The rule's arguments after `-A CHAIN`, as iptables-save printed them. */
  args: string[];
  /** The line as printed. */
  line: string;
}

const VALUE_OPTS = new Set(['--netbase', '--netmask', '--hostprefix', '--name', '--hashsize']);
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
  const net = makeNet(o['netbase'], o['netmask']);
  const hp = o['hostprefix'];
  const hs = o['hashsize'];
  return {
    name: o['name'],
    ...net,
    hostprefix: hostPrefixOf(net, typeof hp === 'string' ? hp : undefined),
    traffic: o['traffic'] === true,
    ipconn: o['ipconn'] === true,
    portconn: o['portconn'] === true,
    hashsize: typeof hs === 'string' ? Number(hs) : undefined,
    clearonread: o['clearonread'] === true,
    internal: o['nointernal'] === true ? 'no' : o['onlyinternal'] === true ? 'only' : 'all',
  };
}

/** Every rule with a traffic match in iptables-save (ipv4) or ip6tables-save (ipv6) output. */
export function parseSave(text: string, family: Family = 'ipv4'): SavedRule[] {
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
    if (match) rules.push({ table, chain, family, match, args, line });
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
  if (m.hostprefix !== familyBits(m.family)) w.push(`hostprefix=${m.hostprefix}`);
  return w.join(' ');
}
