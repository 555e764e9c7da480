// `read` from columns: the TypeScript columnar parser (parse-columns.ts) against the row parsers
// and the addon's strict parser, and the row formatters (the addon's formatRows and its
// TypeScript twin) against the generic formatters (toJson, renderCsv, renderTable) on random
// tables with counters up to 2^64-1. XTT_NO_NATIVE=1 skips the addon's half.
import { describe, expect, it } from 'vitest';
import { tryLoadBinding } from '../../src/lib/binding.js';
import { renderCsv, renderTable, toJson } from '../../src/lib/format.js';
import { jsRowFormatter, nativeRowFormatter, type RowFormatter } from '../../src/lib/format-rows.js';
import type { TableKind } from '../../src/lib/names.js';
import { IPCONN_HEADER, PORTCONN_HEADER, TRAFFIC_HEADER, parseIpConn, parsePortConn, parseTraffic } from '../../src/lib/parse.js';
import { columnsFromRows, parseColumns, rowsFromColumns, strictColumns, type AnyRow } from '../../src/lib/parse-columns.js';
import { ParseError } from '../../src/lib/errors.js';

const native = process.env['XTT_NO_NATIVE'] === '1' ? undefined : tryLoadBinding().binding;
const HEADERS: Record<TableKind, string> = { traffic: TRAFFIC_HEADER, ipconn: IPCONN_HEADER, portconn: PORTCONN_HEADER };
const parseRows = (kind: TableKind, t: string): AnyRow[] => (kind === 'traffic' ? parseTraffic(t) : kind === 'ipconn' ? parseIpConn(t) : parsePortConn(t));
const row = (...f: (string | number | bigint)[]) => `${f.join('\t')}\n`;

