/**
 * Parsers of the /proc/net/xt_traffic/ files (docs/design.md, "Files under /proc"). Pure: no
 * I/O. Counters are bigint (the kernel's are 64-bit unsigned; a number would silently round
 * above 2^53). Anything that is not exactly a header and well-formed rows throws a ParseError
 * naming the 1-based line: a parser that guesses could return a wrong number.
 *
 * Fields are tab separated; runs of tabs or spaces are accepted as one separator so that the
 * spec's examples (which show spaces) parse too. The text must end with a newline: a file
 * whose last line has none was cut short, and its last number may be a prefix of the real one.
 */
import { ParseError, type ProcKind } from './errors.js';

export interface InOut {
  in: bigint;
  out: bigint;
}

/** A row of /proc/net/xt_traffic/NAME: bytes per IP. */
export interface TrafficRow {
  ip: string;
  total: InOut;
  tcp: InOut;
  udp: InOut;
  other: InOut;
}

/** Connection counters (NAME_ipconn, NAME_portconn). */
export interface ConnCounters {
  total: InOut;
  tcp: InOut;
  udp: InOut;
  icmp: InOut;
  other: InOut;
}

export interface IpConnRow extends ConnCounters {
  ip: string;
}

export interface PortConnRow extends ConnCounters {
  port: number;
}

export const TRAFFIC_GROUPS = ['total', 'tcp', 'udp', 'other'] as const;
export const CONN_GROUPS = ['total', 'tcp', 'udp', 'icmp', 'other'] as const;

/** Exact header lines (without the newline). */
export const TRAFFIC_HEADER = 'IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER';
export const IPCONN_HEADER = 'IP\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER';
export const PORTCONN_HEADER = 'PORT\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER';

export const U64_MAX = (1n << 64n) - 1n;

export interface ParseOptions {
  /**
   * Also check that TOTAL equals the sum of the protocol columns in each direction (the spec
   * says it does). Off by default: the kernel's format guarantees the columns, not how
   * consistently it snapshots them.
   */
  checkTotals?: boolean;
}

const SEP = /[\t ]+/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const DIGITS = /^\d{1,20}$/;

/** Splits text into lines, requiring the final newline. Returns the lines without it. */
function splitLines(kind: ProcKind, text: string): string[] {
  if (text.length === 0) throw new ParseError(kind, 1, 'header missing (empty input)');
  const lines = text.split('\n');
  const last = lines.pop();
  if (last !== '') {
    throw new ParseError(
      kind,
      lines.length + 1,
      'truncated: the last line has no terminating newline',
      last,
    );
  }
  return lines;
}

function fields(line: string): string[] {
  // Fast path: the kernel's own format (single tabs between fields).
  const f = line.split('\t');
  for (const x of f) if (x === '' || x.includes(' ')) return line.split(SEP).filter((y) => y !== '');
  return f;
}

function checkHeader(kind: ProcKind, line: string | undefined, words: readonly string[]): void {
  if (line === undefined) throw new ParseError(kind, 1, 'header missing');
  const got = line.split(SEP).filter((x) => x !== '');
  if (got.length !== words.length || got.some((w, i) => w !== words[i])) {
    throw new ParseError(kind, 1, `header missing or wrong: expected "${words.join(' ')}"`, line);
  }
}

function u64(kind: ProcKind, lineNo: number, line: string, s: string, column: string): bigint {
  if (!DIGITS.test(s)) {
    throw new ParseError(kind, lineNo, `${column}: not an unsigned decimal number: "${s}"`, line);
  }
  const v = BigInt(s);
  if (v > U64_MAX) throw new ParseError(kind, lineNo, `${column}: ${s} is beyond 2^64-1`, line);
  return v;
}

/** Validates a dotted-quad IPv4 address (no leading zeros, octets 0..255). */
export function isIPv4(s: string): boolean {
  const m = IPV4.exec(s);
  if (!m) return false;
  for (let i = 1; i <= 4; i++) {
    const o = m[i]!;
    if (o.length > 1 && o[0] === '0') return false;
    if (Number(o) > 255) return false;
  }
  return true;
}

/** IPv4 dotted quad to its 32-bit unsigned value (assumes isIPv4). */
export function ipToNumber(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
}

/** 32-bit unsigned value to a dotted quad. */
export function numberToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

