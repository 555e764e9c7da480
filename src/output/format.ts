/**
 * Output formatting: aligned tables, CSV, JSON with exact 64-bit numbers, human sizes. Pure.
 */

/** JSON with bigints written as exact integers (JSON has no size limit on numbers; a reader
 * that wants them exact must parse them as such, e.g. `jq` 1.7, Python, or a JSON reviver).
 * Otherwise as JSON.stringify: toJSON() is honoured, undefined members are left out. */
export function toJson(value: unknown, indent = 2): string {
  const pad = (depth: number) => (indent ? `\n${' '.repeat(indent * depth)}` : '');
  const colon = indent ? ': ' : ':';
  const ser = (v: unknown, depth: number): string | undefined => {
    if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      v = (v as { toJSON(): unknown }).toJSON();
    }
    switch (typeof v) {
      case 'bigint':
        return v.toString();
      case 'undefined':
      case 'function':
      case 'symbol':
        return undefined;
      case 'object': {
        if (v === null) return 'null';
        if (Array.isArray(v)) {
          if (v.length === 0) return '[]';
          const items = v.map((x) => ser(x, depth + 1) ?? 'null');
          return `[${items.map((x) => pad(depth + 1) + x).join(',')}${pad(depth)}]`;
        }
        const entries: string[] = [];
        for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
          const s = ser(x, depth + 1);
          if (s !== undefined) entries.push(`${pad(depth + 1)}${JSON.stringify(k)}${colon}${s}`);
        }
        return entries.length === 0 ? '{}' : `{${entries.join(',')}${pad(depth)}}`;
      }
      default:
        return JSON.stringify(v);
    }
  };
  return ser(value, 0) ?? 'null';
}

const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
const SI = ['', 'k', 'M', 'G', 'T', 'P', 'E'];

function scaled(v: bigint, base: bigint, units: string[], sep: string): string {
  if (v < base) return `${v}${sep}${units[0]}`.trimEnd();
  let unit = 0;
  let div = 1n;
  while (unit < units.length - 1 && v >= div * base) {
    div *= base;
    unit++;
  }
  // One decimal, rounded half up, computed in bigint so 2^64 stays exact.
  let tenths = (v * 10n + div / 2n) / div;
  if (tenths >= base * 10n && unit < units.length - 1) {
    div *= base;
    unit++;
    tenths = (v * 10n + div / 2n) / div;
  }
  return `${tenths / 10n}.${tenths % 10n}${sep}${units[unit]}`;
}

/** 1536n -> "1.5 KiB"; below 1 KiB plain bytes ("512 B"). */
export function humanBytes(v: bigint): string {
  return scaled(v, 1024n, IEC, ' ');
}

/** 1500n -> "1.5k" (connection counts). */
export function humanCount(v: bigint): string {
  return scaled(v, 1000n, SI, '');
}

/** A per-second rate in bytes: "1.5 KiB/s". */
export function humanRate(bytesPerSecond: number): string {
  return `${humanBytes(BigInt(Math.max(0, Math.round(bytesPerSecond))))}/s`;
}

export type Align = 'left' | 'right';

export interface TableText {
  headers: string[];
  rows: string[][];
  /** Optional last row, set off by a rule line. */
  footer?: string[];
  align: Align[];
}

/** Columns separated by two spaces, padded to the widest cell; no trailing spaces. */
export function renderTable(t: TableText): string {
  const all = [t.headers, ...t.rows, ...(t.footer ? [t.footer] : [])];
  // a loop, not Math.max(...cells): a spread of a million arguments overflows the stack
  const widths = t.headers.map((_, c) => {
    let w = 0;
    for (const r of all) w = Math.max(w, (r[c] ?? '').length);
    return w;
  });
  const line = (r: string[]) =>
    r
      .map((cell, c) => (t.align[c] === 'right' ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  const out = [line(t.headers), ...t.rows.map(line)];
  if (t.footer) {
    out.push(widths.map((w) => '-'.repeat(w)).join('  '));
    out.push(line(t.footer));
  }
  return `${out.join('\n')}\n`;
}

function csvCell(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function renderCsv(headers: string[], rows: string[][]): string {
  return [headers, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}
