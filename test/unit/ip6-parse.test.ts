import { describe, expect, it } from 'vitest';
import { ParseError } from '../../src/core/errors.js';
import { IPCONN_HEADER, PORTCONN_HEADER, TRAFFIC_HEADER, keyText, parseInfo, parseTable, rowsFromColumns, type Columns } from '../../src/proc/parse.js';
import { rowFormatter as fmt } from '../../src/output/rows.js';
import { selectOrder, watchRates, watchOrder, type WatchSample } from '../../src/output/report.js';
import { columnsFromRows } from '../lib/report-oracle.js';

const row = (...f: (string | number | bigint)[]) => `${f.join('\t')}\n`;
const traffic = (...rows: string[]) => `${TRAFFIC_HEADER}\n${rows.join('')}`;

/** The ParseError's message (without the file), or a failure when it parses. */
function err(text: string, opts: Parameters<typeof parseTable>[3] = {}, kind: 'traffic' | 'ipconn' = 'traffic'): string {
  try {
    parseTable(kind, text, {}, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ParseError);
    return (e as Error).message;
  }
  throw new Error('expected a ParseError');
}

// per /64, numeric order: :9:: before :10:: (text order would put "10" first), :ffff:: last
const V6 = traffic(
  row('2001:db8::/64', 1500, 300, 1000, 300, 500, 0, 0, 0),
  row('2001:db8:0:9::/64', 80, 0, 0, 0, 0, 0, 80, 0),
  row('2001:db8:0:10::/64', 0, 4294967296, 0, 4294967296, 0, 0, 0, 0),
  row('2001:db8:0:ffff::/64', 18446744073709551615n, 1, 18446744073709551615n, 0, 0, 1, 0, 0),
);

