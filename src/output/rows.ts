/**
 * The rows of `read` output (JSON, CSV, aligned table) straight from columns into bytes, with no
 * per-row objects. Counters below 2^53 are formatted as numbers; only larger ones become
 * bigints, so the output stays exact. Pure.
 */
import type { TableKind } from '../proc/names.js';
import { LITTLE_ENDIAN, countersPerRow, keyText, type KeyColumn } from '../proc/parse.js';

export type RowStyle = 'json' | 'csv' | 'table';

export interface FormatRowsOptions {
  /** Rows to print, in this order (indexes into keys); default every row in order. */
  order?: Uint32Array | undefined;
  /** Table style: the width of each column (key, then the counters), at least its widest cell. */
  widths?: number[] | undefined;
  /** Text before the first row and after the last (ASCII). */
  prefix?: string | undefined;
  suffix?: string | undefined;
}

/**
 * JSON: each row as an element of the "rows" array of `read --json` (indented by 4), joined by
 * ",\n" with no newline after the last; CSV: "key,n,...\n" per row; table: the cells padded to
 * `widths` (key left-aligned, counters right-aligned), two spaces apart, "\n" after each row.
 */
export interface RowFormatter {
  /** The widest cell of each column (key, then each counter) over the rows; 0 without rows. */
  cellWidths(kind: TableKind, keys: Keys, counters: BigUint64Array, order?: Uint32Array): number[];
  /** prefix + the rows + suffix. */
  formatRows(kind: TableKind, keys: Keys, counters: BigUint64Array, style: RowStyle, opts?: FormatRowsOptions): Uint8Array;
}

/**
 * The keys: a KeyColumn (Columns is one), or a bare Uint32Array of IPv4 addresses (traffic,
 * ipconn) or ports (portconn), one per row.
 */
export type Keys = Uint32Array | KeyColumn;

function keyColumn(kind: TableKind, keys: Keys): KeyColumn {
  if (!(keys instanceof Uint32Array)) return keys;
  return kind === 'portconn' ? { family: 'port', keyWords: 1, keyPrefix: 16, keys } : { family: 'ipv4', keyWords: 1, keyPrefix: 32, keys };
}

/** True when keys print straight from their number (IPv4 without /LEN, ports): no string per row. */
function plainKeys(k: KeyColumn): boolean {
  return k.family === 'port' || (k.family === 'ipv4' && k.keyPrefix === 32);
}

const TWO32 = 4294967296;
const HI_EXACT = 0x200000; // high words below this: the value is below 2^53

function wordsOf(counters: BigUint64Array): Uint32Array | undefined {
  return LITTLE_ENDIAN ? new Uint32Array(counters.buffer, counters.byteOffset, counters.length * 2) : undefined;
}

function digitCount(v: number): number {
  let n = 1;
  while (v >= 10) {
    v = Math.floor(v / 10);
    n++;
  }
  return n;
}

function jsonPieces(kind: TableKind): { open: Uint8Array; before: Uint8Array[]; close: Uint8Array; zeros: Uint8Array[][] } {
  const port = kind === 'portconn';
  const groups = kind === 'traffic' ? ['total', 'tcp', 'udp', 'other'] : ['total', 'tcp', 'udp', 'icmp', 'other'];
  const before: string[] = [];
  groups.forEach((g, j) => {
    before.push(`${j === 0 ? (port ? '' : '"') + ',\n' : '\n      },\n'}      "${g}": {\n        "in": `, ',\n        "out": ');
  });
  const enc = (x: string) => Buffer.from(x, 'latin1');
  // zeros[i][j]: counters i..j-1 all 0, each with the text before it, as one piece (one copy
  // where there were 2 * (j - i): most rows have zero counters, e.g. no TCP or no other traffic)
  const zeros = before.map((_, i) => Array.from({ length: before.length + 1 }, (_, j) => enc(before.slice(i, j).map((x) => `${x}0`).join(''))));
  return { open: enc(`    {\n      "${port ? 'port' : 'ip'}": ${port ? '' : '"'}`), before: before.map(enc), close: enc('\n      }\n    }'), zeros };
}

/** Bytes written at `pos` (ASCII text and decimal numbers); the buffer is sized up front. */
class Bytes {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  text(s: string): void {
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  bytes(x: Uint8Array): void {
    this.buf.set(x, this.pos);
    this.pos += x.length;
  }

  spaces(n: number): void {
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = 32;
    this.pos = p;
  }

  /** v below 2^53, in `len` digits (digitCount(v)). */
  number(v: number, len: number): void {
    const b = this.buf;
    let p = this.pos + len;
    this.pos = p;
    while (v >= 4294967296) {
      const q = Math.floor(v / 10);
      b[--p] = 48 + (v - q * 10);
      v = q;
    }
    let u = v >>> 0;
    do {
      const q = (u / 10) >>> 0;
      b[--p] = 48 + (u - q * 10);
      u = q;
    } while (u !== 0);
  }

