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


/**
 * Columns of already parsed rows (in their order). IP keys: "a.b.c.d" or "a.b.c.d/LEN", or IPv6
 * (RFC 5952, with or without /LEN), one family and one length for all rows.
 */
export function columnsFromRows(kind: TableKind, rows: readonly AnyRow[]): Columns {
  const groups = kind === 'traffic' ? TRAFFIC_GROUPS : CONN_GROUPS;
  const per = countersPerRow(kind);
  const first = rows[0] as unknown as Record<string, unknown> | undefined;
  const firstIp = kind === 'portconn' || first === undefined ? '' : String(first['ip']);
  const v6 = firstIp.includes(':');
  const slash = firstIp.indexOf('/');
  const keyPrefix = kind === 'portconn' ? 16 : slash >= 0 ? Number(firstIp.slice(slash + 1)) : v6 ? 128 : 32;
  const keys = new Uint32Array(rows.length * (v6 ? 4 : 1));
  const counters = new BigUint64Array(rows.length * per);
  const sums = new Array<bigint>(per).fill(0n);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]! as unknown as Record<string, unknown>;
    if (v6) keys.set(ip6Words((r['ip'] as string).split('/')[0]!), 4 * i);
    else keys[i] = 'port' in r ? (r['port'] as number) : ipNumber((r['ip'] as string).split('/')[0]!);
    for (let j = 0; j < groups.length; j++) {
      const v = r[groups[j]!] as InOut;
      counters[i * per + 2 * j] = v.in;
      counters[i * per + 2 * j + 1] = v.out;
      sums[2 * j] = sums[2 * j]! + v.in;
      sums[2 * j + 1] = sums[2 * j + 1]! + v.out;
    }
  }
  return {
    rows: rows.length, countersPerRow: per, family: kind === 'portconn' ? 'port' : v6 ? 'ipv6' : 'ipv4', keyWords: v6 ? 4 : 1, keyPrefix, keys, counters, sums,
  };
}

/** An IPv6 address's 4 words, by BigInt (independent of src/core/ip.ts). */
function ip6Words(s: string): number[] {
  let [head, tail] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  let groups: string[] = head === '' ? [] : head.split(':');
  if (tail !== undefined) {
    const t = tail === '' ? [] : tail.split(':');
    const last = t[t.length - 1];
    if (last !== undefined && last.includes('.')) {
      const q = ipNumber(last);
      t.splice(t.length - 1, 1, (q >>> 16).toString(16), (q & 0xffff).toString(16));
    }
    groups = [...groups, ...Array<string>(8 - groups.length - t.length).fill('0'), ...t];
  }
  const v = groups.reduce((a, g) => (a << 16n) | BigInt(`0x${g}`), 0n);
  return [0, 1, 2, 3].map((i) => Number((v >> BigInt(96 - 32 * i)) & 0xffffffffn));
}

function ipNumber(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
}


/** `read --json` as an object: counters as exact JSON integers through toJson(). */
export function readJson(rep: ReadReport): unknown {
  return { table: rep.table, kind: rep.kind, time: rep.time, host: rep.host, config: rep.config, cleared: rep.cleared, count: rep.count, rows: reportRows(rep), totals: rep.totals };
}

