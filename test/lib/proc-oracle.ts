/**
 * The tests' oracle: an independent row parser of the /proc/net/xt_traffic/ files (the product's
 * one parser is src/proc/parse.ts), of the files in docs/design.md, "Files under /proc". Pure:
 * no I/O. Counters are bigint (the kernel's are 64-bit unsigned; a number would silently round
 * above 2^53). Anything that is not exactly a header and well-formed rows throws a ParseError
 * naming the 1-based line: a parser that guesses could return a wrong number.
 *
 * Fields are tab separated; runs of tabs or spaces are accepted as one separator so that the
 * spec's examples (which show spaces) parse too. The text must end with a newline: a file
 * whose last line has none was cut short, and its last number may be a prefix of the real one.
 */
type ProcKind = 'traffic' | 'ipconn' | 'portconn' | 'info';

/** The oracle's own error: "KIND line N: what" (independent of the product's ParseError). */
export class ParseError extends Error {
  constructor(readonly kind: ProcKind, readonly line: number, what: string, readonly text?: string) {
    super(`${kind} line ${line}: ${what}`);
  }
}

import { ipToNumber, ipValue, isIPv4 } from '../../src/core/ip.js';
import { CONN_GROUPS, IPCONN_HEADER, PORTCONN_HEADER, TRAFFIC_GROUPS, TRAFFIC_HEADER, U64_MAX, type ConnCounters, type InOut, type IpConnRow, type PortConnRow, type TrafficRow } from '../../src/proc/parse.js';

// The row types and header lines are the contract (src/proc/parse.ts); the parsing below is the oracle's own.
export { CONN_GROUPS, IPCONN_HEADER, PORTCONN_HEADER, TRAFFIC_GROUPS, TRAFFIC_HEADER, U64_MAX, type ConnCounters, type InOut, type IpConnRow, type PortConnRow, type TrafficRow };

export interface ParseOptions {
  /**
   * Also check that TOTAL equals the sum of the protocol columns in each direction (the spec
   * says it does). Off by default: the kernel's format guarantees the columns, not how
   * consistently it snapshots them.
   */
  checkTotals?: boolean;
}

const SEP = /[\t ]+/;
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
  // Digits only, checked and accumulated in one loop (faster than a regex + BigInt(string)).
  const len = s.length;
  if (len === 0 || len > 20) return u64Slow(kind, lineNo, line, s, column);
  let n = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return u64Slow(kind, lineNo, line, s, column);
    n = n * 10 + c;
  }
  // Up to 15 digits the double is exact; beyond, let BigInt read the string.
  return len <= 15 ? BigInt(n) : u64Slow(kind, lineNo, line, s, column);
}

function u64Slow(kind: ProcKind, lineNo: number, line: string, s: string, column: string): bigint {
  if (!DIGITS.test(s)) {
    throw new ParseError(kind, lineNo, `${column}: not an unsigned decimal number: "${s}"`, line);
  }
  const v = BigInt(s);
  if (v > U64_MAX) throw new ParseError(kind, lineNo, `${column}: ${s} is beyond 2^64-1`, line);
  return v;
}

/** Parses a row key; returns its numeric order (IP value, a bigint for IPv6, or port), or throws. */
type KeyParser = (kind: ProcKind, lineNo: number, line: string, s: string) => number | bigint;

/**
 * An IPv6 address in any RFC 4291 text form as a 128-bit bigint, or undefined. The oracle's
 * own (src/core/ip.ts has the product's): groups split on ':', one '::', a dotted quad last.
 */
export function v6Value(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]{2,45}$/.test(s)) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (x: string): string[] | undefined => (x === '' ? [] : x.split(':'));
  const head = groups(halves[0]!)!;
  const tail = halves.length === 2 ? groups(halves[1]!)! : [];
  const words: number[] = [];
  const all = [...head, ...(halves.length === 2 ? ['::'] : []), ...tail];
  for (let i = 0; i < all.length; i++) {
    const g = all[i]!;
    if (g === '::') continue;
    if (g.includes('.')) {
      const q = ipValue(g);
      if (q < 0 || i !== all.length - 1) return undefined;
      words.push(q >>> 16, q & 0xffff);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) words.push(parseInt(g, 16));
    else return undefined;
  }
  if (halves.length === 1 ? words.length !== 8 : words.length > 7) return undefined;
  const nHead = head.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const full = [...words.slice(0, nHead), ...new Array<number>(8 - words.length).fill(0), ...words.slice(nHead)];
  return full.reduce((v, w) => (v << 16n) | BigInt(w), 0n);
}