  key(kind: TableKind, k: number): void {
    if (kind === 'portconn') {
      this.number(k, digitCount(k));
      return;
    }
    for (let s = 24; s >= 0; s -= 8) {
      const o = (k >>> s) & 255;
      this.number(o, o < 10 ? 1 : o < 100 ? 2 : 3);
      if (s) this.buf[this.pos++] = 46;
    }
  }
}

function keyLength(kind: TableKind, k: number): number {
  if (kind === 'portconn') return digitCount(k);
  let n = 3;
  for (let s = 24; s >= 0; s -= 8) {
    const o = (k >>> s) & 255;
    n += o < 10 ? 1 : o < 100 ? 2 : 3;
  }
  return n;
}

/** Counter i: its value as a number (exact), or its decimal text when it is 2^53 or more. */
function counterValue(counters: BigUint64Array, words: Uint32Array | undefined, i: number): number | string {
  if (words !== undefined) {
    const hi = words[2 * i + 1]!;
    if (hi < HI_EXACT) return hi * TWO32 + words[2 * i]!;
  }
  return counters[i]!.toString();
}

export const rowFormatter: RowFormatter = {
  cellWidths(kind, keyArg, counters, order) {
    const per = countersPerRow(kind);
    const words = wordsOf(counters);
    const w = new Array<number>(per + 1).fill(0);
    const kc = keyColumn(kind, keyArg);
    const keys = kc.keys;
    const plain = plainKeys(kc);
    const n = order ? order.length : keys.length / kc.keyWords;
    for (let j = 0; j < n; j++) {
      const r = order ? order[j]! : j;
      w[0] = Math.max(w[0]!, plain ? keyLength(kind, keys[r]!) : keyText(kc, r).length);
      for (let i = 0; i < per; i++) {
        const v = counterValue(counters, words, r * per + i);
        w[i + 1] = Math.max(w[i + 1]!, typeof v === 'number' ? digitCount(v) : v.length);
      }
    }
    return w;
  },
  formatRows(kind, keyArg, counters, style, opts = {}) {
    const per = countersPerRow(kind);
    const kc = keyColumn(kind, keyArg);
    const keys = kc.keys;
    const plain = plainKeys(kc);
    const rows = keys.length / kc.keyWords;
    if (counters.length !== rows * per) throw new RangeError(`counters must hold ${per} values per key`);
    const { order, widths } = opts;
    const n = order ? order.length : rows;
    for (let j = 0; j < n && order; j++) if (order[j]! >= rows) throw new RangeError('order: row index out of range');
    if (style === 'table' && widths?.length !== per + 1) throw new TypeError(`widths must be an array of ${per + 1} numbers`);
    const prefix = Buffer.from(opts.prefix ?? '', 'utf8');
    const suffix = Buffer.from(opts.suffix ?? '', 'utf8');
    const json = style === 'json' ? jsonPieces(kind) : undefined;
    // An upper bound of a row: its fixed text, a key (15 characters; 18 with /LEN; IPv6: 43) and 20-digit counters.
    let row = (kc.family === 'ipv6' ? 44 : 19) + per * 21;
    if (json) row += json.open.length + json.close.length + 2 + json.before.reduce((a, x) => a + x.length, 0);
    if (style === 'table') row = widths!.reduce((a, w) => a + w + 2, 0);
    const out = new Bytes(Buffer.allocUnsafe(prefix.length + suffix.length + row * n));
    out.buf.set(prefix, 0);
    out.pos = prefix.length;
    const words = wordsOf(counters);
    for (let j = 0; j < n; j++) {
      const r = order ? order[j]! : j;
      const b = r * per;
      if (json) {
        if (j) out.text(',\n');
        out.bytes(json.open);
        if (plain) out.key(kind, keys[r]!);
        else out.text(keyText(kc, r));
        for (let i = 0; i < per; i++) {
          if (words !== undefined && words[2 * (b + i)] === 0 && words[2 * (b + i) + 1] === 0) {
            let z = i + 1;
            while (z < per && words[2 * (b + z)] === 0 && words[2 * (b + z) + 1] === 0) z++;
            out.bytes(json.zeros[i]![z]!);
            i = z - 1;
            continue;
          }
          out.bytes(json.before[i]!);
          const v = counterValue(counters, words, b + i);
          if (typeof v === 'number') out.number(v, digitCount(v));
          else out.text(v);
        }
        out.bytes(json.close);
      } else if (style === 'csv') {
        if (plain) out.key(kind, keys[r]!);
        else out.text(keyText(kc, r));
        for (let i = 0; i < per; i++) {
          out.buf[out.pos++] = 44;
          const v = counterValue(counters, words, b + i);
          if (typeof v === 'number') out.number(v, digitCount(v));
          else out.text(v);
        }
        out.buf[out.pos++] = 10;
      } else {
        const kt = plain ? undefined : keyText(kc, r);
        const kl = kt === undefined ? keyLength(kind, keys[r]!) : kt.length;
        if (kl > widths![0]!) throw new RangeError('widths: narrower than a cell, or not a number');
        if (kt === undefined) out.key(kind, keys[r]!);
        else out.text(kt);
        out.spaces(widths![0]! - kl);
        for (let i = 0; i < per; i++) {
          const v = counterValue(counters, words, b + i);
          const len = typeof v === 'number' ? digitCount(v) : v.length;
          if (len > widths![i + 1]!) throw new RangeError('widths: narrower than a cell, or not a number');
          out.spaces(2 + widths![i + 1]! - len);
          if (typeof v === 'number') out.number(v, len);
          else out.text(v);
        }
        out.buf[out.pos++] = 10;
      }
    }
    out.buf.set(suffix, out.pos);
    out.pos += suffix.length;
    return out.buf.subarray(0, out.pos);
  },
};