describe('parseTable: IPv6 keys', () => {
  it('per /64: keys as 4 words each, in numeric order, counters and sums exact', () => {
    const c = parseTable('traffic', V6);
    expect(c.family).toBe('ipv6');
    expect(c.keyWords).toBe(4);
    expect(c.keyPrefix).toBe(64);
    expect(c.rows).toBe(4);
    expect([...c.keys]).toEqual([0x20010db8, 0, 0, 0, 0x20010db8, 9, 0, 0, 0x20010db8, 0x10, 0, 0, 0x20010db8, 0xffff, 0, 0]);
    expect([0, 1, 2, 3].map((r) => keyText(c, r))).toEqual(['2001:db8::/64', '2001:db8:0:9::/64', '2001:db8:0:10::/64', '2001:db8:0:ffff::/64']);
    expect(c.sums).toEqual([18446744073709551615n + 1580n, 4294967297n + 300n, 18446744073709551615n + 1000n, 4294967296n + 300n, 500n, 1n, 80n, 0n]);
    const rows = rowsFromColumns('traffic', c);
    expect(rows[2]).toEqual({ ip: '2001:db8:0:10::/64', total: { in: 0n, out: 4294967296n }, tcp: { in: 0n, out: 4294967296n }, udp: { in: 0n, out: 0n }, other: { in: 0n, out: 0n } });
  });

  it('bare addresses (host prefix 128), IPv4-mapped in mixed notation, ipconn', () => {
    const text = `${IPCONN_HEADER}\n` + row('::1', 1, 0, 1, 0, 0, 0, 0, 0, 0, 0) + row('::ffff:10.0.0.1', 0, 2, 0, 0, 0, 2, 0, 0, 0, 0) + row('2001:db8::1:0:0:1', 3, 3, 0, 0, 0, 0, 3, 3, 0, 0);
    const c = parseTable('ipconn', text, {}, { family: 'ipv6', hostPrefix: 128 });
    expect(c.keyPrefix).toBe(128);
    expect(rowsFromColumns('ipconn', c).map((r) => r.ip)).toEqual(['::1', '::ffff:10.0.0.1', '2001:db8::1:0:0:1']);
    expect(c.sums).toEqual([4n, 5n, 1n, 0n, 0n, 2n, 3n, 3n, 0n, 0n]);
  });

  it('an empty table takes the family and length it is given', () => {
    const c = parseTable('traffic', `${TRAFFIC_HEADER}\n`, {}, { family: 'ipv6', hostPrefix: 56 });
    expect([c.family, c.keyWords, c.keyPrefix, c.rows, c.keys.length]).toEqual(['ipv6', 4, 56, 0, 0]);
    const d = parseTable('traffic', `${TRAFFIC_HEADER}\n`);
    expect([d.family, d.keyWords, d.keyPrefix]).toEqual(['ipv4', 1, 32]);
  });

  it('portconn stays ports', () => {
    const c = parseTable('portconn', `${PORTCONN_HEADER}\n` + row(443, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0));
    expect([c.family, c.keyWords, c.keyPrefix, [...c.keys]]).toEqual(['port', 1, 16, [443]]);
  });

  it('refuses keys that are not the contract, naming the line and the key', () => {
    const r = (k: string) => row(k, 0, 1, 0, 1, 0, 0, 0, 0);
    const l2 = 'traffic file: line 2: ';
    const l3 = 'traffic file: line 3: ';
    expect(err(traffic(r('2001:DB8::/64')))).toBe(`${l2}IP 2001:DB8::/64: not in RFC 5952 form (2001:db8::/64) (the line: "2001:DB8::/64\\t0\\t1\\t0\\t1\\t0\\t0\\t0\\t0")`);
    expect(err(traffic(r('2001:db8::1:0:0:0/80')))).toMatch(/^traffic file: line 2: IP 2001:db8::1:0:0:0\/80: not in RFC 5952 form \(2001:db8:0:0:1::\/80\)/);
    expect(err(traffic(r('::ffff:a00:1')))).toMatch(/^traffic file: line 2: IP ::ffff:a00:1: not in RFC 5952 form \(::ffff:10\.0\.0\.1\)/);
    expect(err(traffic(r('2001:db8::1/64')))).toMatch(/^traffic file: line 2: IP 2001:db8::1\/64: host bits set: a key is its prefix's first address \(2001:db8::\/64\)/);
    expect(err(traffic(r('2001:db8::/64'), r('2001:db8:0:1::/56')))).toMatch(/^traffic file: line 3: IP 2001:db8:0:1::\/56: \/56, but the table's keys are \/64 \(one host prefix per table\)/);
    expect(err(traffic(r('2001:db8::/64'), r('2001:db8:1::1')))).toMatch(/^traffic file: line 3: IP 2001:db8:1::1: a bare address \(\/128\), but the table's keys are \/64/);
    expect(err(traffic(r('2001:db8::1/128')))).toMatch(/^traffic file: line 2: IP 2001:db8::1\/128: the prefix length after "\/" must be 1\.\.127/);
    expect(err(traffic(r('::/0')))).toMatch(/^traffic file: line 2: IP ::\/0: the prefix length after "\/" must be 1\.\.127/);
    expect(err(traffic(r('2001:db8::/064')))).toMatch(/^traffic file: line 2: IP 2001:db8::\/064: the prefix length/);
    expect(err(traffic(r('2001:db8::/64'), r('10.0.0.0/24')))).toMatch(/^traffic file: line 3: IP 10\.0\.0\.0\/24: an IPv4 key in a table of IPv6 keys/);
    expect(err(traffic(r('10.0.0.1'), r('2001:db8::1')))).toMatch(/^traffic file: line 3: IP 2001:db8::1: an IPv6 key in a table of IPv4 keys/);
    expect(err(traffic(r('2001:db8:0:10::/64'), r('2001:db8:0:9::/64')))).toBe(`${l3}IP 2001:db8:0:9::/64: rows must be in ascending order, each key once (after 2001:db8:0:10::/64) (the line: "2001:db8:0:9::/64\\t0\\t1\\t0\\t1\\t0\\t0\\t0\\t0")`);
    expect(err(traffic(r('2001:db8::/64'), r('2001:db8::/64')))).toMatch(/^traffic file: line 3: IP 2001:db8::\/64: rows must be in ascending order, each key once \(after 2001:db8::\/64\)/);
    expect(err(traffic(r('2001:db8:::/64')))).toMatch(/^traffic file: line 2: IP 2001:db8:::\/64: not an IPv6 address and prefix length/);
    expect(err(traffic(r('2001:db8::/64')), { family: 'ipv4' })).toMatch(/^traffic file: line 2: IP 2001:db8::\/64: an IPv6 key in a table of IPv4 keys/);
    expect(err(traffic(r('10.0.0.1')), { family: 'ipv6' })).toMatch(/^traffic file: line 2: IP 10\.0\.0\.1: an IPv4 key in a table of IPv6 keys/);
    expect(err(traffic(r('2001:db8::/64')), { hostPrefix: 56 })).toMatch(/^traffic file: line 2: IP 2001:db8::\/64: \/64, but the table's keys are \/56/);
    // a bad row after good ones: the counters are still checked as before
    expect(err(traffic(r('2001:db8::/64'), row('2001:db8:0:1::/64', 1, 2)))).toMatch(/^traffic file: line 3: only 2 of 8 counters/);
  });
});

describe('parseTable: IPv4 host prefixes', () => {
  it('ADDR/LEN keys (host prefix 24), numeric order, exact', () => {
    const c = parseTable('traffic', traffic(row('10.20.1.0/24', 5, 6, 5, 6, 0, 0, 0, 0), row('10.20.9.0/24', 1, 0, 0, 0, 1, 0, 0, 0), row('10.20.10.0/24', 0, 7, 0, 0, 0, 0, 0, 7)));
    expect([c.family, c.keyWords, c.keyPrefix, [...c.keys]]).toEqual(['ipv4', 1, 24, [0x0a140100, 0x0a140900, 0x0a140a00]]);
    expect(rowsFromColumns('traffic', c).map((x) => x.ip)).toEqual(['10.20.1.0/24', '10.20.9.0/24', '10.20.10.0/24']);
    expect(c.sums).toEqual([6n, 13n, 5n, 6n, 1n, 0n, 0n, 7n]);
  });

  it('refuses host bits, /32, mixed lengths, a bare key among prefixes', () => {
    const r = (k: string) => row(k, 0, 1, 0, 1, 0, 0, 0, 0);
    expect(err(traffic(r('10.20.1.5/24')))).toMatch(/^traffic file: line 2: IP 10\.20\.1\.5\/24: host bits set: a key is its prefix's first address \(10\.20\.1\.0\/24\)/);
    expect(err(traffic(r('10.20.1.5/32')))).toMatch(/^traffic file: line 2: IP 10\.20\.1\.5\/32: the prefix length after "\/" must be 1\.\.31/);
    expect(err(traffic(r('10.20.1.0/24'), r('10.20.2.0/23')))).toMatch(/^traffic file: line 3: IP 10\.20\.2\.0\/23: \/23, but the table's keys are \/24/);
    expect(err(traffic(r('10.20.1.0/24'), r('10.20.2.0')))).toMatch(/^traffic file: line 3: IP 10\.20\.2\.0: a bare address \(\/32\), but the table's keys are \/24/);
    expect(err(traffic(r('10.20.1.0'), r('10.20.2.0/24')))).toMatch(/^traffic file: line 3: IP 10\.20\.2\.0\/24: \/24, but the table's keys are a bare address \(\/32\)/);
    expect(err(traffic(r('10.20.2.0/24'), r('10.20.1.0/24')))).toMatch(/^traffic file: line 3: IP 10\.20\.1\.0\/24: rows must be in ascending order, each key once \(after 10\.20\.2\.0\/24\)/);
    // revision 0's messages are as before
    expect(err(traffic(r('10.0.0.2'), r('10.0.0.1')))).toMatch(/^traffic file: line 3: IP 10\.0\.0\.1: rows must be in ascending order, each key once \(after 10\.0\.0\.2\)/);
    expect(err(traffic(r('10.0.0.256')))).toMatch(/^traffic file: line 2: IP: not a dotted-quad IPv4 address/);
  });
});

const INFO6 = `name: V6
family: ipv6
netbase: 2001:db8::
netmask: ffff:ffff:ffff::
hostprefix: 56
options: traffic ipconn
hashsize: 4096
flow_slots: 16384
rules: 1
max_entries: 1048576
traffic_entries: 3
ipconn_entries: 2
overflow: 0
generation: 5f0c2a9e13b7d4c1
`;

describe('parseInfo: revision 1', () => {
  it('IPv6: netbase, netmask in RFC 5952 form, hostprefix', () => {
    const i = parseInfo(INFO6);
    expect([i.family, i.netbase, i.netmask, i.prefixLength, i.hostPrefix]).toEqual(['ipv6', '2001:db8::', 'ffff:ffff:ffff::', 48, 56]);
    expect(i.extra).toEqual({});
    const full = parseInfo(INFO6.replace('netmask: ffff:ffff:ffff::', 'netmask: ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff').replace('hostprefix: 56', 'hostprefix: 128'));
    expect([full.prefixLength, full.hostPrefix]).toEqual([128, 128]);
  });

  it('IPv4 with a hostprefix line; without one the full length', () => {
    const v4 = INFO6.replace('family: ipv6', 'family: ipv4').replace('netbase: 2001:db8::', 'netbase: 10.0.0.0').replace('netmask: ffff:ffff:ffff::', 'netmask: 255.0.0.0').replace('hostprefix: 56', 'hostprefix: 24');
    expect([parseInfo(v4).prefixLength, parseInfo(v4).hostPrefix]).toEqual([8, 24]);
    expect(parseInfo(v4.replace('hostprefix: 24\n', '')).hostPrefix).toBe(32);
  });

  it('refuses what does not fit the family, naming the line', () => {
    const e = (t: string) => {
      try {
        parseInfo(t);
      } catch (x) {
        return (x as Error).message;
      }
      throw new Error('parsed');
    };
    expect(e(INFO6.replace('family: ipv6', 'family: inet6'))).toBe('info file: line 2: family: "inet6" is neither ipv4 nor ipv6 (the line: "family: inet6")');
    expect(e(INFO6.replace('family: ipv6', 'family: ipv4'))).toBe('info file: line 3: netbase: not a dotted-quad IPv4 address (the line: "netbase: 2001:db8::")');
    expect(e(INFO6.replace('netbase: 2001:db8::', 'netbase: 10.0.0.0'))).toBe('info file: line 3: netbase: "10.0.0.0" is not an IPv6 address (family ipv6) (the line: "netbase: 10.0.0.0")');
    expect(e(INFO6.replace('netbase: 2001:db8::', 'netbase: 2001:0db8::'))).toBe('info file: line 3: netbase: 2001:0db8:: is not in RFC 5952 form (2001:db8::) (the line: "netbase: 2001:0db8::")');
    expect(e(INFO6.replace('netmask: ffff:ffff:ffff::', 'netmask: ffff:0:ffff::'))).toBe('info file: line 4: netmask: not contiguous: ffff:0:ffff:: (the line: "netmask: ffff:0:ffff::")');
    expect(e(INFO6.replace('netmask: ffff:ffff:ffff::', 'netmask: 48'))).toBe('info file: line 4: netmask: "48" is not an IPv6 mask (family ipv6) (the line: "netmask: 48")');
    expect(e(INFO6.replace('hostprefix: 56', 'hostprefix: 40'))).toBe("info file: line 5: hostprefix: 40 is not between the net's length 48 and 128 (the line: \"hostprefix: 40\")");
    expect(e(INFO6.replace('hostprefix: 56', 'hostprefix: 129'))).toBe("info file: line 5: hostprefix: 129 is not between the net's length 48 and 128 (the line: \"hostprefix: 129\")");
    expect(e(INFO6.replace('hostprefix: 56', 'hostprefix: x'))).toBe('info file: line 5: hostprefix: not a decimal number below 2^53 (the line: "hostprefix: x")');
  });
});

describe('output of IPv6 columns', () => {
  const c = parseTable('traffic', V6);

  it('CSV and JSON rows print the keys as the file has them; table widths fit the longest key', () => {
    expect(Buffer.from(fmt.formatRows('traffic', c, c.counters, 'csv')).toString()).toBe(
      '2001:db8::/64,1500,300,1000,300,500,0,0,0\n' +
      '2001:db8:0:9::/64,80,0,0,0,0,0,80,0\n' +
      '2001:db8:0:10::/64,0,4294967296,0,4294967296,0,0,0,0\n' +
      '2001:db8:0:ffff::/64,18446744073709551615,1,18446744073709551615,0,0,1,0,0\n');
    const json = Buffer.from(fmt.formatRows('traffic', c, c.counters, 'json', { order: Uint32Array.of(1), prefix: '[', suffix: ']' })).toString();
    expect(JSON.parse(json)).toEqual([{ ip: '2001:db8:0:9::/64', total: { in: 80, out: 0 }, tcp: { in: 0, out: 0 }, udp: { in: 0, out: 0 }, other: { in: 80, out: 0 } }]);
    const w = fmt.cellWidths('traffic', c, c.counters);
    expect(w).toEqual([20, 20, 10, 20, 10, 3, 1, 2, 1]);
    const t = Buffer.from(fmt.formatRows('traffic', c, c.counters, 'table', { widths: w, order: Uint32Array.of(0) })).toString();
    expect(t).toBe(`2001:db8::/64${' '.repeat(7)}  ${' '.repeat(16)}1500  ${' '.repeat(7)}300  ${' '.repeat(16)}1000  ${' '.repeat(7)}300  500  0   0  0\n`);
    // the longest IPv6 key: 39 characters + /127
    const long = parseTable('traffic', traffic(row('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127', 1, 1, 1, 1, 0, 0, 0, 0)));
    const lw = fmt.cellWidths('traffic', long, long.counters);
    expect(lw[0]).toBe(43);
    expect(Buffer.from(fmt.formatRows('traffic', long, long.counters, 'table', { widths: lw })).toString()).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127  1  1  1  1  0  0  0  0\n');
  });

  it('selectOrder: --sort ip numerically, ties by key numerically', () => {
    // columns in text order (as a lenient source might give them): --sort ip puts :9:: before :10::
    const cols = columnsFromRows('traffic', [...rowsFromColumns('traffic', c)].sort((a, b) => (a.ip < b.ip ? -1 : 1)));
    expect(rowsFromColumns('traffic', cols).map((x) => x.ip)).toEqual(['2001:db8:0:10::/64', '2001:db8:0:9::/64', '2001:db8:0:ffff::/64', '2001:db8::/64']);
    expect([...selectOrder('traffic', cols, 'ip')!].map((r) => keyText(cols, r))).toEqual(['2001:db8::/64', '2001:db8:0:9::/64', '2001:db8:0:10::/64', '2001:db8:0:ffff::/64']);
    // udp_out: 1 for :ffff::, 0 for the rest: ties in numeric key order
    expect([...selectOrder('traffic', cols, 'udp_out')!].map((r) => keyText(cols, r))).toEqual(['2001:db8:0:ffff::/64', '2001:db8::/64', '2001:db8:0:9::/64', '2001:db8:0:10::/64']);
    expect([...selectOrder('traffic', cols, 'udp_out', 2)!].map((r) => keyText(cols, r))).toEqual(['2001:db8:0:ffff::/64', '2001:db8::/64']);
  });

  it('watchRates: a merge-join over 4-word keys; another key length never matches', () => {
    const a = parseTable('traffic', traffic(row('2001:db8::/64', 100, 10, 0, 0, 0, 0, 100, 10), row('2001:db8:0:9::/64', 50, 0, 0, 0, 0, 0, 50, 0)));
    const b = parseTable('traffic', traffic(row('2001:db8::/64', 300, 10, 0, 0, 0, 0, 300, 10), row('2001:db8:0:5::/64', 8, 8, 0, 0, 0, 0, 8, 8), row('2001:db8:0:9::/64', 50, 40, 0, 0, 0, 0, 50, 40)));
    const first = watchRates('traffic', undefined, a, 2, true);
    const r = watchRates('traffic', first.sample, b, 2, true);
    expect([...r.inRate]).toEqual([100, 4, 0]);
    expect([...r.outRate]).toEqual([0, 4, 20]);
    expect([r.sumIn, r.sumOut]).toEqual([104, 24]);
    expect([...watchOrder(r)].map((x) => keyText(b, x))).toEqual(['2001:db8::/64', '2001:db8:0:9::/64', '2001:db8:0:5::/64']);
    // the same addresses as /56 keys: a re-created table, every counter from zero
    const as56: WatchSample = { ...first.sample, keyPrefix: 56 };
    const z = watchRates('traffic', as56, b, 2, true);
    expect([...z.inRate]).toEqual([150, 4, 25]);
  });
});

// keep the Columns type used (the oracle builds them too)
export type { Columns };
