/**
 * What `read` and `watch` show: sorting, top N, totals and the three output forms. Pure.
 */
import { UsageError } from '../core/errors.js';
import type { TableKind } from '../proc/names.js';
import { LITTLE_ENDIAN, compareKeys, groupsOf, keyText, rowFromColumns, type Columns, type InOut, type IpConnRow, type KeyColumn, type PortConnRow, type TrafficRow } from '../proc/parse.js';
import { humanBytes, humanCount, renderTable, toJson, type Align } from './format.js';
import { rowFormatter as fmt } from './rows.js';

export type Row = TrafficRow | IpConnRow | PortConnRow;

export function keyName(kind: TableKind): 'ip' | 'port' {
  return kind === 'portconn' ? 'port' : 'ip';
}

function keyOf(r: Row): string {
  return 'port' in r ? String(r.port) : r.ip;
}

/** Sort keys `read --sort` accepts for a kind. */
export function sortKeys(kind: TableKind): string[] {
  const keys = [keyName(kind), 'in', 'out'];
  for (const g of groupsOf(kind)) keys.push(g, `${g}_in`, `${g}_out`);
  return keys;
}

export type Totals = Record<string, InOut>;

/** Counter columns (indexes into a row of Columns) a sort key adds up. */
function sortColumns(kind: TableKind, key: string): number[] {
  const groups = groupsOf(kind);
  if (key === 'in') return [0];
  if (key === 'out') return [1];
  const m = /^([a-z]+)_(in|out)$/.exec(key);
  if (m) return [2 * groups.indexOf(m[1]!) + (m[2] === 'in' ? 0 : 1)];
  const g = groups.indexOf(key);
  return [2 * g, 2 * g + 1];
}

/** True when the keys strictly ascend (the kernel's order, which the parser checks; columns made otherwise may have any). */
function ascending(cols: Columns): boolean {
  for (let r = 1; r < cols.rows; r++) if (compareKeys(cols, r - 1, r) >= 0) return false;
  return true;
}

