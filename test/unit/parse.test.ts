import { describe, expect, it } from 'vitest';
import { ParseError as ProductParseError } from '../../src/core/errors.js';
import { ParseError, parseIpConn, parsePortConn, parseTraffic } from '../lib/proc-oracle.js';
import { maskToPrefix } from '../../src/core/ip.js';
import { IPCONN_HEADER, PORTCONN_HEADER, TRAFFIC_HEADER, U64_MAX, parseInfo } from '../../src/proc/parse.js';

const row = (...f: (string | number | bigint)[]) => `${f.join('\t')}\n`;

// The tests' oracle row parser (test/lib/proc-oracle.ts; the product's parser is checked against
// it in format-rows.test.ts), and the product's parseInfo.
// The spec's sample rows (docs/original-spec.md), in the kernel's byte format.
const TRAFFIC = `${TRAFFIC_HEADER}\n` +
  row('193.11.185.17', 17489073, 156686, 17488837, 156686, 0, 0, 236, 0) +
  row('193.11.177.4', 0, 171721, 0, 4418, 0, 76, 0, 167227);

const IPCONN = `${IPCONN_HEADER}\n` +
  row('172.20.0.2', 615, 3, 1, 1, 0, 2, 614, 0, 0, 0) +
  row('172.20.0.1', 0, 615, 0, 1, 0, 0, 0, 614, 0, 0);

const PORTCONN = `${PORTCONN_HEADER}\n` +
  row(0, 313, 313, 0, 0, 0, 0, 313, 313, 0, 0) +
  row(22, 1, 2, 1, 2, 0, 0, 0, 0, 0, 0) +
  row(53, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0);

/** Runs fn, expects a ParseError and returns it. */
function parseErr(fn: () => unknown): ParseError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ParseError);
    return e as ParseError;
  }
  throw new Error('expected a ParseError, nothing was thrown');
}

