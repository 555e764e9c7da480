/**
 * Tables as columns (the shape of the addon's NativeColumns): keys in a Uint32Array, the
 * counters of every row in one BigUint64Array, exact column sums. `read` works on columns
 * whichever way the text was parsed, so no row becomes an object unless it is asked for. Pure.
 *
 * parseColumns() is the TypeScript twin of native/procparse.cc: a strict scan of the kernel's
 * exact format (header, "KEY\tN\t...\tN\n" rows, keys ascending, no leading zeros) that
 * allocates nothing per row; anything else goes through the row parsers of parse.ts, which
 * accept the lenient forms or throw the ParseError naming the line.
 */
import type { NativeColumns } from './binding.js';
import type { TableKind } from './names.js';
import {
  IPCONN_HEADER,
  PORTCONN_HEADER,
  TRAFFIC_HEADER,
  U64_MAX,
  numberToIp,
  parseIpConn,
  parsePortConn,
  parseTraffic,
  type InOut,
  type IpConnRow,
  type PortConnRow,
  type TrafficRow,
} from './parse.js';

export type { NativeColumns as Columns } from './binding.js';

export type RowOf<K extends TableKind> = K extends 'traffic' ? TrafficRow : K extends 'ipconn' ? IpConnRow : PortConnRow;
export type AnyRow = TrafficRow | IpConnRow | PortConnRow;

const TRAFFIC_GROUPS = ['total', 'tcp', 'udp', 'other'] as const;
const CONN_GROUPS = ['total', 'tcp', 'udp', 'icmp', 'other'] as const;

export function countersPerRow(kind: TableKind): 8 | 10 {
  return kind === 'traffic' ? 8 : 10;
}

/** True on little-endian machines, where a u64 is (low word, high word) in a Uint32Array view. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const TWO32 = 4294967296;

/** Columns of already parsed rows (in their order). */
export function columnsFromRows(kind: TableKind, rows: readonly AnyRow[]): NativeColumns {
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

const HEADERS: Record<TableKind, string> = {
  traffic: `${TRAFFIC_HEADER}\n`,
  ipconn: `${IPCONN_HEADER}\n`,
  portconn: `${PORTCONN_HEADER}\n`,
};

/**
 * The strict scan; undefined for anything not exactly in the kernel's format (the caller then
 * uses the row parsers, which say what is wrong).
 */
export function strictColumns(kind: TableKind, text: string): NativeColumns | undefined {
  const header = HEADERS[kind];
  if (!text.startsWith(header)) return undefined;
  const per = countersPerRow(kind);
  const len = text.length;
  // Rows are at least 2 * per + 8 characters: an upper bound of the row count, trimmed at the end.
  const cap = Math.floor((len - header.length) / (2 * per + 2)) + 1;
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
  let p = header.length;
  let rows = 0;
  let prev = -1;
  while (p < len) {
    // key
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
      if (n === 0 || n > 5 || (n > 1 && text.charCodeAt(s) === 48) || key > 65535) return undefined;
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
        if (n === 0 || n > 3 || (n > 1 && text.charCodeAt(s) === 48) || octet > 255) return undefined;
        if (o < 3) {
          if (text.charCodeAt(p) !== 46) return undefined;
          p++;
        }
        key = key * 256 + octet;
      }
    }
    if (text.charCodeAt(p) !== 9 || key <= prev) return undefined;
    prev = key;
    keys[rows] = key;
    // counters
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
      if (n === 0 || (n > 1 && text.charCodeAt(s) === 48)) return undefined;
      if (text.charCodeAt(p) !== (i === per - 1 ? 10 : 9)) return undefined;
      if (n <= 15 && LITTLE_ENDIAN) {
        const lo = v % TWO32;
        const hi = (v - lo) / TWO32;
        words[2 * (base + i)] = lo;
        words[2 * (base + i) + 1] = hi;
        sumLo[i] = sumLo[i]! + lo;
        sumHi[i] = sumHi[i]! + hi;
      } else {
        if (n > 20) return undefined;
        const b = BigInt(text.slice(s, p));
        if (b > U64_MAX) return undefined;
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
    rows,
    countersPerRow: per,
    keys: keys.subarray(0, rows),
    counters: big.subarray(0, rows * per),
    sums,
  };
}

/** Parses a table into columns: the strict scan, else parse.ts's row parsers (which throw the
 * ParseError naming the line, or accept the lenient forms, in the text's row order). */
export function parseColumns(kind: TableKind, text: string): NativeColumns {
  const c = strictColumns(kind, text);
  if (c) return c;
  const rows = kind === 'traffic' ? parseTraffic(text) : kind === 'ipconn' ? parseIpConn(text) : parsePortConn(text);
  return columnsFromRows(kind, rows);
}

const inout = (c: BigUint64Array, i: number): InOut => ({ in: c[i]!, out: c[i + 1]! });

/** Row `r` of the columns as an object (bigint counters). */
export function rowFromColumns<K extends TableKind>(kind: K, cols: NativeColumns, r: number): RowOf<K> {
  const { keys, counters: c, countersPerRow: n } = cols;
  const b = r * n;
  if (kind === 'traffic') {
    return { ip: numberToIp(keys[r]!), total: inout(c, b), tcp: inout(c, b + 2), udp: inout(c, b + 4), other: inout(c, b + 6) } as RowOf<K>;
  }
  const counters = { total: inout(c, b), tcp: inout(c, b + 2), udp: inout(c, b + 4), icmp: inout(c, b + 6), other: inout(c, b + 8) };
  return (kind === 'ipconn' ? { ip: numberToIp(keys[r]!), ...counters } : { port: keys[r]!, ...counters }) as RowOf<K>;
}

/** Every row of the columns as objects. */
export function rowsFromColumns<K extends TableKind>(kind: K, cols: NativeColumns): RowOf<K>[] {
  const rows = new Array<RowOf<K>>(cols.rows);
  for (let r = 0; r < cols.rows; r++) rows[r] = rowFromColumns(kind, cols, r);
  return rows;
}
