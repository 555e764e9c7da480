/**
 * The one parser of the /proc/net/xt_traffic/ table files (docs/design.md, "Files under
 * /proc"): the kernel's exact format (header, "KEY\tN\t...\tN\n" rows, keys strictly
 * ascending, numbers without leading zeros, the final newline), into columns: keys in a
 * Uint32Array, the counters of every row in one BigUint64Array, exact column sums. Nothing is
 * allocated per row. Anything else throws a ParseError naming the file, the line and what is
 * wrong, with the line escaped: a parser that guesses could return a wrong number. Pure: no I/O.
 *
 * Also NAME_info's `key: value` lines (parseInfo).
 */
import { ParseError, type ParseSource, type ProcKind } from '../core/errors.js';
import { isIPv4, maskToPrefix, numberToIp } from '../core/ip.js';
import type { TableKind } from './names.js';

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

export type RowOf<K extends TableKind> = K extends 'traffic' ? TrafficRow : K extends 'ipconn' ? IpConnRow : PortConnRow;
export type AnyRow = TrafficRow | IpConnRow | PortConnRow;

/** A table as columns. */
export interface Columns {
  rows: number;
  countersPerRow: 8 | 10;
  /** IPv4 as a host-order number, or the port. Strictly ascending. */
  keys: Uint32Array;
  /** `countersPerRow` counters per row, in /proc column order (total_in, total_out, tcp_in, ...). */
  counters: BigUint64Array;
  /** Exact sum of each counter column over all rows (may exceed 2^64). */
  sums: bigint[];
}

export const TRAFFIC_GROUPS = ['total', 'tcp', 'udp', 'other'] as const;
export const CONN_GROUPS = ['total', 'tcp', 'udp', 'icmp', 'other'] as const;

/** Exact header lines (without the newline). */
export const TRAFFIC_HEADER = 'IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER';
export const IPCONN_HEADER = 'IP\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER';
export const PORTCONN_HEADER = 'PORT\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER';
const HEADERS: Record<TableKind, string> = { traffic: TRAFFIC_HEADER, ipconn: IPCONN_HEADER, portconn: PORTCONN_HEADER };

export const U64_MAX = (1n << 64n) - 1n;

export function countersPerRow(kind: TableKind): 8 | 10 {
  return kind === 'traffic' ? 8 : 10;
}

export function groupsOf(kind: TableKind): readonly string[] {
  return kind === 'traffic' ? TRAFFIC_GROUPS : CONN_GROUPS;
}

/** True on little-endian machines, where a u64 is (low word, high word) in a Uint32Array view. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const TWO32 = 4294967296;

/** Throws the ParseError for position `p` of `text` (line number and line computed here). */
function fail(kind: ProcKind, text: string, p: number, what: string, source: ParseSource): never {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < p; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  const nl = text.indexOf('\n', start);
  throw new ParseError(kind, line, what, text.slice(start, nl === -1 ? text.length : nl), source);
}

/**
 * Parses one table file's text (latin1) into columns, or throws a ParseError. `source` names
 * the file in the error.
 */
