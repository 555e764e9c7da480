/**
 * The counters file of an IPv6 table and of an IPv4 table counted per prefix (docs/design.md,
 * "IPv6 and host prefixes (revision 1)", the counters file): `family` and `hostprefix` after
 * `netmask`, keys as in the table files.
 */
import { describe, expect, it } from 'vitest';
import { ParseError } from '../../src/core/errors.js';
import { parseCounters } from '../../src/proc/counters.js';
import { keyText } from '../../src/proc/parse.js';

const V6 = 'xt_traffic_counters 1\nname: V6\ngeneration: 5f0c2a9e13b7d4c1\noptions: traffic ipconn\nnetbase: 2001:db8::\nnetmask: ffff:ffff:ffff::\nfamily: ipv6\nhostprefix: 64\noverflow: 3\n'
  + '[traffic]\n2001:db8:0:1::/64\t1500\t84\t1400\t0\t100\t0\t0\t84\n2001:db8::/64\t18446744073709551615\t0\t18446744073709551615\t0\t0\t0\t0\t0\n'
  + '[ipconn]\n2001:db8:0:1::/64\t1\t0\t1\t0\t0\t0\t0\t0\t0\t0\n[end]\n';

function err(text: string): ParseError {
  try {
    parseCounters(text, { path: '/x/V6' });
  } catch (e) {
    return e as ParseError;
  }
  throw new Error('no error');
}