function firstN(n: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

/**
 * The rows to print (sorted counters descending, ties and the key ascending; --top keeps the first N), as row indexes: undefined for every row in the table's
 * order. Nothing becomes an object; with --top a min-heap of N over the table, O(rows log N).
 */
export function selectOrder(kind: TableKind, cols: Columns, sort?: string, top?: number): Uint32Array | undefined {
  const key = sort ?? (top !== undefined ? 'total' : undefined);
  if (key !== undefined && !sortKeys(kind).includes(key)) {
    throw new UsageError(`--sort ${key}: not a column of ${kind} tables`, { hint: `use one of: ${sortKeys(kind).join(', ')}` });
  }
  const n = cols.rows;
  const limit = Math.min(top ?? n, n);
  if (key === undefined || (key === keyName(kind) && ascending(cols))) return limit === n ? undefined : firstN(limit);
  if (key === keyName(kind)) return firstN(n).sort((a, b) => compareKeys(cols, a, b)).subarray(0, limit);
  const idx = sortColumns(kind, key);
  const per = cols.countersPerRow;
  const c = cols.counters;
  // A row's value as a double when that is exact (the high words of the u64s are small: their
  // sum is below 2^53), else as a bigint; number and bigint compare exactly with > and ==.
  const w = LITTLE_ENDIAN ? new Uint32Array(c.buffer, c.byteOffset, c.length * 2) : undefined;
  const i0 = idx[0]!;
  const i1 = idx.length === 2 ? idx[1]! : -1;
  const value = (r: number): number | bigint => {
    const a = r * per + i0;
    if (w !== undefined) {
      const ha = w[2 * a + 1]!;
      if (i1 < 0) {
        if (ha < 0x200000) return ha * 4294967296 + w[2 * a]!;
      } else {
        const b = r * per + i1;
        const hb = w[2 * b + 1]!;
        if (ha < 0x100000 && hb < 0x100000) return (ha + hb) * 4294967296 + w[2 * a]! + w[2 * b]!;
      }
    }
    return i1 < 0 ? c[a]! : c[a]! + c[r * per + i1]!;
  };
  // "a before b": larger value first, then smaller key
  const keys = cols.keys;
  const before = cols.keyWords === 1
    ? (va: number | bigint, a: number, vb: number | bigint, b: number) => va > vb || (va == vb && keys[a]! < keys[b]!)
    : (va: number | bigint, a: number, vb: number | bigint, b: number) => va > vb || (va == vb && compareKeys(cols, a, b) < 0);
  if (limit === n) {
    const vals = Array.from({ length: n }, (_, r) => value(r));
    return firstN(n).sort((a, b) => (before(vals[a]!, a, vals[b]!, b) ? -1 : 1));
  }
  // min-heap (by "before") of the best `limit` rows seen so far
  const hv: Array<number | bigint> = [];
  const hi: number[] = [];
  const swap = (x: number, y: number) => {
    [hv[x], hv[y]] = [hv[y]!, hv[x]!];
    [hi[x], hi[y]] = [hi[y]!, hi[x]!];
  };
  const worse = (x: number, y: number) => before(hv[y]!, hi[y]!, hv[x]!, hi[x]!); // x comes after y
  for (let r = 0; r < n; r++) {
    const v = value(r);
    if (hv.length < limit) {
      hv.push(v);
      hi.push(r);
      for (let k = hv.length - 1; k > 0; ) {
        const p = (k - 1) >> 1;
        if (!worse(k, p)) break;
        swap(k, p);
        k = p;
      }
    } else if (limit > 0 && before(v, r, hv[0]!, hi[0]!)) {
      hv[0] = v;
      hi[0] = r;
      for (let k = 0; ; ) {
        const l = 2 * k + 1;
        const rr = l + 1;
        let m = k;
        if (l < hv.length && worse(l, m)) m = l;
        if (rr < hv.length && worse(rr, m)) m = rr;
        if (m === k) break;
        swap(k, m);
        k = m;
      }
    }
  }
  return Uint32Array.from(hi.map((r, k) => ({ r, v: hv[k]! })).sort((a, b) => (before(a.v, a.r, b.v, b.r) ? -1 : 1)).map((x) => x.r));
}

/** Totals from the parser's exact column sums. */
export function totalsOfColumns(kind: TableKind, cols: Columns): Totals {
  const t: Totals = {};
  groupsOf(kind).forEach((g, i) => (t[g] = { in: cols.sums[2 * i]!, out: cols.sums[2 * i + 1]! }));
  return t;
}

/** The table's configuration as `read --json` records it (from NAME_info). */
export interface ReadConfig {
  netbase: string;
  netmask: string;
  /** The enabled options, in NAME_info's order (traffic portconn ipconn nointernal onlyinternal clearonread). */
  options: string[];
  /**
   * Only for tables that are not IPv4 counted per address (IPv6, or an IPv4 host prefix below
   * 32): the family and the key length. Left out otherwise, so revision-0 output is unchanged.
   */
  family?: 'ipv4' | 'ipv6' | undefined;
  hostprefix?: number | undefined;
}

export interface ReadReport {
  table: string;
  kind: TableKind;
  /** When the snapshot was taken (ISO 8601 UTC). */
  time: string;
  host: string;
  /** null when NAME_info could not be read. */
  config: ReadConfig | null;
  /** The read zeroed the counters (--clear, or a --clearonread table). */
  cleared: boolean;
  /** Rows in the table (before --top). */
  count: number;
  /** Every row of the table. */
  columns: Columns;
  /** The rows to print, in this order (indexes into columns); undefined: all, in table order. */
  order: Uint32Array | undefined;
  totals: Totals;
}

export function columnNames(kind: TableKind): string[] {
  const c: string[] = [keyName(kind)];
  for (const g of groupsOf(kind)) c.push(`${g}_in`, `${g}_out`);
  return c;
}

function cells(kind: TableKind, key: string, c: Totals | Row, human: boolean): string[] {
  const fmt = human ? (kind === 'traffic' ? humanBytes : humanCount) : (v: bigint) => v.toString();
  const out = [key];
  for (const g of groupsOf(kind)) {
    const v = (c as Record<string, InOut>)[g]!;
    out.push(fmt(v.in), fmt(v.out));
  }
  return out;
}

/** The printed rows as objects (bigint counters): for --human, readJson() and tests. */
export function reportRows(rep: ReadReport): Row[] {
  const n = rep.order ? rep.order.length : rep.columns.rows;
  const rows = new Array<Row>(n);
  for (let j = 0; j < n; j++) rows[j] = rowFromColumns(rep.kind, rep.columns, rep.order ? rep.order[j]! : j);
  return rows;
}

function printedCount(rep: ReadReport): number {
  return rep.order ? rep.order.length : rep.columns.rows;
}

/** The aligned table with a totals line. */
export function renderReadTable(rep: ReadReport, human: boolean): Uint8Array {
  const headers = [keyName(rep.kind).toUpperCase()];
  for (const g of groupsOf(rep.kind)) headers.push(`${g.toUpperCase()} IN`, `${g.toUpperCase()} OUT`);
  const align: Align[] = headers.map((_, i) => (i === 0 ? 'left' : 'right'));
  const what = rep.kind === 'portconn' ? 'port' : 'IP';
  const label = `all ${rep.count} ${what}${rep.count === 1 ? '' : 's'}`;
  const footer = cells(rep.kind, label, rep.totals, human);
  if (human) {
    const rows = reportRows(rep).map((r) => cells(rep.kind, keyOf(r), r, true));
    return Buffer.from(renderTable({ headers, rows, footer, align }), 'latin1');
  }
  // renderTable()'s layout, with the rows formatted from the columns
  const { counters } = rep.columns;
  const keys = rep.columns;
  const cw = fmt.cellWidths(rep.kind, keys, counters, rep.order);
  const widths = headers.map((h, c) => Math.max(h.length, footer[c]!.length, cw[c] ?? 0));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  return fmt.formatRows(rep.kind, keys, counters, 'table', {
    order: rep.order,
    widths,
    prefix: `${line(headers)}\n`,
    suffix: `${widths.map((w) => '-'.repeat(w)).join('  ')}\n${line(footer)}\n`,
  });
}

/** CSV: a header line, then one line per row (no totals). */
export function renderReadCsv(rep: ReadReport): Uint8Array {
  return fmt.formatRows(rep.kind, rep.columns, rep.columns.counters, 'csv', {
    order: rep.order,
    prefix: `${columnNames(rep.kind).join(',')}\n`,
  });
}

/**
 * `read --json`: the rows formatted straight from the columns
 * : a million rows without a million objects.
 */
export function readJsonBytes(rep: ReadReport): Uint8Array {
  const counters = (c: Record<string, InOut>, ind: string) =>
    groupsOf(rep.kind).map((g) => `${ind}"${g}": {\n${ind}  "in": ${c[g]!.in},\n${ind}  "out": ${c[g]!.out}\n${ind}}`).join(',\n');
  const c = rep.config;
  const config = c === null
    ? 'null'
    : `{\n${c.family !== undefined ? `    "family": "${c.family}",\n` : ''}    "netbase": ${JSON.stringify(c.netbase)},\n    "netmask": ${JSON.stringify(c.netmask)},\n${c.hostprefix !== undefined ? `    "hostprefix": ${c.hostprefix},\n` : ''}    "options": ${c.options.length === 0 ? '[]' : `[\n${c.options.map((w) => `      ${JSON.stringify(w)}`).join(',\n')}\n    ]`}\n  }`;
  const head = `{\n  "table": ${JSON.stringify(rep.table)},\n  "kind": "${rep.kind}",\n  "time": ${JSON.stringify(rep.time)},\n  "host": ${JSON.stringify(rep.host)},\n  "config": ${config},\n  "cleared": ${rep.cleared},\n  "count": ${rep.count},\n  "rows": `;
  const tail = `,\n  "totals": {\n${counters(rep.totals, '    ')}\n  }\n}\n`;
  if (printedCount(rep) === 0) return Buffer.from(`${head}[]${tail}`, 'utf8');
  return fmt.formatRows(rep.kind, rep.columns, rep.columns.counters, 'json', { order: rep.order, prefix: `${head}[\n`, suffix: `\n  ]${tail}` });
}

// ---------------------------------------------------------------------------------------------
// watch

/** Units of `watch`'s rates: bytes (IEC, 1 KiB = 1024 B) by default, bits (--bits), SI (--si: 1 kB = 1000 B). */
export interface WatchUnits {
  bits: boolean;
  si: boolean;
}

const RATE_UNITS = {
  iec: { bytes: ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'], bits: ['bit', 'Kibit', 'Mibit', 'Gibit', 'Tibit', 'Pibit', 'Eibit'] },
  si: { bytes: ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'], bits: ['bit', 'kbit', 'Mbit', 'Gbit', 'Tbit', 'Pbit', 'Ebit'] },
} as const;

/** A non-negative amount, rounded to a whole unit below `base`, else with one decimal rounded half up: "512 B", "1.5 KiB". */
function scaledNumber(v: number, base: number, units: readonly string[]): string {
  const x = Math.max(0, Math.round(v));
  if (x < base) return `${x} ${units[0]}`;
  let unit = 0;
  let div = 1;
  while (unit < units.length - 1 && x >= div * base) {
    div *= base;
    unit++;
  }
  let tenths = Math.floor((x * 10 + div / 2) / div);
  if (tenths >= base * 10 && unit < units.length - 1) {
    div *= base;
    unit++;
    tenths = Math.floor((x * 10 + div / 2) / div);
  }
  return `${Math.floor(tenths / 10)}.${tenths % 10} ${units[unit]}`;
}

/** A rate in bytes per second as text in the chosen units: "1.5 KiB/s", "12.3 Mbit/s". */
export function rateText(bytesPerSecond: number, u: WatchUnits): string {
  const table = RATE_UNITS[u.si ? 'si' : 'iec'];
  return `${scaledNumber(u.bits ? bytesPerSecond * 8 : bytesPerSecond, u.si ? 1000 : 1024, u.bits ? table.bits : table.bytes)}/s`;
}

/** The unit of the rates in `watch --json`. */
export function rateUnit(kind: TableKind, u: WatchUnits): string {
  return kind !== 'traffic' ? 'connections/s' : u.bits ? 'bit/s' : 'B/s';
}

/**
 * What the next sample's rates need of this one: the keys (ascending) and, per row, the total
 * in and out counters as 32-bit words (in low, in high, out low, out high): 20 bytes a row.
 */
export interface WatchSample {
  /** As in Columns: `keyWords` words per key; keys of another length or family never match. */
  keys: Uint32Array;
  keyWords?: 1 | 4 | undefined;
  keyPrefix?: number | undefined;
  totals: Uint32Array;
}

/** The sample before the first one of a table that came back: every counter counts from zero. */
export const EMPTY_SAMPLE: WatchSample = { keys: new Uint32Array(0), totals: new Uint32Array(0) };

/** -1, 0, 1: key j of a sample against key r of columns (same key length). */
function compareSampleKey(pk: Uint32Array, j: number, cols: KeyColumn, r: number): number {
  if (cols.keyWords === 1) {
    const a = pk[j]!;
    const b = cols.keys[r]!;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  for (let i = 0; i < 4; i++) {
    const a = pk[4 * j + i]!;
    const b = cols.keys[4 * r + i]!;
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

/** A sample's per-second rates, per row (indexes into `cols`). */
export interface WatchRates {
  kind: TableKind;
  cols: Columns;
  /** Bytes (or connections) per second since the previous sample. */
  inRate: Float64Array;
  outRate: Float64Array;
  /** The rates of every row added up. */
  sumIn: number;
  sumOut: number;
  /** This sample, for the next one's rates. */
  sample: WatchSample;
}

const TWO32 = 4294967296;

function totalWords(cols: Columns): Uint32Array {
  const n = cols.rows;
  const per = cols.countersPerRow;
  const c = cols.counters;
  const t = new Uint32Array(4 * n);
  if (LITTLE_ENDIAN) {
    const w = new Uint32Array(c.buffer, c.byteOffset, n * per * 2);
    for (let r = 0, a = 0; r < n; r++, a += 2 * per) {
      t[4 * r] = w[a]!;
      t[4 * r + 1] = w[a + 1]!;
      t[4 * r + 2] = w[a + 2]!;
      t[4 * r + 3] = w[a + 3]!;
    }
  } else {
    for (let r = 0; r < n; r++) {
      const i = c[r * per]!;
      const o = c[r * per + 1]!;
      t[4 * r] = Number(i & 0xffffffffn);
      t[4 * r + 1] = Number(i >> 32n);
      t[4 * r + 2] = Number(o & 0xffffffffn);
      t[4 * r + 3] = Number(o >> 32n);
    }
  }
  return t;
}

/**
 * Per-second rates of every row of `cols` against the previous sample, a merge-join over the
 * keys (ascending in both; nothing per row is allocated). A counter that went down (the table
 * was cleared in between) or a key not in the previous sample counts from zero; the first
 * sample (`prev` undefined) has rates 0. With `cumulative` false (a --clearonread table: every
 * read returns only what came since the previous one) the values are already the deltas.
 */
export function watchRates(kind: TableKind, prev: WatchSample | undefined, cols: Columns, seconds: number, cumulative: boolean): WatchRates {
  const n = cols.rows;
  const keys = cols.keys;
  const cur = totalWords(cols);
  const inRate = new Float64Array(n);
  const outRate = new Float64Array(n);
  // a sample of keys of another family or length (a table re-created): nothing matches
  const same = prev !== undefined && (prev.keyWords ?? 1) === cols.keyWords && (prev.keyPrefix ?? cols.keyPrefix) === cols.keyPrefix;
  const pk = prev === undefined ? undefined : same ? prev.keys : EMPTY_SAMPLE.keys;
  const pt = prev === undefined ? undefined : same ? prev.totals : EMPTY_SAMPLE.totals;
  const pn = pk ? pk.length / cols.keyWords : 0;
  const w1 = cols.keyWords === 1;
  let sumIn = 0;
  let sumOut = 0;
  let j = 0;
  for (let r = 0; r < n; r++) {
    const il = cur[4 * r]!;
    const ih = cur[4 * r + 1]!;
    const ol = cur[4 * r + 2]!;
    const oh = cur[4 * r + 3]!;
    let din: number;
    let dout: number;
    if (!cumulative) {
      din = ih * TWO32 + il;
      dout = oh * TWO32 + ol;
    } else if (pk === undefined || pt === undefined) {
      din = 0;
      dout = 0;
    } else {
      let c = 1;
      if (w1) {
        const k = keys[r]!;
        while (j < pn && pk[j]! < k) j++;
        if (j < pn) c = pk[j] === k ? 0 : 1;
      } else {
        while (j < pn && (c = compareSampleKey(pk, j, cols, r)) < 0) j++;
      }
      if (j < pn && c === 0) {
        const pil = pt[4 * j]!;
        const pih = pt[4 * j + 1]!;
        const pol = pt[4 * j + 2]!;
        const poh = pt[4 * j + 3]!;
        din = ih > pih || (ih === pih && il >= pil) ? (ih - pih) * TWO32 + (il - pil) : ih * TWO32 + il;
        dout = oh > poh || (oh === poh && ol >= pol) ? (oh - poh) * TWO32 + (ol - pol) : oh * TWO32 + ol;
      } else {
        din = ih * TWO32 + il;
        dout = oh * TWO32 + ol;
      }
    }
    inRate[r] = din / seconds;
    outRate[r] = dout / seconds;
    sumIn += din;
    sumOut += dout;
  }
  return { kind, cols, inRate, outRate, sumIn: sumIn / seconds, sumOut: sumOut / seconds, sample: { keys: keys.slice(0, n * cols.keyWords), keyWords: cols.keyWords, keyPrefix: cols.keyPrefix, totals: cur } };
}

/**
 * The rows to show: highest in + out rate first, ties in key order; `top` keeps the first N.
 * Only rows with a rate are sorted (the others follow in table order, which is key order); with
 * `top`, a heap of N over them.
 */
export function watchOrder(rates: WatchRates, top?: number): Uint32Array {
  const n = rates.cols.rows;
  const limit = Math.min(top ?? n, n);
  const { inRate, outRate } = rates;
  let moving = 0;
  for (let r = 0; r < n; r++) if (inRate[r]! + outRate[r]! > 0) moving++;
  const cand = new Uint32Array(moving);
  for (let r = 0, k = 0; r < n; r++) if (inRate[r]! + outRate[r]! > 0) cand[k++] = r;
  // a before b: larger rate, then smaller key (= smaller index)
  const before = (a: number, b: number) => {
    const va = inRate[a]! + outRate[a]!;
    const vb = inRate[b]! + outRate[b]!;
    return va > vb || (va === vb && a < b);
  };
  const best = limit >= moving ? cand.sort((a, b) => (before(a, b) ? -1 : 1)) : bestOf(cand, limit, before);
  if (best.length >= limit) return best.subarray(0, limit);
  const out = new Uint32Array(limit);
  out.set(best);
  for (let r = 0, k = best.length; r < n && k < limit; r++) if (!(inRate[r]! + outRate[r]! > 0)) out[k++] = r;
  return out;
}

/** The `limit` best of `cand` (by `before`), in order: a min-heap of `limit`, O(n log limit). */
function bestOf(cand: Uint32Array, limit: number, before: (a: number, b: number) => boolean): Uint32Array {
  const h = new Uint32Array(limit);
  let size = 0;
  const down = (k: number) => {
    for (;;) {
      const l = 2 * k + 1;
      let m = k;
      if (l < size && before(h[m]!, h[l]!)) m = l;
      if (l + 1 < size && before(h[m]!, h[l + 1]!)) m = l + 1;
      if (m === k) return;
      [h[k], h[m]] = [h[m]!, h[k]!];
      k = m;
    }
  };
  for (const r of cand) {
    if (size < limit) {
      // sift up: the root is the worst kept
      let k = size++;
      h[k] = r;
      while (k > 0) {
        const p = (k - 1) >> 1;
        if (!before(h[p]!, h[k]!)) break;
        [h[k], h[p]] = [h[p]!, h[k]!];
        k = p;
      }
    } else if (before(r, h[0]!)) {
      h[0] = r;
      down(0);
    }
  }
  return h.subarray(0, size).sort((a, b) => (before(a, b) ? -1 : 1));
}

/**
 * A rate in JSON: rounded to 0.001 (a sample's time is not known better), written from
 * integers: a million rows' shortest-round-trip doubles took longer than the rest of a sample.
 */
function rateJson(x: number): string {
  const m = Math.round(x * 1000);
  if (!Number.isSafeInteger(m)) return JSON.stringify(x);
  const i = Math.floor(m / 1000);
  const f = m - i * 1000;
  if (f === 0) return String(i);
  return `${i}.${f % 100 === 0 ? f / 100 : f % 10 === 0 ? String(f / 10).padStart(2, '0') : String(f).padStart(3, '0')}`;
}

/** Row r's total in (side 0) or out (1), exact, as decimal text: from its words below 2^53. */
function totalText(rates: WatchRates, r: number, side: 0 | 1): string {
  const t = rates.sample.totals;
  const hi = t[4 * r + 2 * side + 1]!;
  return hi < 0x200000 ? String(hi * TWO32 + t[4 * r + 2 * side]!) : rates.cols.counters[r * rates.cols.countersPerRow + side]!.toString();
}

/** The text frame of a sample: title, the shown rows (`order`), all rows' summed rates. */
export function renderWatchFrame(rates: WatchRates, order: Uint32Array, title: string, u: WatchUnits): string {
  const { kind, cols } = rates;
  const per = cols.countersPerRow;
  const rate = kind === 'traffic' ? (v: number) => rateText(v, u) : (v: number) => `${(Math.round(v * 10) / 10).toFixed(1)}/s`;
  const siBytes = (v: bigint) => scaledNumber(Number(v), 1000, RATE_UNITS.si.bytes);
  const total = kind === 'traffic' ? (u.si ? siBytes : humanBytes) : humanCount;
  const rows = Array.from(order, (r) => [
    keyText(cols, r), rate(rates.inRate[r]!), rate(rates.outRate[r]!), total(cols.counters[r * per]!), total(cols.counters[r * per + 1]!),
  ]);
  return `${title}\n\n${renderTable({
    headers: [keyName(kind).toUpperCase(), 'IN/s', 'OUT/s', 'TOTAL IN', 'TOTAL OUT'],
    rows,
    footer: [`all ${cols.rows}`, rate(rates.sumIn), rate(rates.sumOut), '', ''],
    align: ['left', 'right', 'right', 'right', 'right'],
  })}`;
}

/**
 * `watch --json`: one line per sample, `meta` first, then `count` (rows in the table),
 * `omitted` (rows left out by --top), `unit` and the shown rows
 * ({KEY, inRate, outRate, total: {in, out}}: rates to 0.001, totals exact). Yielded in pieces of at most
 * `chunkRows` rows, so a million rows never become one string.
 */
export function* watchJsonLine(meta: Record<string, unknown>, rates: WatchRates, order: Uint32Array, u: WatchUnits, chunkRows = 1024): Generator<string> {
  const { kind, cols } = rates;
  const mult = kind === 'traffic' && u.bits ? 8 : 1;
  const head = toJson({ ...meta, unit: rateUnit(kind, u), count: cols.rows, omitted: cols.rows - order.length }, 0);
  let piece = `${head.slice(0, -1)},"rows":[`;
  const key = kind === 'portconn' ? (r: number) => `{"port":${cols.keys[r]!}` : (r: number) => `{"ip":"${keyText(cols, r)}"`;
  for (let j = 0; j < order.length; j++) {
    const r = order[j]!;
    piece += `${j === 0 ? '' : ','}${key(r)},"inRate":${rateJson(rates.inRate[r]! * mult)},"outRate":${rateJson(rates.outRate[r]! * mult)},"total":{"in":${totalText(rates, r, 0)},"out":${totalText(rates, r, 1)}}}`;
    if ((j + 1) % chunkRows === 0) {
      yield piece;
      piece = '';
    }
  }
  yield `${piece}]}\n`;
}
