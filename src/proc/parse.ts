/**
 * The one parser of the /proc/net/xt_traffic/ table files (docs/design.md, "Files under
 * /proc" and "IPv6 and host prefixes"): the kernel's exact format (header, "KEY\tN\t...\tN\n"
 * rows, keys strictly ascending, numbers without leading zeros, the final newline), into
 * columns: keys in a Uint32Array (one word per IPv4 key or port, four per IPv6 key), the
 * counters of every row in one BigUint64Array, exact column sums. Nothing is allocated per IPv4
 * row. Keys are host prefixes: a bare address, or ADDR/LEN with one LEN for the whole table.
 * Anything else throws a ParseError naming the file, the line and what is wrong, with the line
 * escaped: a parser that guesses could return a wrong number. Pure: no I/O.
 *
 * Also NAME_info's `key: value` lines (parseInfo).
 */
import { ParseError, type ParseSource, type ProcKind } from '../core/errors.js';
import { alignTo6, compare6, formatIPv6, isAligned6, isIPv4, mask6ToPrefix, maskToPrefix, numberToIp, parseIPv6 } from '../core/ip.js';
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

/** What a table's keys are: IPv4 or IPv6 host prefixes (NAME, NAME_ipconn), or ports. */
export type KeyFamily = 'ipv4' | 'ipv6' | 'port';

/** The keys of a table, strictly ascending. */
export interface KeyColumn {
  family: KeyFamily;
  /** 32-bit words per key in `keys`: 1 (IPv4 as a host-order number, a port) or 4 (IPv6, most significant word first). */
  keyWords: 1 | 4;
  /**
   * The prefix length of every key: the address length (32, 128) when keys are bare addresses,
   * LEN when they are ADDR/LEN; 16 for ports.
   */
  keyPrefix: number;
  keys: Uint32Array;
}

