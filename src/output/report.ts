/**
 * What `read` and `watch` show: sorting, top N, totals and the three output forms. Pure.
 */
import { UsageError } from '../core/errors.js';
import { ipToNumber } from '../core/ip.js';
import type { TableKind } from '../proc/names.js';
import { LITTLE_ENDIAN, groupsOf, rowFromColumns, type Columns, type InOut, type IpConnRow, type PortConnRow, type TrafficRow } from '../proc/parse.js';
import { humanBytes, humanCount, humanRate, renderTable, type Align } from './format.js';
import { rowFormatter as fmt } from './rows.js';

export type Row = TrafficRow | IpConnRow | PortConnRow;

export function keyName(kind: TableKind): 'ip' | 'port' {
  return kind === 'portconn' ? 'port' : 'ip';
}

function keyOf(r: Row): string {
  return 'port' in r ? String(r.port) : r.ip;
}

function keyOrder(r: Row): number {
  return 'port' in r ? r.port : ipToNumber(r.ip);
}

function group(r: Row, g: string): InOut {
  return (r as unknown as Record<string, InOut>)[g]!;
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

/** True when the keys strictly ascend (the kernel's order; the lenient parser keeps any order). */
function ascending(keys: Uint32Array): boolean {
  for (let r = 1; r < keys.length; r++) if (keys[r]! <= keys[r - 1]!) return false;
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
  const keys = cols.keys;
  const limit = Math.min(top ?? n, n);
  if (key === undefined || (key === keyName(kind) && ascending(keys))) return limit === n ? undefined : firstN(limit);
  if (key === keyName(kind)) return firstN(n).sort((a, b) => keys[a]! - keys[b]!).subarray(0, limit);
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
  const before = (va: number | bigint, a: number, vb: number | bigint, b: number) => va > vb || (va == vb && keys[a]! < keys[b]!);
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
  const { keys, counters } = rep.columns;
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
  return fmt.formatRows(rep.kind, rep.columns.keys, rep.columns.counters, 'csv', {
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
    : `{\n    "netbase": ${JSON.stringify(c.netbase)},\n    "netmask": ${JSON.stringify(c.netmask)},\n    "options": ${c.options.length === 0 ? '[]' : `[\n${c.options.map((w) => `      ${JSON.stringify(w)}`).join(',\n')}\n    ]`}\n  }`;
  const head = `{\n  "table": ${JSON.stringify(rep.table)},\n  "kind": "${rep.kind}",\n  "time": ${JSON.stringify(rep.time)},\n  "host": ${JSON.stringify(rep.host)},\n  "config": ${config},\n  "cleared": ${rep.cleared},\n  "count": ${rep.count},\n  "rows": `;
  const tail = `,\n  "totals": {\n${counters(rep.totals, '    ')}\n  }\n}\n`;
  if (printedCount(rep) === 0) return Buffer.from(`${head}[]${tail}`, 'utf8');
  return fmt.formatRows(rep.kind, rep.columns.keys, rep.columns.counters, 'json', { order: rep.order, prefix: `${head}[\n`, suffix: `\n  ]${tail}` });
}

// ---------------------------------------------------------------------------------------------
// watch

export interface RateRow {
  key: string;
  order: number;
  /** bytes (or connections) per second since the previous sample */
  inRate: number;
  outRate: number;
  total: InOut;
}

/**
 * Per-second rates between two samples. With `cumulative` false (a --clearonread table, where
 * every read returns only what came since the previous one) the values are already deltas.
 * A counter that went down (the table was cleared in between) counts from zero.
 */
export function ratesOf(prev: Map<string, InOut> | undefined, rows: Row[], seconds: number, cumulative: boolean): RateRow[] {
  const out: RateRow[] = [];
  for (const r of rows) {
    const key = keyOf(r);
    const t = group(r, 'total');
    const p = cumulative ? prev?.get(key) : undefined;
    const din = p && t.in >= p.in ? t.in - p.in : prev || !cumulative ? t.in : 0n;
    const dout = p && t.out >= p.out ? t.out - p.out : prev || !cumulative ? t.out : 0n;
    out.push({ key, order: keyOrder(r), inRate: Number(din) / seconds, outRate: Number(dout) / seconds, total: t });
  }
  return out.sort((a, b) => b.inRate + b.outRate - (a.inRate + a.outRate) || a.order - b.order);
}

export function renderWatch(kind: TableKind, title: string, rates: RateRow[], top: number): string {
  const human = kind === 'traffic' ? humanRate : (v: number) => `${(Math.round(v * 10) / 10).toFixed(1)}/s`;
  const total = kind === 'traffic' ? humanBytes : humanCount;
  const rows = rates.slice(0, top).map((r) => [r.key, human(r.inRate), human(r.outRate), total(r.total.in), total(r.total.out)]);
  const sumIn = rates.reduce((s, r) => s + r.inRate, 0);
  const sumOut = rates.reduce((s, r) => s + r.outRate, 0);
  return `${title}\n\n${renderTable({
    headers: [keyName(kind).toUpperCase(), 'IN/s', 'OUT/s', 'TOTAL IN', 'TOTAL OUT'],
    rows,
    footer: [`all ${rates.length}`, human(sumIn), human(sumOut), '', ''],
    align: ['left', 'right', 'right', 'right', 'right'],
  })}`;
}
