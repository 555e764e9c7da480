/**
 * The tests' oracle (test/lib/proc-oracle.ts) on IPv6 and per-prefix keys: exact rows, its
 * own strictness, and agreement with the product's parser (src/proc/parse.ts) on random tables.
 */
import { describe, expect, it } from 'vitest';
import { formatIPv6 } from '../../src/core/ip.js';
import { parseTable, rowsFromColumns } from '../../src/proc/parse.js';
import { parseIpConn, parseTraffic, v6Text, v6Value } from '../lib/proc-oracle.js';

const H = 'IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n';
const row = (k: string, n: number) => `${k}\t${n}\t${n + 1}\t${n}\t${n + 1}\t0\t0\t0\t0\n`;

describe('proc oracle: IPv6 and host-prefix keys', () => {
  it('parses IPv6 /64 keys, bare /128 addresses, IPv4 /24 keys; u64 exact', () => {
    const rows = parseTraffic(`${H}${row('2001:db8::/64', 5)}${row('2001:db8:0:9::/64', 6)}2001:db8:0:10::/64\t18446744073709551615\t0\t18446744073709551615\t0\t0\t0\t0\t0\n`);
    expect(rows.map((r) => [r.ip, r.total.in, r.tcp.out])).toEqual([['2001:db8::/64', 5n, 6n], ['2001:db8:0:9::/64', 6n, 7n], ['2001:db8:0:10::/64', (1n << 64n) - 1n, 0n]]);
    expect(parseTraffic(`${H}${row('::ffff:10.0.0.1', 1)}${row('2001:db8::1', 2)}`).map((r) => r.ip)).toEqual(['::ffff:10.0.0.1', '2001:db8::1']);
    expect(parseTraffic(`${H}${row('10.0.0.0/24', 1)}${row('10.0.1.0/24', 2)}`).map((r) => r.ip)).toEqual(['10.0.0.0/24', '10.0.1.0/24']);
    expect(parseIpConn(`IP\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n2001:db8::/56\t1\t2\t1\t2\t0\t0\t0\t0\t0\t0\n`)[0]!.ip).toBe('2001:db8::/56');
    expect(v6Value('2001:db8::1')).toBe((0x20010db8n << 96n) | 1n);
    expect(v6Value('::ffff:1.2.3.4')).toBe((0xffffn << 32n) | 0x01020304n);
    expect(v6Value('1:2:3:4:5:6:7:8:9')).toBeUndefined();
    expect(v6Text(0n)).toBe('::');
  });

  it('refuses what the contract refuses, naming the line', () => {
    const bad: Array<[string, string]> = [
      [`${H}${row('2001:db8:0:9::/64', 1)}${row('2001:db8::/64', 2)}`, 'traffic line 3: duplicate'], // out of order: caught as order, see below
      [`${H}${row('2001:DB8::/64', 1)}`, 'traffic line 2: IP: "2001:DB8::/64" is not in RFC 5952 form (2001:db8::)'],
      [`${H}${row('2001:db8::1/64', 1)}`, 'traffic line 2: IP: host bits set in "2001:db8::1/64"'],
      [`${H}${row('2001:db8::/64', 1)}${row('2001:db8:1::/56', 2)}`, 'traffic line 3: IP 2001:db8:1::/56: a key of family/length 6/56 in a table of 6/64 keys'],
      [`${H}${row('10.0.0.1', 1)}${row('2001:db8::1', 2)}`, 'traffic line 3: IP 2001:db8::1: a key of family/length 6/128 in a table of 4/32 keys'],
      [`${H}${row('2001:db8::/128', 1)}`, 'traffic line 2: IP: bad prefix length in "2001:db8::/128"'],
      [`${H}${row('10.0.0.1/24', 1)}`, 'traffic line 2: IP: host bits set in "10.0.0.1/24"'],
      [`${H}${row('2001:db8::/64', 1)}${row('2001:db8::/64', 2)}`, 'traffic line 3: duplicate IP 2001:db8::/64 (first on line 2)'],
    ];
    for (const [text, msg] of bad.slice(1)) expect(() => parseTraffic(text)).toThrow(msg);
    // the oracle accepts rows out of order (it only refuses duplicates): the product refuses them
    expect(parseTraffic(bad[0]![0]).map((r) => r.ip)).toEqual(['2001:db8:0:9::/64', '2001:db8::/64']);
  });

  it('agrees with the product parser on random IPv6 tables (keys and counters)', () => {
    let seed = 99;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let t = 0; t < 20; t++) {
      const plen = [48, 56, 64, 96, 128][t % 5]!;
      const keys = new Set<bigint>();
      while (keys.size < 50) {
        let v = 0n;
        for (let i = 0; i < 4; i++) v = (v << 32n) | BigInt((Math.floor(rnd() * 2 ** 32) & (rnd() < 0.5 ? 0xffff : 0xffffffff)) >>> 0);
        keys.add(v & ~((1n << BigInt(128 - plen)) - 1n));
      }
      const sorted = [...keys].sort((a, b) => (a < b ? -1 : 1));
      const text = H + sorted.map((v, i) => row(plen === 128 ? v6Text(v) : `${v6Text(v)}/${plen}`, i * 1000003)).join('');
      const mine = parseTraffic(text);
      const product = rowsFromColumns('traffic', parseTable('traffic', text));
      expect(mine.map((r) => [r.ip, r.total.in, r.tcp.out])).toEqual(product.map((r) => [r.ip, r.total.in, r.tcp.out]));
      const w = new Uint32Array(4);
      for (let i = 0; i < 4; i++) w[i] = Number((sorted[0]! >> BigInt(96 - 32 * i)) & 0xffffffffn);
      expect(v6Text(sorted[0]!)).toBe(formatIPv6(w));
    }
  });
});