describe('parseTraffic', () => {
  it('parses the spec sample rows exactly', () => {
    expect(parseTraffic(TRAFFIC)).toEqual([
      {
        ip: '193.11.185.17',
        total: { in: 17489073n, out: 156686n },
        tcp: { in: 17488837n, out: 156686n },
        udp: { in: 0n, out: 0n },
        other: { in: 236n, out: 0n },
      },
      {
        ip: '193.11.177.4',
        total: { in: 0n, out: 171721n },
        tcp: { in: 0n, out: 4418n },
        udp: { in: 0n, out: 76n },
        other: { in: 0n, out: 167227n },
      },
    ]);
  });

  it('accepts the spec text as printed (spaces instead of tabs)', () => {
    const spec = 'IP              TOTAL           TCP             UDP             OTHER\n' +
      '193.11.185.17   17489073  156686  17488837  156686  0  0  236  0\n' +
      '193.11.177.4    0  171721  0  4418  0  76  0  167227\n';
    expect(parseTraffic(spec)).toEqual(parseTraffic(TRAFFIC));
  });

  it('a header alone is an empty table', () => {
    expect(parseTraffic(`${TRAFFIC_HEADER}\n`)).toEqual([]);
  });

  it('checkTotals accepts the spec rows and rejects a wrong total with its line', () => {
    expect(parseTraffic(TRAFFIC, { checkTotals: true })).toHaveLength(2);
    const bad = `${TRAFFIC_HEADER}\n` + row('10.0.0.1', 5, 0, 1, 0, 1, 0, 1, 0) + row('10.0.0.2', 3, 9, 1, 3, 1, 3, 1, 2);
    expect(parseTraffic(bad)).toHaveLength(2);
    const e = parseErr(() => parseTraffic(bad, { checkTotals: true }));
    expect(e.line).toBe(2);
    expect(e.message).toBe('traffic line 2: total_in 5 is not the sum of the protocol columns (3)');
    const e2 = parseErr(() => parseTraffic(`${TRAFFIC_HEADER}\n` + row('10.0.0.2', 3, 9, 1, 3, 1, 3, 1, 2), { checkTotals: true }));
    expect(e2.message).toBe('traffic line 2: total_out 9 is not the sum of the protocol columns (8)');
  });

  it('keeps numbers beyond 2^53 exact, up to 2^64-1', () => {
    const big = 9007199254740993n; // 2^53 + 1: a double would round it to 2^53
    const rows = parseTraffic(`${TRAFFIC_HEADER}\n` + row('10.1.2.3', U64_MAX, big, U64_MAX - 1n, big, 1, 0, 0, 0));
    expect(rows[0]!.total).toEqual({ in: 18446744073709551615n, out: 9007199254740993n });
    expect(rows[0]!.tcp.in).toBe(18446744073709551614n);
    expect(rows[0]!.udp.in).toBe(1n);
  });

  it('rejects a number beyond 2^64-1 with its line', () => {
    const e = parseErr(() => parseTraffic(`${TRAFFIC_HEADER}\n` + row('10.1.2.3', 0, 0, 0, 0, 0, 0, 0, 0) + row('10.1.2.4', '18446744073709551616', 0, 0, 0, 0, 0, 0, 0)));
    expect(e.line).toBe(3);
    expect(e.message).toBe('traffic line 3: total_in: 18446744073709551616 is beyond 2^64-1');
  });

  it('rejects a truncated last row (no newline), even when its fields look complete', () => {
    const cut = TRAFFIC.slice(0, -1); // "...0\t167227" might have been "...1672270"
    const e = parseErr(() => parseTraffic(cut));
    expect(e.line).toBe(3);
    expect(e.message).toBe('traffic line 3: truncated: the last line has no terminating newline');
    const e2 = parseErr(() => parseTraffic(TRAFFIC.slice(0, TRAFFIC.length - 20)));
    expect(e2.line).toBe(3);
  });

  it('rejects a truncated row with fewer columns', () => {
    const e = parseErr(() => parseTraffic(`${TRAFFIC_HEADER}\n` + row('10.0.0.1', 1, 2, 1, 2, 0, 0)));
    expect(e.line).toBe(2);
    expect(e.message).toBe('traffic line 2: expected 9 fields (IP and 8 counters), got 7');
    expect(e.text).toBe('10.0.0.1\t1\t2\t1\t2\t0\t0');
  });

  it('rejects a row with too many columns (an ipconn row in a traffic file)', () => {
    const e = parseErr(() => parseTraffic(`${TRAFFIC_HEADER}\n` + row('172.20.0.2', 615, 3, 1, 1, 0, 2, 614, 0, 0, 0)));
    expect(e.message).toBe('traffic line 2: expected 9 fields (IP and 8 counters), got 11');
  });

  it('rejects non-numeric, negative, fractional and hex counters', () => {
    for (const [bad, col] of [['12a', 'tcp_out'], ['-1', 'tcp_out'], ['1.5', 'tcp_out'], ['0x10', 'tcp_out'], ['1e3', 'tcp_out']] as const) {
      const e = parseErr(() => parseTraffic(`${TRAFFIC_HEADER}\n` + row('10.0.0.1', 1, 2, 1, bad, 0, 0, 0, 0)));
      expect(e.line).toBe(2);
      expect(e.message).toBe(`traffic line 2: ${col}: not an unsigned decimal number: "${bad}"`);
    }
  });

  it('rejects a missing or wrong header', () => {
    const noHeader = row('10.0.0.1', 1, 2, 1, 2, 0, 0, 0, 0);
    const e = parseErr(() => parseTraffic(noHeader));
    expect(e.line).toBe(1);
    expect(e.message).toBe('traffic line 1: header missing or wrong: expected "IP TOTAL TCP UDP OTHER"');
    // an ipconn file given to the traffic parser
    expect(parseErr(() => parseTraffic(IPCONN)).line).toBe(1);
    const empty = parseErr(() => parseTraffic(''));
    expect(empty.line).toBe(1);
    expect(empty.message).toBe('traffic line 1: header missing (empty input)');
  });

  it('rejects bad IPs, empty lines and duplicates with their line', () => {
    for (const ip of ['256.0.0.1', '10.0.0', '10.0.0.01', 'a.b.c.d', '10.0.0.1.2']) {
      const e = parseErr(() => parseTraffic(`${TRAFFIC_HEADER}\n` + row(ip, 0, 0, 0, 0, 0, 0, 0, 0)));
      expect(e.message).toBe(`traffic line 2: IP: not a dotted-quad IPv4 address: "${ip}"`);
    }
    const empty = parseErr(() => parseTraffic(`${TRAFFIC_HEADER}\n` + row('10.0.0.1', 0, 0, 0, 0, 0, 0, 0, 0) + '\n'));
    expect(empty.line).toBe(3);
    expect(empty.message).toBe('traffic line 3: empty line');
    const dup = parseErr(() => parseTraffic(TRAFFIC + row('193.11.185.17', 0, 0, 0, 0, 0, 0, 0, 0)));
    expect(dup.message).toBe('traffic line 4: duplicate IP 193.11.185.17 (first on line 2)');
  });

  it('accepts rows out of order but not a key twice, wherever it repeats', () => {
    const rows = parseTraffic(`${TRAFFIC_HEADER}\n` + row('10.0.0.9', 1, 0, 1, 0, 0, 0, 0, 0) + row('10.0.0.2', 2, 0, 2, 0, 0, 0, 0, 0));
    expect(rows.map((r) => [r.ip, r.total.in])).toEqual([['10.0.0.9', 1n], ['10.0.0.2', 2n]]);
    const adjacent = parseErr(() => parseTraffic(`${TRAFFIC_HEADER}\n` + row('10.0.0.1', 0, 0, 0, 0, 0, 0, 0, 0) + row('10.0.0.1', 1, 0, 1, 0, 0, 0, 0, 0)));
    expect(adjacent.message).toBe('traffic line 3: duplicate IP 10.0.0.1 (first on line 2)');
    const ports = parseErr(() => parsePortConn(`${PORTCONN_HEADER}\n` + row(80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) + row(22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) + row(80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)));
    expect(ports.message).toBe('portconn line 4: duplicate PORT 80 (first on line 2)');
  });

  it('mixes long numbers, space-separated rows and kernel rows in one table', () => {
    const text = `${TRAFFIC_HEADER}\n` + row('10.0.0.1', 1, 2, 1, 2, 0, 0, 0, 0) +
      '10.0.0.2  123456789012345678 0 123456789012345678 0 0 0 0 0\n' +
      row('10.0.0.3', 999999999999999, 0, 999999999999999, 0, 0, 0, 0, 0) +
      row('10.0.0.4', '1000000000000000', 0, '0001000000000000000', 0, 0, 0, 0, 0);
    const rows = parseTraffic(text);
    expect(rows.map((r) => r.total.in)).toEqual([1n, 123456789012345678n, 999999999999999n, 1000000000000000n]);
    expect(rows[3]!.tcp.in).toBe(1000000000000000n);
    expect(rows[0]!.total.out).toBe(2n);
  });

  it('parses a large table in one pass with exact values', () => {
    const n = 50_000;
    const parts = [`${TRAFFIC_HEADER}\n`];
    for (let i = 0; i < n; i++) {
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      parts.push(row(ip, BigInt(i) * 1000003n, i, BigInt(i) * 1000003n, i, 0, 0, 0, 0));
    }
    const rows = parseTraffic(parts.join(''));
    expect(rows).toHaveLength(n);
    expect(rows[n - 1]!.ip).toBe('10.0.195.79');
    expect(rows[n - 1]!.total.in).toBe(49999n * 1000003n);
  });
});

