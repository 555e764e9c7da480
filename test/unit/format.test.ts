import { describe, expect, it } from 'vitest';
import { humanBytes, humanCount, humanRate, renderCsv, renderTable, toJson } from '../../src/output/format.js';
import { readJsonBytes, selectOrder, sortKeys, totalsOfColumns, type ReadReport } from '../../src/output/report.js';
import { PORTCONN_HEADER, parseTable, type TrafficRow } from '../../src/proc/parse.js';
import { parsePortConn } from '../lib/proc-oracle.js';
import { columnsFromRows, readJson, selectRows, sortValue, totalsOf } from '../lib/report-oracle.js';

describe('format', () => {
  it('toJson writes bigints as exact integers', () => {
    expect(toJson({ a: 18446744073709551615n, b: [1n, 'x'], c: 1.5 }, 0)).toBe('{"a":18446744073709551615,"b":[1,"x"],"c":1.5}');
    expect(toJson({ s: '12', u: undefined, n: null, e: [], o: {}, d: new Date(0) }, 0)).toBe('{"s":"12","n":null,"e":[],"o":{},"d":"1970-01-01T00:00:00.000Z"}');
    const v = { a: [1, { b: 'x' }], c: { d: true }, e: [] as number[] };
    expect(toJson(v)).toBe(JSON.stringify(v, null, 2));
    expect(toJson(v, 0)).toBe(JSON.stringify(v));
  });

  it('human sizes round half up with one decimal, exact at 2^64', () => {
    expect(humanBytes(0n)).toBe('0 B');
    expect(humanBytes(1023n)).toBe('1023 B');
    expect(humanBytes(1024n)).toBe('1.0 KiB');
    expect(humanBytes(1536n)).toBe('1.5 KiB');
    expect(humanBytes(1024n * 1024n - 1n)).toBe('1.0 MiB');
    expect(humanBytes(17489073n)).toBe('16.7 MiB');
    expect(humanBytes(18446744073709551615n)).toBe('16.0 EiB');
    expect(humanCount(999n)).toBe('999');
    expect(humanCount(1500n)).toBe('1.5k');
    expect(humanCount(999_950n)).toBe('1.0M');
    expect(humanRate(1536.4)).toBe('1.5 KiB/s');
    expect(humanRate(-3)).toBe('0 B/s');
  });

  it('renderTable aligns, right-aligns numbers, draws the footer rule', () => {
    expect(renderTable({ headers: ['A', 'NUM'], rows: [['x', '1'], ['long', '12345']], footer: ['sum', '12346'], align: ['left', 'right'] })).toBe(
      'A       NUM\nx         1\nlong  12345\n----  -----\nsum   12346\n',
    );
    expect(renderCsv(['a', 'b'], [['1', 'x,y'], ['2', 'q"']])).toBe('a,b\n1,"x,y"\n2,"q"""\n');
  });
});

const r = (ip: string, tin: number, tout: number, tcpIn = 0): TrafficRow => ({
  ip, total: { in: BigInt(tin), out: BigInt(tout) }, tcp: { in: BigInt(tcpIn), out: 0n }, udp: { in: 0n, out: 0n }, other: { in: BigInt(tin - tcpIn), out: BigInt(tout) },
});