let seed = 4242;
const rnd = (m: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % m;

/** A counter of any size: small, around 2^32, around 2^53 (both sides), or up to 2^64-1. */
function counter(): bigint {
  switch (rnd(6)) {
    case 0:
      return BigInt(rnd(1000));
    case 1:
      return (1n << 32n) + BigInt(rnd(1000)) - 500n;
    case 2:
      return (1n << 53n) + BigInt(rnd(8)) - 4n;
    case 3:
      return (1n << 64n) - 1n - BigInt(rnd(3));
    case 4:
      return (BigInt(rnd(2147483648)) << 21n) + BigInt(rnd(2097152)); // below 2^52
    default:
      return (BigInt(rnd(2147483648)) << 33n) + BigInt(rnd(2147483648));
  }
}

/** A table in the kernel's exact format: ascending keys, `n` rows. */
function table(kind: TableKind, n: number): string {
  const per = kind === 'traffic' ? 8 : 10;
  const parts = [`${HEADERS[kind]}\n`];
  let k = kind === 'portconn' ? 0 : rnd(4) === 0 ? 0 : 0x0a000000;
  for (let i = 0; i < n; i++) {
    const key = kind === 'portconn' ? String(k) : `${k >>> 24}.${(k >>> 16) & 255}.${(k >>> 8) & 255}.${k & 255}`;
    parts.push(row(key, ...Array.from({ length: per }, counter)));
    k += 1 + rnd(kind === 'portconn' ? 20 : 300);
  }
  if (kind === 'portconn' && n > 0) parts[parts.length - 1] = row(65535, ...Array.from({ length: per }, counter));
  return parts.join('');
}

const KINDS: TableKind[] = ['traffic', 'ipconn', 'portconn'];

describe('parseColumns (TypeScript)', () => {
  it.each(KINDS)('%s: equals the row parser, exactly, on random tables', (kind) => {
    for (const n of [0, 1, 3, 500]) {
      const t = table(kind, n);
      const cols = strictColumns(kind, t);
      expect(cols, 'the strict scan takes the exact format').toBeDefined();
      const rows = parseRows(kind, t);
      expect(rowsFromColumns(kind, cols!)).toEqual(rows);
      expect(cols).toEqual(columnsFromRows(kind, rows));
      if (native) expect(native.parseColumns(Buffer.from(t, 'latin1'), kind)).toEqual(cols);
    }
  });

  it('column sums are exact past 2^64 and past 2^20 rows of large values', () => {
    const n = (1 << 20) + 3;
    const max = '18446744073709551615'; // 2^64-1 (the BigInt path), on the first row
    const mid = '999999999999999'; // 15 digits: the double path
    const parts = [`${TRAFFIC_HEADER}\n10.255.255.255\t${mid}\t${max}\t1\t0\t0\t0\t0\t0\n`];
    const tail = `\t${mid}\t${mid}\t1\t0\t0\t0\t0\t0\n`;
    const oct = Array.from({ length: 256 }, (_, i) => `${i}.`);
    const last = Array.from({ length: 256 }, (_, i) => `${i}${tail}`);
    for (let i = 0; i < n - 1; i++) parts.push(`11.${oct[(i >>> 16) & 255]}${oct[(i >>> 8) & 255]}${last[i & 255]}`);
    const cols = strictColumns('traffic', parts.join(''))!;
    expect(cols.rows).toBe(n);
    expect(cols.sums.slice(0, 3)).toEqual([BigInt(mid) * BigInt(n), BigInt(max) + BigInt(mid) * BigInt(n - 1), BigInt(n)]);
  });

  it('declines what the addon declines; parseColumns then gives the row parser\'s answer or error', () => {
    const ok = row('10.0.0.1', 1, 2, 3, 4, 5, 6, 7, 8);
    const declined = [
      '',
      `${TRAFFIC_HEADER}\n${ok.slice(0, -1)}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0.1', 1, 2, 3, 4, 5, 6, 7)}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0.1', 1, 2, 3, 4, 5, 6, 7, 8, 9)}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0.1', 1, 2, 3, 'x', 5, 6, 7, 8)}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0.1', '18446744073709551616', 2, 3, 4, 5, 6, 7, 8)}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0.1', '118446744073709551615', 2, 3, 4, 5, 6, 7, 8)}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0.1', '01', 2, 3, 4, 5, 6, 7, 8)}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0.01', 1, 2, 3, 4, 5, 6, 7, 8)}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0.256', 1, 2, 3, 4, 5, 6, 7, 8)}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0', 1, 2, 3, 4, 5, 6, 7, 8)}`,
      `${TRAFFIC_HEADER}\n${ok}${ok}`,
      `${TRAFFIC_HEADER}\n${row('10.0.0.2', 1, 2, 3, 4, 5, 6, 7, 8)}${ok}`,
      `${TRAFFIC_HEADER}\n${ok.replaceAll('\t', ' ')}`,
      `${TRAFFIC_HEADER}\n${ok}\n`,
      `${IPCONN_HEADER}\n${ok}`,
    ];
    for (const t of declined) {
      expect(strictColumns('traffic', t), JSON.stringify(t)).toBeUndefined();
      if (native) expect(native.parseColumns(Buffer.from(t, 'latin1'), 'traffic'), JSON.stringify(t)).toBeUndefined();
      let want: unknown;
      try {
        want = columnsFromRows('traffic', parseTraffic(t));
      } catch (e) {
        want = e;
      }
      if (want instanceof ParseError) {
        expect(() => parseColumns('traffic', t)).toThrow(want.message);
      } else {
        expect(parseColumns('traffic', t)).toEqual(want);
      }
    }
    expect(strictColumns('portconn', `${PORTCONN_HEADER}\n${row(65536, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)}`)).toBeUndefined();
    // the error names the line, as before
    expect(() => parseColumns('traffic', `${TRAFFIC_HEADER}\n${ok}${row('10.0.0.2', 1, 2, 1, 'x', 0, 0, 0, 0)}`)).toThrow(
      'traffic line 3: tcp_out: not an unsigned decimal number: "x"',
    );
    // lenient forms (spaces, out of order) keep the text's row order
    const lenient = `${TRAFFIC_HEADER}\n10.0.0.2  1 2 1 2 0 0 0 0\n${ok}`;
    expect(rowsFromColumns('traffic', parseColumns('traffic', lenient)).map((r) => r.ip)).toEqual(['10.0.0.2', '10.0.0.1']);
  });
});

/** What each style prints for `rows`, through the generic formatters. */
function reference(kind: TableKind, rows: AnyRow[], style: 'json' | 'csv' | 'table', widths: number[]): string {
  const groups = kind === 'traffic' ? ['total', 'tcp', 'udp', 'other'] : ['total', 'tcp', 'udp', 'icmp', 'other'];
  const cells = (r: AnyRow) => {
    const o = r as unknown as Record<string, { in: bigint; out: bigint }> & { ip?: string; port?: number };
    return [o.ip ?? String(o.port), ...groups.flatMap((g) => [o[g]!.in.toString(), o[g]!.out.toString()])];
  };
  if (style === 'json') {
    // the "rows" array of toJson at depth 1, without its brackets
    const s = toJson({ rows });
    return rows.length ? s.slice(s.indexOf('[') + 2, s.lastIndexOf(']') - 3) : '';
  }
  if (style === 'csv') return rows.length ? renderCsv(['h'], rows.map(cells)).slice(2) : '';
  // a header of the given widths forces them; drop its line
  const headers = widths.map((w) => 'h'.repeat(w));
  const t = renderTable({ headers, rows: rows.map(cells), align: widths.map((_, i) => (i === 0 ? 'left' : 'right')) });
  return t.slice(t.indexOf('\n') + 1);
}

const formatters: Array<[string, RowFormatter]> = [['TypeScript', jsRowFormatter]];
if (native) formatters.push(['addon', nativeRowFormatter(native)]);

describe.each(formatters)('row formatter (%s)', (_name, fmt) => {
  it.each(KINDS)('%s: JSON, CSV and table rows equal the generic formatters, all rows or a selection', (kind) => {
    for (const n of [0, 1, 7, 300]) {
      const cols = strictColumns(kind, table(kind, n))!;
      const all = rowsFromColumns(kind, cols);
      const orders: Array<Uint32Array | undefined> = [undefined, new Uint32Array(0)];
      if (n > 0) orders.push(Uint32Array.from({ length: Math.min(n, 5) }, () => rnd(n)), Uint32Array.from({ length: n }, (_, i) => n - 1 - i));
      for (const order of orders) {
        const rows = order ? Array.from(order, (i) => all[i]!) : all;
        const w = fmt.cellWidths(kind, cols.keys, cols.counters, order);
        const widths = w.map((x, i) => x + (i % 3)); // some wider than their cells
        for (const style of ['json', 'csv', 'table'] as const) {
          const got = fmt.formatRows(kind, cols.keys, cols.counters, style, { order, widths, prefix: '<', suffix: '>' });
          expect(Buffer.from(got).toString('latin1'), `${kind} ${n} ${style}`).toBe(`<${reference(kind, rows, style, widths)}>`);
        }
        // the widths are the widest cells
        const want = Array.from({ length: w.length }, (_, c) => Math.max(0, ...rows.map((r) => reference(kind, [r], 'csv', []).trimEnd().split(',')[c]!.length)));
        expect(w).toEqual(want);
      }
    }
  });

  it('agrees with the other formatter byte for byte on a large table', () => {
    const cols = strictColumns('traffic', table('traffic', 20000))!;
    for (const style of ['json', 'csv', 'table'] as const) {
      const widths = jsRowFormatter.cellWidths('traffic', cols.keys, cols.counters);
      const a = fmt.formatRows('traffic', cols.keys, cols.counters, style, { widths });
      const b = jsRowFormatter.formatRows('traffic', cols.keys, cols.counters, style, { widths });
      expect(Buffer.compare(Buffer.from(a), Buffer.from(b)), style).toBe(0);
    }
  });

  it('rejects bad arguments instead of reading out of bounds', () => {
    const cols = strictColumns('traffic', table('traffic', 3))!;
    const widths = fmt.cellWidths('traffic', cols.keys, cols.counters);
    expect(() => fmt.formatRows('traffic', cols.keys, cols.counters, 'csv', { order: Uint32Array.of(3) })).toThrow(RangeError);
    expect(() => fmt.formatRows('ipconn', cols.keys, cols.counters, 'csv')).toThrow(RangeError);
    expect(() => fmt.formatRows('traffic', cols.keys, cols.counters, 'table', { widths: widths.map((x) => x - 1) })).toThrow(RangeError);
    expect(() => fmt.formatRows('traffic', cols.keys, cols.counters, 'table', { widths: widths.slice(1) })).toThrow(TypeError);
  });
});