/** RFC 5952 text of a 128-bit value (the oracle's own): lowercase, longest zero run (>= 2) as '::', IPv4-mapped dotted. */
export function v6Text(v: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  if (v >> 32n === 0xffffn) return `::ffff:${[24, 16, 8, 0].map((b) => Number((v >> BigInt(b)) & 0xffn)).join('.')}`;
  let best = -1;
  let len = 1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > len) [best, len] = [i, j - i];
    if (j > i) i = j - 1;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + len))}`;
}

/**
 * IP keys (docs/design.md, "IPv6 and host prefixes"): a dotted quad, or an IPv6 address in
 * RFC 5952 form, each optionally `/LEN` (the host prefix: 1..31 or 1..127, host bits zero; the
 * full length is the bare address). Order: the address (a bigint for IPv6).
 */
const ipKey: KeyParser = (kind, lineNo, line, s) => {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const v6 = addr.includes(':');
  const bits = v6 ? 128 : 32;
  const lenText = slash < 0 ? String(bits) : s.slice(slash + 1);
  const len = /^[1-9]\d{0,2}$/.test(lenText) ? Number(lenText) : -1;
  if (slash >= 0 && (len < 1 || len >= bits)) throw new ParseError(kind, lineNo, `IP: bad prefix length in "${s}" (1..${bits - 1}; the full length is the bare address)`, line);
  if (!v6) {
    const v = ipValue(addr);
    if (v < 0) throw new ParseError(kind, lineNo, `IP: not a dotted-quad IPv4 address: "${s}"`, line);
    if (len < 32 && v % 2 ** (32 - len) !== 0) throw new ParseError(kind, lineNo, `IP: host bits set in "${s}"`, line);
    return v;
  }
  const v = v6Value(addr);
  if (v === undefined) throw new ParseError(kind, lineNo, `IP: not an IPv6 address: "${s}"`, line);
  if (v6Text(v) !== addr) throw new ParseError(kind, lineNo, `IP: "${s}" is not in RFC 5952 form (${v6Text(v)})`, line);
  if (len < 128 && (v & ((1n << BigInt(128 - len)) - 1n)) !== 0n) throw new ParseError(kind, lineNo, `IP: host bits set in "${s}"`, line);
  return v;
};

/** The family and length of an IP key ("4/32", "6/64"): one per table. */
function keyShape(k: string): string {
  const slash = k.indexOf('/');
  const v6 = k.includes(':');
  return `${v6 ? 6 : 4}/${slash < 0 ? (v6 ? 128 : 32) : k.slice(slash + 1)}`;
}

const portKey: KeyParser = (kind, lineNo, line, s) => {
  if (!/^\d{1,5}$/.test(s) || (s.length > 1 && s[0] === '0') || Number(s) > 65535) {
    throw new ParseError(kind, lineNo, `PORT: not a port number 0..65535: "${s}"`, line);
  }
  return Number(s);
};

interface RowSpec<R> {
  kind: ProcKind;
  header: readonly string[];
  groups: readonly string[];
  keyName: string;
  key: KeyParser;
  make: (k: string, c: InOut[]) => R;
}

/**
 * Fast path for one row in the kernel's exact format (key, then counters of at most 15 digits,
 * single tabs, newline), scanning character codes without splitting into substrings. Returns
 * the index of the row's newline, or -1 for anything else: that row then goes through
 * slowRow(), which accepts the lenient forms or throws the precise error.
 */
function fastRow<R>(spec: RowSpec<R>, text: string, pos: number, lineNo: number, nums: number[]): { end: number; k: string; order: number | bigint } | undefined {
  const len = text.length;
  let p = pos;
  while (p < len && text.charCodeAt(p) !== 9 && text.charCodeAt(p) !== 10) p++;
  if (p >= len || text.charCodeAt(p) !== 9 || p === pos) return undefined;
  const k = text.slice(pos, p);
  const order = spec.key === ipKey ? ipValue(k) : -1;
  if (spec.key === ipKey && order < 0) return undefined;
  const n = spec.groups.length * 2;
  for (let f = 0; f < n; f++) {
    p++; // the tab
    let v = 0;
    const s0 = p;
    for (;;) {
      const d = text.charCodeAt(p) - 48;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
      p++;
    }
    const digits = p - s0;
    if (digits === 0 || digits > 15) return undefined;
    const c = text.charCodeAt(p);
    if (c !== (f === n - 1 ? 10 : 9)) return undefined;
    nums[f] = v;
  }
  return { end: p, k, order: spec.key === ipKey ? order : spec.key(spec.kind, lineNo, '', k) };
}

/** One row in any accepted form, or a ParseError naming what is wrong. */
function slowRow<R>(spec: RowSpec<R>, lineNo: number, line: string): { k: string; order: number | bigint; c: InOut[] } {
  const { kind, groups, keyName } = spec;
  const ng = groups.length;
  const ncols = 1 + ng * 2;
  if (line === '') throw new ParseError(kind, lineNo, 'empty line');
  const f = fields(line);
  if (f.length !== ncols) {
    throw new ParseError(kind, lineNo, `expected ${ncols} fields (${keyName} and ${ncols - 1} counters), got ${f.length}`, line);
  }
  const k = f[0]!;
  const order = spec.key(kind, lineNo, line, k);
  const c: InOut[] = new Array<InOut>(ng);
  for (let g = 0; g < ng; g++) {
    c[g] = {
      in: u64(kind, lineNo, line, f[1 + 2 * g]!, `${groups[g]}_in`),
      out: u64(kind, lineNo, line, f[2 + 2 * g]!, `${groups[g]}_out`),
    };
  }
  return { k, order, c };
}

function lineAt(text: string, pos: number): string {
  const e = text.indexOf('\n', pos);
  return text.slice(pos, e < 0 ? text.length : e);
}

function parseRows<R>(spec: RowSpec<R>, text: string, opts: ParseOptions): R[] {
  const { kind, groups, keyName } = spec;
  if (text.length === 0 || text.charCodeAt(text.length - 1) !== 10) splitLines(kind, text); // throws
  const hEnd = text.indexOf('\n');
  checkHeader(kind, text.slice(0, hEnd), spec.header);
  const ng = groups.length;
  const nums: number[] = new Array<number>(ng * 2).fill(0);
  // The kernel prints keys in ascending order, which also proves there are no duplicates; only
  // input out of order pays for a map of what was seen.
  let prev: number | bigint = -1;
  let seen: Map<number | bigint, number> | undefined;
  const orders: Array<number | bigint> = [];
  let shape: string | undefined;
  const rows: R[] = [];
  const len = text.length;
  let pos = hEnd + 1;
  let lineNo = 2;
  while (pos < len) {
    let k: string;
    let order: number | bigint;
    let c: InOut[];
    let end: number;
    const fast = fastRow(spec, text, pos, lineNo, nums);
    if (fast !== undefined) {
      ({ k, order, end } = fast);
      c = new Array<InOut>(ng);
      for (let g = 0; g < ng; g++) c[g] = { in: BigInt(nums[2 * g]!), out: BigInt(nums[2 * g + 1]!) };
    } else {
      const line = lineAt(text, pos);
      ({ k, order, c } = slowRow(spec, lineNo, line));
      end = pos + line.length;
    }
    if (spec.key === ipKey) {
      const sh = keyShape(k);
      if (shape === undefined) shape = sh;
      else if (sh !== shape) throw new ParseError(kind, lineNo, `IP ${k}: a key of family/length ${sh} in a table of ${shape} keys (one family and host prefix per table)`, lineAt(text, pos));
    }
    if (order <= prev || seen !== undefined) {
      if (seen === undefined) {
        seen = new Map();
        for (let j = 0; j < orders.length; j++) seen.set(orders[j]!, j + 2);
      }
      const first = seen.get(order);
      if (first !== undefined) {
        throw new ParseError(kind, lineNo, `duplicate ${keyName} ${k} (first on line ${first})`, lineAt(text, pos));
      }
      seen.set(order, lineNo);
    }
    orders.push(order);
    prev = order;
    if (opts.checkTotals) {
      for (const dir of ['in', 'out'] as const) {
        let sum = 0n;
        for (let g = 1; g < ng; g++) sum += c[g]![dir];
        if (sum !== c[0]![dir]) {
          throw new ParseError(kind, lineNo, `total_${dir} ${c[0]![dir]} is not the sum of the protocol columns (${sum})`, lineAt(text, pos));
        }
      }
    }
    rows.push(spec.make(k, c));
    pos = end + 1;
    lineNo++;
  }
  return rows;
}

const TRAFFIC_SPEC: RowSpec<TrafficRow> = {
  kind: 'traffic',
  header: ['IP', 'TOTAL', 'TCP', 'UDP', 'OTHER'],
  groups: TRAFFIC_GROUPS,
  keyName: 'IP',
  key: ipKey,
  make: (ip, c) => ({ ip, total: c[0]!, tcp: c[1]!, udp: c[2]!, other: c[3]! }),
};

const IPCONN_SPEC: RowSpec<IpConnRow> = {
  kind: 'ipconn',
  header: ['IP', 'TOTAL', 'TCP', 'UDP', 'ICMP', 'OTHER'],
  groups: CONN_GROUPS,
  keyName: 'IP',
  key: ipKey,
  make: (ip, c) => ({ ip, total: c[0]!, tcp: c[1]!, udp: c[2]!, icmp: c[3]!, other: c[4]! }),
};

const PORTCONN_SPEC: RowSpec<PortConnRow> = {
  kind: 'portconn',
  header: ['PORT', 'TOTAL', 'TCP', 'UDP', 'ICMP', 'OTHER'],
  groups: CONN_GROUPS,
  keyName: 'PORT',
  key: portKey,
  make: (port, c) => ({ port: Number(port), total: c[0]!, tcp: c[1]!, udp: c[2]!, icmp: c[3]!, other: c[4]! }),
};

/** Parses /proc/net/xt_traffic/NAME. */
export function parseTraffic(text: string, opts: ParseOptions = {}): TrafficRow[] {
  return parseRows(TRAFFIC_SPEC, text, opts);
}

/** Parses /proc/net/xt_traffic/NAME_ipconn. */
export function parseIpConn(text: string, opts: ParseOptions = {}): IpConnRow[] {
  return parseRows(IPCONN_SPEC, text, opts);
}

/** Parses /proc/net/xt_traffic/NAME_portconn. */
export function parsePortConn(text: string, opts: ParseOptions = {}): PortConnRow[] {
  return parseRows(PORTCONN_SPEC, text, opts);
}