export function parseTable(kind: TableKind, text: string, source: ParseSource = {}): Columns {
  const header = HEADERS[kind];
  if (text.length === 0) throw new ParseError(kind, 1, 'empty: the header line is missing', undefined, source);
  if (!text.startsWith(`${header}\n`)) {
    fail(kind, text, 0, `not the ${kind} header: expected "${header.replaceAll('\t', '\\t')}"`, source);
  }
  const per = countersPerRow(kind);
  const len = text.length;
  const hlen = header.length + 1;
  // Rows are at least 2 * per + 2 characters: an upper bound of the row count, trimmed at the end.
  const cap = Math.floor((len - hlen) / (2 * per + 2)) + 1;
  const keys = new Uint32Array(cap);
  const buf = new ArrayBuffer(cap * per * 8);
  const words = new Uint32Array(buf);
  const big = new BigUint64Array(buf);
  // Column sums: low and high words add up exactly in doubles for 2^20 rows, then move to bigints.
  const sumLo = new Float64Array(per);
  const sumHi = new Float64Array(per);
  const sums = new Array<bigint>(per).fill(0n);
  const flush = () => {
    for (let i = 0; i < per; i++) {
      sums[i] = sums[i]! + (BigInt(sumHi[i]!) << 32n) + BigInt(sumLo[i]!);
      sumLo[i] = 0;
      sumHi[i] = 0;
    }
  };
  const port = kind === 'portconn';
  const keyName = port ? 'PORT' : 'IP';
  const bad = (p: number, what: string): never => fail(kind, text, p, what, source);
  let p = hlen;
  let rows = 0;
  let prev = -1;
  while (p < len) {
    if (text.indexOf('\n', p) === -1) bad(p, 'truncated: the last line has no terminating newline');
    const rowStart = p;
    let key = 0;
    if (port) {
      const s = p;
      while (p < len) {
        const d = text.charCodeAt(p) - 48;
        if (d < 0 || d > 9) break;
        key = key * 10 + d;
        p++;
      }
      const n = p - s;
      if (n === 0 || n > 5 || (n > 1 && text.charCodeAt(s) === 48) || key > 65535) bad(rowStart, 'PORT: not a port number 0..65535 in decimal');
    } else {
      for (let o = 0; o < 4; o++) {
        const s = p;
        let octet = 0;
        while (p < len) {
          const d = text.charCodeAt(p) - 48;
          if (d < 0 || d > 9) break;
          octet = octet * 10 + d;
          p++;
        }
        const n = p - s;
        if (n === 0 || n > 3 || (n > 1 && text.charCodeAt(s) === 48) || octet > 255) bad(rowStart, 'IP: not a dotted-quad IPv4 address');
        if (o < 3) {
          if (text.charCodeAt(p) !== 46) bad(rowStart, 'IP: not a dotted-quad IPv4 address');
          p++;
        }
        key = key * 256 + octet;
      }
    }
    if (text.charCodeAt(p) !== 9) bad(rowStart, `${keyName}: expected a tab after it`);
    if (key <= prev) bad(rowStart, `${keyName} ${port ? key : numberToIp(key)}: rows must be in ascending order, each key once (after ${port ? prev : numberToIp(prev)})`);
    prev = key;
    keys[rows] = key;
    const base = rows * per;
    for (let i = 0; i < per; i++) {
      p++; // the tab before it
      const s = p;
      let v = 0;
      while (p < len) {
        const d = text.charCodeAt(p) - 48;
        if (d < 0 || d > 9) break;
        v = v * 10 + d;
        p++;
      }
      const n = p - s;
      if (n === 0 || (n > 1 && text.charCodeAt(s) === 48)) bad(rowStart, `counter ${i + 1}: not an unsigned decimal number`);
      const end = text.charCodeAt(p);
      if (end !== (i === per - 1 ? 10 : 9)) {
        if (i === per - 1) bad(rowStart, `expected ${per} counters and the end of the line`);
        bad(rowStart, end === 10 ? `only ${i + 1} of ${per} counters` : `expected ${per} counters separated by one tab`);
      }
      if (n <= 15 && LITTLE_ENDIAN) {
        const lo = v % TWO32;
        const hi = (v - lo) / TWO32;
        words[2 * (base + i)] = lo;
        words[2 * (base + i) + 1] = hi;
        sumLo[i] = sumLo[i]! + lo;
        sumHi[i] = sumHi[i]! + hi;
      } else {
        const b = n > 20 ? U64_MAX + 1n : BigInt(text.slice(s, p));
        if (b > U64_MAX) bad(rowStart, `counter ${i + 1}: ${text.slice(s, p)} is beyond 2^64-1`);
        big[base + i] = b;
        sums[i] = sums[i]! + b;
      }
    }
    p++; // the newline
    rows++;
    if ((rows & 0xfffff) === 0) flush();
  }
  flush();
  return { rows, countersPerRow: per, keys: keys.subarray(0, rows), counters: big.subarray(0, rows * per), sums };
}

const inout = (c: BigUint64Array, i: number): InOut => ({ in: c[i]!, out: c[i + 1]! });

