// `read` from columns: the one parser (src/proc/parse.ts) against the tests' oracle row parser,
// and the row formatter against the generic formatters (toJson, renderCsv, renderTable) on random
// tables with counters up to 2^64-1.
import { describe, expect, it } from 'vitest';
import { renderCsv, renderTable, toJson } from '../../src/output/format.js';
import { rowFormatter as fmt } from '../../src/output/rows.js';
import type { TableKind } from '../../src/proc/names.js';
import { parseIpConn, parsePortConn, parseTraffic } from '../lib/proc-oracle.js';
import { IPCONN_HEADER, PORTCONN_HEADER, TRAFFIC_HEADER, parseTable, rowsFromColumns, type AnyRow } from '../../src/proc/parse.js';
import { ParseError } from '../../src/core/errors.js';

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

describe('parseTable', () => {
  it.each(KINDS)('%s: equals the oracle row parser, exactly, on random tables', (kind) => {
    for (const n of [0, 1, 3, 500]) {
      const t = table(kind, n);
      const cols = parseTable(kind, t);
      const rows = parseRows(kind, t);
      expect(rowsFromColumns(kind, cols)).toEqual(rows);
      expect(cols.rows).toBe(n);
      for (let c = 0; c < cols.countersPerRow; c++) {
        let sum = 0n;
        for (let r = 0; r < n; r++) sum += cols.counters[r * cols.countersPerRow + c]!;
        expect(cols.sums[c]).toBe(sum);
      }
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
    const cols = parseTable('traffic', parts.join(''));
    expect(cols.rows).toBe(n);
    expect(cols.sums.slice(0, 3)).toEqual([BigInt(mid) * BigInt(n), BigInt(max) + BigInt(mid) * BigInt(n - 1), BigInt(n)]);
  });

  it('refuses anything but the exact format, naming the line and what is wrong', () => {
    const ok = row('10.0.0.1', 1, 2, 3, 4, 5, 6, 7, 8);
    const bad: Array<[string, string]> = [
      ['', 'traffic file: line 1: empty: the header line is missing'],
      [`${TRAFFIC_HEADER}\n${ok.slice(0, -1)}`, 'traffic file: line 2: truncated: the last line has no terminating newline (the line: "10.0.0.1\\t1\\t2\\t3\\t4\\t5\\t6\\t7\\t8")'],
      [`${TRAFFIC_HEADER}\n${row('10.0.0.1', 1, 2, 3, 4, 5, 6, 7)}`, 'line 2: only 7 of 8 counters'],
      [`${TRAFFIC_HEADER}\n${row('10.0.0.1', 1, 2, 3, 4, 5, 6, 7, 8, 9)}`, 'line 2: expected 8 counters and the end of the line'],
      [`${TRAFFIC_HEADER}\n${row('10.0.0.1', 1, 2, 3, 'x', 5, 6, 7, 8)}`, 'line 2: counter 4: not an unsigned decimal number'],
      [`${TRAFFIC_HEADER}\n${row('10.0.0.1', '18446744073709551616', 2, 3, 4, 5, 6, 7, 8)}`, 'line 2: counter 1: 18446744073709551616 is beyond 2^64-1'],
      [`${TRAFFIC_HEADER}\n${row('10.0.0.1', '118446744073709551615', 2, 3, 4, 5, 6, 7, 8)}`, 'line 2: counter 1: 118446744073709551615 is beyond 2^64-1'],
      [`${TRAFFIC_HEADER}\n${row('10.0.0.1', '01', 2, 3, 4, 5, 6, 7, 8)}`, 'line 2: counter 1: not an unsigned decimal number'],
      [`${TRAFFIC_HEADER}\n${row('10.0.0.01', 1, 2, 3, 4, 5, 6, 7, 8)}`, 'line 2: IP: not a dotted-quad IPv4 address'],
      [`${TRAFFIC_HEADER}\n${row('10.0.0.256', 1, 2, 3, 4, 5, 6, 7, 8)}`, 'line 2: IP: not a dotted-quad IPv4 address'],
      [`${TRAFFIC_HEADER}\n${row('10.0.0', 1, 2, 3, 4, 5, 6, 7, 8)}`, 'line 2: IP: not a dotted-quad IPv4 address'],
      [`${TRAFFIC_HEADER}\n${ok}${ok}`, 'line 3: IP 10.0.0.1: rows must be in ascending order, each key once (after 10.0.0.1)'],
      [`${TRAFFIC_HEADER}\n${row('10.0.0.2', 1, 2, 3, 4, 5, 6, 7, 8)}${ok}`, 'line 3: IP 10.0.0.1: rows must be in ascending order, each key once (after 10.0.0.2)'],
      [`${TRAFFIC_HEADER}\n${ok.replaceAll('\t', ' ')}`, 'line 2: IP: expected a tab after it'],
      [`${TRAFFIC_HEADER}\n${ok}\n`, 'line 3: IP: not a dotted-quad IPv4 address (the line: "")'],
      [`${IPCONN_HEADER}\n${ok}`, 'line 1: not the traffic header'],
    ];
    for (const [t, msg] of bad) {
      const e = (() => {
        try {
          parseTable('traffic', t);
        } catch (x) {
          return x;
        }
        return undefined;
      })();
      expect(e, JSON.stringify(t)).toBeInstanceOf(ParseError);
      expect((e as ParseError).message, JSON.stringify(t)).toContain(msg);
      expect((e as ParseError).exitCode).toBe(3);
    }
    expect(() => parseTable('portconn', `${PORTCONN_HEADER}\n${row(65536, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)}`)).toThrow('line 2: PORT: not a port number 0..65535 in decimal');
    expect(() => parseTable('traffic', `${TRAFFIC_HEADER}\n${ok}`, { path: '/x/T' })).not.toThrow();
    expect(() => parseTable('traffic', `${TRAFFIC_HEADER}\r\n`, { path: '/x/T' })).toThrow('/x/T: line 1: not the traffic header');
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

describe('row formatter', () => {
  it.each(KINDS)('%s: JSON, CSV and table rows equal the generic formatters, all rows or a selection', (kind) => {
    for (const n of [0, 1, 7, 300]) {
      const cols = parseTable(kind, table(kind, n));
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

  it('rejects bad arguments instead of reading out of bounds', () => {
    const cols = parseTable('traffic', table('traffic', 3));
    const widths = fmt.cellWidths('traffic', cols.keys, cols.counters);
    expect(() => fmt.formatRows('traffic', cols.keys, cols.counters, 'csv', { order: Uint32Array.of(3) })).toThrow(RangeError);
    expect(() => fmt.formatRows('ipconn', cols.keys, cols.counters, 'csv')).toThrow(RangeError);
    expect(() => fmt.formatRows('traffic', cols.keys, cols.counters, 'table', { widths: widths.map((x) => x - 1) })).toThrow(RangeError);
    expect(() => fmt.formatRows('traffic', cols.keys, cols.counters, 'table', { widths: widths.slice(1) })).toThrow(TypeError);
  });
});