describe('parseIpConn', () => {
  it('parses the spec sample rows exactly', () => {
    expect(parseIpConn(IPCONN, { checkTotals: true })).toEqual([
      {
        ip: '172.20.0.2',
        total: { in: 615n, out: 3n },
        tcp: { in: 1n, out: 1n },
        udp: { in: 0n, out: 2n },
        icmp: { in: 614n, out: 0n },
        other: { in: 0n, out: 0n },
      },
      {
        ip: '172.20.0.1',
        total: { in: 0n, out: 615n },
        tcp: { in: 0n, out: 1n },
        udp: { in: 0n, out: 0n },
        icmp: { in: 0n, out: 614n },
        other: { in: 0n, out: 0n },
      },
    ]);
  });

  it('rejects a traffic row (wrong column count) and names the column of a bad counter', () => {
    const e = parseErr(() => parseIpConn(`${IPCONN_HEADER}\n` + row('10.0.0.1', 1, 2, 1, 2, 0, 0, 0, 0)));
    expect(e.message).toBe('ipconn line 2: expected 11 fields (IP and 10 counters), got 9');
    const e2 = parseErr(() => parseIpConn(`${IPCONN_HEADER}\n` + row('10.0.0.1', 0, 0, 0, 0, 0, 0, 'x', 0, 0, 0)));
    expect(e2.message).toBe('ipconn line 2: icmp_in: not an unsigned decimal number: "x"');
    expect(parseErr(() => parseIpConn(TRAFFIC)).message).toBe('ipconn line 1: header missing or wrong: expected "IP TOTAL TCP UDP ICMP OTHER"');
  });
});

describe('parsePortConn', () => {
  it('parses the spec sample rows exactly', () => {
    const rows = parsePortConn(PORTCONN, { checkTotals: true });
    expect(rows.map((r) => r.port)).toEqual([0, 22, 53]);
    expect(rows[0]).toEqual({
      port: 0,
      total: { in: 313n, out: 313n },
      tcp: { in: 0n, out: 0n },
      udp: { in: 0n, out: 0n },
      icmp: { in: 313n, out: 313n },
      other: { in: 0n, out: 0n },
    });
    expect(rows[1]!.tcp).toEqual({ in: 1n, out: 2n });
    expect(rows[2]!.udp).toEqual({ in: 0n, out: 2n });
  });

  it('rejects bad ports', () => {
    for (const p of ['65536', '-1', '022', 'ssh', '1.2.3.4']) {
      const e = parseErr(() => parsePortConn(`${PORTCONN_HEADER}\n` + row(p, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)));
      expect(e.message).toBe(`portconn line 2: PORT: not a port number 0..65535: "${p}"`);
    }
    expect(parsePortConn(`${PORTCONN_HEADER}\n` + row(65535, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0))[0]!.port).toBe(65535);
  });
});