/** Row `r` of the columns as an object (bigint counters). */
export function rowFromColumns<K extends TableKind>(kind: K, cols: Columns, r: number): RowOf<K> {
  const { keys, counters: c, countersPerRow: n } = cols;
  const b = r * n;
  if (kind === 'traffic') {
    return { ip: numberToIp(keys[r]!), total: inout(c, b), tcp: inout(c, b + 2), udp: inout(c, b + 4), other: inout(c, b + 6) } as RowOf<K>;
  }
  const counters = { total: inout(c, b), tcp: inout(c, b + 2), udp: inout(c, b + 4), icmp: inout(c, b + 6), other: inout(c, b + 8) };
  return (kind === 'ipconn' ? { ip: numberToIp(keys[r]!), ...counters } : { port: keys[r]!, ...counters }) as RowOf<K>;
}

/** Every row of the columns as objects. */
export function rowsFromColumns<K extends TableKind>(kind: K, cols: Columns): RowOf<K>[] {
  const rows = new Array<RowOf<K>>(cols.rows);
  for (let r = 0; r < cols.rows; r++) rows[r] = rowFromColumns(kind, cols, r);
  return rows;
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
  /** The table instance (16 hex digits), from modules that have it. */
  generation?: string;
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

/** A decimal u64 of `key: value` files, or undefined. */
export function parseU64(s: string): bigint | undefined {
  if (!/^(0|[1-9]\d{0,19})$/.test(s)) return undefined;
  const v = BigInt(s);
  return v > U64_MAX ? undefined : v;
}

/** Parses /proc/net/xt_traffic/NAME_info (`key: value` per line). */
export function parseInfo(text: string, source: ParseSource = {}): TableInfo {
  const k: ProcKind = 'info';
  if (text.length === 0) throw new ParseError(k, 1, 'empty', undefined, source);
  if (!text.endsWith('\n')) fail(k, text, text.length - 1, 'truncated: the last line has no terminating newline', source);
  const lines = text.slice(0, -1).split('\n');
  const seen = new Map<string, number>();
  const info: Partial<TableInfo> & { extra: Record<string, string> } = { extra: {} };
  const err = (lineNo: number, what: string): never => {
    throw new ParseError(k, lineNo, what, lines[lineNo - 1], source);
  };
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const m = /^([a-z0-9_]+): ?(.*)$/.exec(lines[i]!);
    if (!m) err(lineNo, 'expected "key: value"');
    const key = m![1]!;
    const value = m![2]!;
    const first = seen.get(key);
    if (first !== undefined) err(lineNo, `duplicate key ${key} (first on line ${first})`);
    seen.set(key, lineNo);
    switch (key) {
      case 'name':
      case 'family':
        if (value === '') err(lineNo, `${key}: empty`);
        info[key] = value;
        break;
      case 'netbase':
      case 'netmask':
        if (!isIPv4(value)) err(lineNo, `${key}: not a dotted-quad IPv4 address`);
        info[key] = value;
        if (key === 'netmask') {
          const p = maskToPrefix(value);
          if (p < 0) err(lineNo, `netmask: not contiguous: ${value}`);
          info.prefixLength = p;
        }
        break;
      case 'options': {
        const o: TableOptions = { traffic: false, portconn: false, ipconn: false, nointernal: false, onlyinternal: false, clearonread: false };
        for (const w of value.split(' ').filter((x) => x !== '')) {
          if (!(OPTION_WORDS as readonly string[]).includes(w)) err(lineNo, `options: unknown option "${w}"`);
          o[w as keyof TableOptions] = true;
        }
        info.options = o;
        break;
      }
      case 'generation':
        if (!/^[0-9a-f]{16}$/.test(value)) err(lineNo, 'generation: expected 16 lowercase hex digits');
        info.generation = value;
        break;
      case 'overflow': {
        const v = parseU64(value);
        if (v === undefined) err(lineNo, 'overflow: not an unsigned 64-bit decimal number');
        info.overflow = v!;
        break;
      }
      default:
        if (key in NUMBER_KEYS) {
          const v = parseU64(value);
          if (v === undefined || v > BigInt(Number.MAX_SAFE_INTEGER)) err(lineNo, `${key}: not a decimal number below 2^53`);
          info[NUMBER_KEYS[key as keyof typeof NUMBER_KEYS]] = Number(v);
        } else {
          info.extra[key] = value;
        }
    }
  }
  for (const key of REQUIRED) {
    if (!seen.has(key)) throw new ParseError(k, lines.length + 1, `missing key "${key}"`, undefined, source);
  }
  return info as TableInfo;
}