/** A table as columns. */
export interface Columns extends KeyColumn {
  rows: number;
  countersPerRow: 8 | 10;
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

/** Address length in bits of a key family. */
export function familyBits(family: KeyFamily): number {
  return family === 'ipv6' ? 128 : family === 'ipv4' ? 32 : 16;
}

/** Key r of `k` as text: the address (RFC 5952 for IPv6) and /LEN unless LEN is the full length; or the port. */
export function keyText(k: KeyColumn, r: number): string {
  if (k.family === 'port') return String(k.keys[r]!);
  const a = k.family === 'ipv6' ? formatIPv6(k.keys, 4 * r) : numberToIp(k.keys[r]!);
  return k.keyPrefix === familyBits(k.family) ? a : `${a}/${k.keyPrefix}`;
}

/** -1, 0, 1: the numeric order of keys a and b. */
export function compareKeys(k: KeyColumn, a: number, b: number): number {
  if (k.keyWords === 4) return compare6(k.keys, 4 * a, k.keys, 4 * b);
  const x = k.keys[a]!;
  const y = k.keys[b]!;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** What the caller knows of the table (from NAME_info): checked against the keys. */
export interface ParseTableOptions {
  /** The family of the IP keys (default: from the first key; ipv4 for an empty table). */
  family?: 'ipv4' | 'ipv6' | undefined;
  /** The prefix length of every IP key (NAME_info's hostprefix; default: from the first key). */
  hostPrefix?: number | undefined;
}

/** Where an IP key ends (its tab, or the end of the line/text). */
function keyEnd(text: string, p: number): number {
  const len = text.length;
  while (p < len) {
    const c = text.charCodeAt(p);
    if (c === 9 || c === 10) break;
    p++;
  }
  return p;
}

/** "/LEN" at text[p..end): LEN in decimal without leading zeros, 1..max-1; else -1. */
function prefixAt(text: string, p: number, end: number, max: number): number {
  const n = end - p;
  if (n < 1 || n > 3 || (n > 1 && text.charCodeAt(p) === 48)) return -1;
  let v = 0;
  for (let i = p; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v >= 1 && v < max ? v : -1;
}

/** The key of the last row rowFast4() accepted. */
let fastKey = 0;

/**
 * The common row of an IPv4 table of bare addresses, "A.B.C.D\tN\t...\tN\n" with a key above
 * `prev` and every counter below 10^15, at text[p]: its key (fastKey) and counters (into
 * words[w...], little-endian u64s; sums added only for a whole row); returns where the next row
 * starts, or -1 for anything else (parseTable's general loop then parses the row and says what
 * is wrong). A small function of its own, because V8 optimizes it after a few hundred rows,
 * while parseTable's one large loop went on interpreted to the end of a 65,536-row table
 * (its OSR code came too late: ~3,800 instructions a row, 0.37e9 in all).
 */
function rowFast4(text: string, p: number, prev: number, per: number, words: Uint32Array, w: number, sumLo: Float64Array, sumHi: Float64Array): number {
  let key = 0;
  for (let o = 0; o < 4; o++) {
    const s = p;
    let octet = 0;
    let d = text.charCodeAt(p) - 48;
    while (d >= 0 && d <= 9) {
      octet = octet * 10 + d;
      d = text.charCodeAt(++p) - 48;
    }
    const n = p - s;
    if (n === 0 || n > 3 || (n > 1 && text.charCodeAt(s) === 48) || octet > 255) return -1;
    if (text.charCodeAt(p) !== (o < 3 ? 46 : 9)) return -1;
    p++;
    key = key * 256 + octet;
  }
  if (key <= prev) return -1;
  const w0 = w;
  for (let i = 0; i < per; i++) {
    const s = p;
    let v = 0;
    let d = text.charCodeAt(p) - 48;
    while (d >= 0 && d <= 9) {
      v = v * 10 + d;
      d = text.charCodeAt(++p) - 48;
    }
    const n = p - s;
    if (n === 0 || n > 15 || (n > 1 && text.charCodeAt(s) === 48)) return -1;
    if (text.charCodeAt(p) !== (i === per - 1 ? 10 : 9)) return -1;
    p++;
    const lo = v >>> 0; // v mod 2^32 (exact below 2^53); v % TWO32 is a call to fmod per counter
    words[w++] = lo;
    words[w++] = (v - lo) / TWO32;
  }
  for (let i = 0; i < per; i++) {
    sumLo[i] = sumLo[i]! + words[w0 + 2 * i]!;
    sumHi[i] = sumHi[i]! + words[w0 + 2 * i + 1]!;
  }
  fastKey = key;
  return p;
}

/**
 * Parses one table file's text (latin1) into columns, or throws a ParseError. `source` names
 * the file in the error.
 */
export function parseTable(kind: TableKind, text: string, source: ParseSource = {}, opts: ParseTableOptions = {}): Columns {
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
  const port = kind === 'portconn';
  // The family: given, else the first key's (a colon before its tab: IPv6).
  let family: KeyFamily = port ? 'port' : opts.family ?? 'ipv4';
  if (!port && opts.family === undefined && hlen < len) {
    const e = keyEnd(text, hlen);
    if (text.lastIndexOf(':', e) >= hlen) family = 'ipv6';
  }
  const v6 = family === 'ipv6';
  const bits = familyBits(family);
  const keys = new Uint32Array(v6 ? 4 * cap : cap);
  // Every key's prefix length: the first key's (or the given one); checked for each row.
  let plen = port ? 16 : opts.hostPrefix ?? -1;
  let hostMask = plen > 0 && plen < 32 ? (0xffffffff >>> plen) : 0;
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
  const keyName = port ? 'PORT' : 'IP';
  const bad = (p: number, what: string): never => fail(kind, text, p, what, source);
  const lenText = (l: number) => (l === bits ? `a bare address (/${bits})` : `/${l}`);
  const prevText = (r: number) => keyText({ family, keyWords: v6 ? 4 : 1, keyPrefix: plen, keys }, r - 1);
  const badIPv4 = (rowStart: number): never => {
    const k = text.slice(rowStart, keyEnd(text, rowStart));
    if (k.includes(':')) bad(rowStart, `IP ${k}: an IPv6 key in a table of IPv4 keys (a table has one family)`);
    return bad(rowStart, 'IP: not a dotted-quad IPv4 address');
  };
  /** The IPv6 key of row `rows` at rowStart into keys[4 * rows ...]; returns where it ends. */
  const key6 = (rowStart: number): number => {
    const e = keyEnd(text, rowStart);
    const k = text.slice(rowStart, e);
    const slash = k.indexOf('/');
    const addr = slash < 0 ? k : k.slice(0, slash);
    const o = 4 * rows;
    if (!parseIPv6(addr, keys, o)) {
      if (isIPv4(addr)) bad(rowStart, `IP ${k}: an IPv4 key in a table of IPv6 keys (a table has one family)`);
      bad(rowStart, `IP ${k}: not an IPv6 address${slash < 0 ? '' : ' and prefix length'}`);
    }
    let kp = 128;
    if (slash >= 0) {
      kp = prefixAt(text, rowStart + slash + 1, e, 128);
      if (kp < 0) bad(rowStart, `IP ${k}: the prefix length after "/" must be 1..127 in decimal (a full-length key is the bare address)`);
    }
    const canon = formatIPv6(keys, o);
    if (canon !== addr) bad(rowStart, `IP ${k}: not in RFC 5952 form (${canon}${slash < 0 ? '' : `/${kp}`})`);
    if (kp !== plen) {
      if (plen >= 0) bad(rowStart, `IP ${k}: ${lenText(kp)}, but the table's keys are ${lenText(plen)} (one host prefix per table)`);
      plen = kp;
    }
    if (!isAligned6(keys, kp, o)) {
      bad(rowStart, `IP ${k}: host bits set: a key is its prefix's first address (${formatIPv6(alignTo6(keys, kp, o))}/${kp})`);
    }
    if (rows > 0 && compare6(keys, o - 4, keys, o) >= 0) bad(rowStart, `IP ${k}: rows must be in ascending order, each key once (after ${prevText(rows)})`);
    return e;
  };
  let p = hlen;
  let rows = 0;
  let prev = -1;
  const fast4 = !port && !v6 && LITTLE_ENDIAN;
  while (p < len) {
    if (fast4 && plen === 32) {
      const q = rowFast4(text, p, prev, per, words, 2 * rows * per, sumLo, sumHi);
      if (q >= 0) {
        prev = fastKey;
        keys[rows] = prev;
        p = q;
        rows++;
        if ((rows & 0xfffff) === 0) flush();
        continue;
      }
    }
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
    } else if (!v6) {
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
        if (n === 0 || n > 3 || (n > 1 && text.charCodeAt(s) === 48) || octet > 255) badIPv4(rowStart);
        if (o < 3) {
          if (text.charCodeAt(p) !== 46) badIPv4(rowStart);
          p++;
        }
        key = key * 256 + octet;
      }
      let kp = 32;
      if (text.charCodeAt(p) === 47) {
        const e = keyEnd(text, p);
        kp = prefixAt(text, p + 1, e, 32);
        if (kp < 0) bad(rowStart, `IP ${text.slice(rowStart, e)}: the prefix length after "/" must be 1..31 in decimal (a full-length key is the bare address)`);
        p = e;
      }
      if (kp !== plen) {
        if (plen >= 0) bad(rowStart, `IP ${text.slice(rowStart, p)}: ${lenText(kp)}, but the table's keys are ${lenText(plen)} (one host prefix per table)`);
        plen = kp;
        hostMask = kp < 32 ? 0xffffffff >>> kp : 0;
      }
      if ((key & hostMask) !== 0) bad(rowStart, `IP ${text.slice(rowStart, p)}: host bits set: a key is its prefix's first address (${numberToIp(key - (key & hostMask))}/${kp})`);
    } else {
      p = key6(rowStart);
    }
    if (text.charCodeAt(p) !== 9) bad(rowStart, `${keyName}: expected a tab after it`);
    if (!v6) {
      if (key <= prev) bad(rowStart, `${keyName} ${text.slice(rowStart, p)}: rows must be in ascending order, each key once (after ${prevText(rows)})`);
      prev = key;
      keys[rows] = key;
    }
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
        const lo = v >>> 0;
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
  return {
    rows, countersPerRow: per, family, keyWords: v6 ? 4 : 1, keyPrefix: plen >= 0 ? plen : bits,
    keys: keys.subarray(0, v6 ? 4 * rows : rows), counters: big.subarray(0, rows * per), sums,
  };
}

const inout = (c: BigUint64Array, i: number): InOut => ({ in: c[i]!, out: c[i + 1]! });

/** Row `r` of the columns as an object (bigint counters). */
export function rowFromColumns<K extends TableKind>(kind: K, cols: Columns, r: number): RowOf<K> {
  const { keys, counters: c, countersPerRow: n } = cols;
  const b = r * n;
  if (kind === 'traffic') {
    return { ip: keyText(cols, r), total: inout(c, b), tcp: inout(c, b + 2), udp: inout(c, b + 4), other: inout(c, b + 6) } as RowOf<K>;
  }
  const counters = { total: inout(c, b), tcp: inout(c, b + 2), udp: inout(c, b + 4), icmp: inout(c, b + 6), other: inout(c, b + 8) };
  return (kind === 'ipconn' ? { ip: keyText(cols, r), ...counters } : { port: keys[r]!, ...counters }) as RowOf<K>;
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
  family: 'ipv4' | 'ipv6';
  /** The net's first address (a dotted quad, or RFC 5952 IPv6). */
  netbase: string;
  /** A dotted quad (IPv4) or the mask in RFC 5952 form (IPv6, `ffff:ffff:ffff::`). */
  netmask: string;
  /** Prefix length of netmask (1..32, 1..128). */
  prefixLength: number;
  /** The length of the table's keys (`hostprefix:`; absent in revision-0 files: the full length, 32). */
  hostPrefix: number;
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
  hostprefix: 'hostPrefix',
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
  const checked = new Set<string>();
  /** netbase (an address of the family, RFC 5952 for IPv6) or netmask (contiguous; sets prefixLength). */
  const checkNet = (key: 'netbase' | 'netmask', lineNo: number) => {
    checked.add(key);
    const value = info[key]!;
    if (info.family === 'ipv6') {
      const w = new Uint32Array(4);
      if (!parseIPv6(value, w)) err(lineNo, `${key}: "${value}" is not an IPv6 ${key === 'netbase' ? 'address' : 'mask'} (family ipv6)`);
      if (formatIPv6(w) !== value) err(lineNo, `${key}: ${value} is not in RFC 5952 form (${formatIPv6(w)})`);
      if (key === 'netmask') {
        const p = mask6ToPrefix(w);
        if (p < 0) err(lineNo, `netmask: not contiguous: ${value}`);
        info.prefixLength = p;
      }
    } else {
      if (!isIPv4(value)) err(lineNo, `${key}: not a dotted-quad IPv4 address`);
      if (key === 'netmask') {
        const p = maskToPrefix(value);
        if (p < 0) err(lineNo, `netmask: not contiguous: ${value}`);
        info.prefixLength = p;
      }
    }
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
        if (value === '') err(lineNo, `${key}: empty`);
        info[key] = value;
        break;
      case 'family':
        if (value !== 'ipv4' && value !== 'ipv6') err(lineNo, `family: "${value}" is neither ipv4 nor ipv6`);
        info.family = value as 'ipv4' | 'ipv6';
        break;
      case 'netbase':
      case 'netmask':
        info[key] = value;
        // checked now when the family came first (it does in the module's files), else at the end
        if (info.family !== undefined) checkNet(key, lineNo);
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
  if (!checked.has('netbase')) checkNet('netbase', seen.get('netbase')!);
  if (!checked.has('netmask')) checkNet('netmask', seen.get('netmask')!);
  const bits = info.family === 'ipv6' ? 128 : 32;
  if (info.hostPrefix === undefined) {
    info.hostPrefix = bits;
  } else if (info.hostPrefix < info.prefixLength! || info.hostPrefix > bits) {
    err(seen.get('hostprefix')!, `hostprefix: ${info.hostPrefix} is not between the net's length ${info.prefixLength} and ${bits}`);
  }
  return info as TableInfo;
}