const INFO = `name: RSN
family: ipv4
netbase: 193.11.176.0
netmask: 255.255.240.0
options: traffic portconn ipconn nointernal clearonread
hashsize: 4096
flow_slots: 16384
rules: 1
max_entries: 1048576
traffic_entries: 12
ipconn_entries: 12
portconn_entries: 5
overflow: 0
`;

describe('parseInfo', () => {
  it("parses design.md's example", () => {
    expect(parseInfo(INFO)).toEqual({
      name: 'RSN',
      family: 'ipv4',
      netbase: '193.11.176.0',
      netmask: '255.255.240.0',
      prefixLength: 20,
      hostPrefix: 32,
      options: { traffic: true, portconn: true, ipconn: true, nointernal: true, onlyinternal: false, clearonread: true },
      hashsize: 4096,
      flowSlots: 16384,
      rules: 1,
      maxEntries: 1048576,
      trafficEntries: 12,
      ipconnEntries: 12,
      portconnEntries: 5,
      overflow: 0n,
      extra: {},
    });
  });

  it('omits entries of kinds that are off, keeps unknown keys, overflow beyond 2^53 exact', () => {
    const text = INFO.replace('options: traffic portconn ipconn nointernal clearonread', 'options: traffic onlyinternal')
      .replace('ipconn_entries: 12\nportconn_entries: 5\n', '')
      .replace('overflow: 0', 'overflow: 18446744073709551615\nfuture_key: 7 things');
    const info = parseInfo(text);
    expect(info.options).toEqual({ traffic: true, portconn: false, ipconn: false, nointernal: false, onlyinternal: true, clearonread: false });
    expect(info.trafficEntries).toBe(12);
    expect('ipconnEntries' in info).toBe(false);
    expect(info.overflow).toBe(18446744073709551615n);
    expect(info.extra).toEqual({ future_key: '7 things' });
  });

  it('rejects malformed info naming the file, the line and showing it', () => {
    const perr = (t: string): ProductParseError => {
      try {
        parseInfo(t, { path: '/proc/net/xt_traffic/RSN_info' });
      } catch (e) {
        expect(e).toBeInstanceOf(ProductParseError);
        return e as ProductParseError;
      }
      throw new Error('expected a ParseError');
    };
    const at = '/proc/net/xt_traffic/RSN_info: line';
    expect(perr(INFO.replace('hashsize: 4096', 'hashsize: lots')).message).toBe(`${at} 6: hashsize: not a decimal number below 2^53 (the line: "hashsize: lots")`);
    expect(perr(INFO.replace('rules: 1', 'rules 1')).message).toBe(`${at} 8: expected "key: value" (the line: "rules 1")`);
    expect(perr(INFO.replace('netmask: 255.255.240.0', 'netmask: 255.0.255.0')).message).toBe(`${at} 4: netmask: not contiguous: 255.0.255.0 (the line: "netmask: 255.0.255.0")`);
    expect(perr(INFO.replace('options: traffic', 'options: traffik')).message).toMatch(new RegExp(`^${at} 5: options: unknown option "traffik" \\(the line: "options: traffik`));
    expect(perr(INFO.replace('overflow: 0\n', '')).message).toBe(`${at} 13: missing key "overflow"`);
    expect(perr(INFO + 'rules: 2\n').message).toBe(`${at} 14: duplicate key rules (first on line 8) (the line: "rules: 2")`);
    expect(perr(INFO.slice(0, -1)).message).toBe(`${at} 13: truncated: the last line has no terminating newline (the line: "overflow: 0")`);
    expect(perr(INFO.replace('rules: 1', 'rules: 1\r')).message).toBe(`${at} 8: expected "key: value" (the line: "rules: 1\\r")`);
    expect(perr(INFO + 'generation: 12\n').message).toBe(`${at} 14: generation: expected 16 lowercase hex digits (the line: "generation: 12")`);
    expect(parseInfo(INFO + 'generation: 5f0c2a9e13b7d4c1\n').generation).toBe('5f0c2a9e13b7d4c1');
    expect(perr('').line).toBe(1);
    expect(perr('').exitCode).toBe(3);
  });

  it('maskToPrefix', () => {
    expect(maskToPrefix('255.255.255.255')).toBe(32);
    expect(maskToPrefix('128.0.0.0')).toBe(1);
    expect(maskToPrefix('0.0.0.0')).toBe(0);
    expect(maskToPrefix('255.255.254.0')).toBe(23);
    expect(maskToPrefix('255.255.0.255')).toBe(-1);
  });
});