type KeyParser<K> = (kind: ProcKind, lineNo: number, line: string, s: string) => K;

const ipKey: KeyParser<string> = (kind, lineNo, line, s) => {
  if (!isIPv4(s)) throw new ParseError(kind, lineNo, `IP: not a dotted-quad IPv4 address: "${s}"`, line);
  return s;
};

const portKey: KeyParser<number> = (kind, lineNo, line, s) => {
  if (!/^\d{1,5}$/.test(s) || (s.length > 1 && s[0] === '0') || Number(s) > 65535) {
    throw new ParseError(kind, lineNo, `PORT: not a port number 0..65535: "${s}"`, line);
  }
  return Number(s);
};

function parseRows<K extends string | number, R>(
  kind: ProcKind,
  text: string,
  header: readonly string[],
  groups: readonly string[],
  keyName: string,
  key: KeyParser<K>,
  make: (k: K, c: Record<string, InOut>) => R,
  opts: ParseOptions,
): R[] {
  const lines = splitLines(kind, text);
  checkHeader(kind, lines[0], header);
  const ncols = 1 + groups.length * 2;
  const seen = new Map<K, number>();
  const rows: R[] = [];
  for (let i = 1; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!;
    if (line === '') throw new ParseError(kind, lineNo, 'empty line');
    const f = fields(line);
    if (f.length !== ncols) {
      throw new ParseError(kind, lineNo, `expected ${ncols} fields (${keyName} and ${ncols - 1} counters), got ${f.length}`, line);
    }
    const k = key(kind, lineNo, line, f[0]!);
    const first = seen.get(k);
    if (first !== undefined) {
      throw new ParseError(kind, lineNo, `duplicate ${keyName} ${k} (first on line ${first})`, line);
    }
    seen.set(k, lineNo);
    const c: Record<string, InOut> = {};
    for (let g = 0; g < groups.length; g++) {
      const name = groups[g]!;
      c[name] = {
        in: u64(kind, lineNo, line, f[1 + 2 * g]!, `${name}_in`),
        out: u64(kind, lineNo, line, f[2 + 2 * g]!, `${name}_out`),
      };
    }
    if (opts.checkTotals) {
      for (const dir of ['in', 'out'] as const) {
        let sum = 0n;
        for (const name of groups) if (name !== 'total') sum += c[name]![dir];
        if (sum !== c['total']![dir]) {
          throw new ParseError(kind, lineNo, `total_${dir} ${c['total']![dir]} is not the sum of the protocol columns (${sum})`, line);
        }
      }
    }
    rows.push(make(k, c));
  }
  return rows;
}

/** Parses /proc/net/xt_traffic/NAME. */
export function parseTraffic(text: string, opts: ParseOptions = {}): TrafficRow[] {
  return parseRows('traffic', text, ['IP', 'TOTAL', 'TCP', 'UDP', 'OTHER'], TRAFFIC_GROUPS, 'IP', ipKey,
    (ip, c) => ({ ip, total: c['total']!, tcp: c['tcp']!, udp: c['udp']!, other: c['other']! }), opts);
}

/** Parses /proc/net/xt_traffic/NAME_ipconn. */
export function parseIpConn(text: string, opts: ParseOptions = {}): IpConnRow[] {
  return parseRows('ipconn', text, ['IP', 'TOTAL', 'TCP', 'UDP', 'ICMP', 'OTHER'], CONN_GROUPS, 'IP', ipKey,
    (ip, c) => ({ ip, total: c['total']!, tcp: c['tcp']!, udp: c['udp']!, icmp: c['icmp']!, other: c['other']! }), opts);
}

/** Parses /proc/net/xt_traffic/NAME_portconn. */
export function parsePortConn(text: string, opts: ParseOptions = {}): PortConnRow[] {
  return parseRows('portconn', text, ['PORT', 'TOTAL', 'TCP', 'UDP', 'ICMP', 'OTHER'], CONN_GROUPS, 'PORT', portKey,
    (port, c) => ({ port, total: c['total']!, tcp: c['tcp']!, udp: c['udp']!, icmp: c['icmp']!, other: c['other']! }), opts);
}

// ---------------------------------------------------------------------------------------------
// NAME_info