describe('counters file: IPv6 and host prefixes', () => {
  it('parses an IPv6 table: family, host prefix, 4-word keys in file order, exact counters', () => {
    const r = parseCounters(V6);
    expect([r.family, r.hostPrefix, r.prefixLength, r.netbase, r.overflow]).toEqual(['ipv6', 64, 48, '2001:db8::', 3n]);
    const t = r.traffic!;
    expect([t.rows, t.family, t.keyWords, t.keyPrefix]).toEqual([2, 'ipv6', 4, 64]);
    expect([...t.keys]).toEqual([0x20010db8, 1, 0, 0, 0x20010db8, 0, 0, 0]);
    expect([keyText(t, 0), keyText(t, 1)]).toEqual(['2001:db8:0:1::/64', '2001:db8::/64']);
    expect([...t.counters.subarray(0, 8)]).toEqual([1500n, 84n, 1400n, 0n, 100n, 0n, 0n, 84n]);
    expect(t.counters[8]).toBe((1n << 64n) - 1n);
    expect(keyText(r.ipconn!, 0)).toBe('2001:db8:0:1::/64');
  });

  it('host prefix 128: bare addresses; an IPv4 table per /24; files without family/hostprefix are IPv4 /32', () => {
    const full = V6.replace('hostprefix: 64', 'hostprefix: 128').replace('2001:db8:0:1::/64\t1500', '2001:db8::1\t1500').replace('2001:db8::/64\t1844', '2001:db8::2\t1844')
      .replace('[ipconn]\n2001:db8:0:1::/64', '[ipconn]\n2001:db8::1');
    const r = parseCounters(full);
    expect([keyText(r.traffic!, 0), keyText(r.traffic!, 1), r.traffic!.keyPrefix]).toEqual(['2001:db8::1', '2001:db8::2', 128]);
    const v4 = 'xt_traffic_counters 1\nname: P\ngeneration: 5f0c2a9e13b7d4c1\noptions: traffic\nnetbase: 10.0.0.0\nnetmask: 255.0.0.0\nfamily: ipv4\nhostprefix: 24\noverflow: 0\n[traffic]\n10.1.2.0/24\t5\t6\t5\t6\t0\t0\t0\t0\n[end]\n';
    const p = parseCounters(v4);
    expect([p.family, p.hostPrefix, p.traffic!.keyWords, p.traffic!.keys[0], keyText(p.traffic!, 0)]).toEqual(['ipv4', 24, 1, (10 << 24) + (1 << 16) + (2 << 8), '10.1.2.0/24']);
    const old = parseCounters(v4.replace('family: ipv4\nhostprefix: 24\n', '').replace('10.1.2.0/24', '10.1.2.7'));
    expect([old.family, old.hostPrefix, old.traffic!.keyPrefix, keyText(old.traffic!, 0)]).toEqual(['ipv4', 32, 32, '10.1.2.7']);
  });

  it('strict: every bad key or head line is a ParseError naming the file, the line and the value', () => {
    const cases: Array<[string, string]> = [
      [V6.replace('2001:db8:0:1::/64\t1500', '2001:DB8:0:1::/64\t1500'), '/x/V6: line 11: IP 2001:DB8:0:1::/64: not in RFC 5952 form (2001:db8:0:1::/64)'],
      [V6.replace('2001:db8:0:1::/64\t1500', '2001:db8:0:1::5/64\t1500'), '/x/V6: line 11: IP 2001:db8:0:1::5/64: host bits set: a key is its prefix\'s first address (2001:db8:0:1::/64)'],
      [V6.replace('2001:db8:0:1::/64\t1500', '2001:db8:0:1::/56\t1500'), '/x/V6: line 11: IP 2001:db8:0:1::/56: /56, but the table\'s keys are /64 (hostprefix 64)'],
      [V6.replace('2001:db8:0:1::/64\t1500', '2001:db8:0:1::\t1500'), '/x/V6: line 11: IP 2001:db8:0:1::: a bare address, but the table\'s keys are /64 (hostprefix 64)'],
      [V6.replace('2001:db8:0:1::/64\t1500', '10.0.0.1\t1500'), '/x/V6: line 11: IP 10.0.0.1: an IPv4 key in a table of IPv6 keys (family ipv6)'],
      [V6.replace('2001:db8:0:1::/64\t1500', '2001:db8:0:1::/064\t1500'), '/x/V6: line 11: IP 2001:db8:0:1::/064: the prefix length after "/" must be 1..127 in decimal (a full-length key is the bare address)'],
      [V6.replace('2001:db8::/64\t1844', '2001:db8:0:1::/64\t1844'), '/x/V6: line 12: IP 2001:db8:0:1::/64: the key appears twice in [traffic]'],
      [V6.replace('2001:db8:0:1::/64\t1500', '2001:db8:0:1:/64\t1500'), '/x/V6: line 11: IP 2001:db8:0:1:/64: not an IPv6 address and prefix length'],
      [V6.replace('family: ipv6\n', ''), '/x/V6: line 7: hostprefix without a "family: ..." line before it'],
      [V6.replace('hostprefix: 64\n', ''), '/x/V6: line 7: family without a "hostprefix: ..." line after it'],
      [V6.replace('family: ipv6', 'family: inet6'), '/x/V6: line 7: family: "inet6" is neither ipv4 nor ipv6'],
      [V6.replace('hostprefix: 64', 'hostprefix: 40'), '/x/V6: line 8: hostprefix: "40" is not between the net\'s length 48 and 128'],
      [V6.replace('hostprefix: 64', 'hostprefix: 129'), '/x/V6: line 8: hostprefix: "129" is not between the net\'s length 48 and 128'],
      [V6.replace('netbase: 2001:db8::', 'netbase: 2001:db8::1'), '/x/V6: line 5: netbase: 2001:db8::1 has host bits set for the /48 net (2001:db8::)'],
      [V6.replace('netmask: ffff:ffff:ffff::', 'netmask: ffff:0:ffff::'), '/x/V6: line 6: netmask: not contiguous'],
      [V6.replace('netmask: ffff:ffff:ffff::', 'netmask: 255.255.0.0'), '/x/V6: line 6: netmask: "255.255.0.0" is not an IPv6 mask (family ipv6)'],
      [V6.replace('netbase: 2001:db8::', 'netbase: 2001:0db8::'), '/x/V6: line 5: netbase: "2001:0db8::" is not in RFC 5952 form (2001:db8::)'],
    ];
    for (const [text, msg] of cases) expect(err(text).message.split(' (the line')[0]).toBe(msg);
    const v4 = 'xt_traffic_counters 1\nname: V6\ngeneration: 5f0c2a9e13b7d4c1\noptions: traffic\nnetbase: 10.0.0.0\nnetmask: 255.0.0.0\nfamily: ipv4\nhostprefix: 24\noverflow: 0\n[traffic]\n10.1.2.0/24\t5\t6\t5\t6\t0\t0\t0\t0\n[end]\n';
    expect(err(v4.replace('10.1.2.0/24', '10.1.2.9/24')).message.split(' (the line')[0]).toBe('/x/V6: line 11: IP 10.1.2.9/24: host bits set: a key is its prefix\'s first address (10.1.2.0/24)');
    expect(err(v4.replace('10.1.2.0/24', '10.1.2.0')).message.split(' (the line')[0]).toBe('/x/V6: line 11: IP 10.1.2.0: a bare address, but the table\'s keys are /24 (hostprefix 24)');
    expect(err(v4.replace('10.1.2.0/24', '2001:db8::/64')).message.split(' (the line')[0]).toBe('/x/V6: line 11: IP 2001:db8::/64: an IPv6 key in a table of IPv4 keys (family ipv4)');
    expect(err(v4.replace('hostprefix: 24', 'hostprefix: 33')).message.split(' (the line')[0]).toBe('/x/V6: line 8: hostprefix: "33" is not between the net\'s length 8 and 32');
  });
});
