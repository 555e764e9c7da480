// The parser's fast path for IPv4 rows (src/proc/parse.ts rowFast4): a row it does not take
// (a counter of 16+ digits, a bad row) goes to the general code, which must see the row as if
// the fast path had not touched it: exact sums, the same errors with the same line numbers;
// and the rows formatted from such columns are the generic text.
import { describe, expect, it } from 'vitest';
import { TRAFFIC_HEADER, PORTCONN_HEADER, parseTable, rowsFromColumns } from '../../src/proc/parse.js';
import { rowFormatter as fmt } from '../../src/output/rows.js';
import { ParseError } from '../../src/core/errors.js';

const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

describe('read: the fast IPv4 row of the parser', () => {
  it('a row the fast parser gives up on midway (counter 5 has 16 digits) is counted once', () => {
    const big = 1234567890123456n; // 16 digits: the general path's
    const lines = [TRAFFIC_HEADER];
    for (let i = 0; i < 1000; i++) lines.push([ip(i), i, 2 * i, 3, 4, i === 500 ? big : 5, 6, 7, 8].join('\t'));
    const cols = parseTable('traffic', `${lines.join('\n')}\n`);
    expect(cols.rows).toBe(1000);
    expect(cols.sums).toEqual([499500n, 999000n, 3000n, 4000n, 5n * 999n + big, 6000n, 7000n, 8000n]);
    expect(cols.counters[500 * 8 + 4]).toBe(big);
    expect(cols.counters[500 * 8 + 3]).toBe(4n);
  });

  it('errors after fast rows name the same line and text as before', () => {
    const lines = [TRAFFIC_HEADER];
    for (let i = 0; i < 300; i++) lines.push([ip(i), 1, 2, 3, 4, 5, 6, 7, 8].join('\t'));
    const bad = (row: string) => {
      try {
        parseTable('traffic', `${[...lines, row].join('\n')}\n`);
      } catch (e) {
        expect(e).toBeInstanceOf(ParseError);
        return (e as Error).message;
      }
      throw new Error('parsed');
    };
    expect(bad([ip(300), 1, 2, 3, '04', 5, 6, 7, 8].join('\t'))).toMatch(/line 302.*counter 4: not an unsigned decimal number/);
    expect(bad([ip(299), 1, 2, 3, 4, 5, 6, 7, 8].join('\t'))).toMatch(/line 302.*ascending order/);
    expect(bad([ip(300), 1, 2, 3, 4, 5, 6, 7].join('\t'))).toMatch(/line 302.*only 7 of 8 counters/);
    expect(bad(`${ip(300)}/24\t1\t2\t3\t4\t5\t6\t7\t8`)).toMatch(/line 302/);
    expect(() => parseTable('traffic', `${[...lines, [ip(300), 1, 2, 3, 4, 5, 6, 7, 8].join('\t')].join('\n')}`)).toThrow(/truncated/);
  });

  it('JSON and CSV rows with counters at and above 2^53 and runs of zeros between plain ones: the generic text', () => {
    const lines = [TRAFFIC_HEADER];
    const vals: bigint[][] = [];
    for (let i = 0; i < 600; i++) {
      // and runs of zero counters (one copied piece each: rows.ts zeros) at the start, in the middle, at the end, all 8
      const v = [BigInt(i), 2n ** 53n - 1n, i % 7 === 0 ? 2n ** 53n : 9n, i % 11 === 0 ? 2n ** 64n - 1n : 0n, 4294967296n, 4294967295n, 10n, 99999n].map((x, c) => ((i >> c) & 1 ? 0n : x));
      vals.push(v);
      lines.push([ip(i), ...v].join('\t'));
    }
    const cols = parseTable('traffic', `${lines.join('\n')}\n`);
    const rows = rowsFromColumns('traffic', cols);
    const json = Buffer.from(fmt.formatRows('traffic', cols, cols.counters, 'json')).toString('latin1');
    const expected = rows
      .map((r) => `    {\n      "ip": "${r.ip}",\n${(['total', 'tcp', 'udp', 'other'] as const).map((g) => `      "${g}": {\n        "in": ${r[g].in},\n        "out": ${r[g].out}\n      }`).join(',\n')}\n    }`)
      .join(',\n');
    expect(json).toBe(expected);
    const csv = Buffer.from(fmt.formatRows('traffic', cols, cols.counters, 'csv')).toString('latin1');
    expect(csv).toBe(vals.map((v, i) => `${ip(i)},${v.join(',')}\n`).join(''));
  });

  it('ports: the fast CSV row', () => {
    const text = `${PORTCONN_HEADER}\n0\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\n65535\t0\t0\t0\t0\t0\t0\t0\t0\t0\t18446744073709551615\n`;
    const cols = parseTable('portconn', text);
    expect(Buffer.from(fmt.formatRows('portconn', cols, cols.counters, 'csv')).toString('latin1')).toBe('0,1,2,3,4,5,6,7,8,9,10\n65535,0,0,0,0,0,0,0,0,0,18446744073709551615\n');
  });
});