describe('report oracle', () => {
  const rows = [r('10.0.0.9', 5, 5), r('10.0.0.10', 1, 20, 1), r('9.0.0.1', 7, 3)];

  it('sorts counters descending, ties by numeric IP, keys ascending', () => {
    expect(selectRows('traffic', rows, 'total').map((x) => x.ip)).toEqual(['10.0.0.10', '9.0.0.1', '10.0.0.9']);
    expect(selectRows('traffic', rows, 'in').map((x) => x.ip)).toEqual(['9.0.0.1', '10.0.0.9', '10.0.0.10']);
    expect(selectRows('traffic', rows, 'ip').map((x) => x.ip)).toEqual(['9.0.0.1', '10.0.0.9', '10.0.0.10']);
    expect(selectRows('traffic', [r('10.0.0.2', 1, 1), r('10.0.0.1', 1, 1)], 'total').map((x) => x.ip)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(selectRows('traffic', rows, undefined, 1).map((x) => x.ip)).toEqual(['10.0.0.10']);
    expect(selectRows('traffic', rows).map((x) => x.ip)).toEqual(['10.0.0.9', '10.0.0.10', '9.0.0.1']);
    expect(sortValue(rows[1]!, 'tcp_in')).toBe(1n);
    expect(sortValue(rows[1]!, 'tcp')).toBe(1n);
    expect(() => selectRows('traffic', rows, 'icmp')).toThrow('--sort icmp: not a column of traffic tables');
  });

  it('totals are exact sums', () => {
    const t = totalsOf('traffic', [...rows, r('1.1.1.1', 0, 0), { ...r('2.2.2.2', 0, 0), total: { in: 18446744073709551615n, out: 0n } }]);
    expect(t['total']).toEqual({ in: 18446744073709551628n, out: 28n });
  });


});

describe('renderTable of many rows', () => {
  it('measures columns without spreading every cell into Math.max (which overflowed the stack)', () => {
    const rows = Array.from({ length: 300_000 }, (_, i) => [String(i), 'x']);
    const t = renderTable({ headers: ['K', 'V'], rows, align: ['left', 'right'] });
    expect(t.slice(0, 12)).toBe('K       V\n0       x\n'.slice(0, 12));
    expect(t.endsWith('\n299999  x\n')).toBe(true);
  });
});

describe('selection on columns', () => {
  it('picks the same rows in the same order as selectRows, for every key and several --top, ties included', () => {
    let seed = 7;
    const rnd = (m: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % m;
    const lines = [`${PORTCONN_HEADER}\n`];
    for (let port = 0; port < 400; port++) {
      // small, near 2^64, and around 2^52 (sums of two around 2^53: exact doubles or bigints)
      const v = Array.from({ length: 10 }, () => [18446744073709551615n - BigInt(rnd(3)), (1n << 52n) - BigInt(rnd(3)), (1n << 52n) + (1n << 51n) + BigInt(rnd(3)), BigInt(rnd(5)), BigInt(rnd(5))][rnd(5)]!);
      lines.push(`${port}\t${v.join('\t')}\n`);
    }
    const text = lines.join('');
    const cols = parseTable('portconn', text);
    const rows = parsePortConn(text);
    for (const key of [undefined, ...sortKeys('portconn')]) {
      for (const top of [undefined, 1, 5, 50, 399, 400, 1000]) {
        const want = selectRows('portconn', rows, key, top).map((r) => r.port);
        const o = selectOrder('portconn', cols, key, top);
        const got = o ? Array.from(o, (i) => cols.keys[i]) : Array.from(cols.keys);
        expect(got, `${key} ${top}`).toEqual(want);
      }
    }
    expect(totalsOfColumns('portconn', cols)).toEqual(totalsOf('portconn', rows));
  });
});

describe('read --json text', () => {
  it('is exactly the generic serializer\'s output, for every kind, empty or not, all rows or some', () => {
    const conn = (port: number) => ({ port, total: { in: 18446744073709551615n, out: 1n }, tcp: { in: 2n, out: 3n }, udp: { in: 0n, out: 0n }, icmp: { in: 4n, out: 5n }, other: { in: 6n, out: 7n } });
    const traffic = [r('10.0.0.1', 5, 6, 1), r('10.0.0.2', 0, 0)];
    const ports = [conn(22), conn(80)];
    const ips = [(({ port: _p, ...c }) => ({ ip: '1.2.3.4', ...c }))(conn(0))];
    const reps: ReadReport[] = [
      { table: 'a"b', kind: 'traffic', time: '2026-11-30T06:45:00.000Z', host: 'r"1\\x', config: { netbase: '10.0.0.0', netmask: '255.255.255.0', options: ['traffic', 'clearonread'] }, cleared: true, count: 3, columns: columnsFromRows('traffic', traffic), order: undefined, totals: totalsOf('traffic', [traffic[0]!]) },
      { table: 'a', kind: 'traffic', time: '1970-01-01T00:00:00.000Z', host: 'gw', config: null, cleared: true, count: 2, columns: columnsFromRows('traffic', traffic), order: Uint32Array.of(1), totals: totalsOf('traffic', traffic) },
      { table: 'x', kind: 'traffic', time: '2026-11-30T06:45:00.000Z', host: 'gw', config: { netbase: '0.0.0.0', netmask: '255.255.255.255', options: [] }, cleared: false, count: 0, columns: columnsFromRows('traffic', []), order: undefined, totals: totalsOf('traffic', []) },
      { table: 'y', kind: 'traffic', time: '2026-11-30T06:45:00.000Z', host: '', config: null, cleared: false, count: 2, columns: columnsFromRows('traffic', traffic), order: new Uint32Array(0), totals: totalsOf('traffic', traffic) },
      { table: 'p', kind: 'portconn', time: '2026-11-30T06:45:00.000Z', host: 'gw', config: { netbase: '192.168.0.0', netmask: '255.255.0.0', options: ['portconn'] }, cleared: false, count: 2, columns: columnsFromRows('portconn', ports), order: Uint32Array.of(1, 0), totals: totalsOf('portconn', ports) },
      { table: 'i', kind: 'ipconn', time: '2026-11-30T06:45:00.000Z', host: 'gw', config: { netbase: '1.2.3.0', netmask: '255.255.255.0', options: ['traffic', 'portconn', 'ipconn', 'nointernal', 'clearonread'] }, cleared: false, count: 1, columns: columnsFromRows('ipconn', ips), order: undefined, totals: totalsOf('ipconn', []) },
    ];
    for (const rep of reps) expect(Buffer.from(readJsonBytes(rep)).toString()).toBe(`${toJson(readJson(rep))}\n`);
    // the metadata, as a consumer parses it
    expect(JSON.parse(Buffer.from(readJsonBytes(reps[0]!)).toString())).toMatchObject({
      table: 'a"b', kind: 'traffic', time: '2026-11-30T06:45:00.000Z', host: 'r"1\\x',
      config: { netbase: '10.0.0.0', netmask: '255.255.255.0', options: ['traffic', 'clearonread'] }, cleared: true, count: 3,
    });
  });
});