export interface TableOptions {
  traffic: boolean;
  portconn: boolean;
  ipconn: boolean;
  nointernal: boolean;
  onlyinternal: boolean;
  clearonread: boolean;
}

/** /proc/net/xt_traffic/NAME_info. */
export interface TableInfo {
  name: string;
  family: string;
  netbase: string;
  netmask: string;
  /** Prefix length of netmask (0..32). */
  prefixLength: number;
  options: TableOptions;
  hashsize: number;
  flowSlots: number;
  rules: number;
  maxEntries: number;
  /** Present for the enabled kinds only. */
  trafficEntries?: number;
  ipconnEntries?: number;
  portconnEntries?: number;
  overflow: bigint;
  /** Keys this version does not know (a newer module), in file order. */
  extra: Record<string, string>;
}

const OPTION_WORDS = ['traffic', 'portconn', 'ipconn', 'nointernal', 'onlyinternal', 'clearonread'] as const;
const NUMBER_KEYS = {
  hashsize: 'hashsize',
  flow_slots: 'flowSlots',
  rules: 'rules',
  max_entries: 'maxEntries',
  traffic_entries: 'trafficEntries',
  ipconn_entries: 'ipconnEntries',
  portconn_entries: 'portconnEntries',
} as const;
const REQUIRED = ['name', 'family', 'netbase', 'netmask', 'options', 'hashsize', 'flow_slots', 'rules', 'max_entries', 'overflow'];

/** Prefix length of a contiguous dotted-quad netmask, or -1 if it is not contiguous. */
export function maskToPrefix(mask: string): number {
  const n = ipToNumber(mask);
  let len = 0;
  while (len < 32 && (n & (0x80000000 >>> len)) !== 0) len++;
  const back = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return back === n ? len : -1;
}

/** Parses /proc/net/xt_traffic/NAME_info (`key: value` per line). */
export function parseInfo(text: string): TableInfo {
  const k: ProcKind = 'info';
  const lines = splitLines(k, text);
  const seen = new Map<string, number>();
  const info: Partial<TableInfo> & { extra: Record<string, string> } = { extra: {} };
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!;
    const m = /^([a-z0-9_]+): ?(.*)$/.exec(line);
    if (!m) throw new ParseError(k, lineNo, 'expected "key: value"', line);
    const key = m[1]!;
    const value = m[2]!;
    const first = seen.get(key);
    if (first !== undefined) throw new ParseError(k, lineNo, `duplicate key ${key} (first on line ${first})`, line);
    seen.set(key, lineNo);
    switch (key) {
      case 'name':
        if (value === '') throw new ParseError(k, lineNo, 'name: empty', line);
        info.name = value;
        break;
      case 'family':
        if (value === '') throw new ParseError(k, lineNo, 'family: empty', line);
        info.family = value;
        break;
      case 'netbase':
      case 'netmask':
        if (!isIPv4(value)) throw new ParseError(k, lineNo, `${key}: not a dotted-quad IPv4 address: "${value}"`, line);
        info[key] = value;
        if (key === 'netmask') {
          const p = maskToPrefix(value);
          if (p < 0) throw new ParseError(k, lineNo, `netmask: not contiguous: ${value}`, line);
          info.prefixLength = p;
        }
        break;
      case 'options': {
        const o: TableOptions = { traffic: false, portconn: false, ipconn: false, nointernal: false, onlyinternal: false, clearonread: false };
        for (const w of value.split(' ').filter((x) => x !== '')) {
          if (!(OPTION_WORDS as readonly string[]).includes(w)) {
            throw new ParseError(k, lineNo, `options: unknown option "${w}"`, line);
          }
          o[w as keyof TableOptions] = true;
        }
        info.options = o;
        break;
      }
      case 'overflow':
        info.overflow = u64(k, lineNo, line, value, 'overflow');
        break;
      default:
        if (key in NUMBER_KEYS) {
          const v = u64(k, lineNo, line, value, key);
          if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ParseError(k, lineNo, `${key}: ${value} is out of range`, line);
          info[NUMBER_KEYS[key as keyof typeof NUMBER_KEYS]] = Number(v);
        } else {
          info.extra[key] = value;
        }
    }
  }
  for (const key of REQUIRED) {
    if (!seen.has(key)) throw new ParseError(k, lines.length + 1, `missing key "${key}"`);
  }
  return info as TableInfo;
}
