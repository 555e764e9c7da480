/**
 * The tests' oracles of `read`'s selection and totals: the object-based twins of
 * src/output/report.ts (which works on columns), kept here to check it.
 */
import { UsageError } from '../../src/core/errors.js';
import { ipToNumber } from '../../src/core/ip.js';
import type { TableKind } from '../../src/proc/names.js';
import { groupsOf, rowFromColumns, type AnyRow, type Columns, type InOut } from '../../src/proc/parse.js';
import { keyName, sortKeys, type ReadReport, type Row } from '../../src/output/report.js';

const TRAFFIC_GROUPS = ['total', 'tcp', 'udp', 'other'] as const;
const CONN_GROUPS = ['total', 'tcp', 'udp', 'icmp', 'other'] as const;

function countersPerRow(kind: TableKind): 8 | 10 {
  return kind === 'traffic' ? 8 : 10;
}

function reportRows(rep: ReadReport): Row[] {
  const n = rep.order ? rep.order.length : rep.columns.rows;
  return Array.from({ length: n }, (_, j) => rowFromColumns(rep.kind, rep.columns, rep.order ? rep.order[j]! : j));
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


/** A row's value for a sort key (in+out for a group name; in/out alone mean total). */
export function sortValue(r: Row, key: string): bigint {
  if (key === 'in' || key === 'out') return group(r, 'total')[key];
  const m = /^([a-z]+)_(in|out)$/.exec(key);
  if (m) return group(r, m[1]!)[m[2] as 'in' | 'out'];
  const g = group(r, key);
  return g.in + g.out;
}

/**
 * Sorts (counters descending, ties and the key itself ascending) and keeps the first `top`.
 * Without a sort key, --top sorts by total; without either, the kernel's order (key ascending).
 */
export function selectRows<R extends Row>(kind: TableKind, rows: R[], sort?: string, top?: number): R[] {
  const key = sort ?? (top !== undefined ? 'total' : undefined);
  if (key !== undefined && !sortKeys(kind).includes(key)) {
    throw new UsageError(`--sort ${key}: not a column of ${kind} tables`, { hint: `use one of: ${sortKeys(kind).join(', ')}` });
  }
  let out = rows;
  if (key !== undefined && key !== keyName(kind)) {
    out = rows
      .map((r) => ({ r, v: sortValue(r, key), k: keyOrder(r) }))
      .sort((a, b) => (a.v === b.v ? a.k - b.k : a.v < b.v ? 1 : -1))
      .map((x) => x.r);
  } else if (key === keyName(kind)) {
    out = [...rows].sort((a, b) => keyOrder(a) - keyOrder(b));
  }
  return top !== undefined ? out.slice(0, top) : out;
}

type Totals = Record<string, InOut>;

/** Sum of every row per group and direction (exact: bigint). */
export function totalsOf(kind: TableKind, rows: Row[]): Totals {
  const t: Totals = {};
  for (const g of groupsOf(kind)) t[g] = { in: 0n, out: 0n };
  for (const r of rows) {
    for (const g of groupsOf(kind)) {
      const a = t[g]!;
      const b = group(r, g);
      a.in += b.in;
      a.out += b.out;
    }
  }
  return t;
}


/** Columns of already parsed rows (in their order). */
export function columnsFromRows(kind: TableKind, rows: readonly AnyRow[]): Columns {
  const groups = kind === 'traffic' ? TRAFFIC_GROUPS : CONN_GROUPS;
  const per = countersPerRow(kind);
  const keys = new Uint32Array(rows.length);
  const counters = new BigUint64Array(rows.length * per);
  const sums = new Array<bigint>(per).fill(0n);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]! as unknown as Record<string, unknown>;
    keys[i] = 'port' in r ? (r['port'] as number) : ipNumber(r['ip'] as string);
    for (let j = 0; j < groups.length; j++) {
      const v = r[groups[j]!] as InOut;
      counters[i * per + 2 * j] = v.in;
      counters[i * per + 2 * j + 1] = v.out;
      sums[2 * j] = sums[2 * j]! + v.in;
      sums[2 * j + 1] = sums[2 * j + 1]! + v.out;
    }
  }
  return { rows: rows.length, countersPerRow: per, keys, counters, sums };
}

function ipNumber(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
}


/** `read --json` as an object: counters as exact JSON integers through toJson(). */
export function readJson(rep: ReadReport): unknown {
  return { table: rep.table, kind: rep.kind, time: rep.time, host: rep.host, config: rep.config, cleared: rep.cleared, count: rep.count, rows: reportRows(rep), totals: rep.totals };
}

