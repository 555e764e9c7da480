import { describe, expect, it } from 'vitest';
import {
  alignTo6, canonicalIPv6, compare6, formatIPv6, isAligned4, isAligned6, isIPv6, mask6ToPrefix, parseIPv6, prefixToMask6,
} from '../../src/core/ip.js';

const words = (s: string): number[] => {
  const w = new Uint32Array(4);
  if (!parseIPv6(s, w)) throw new Error(`not IPv6: ${s}`);
  return [...w];
};

describe('parseIPv6 (RFC 4291 text forms)', () => {
  it('reads groups, ::, leading zeros, upper case and a trailing dotted quad into 4 words', () => {
    expect(words('::')).toEqual([0, 0, 0, 0]);
    expect(words('::1')).toEqual([0, 0, 0, 1]);
    expect(words('1::')).toEqual([0x00010000, 0, 0, 0]);
    expect(words('2001:0DB8:0000:0000:0000:0000:0000:0001')).toEqual([0x20010db8, 0, 0, 1]);
    expect(words('2001:db8::1:0:0:1')).toEqual([0x20010db8, 0, 0x00010000, 1]);
    expect(words('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toEqual([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]);
    expect(words('::ffff:10.0.0.1')).toEqual([0, 0, 0xffff, 0x0a000001]);
    expect(words('0:0:0:0:0:ffff:10.0.0.1')).toEqual([0, 0, 0xffff, 0x0a000001]);
    expect(words('1:2:3:4:5:6:7::')).toEqual([0x00010002, 0x00030004, 0x00050006, 0x00070000]);
    expect(words('::2:3:4:5:6:7:8')).toEqual([0x00000002, 0x00030004, 0x00050006, 0x00070008]);
    // the words land at the offset given
    const w = new Uint32Array(8);
    expect(parseIPv6('2001:db8::ff', w, 4)).toBe(true);
    expect([...w]).toEqual([0, 0, 0, 0, 0x20010db8, 0, 0, 0xff]);
  });

  it('refuses everything else', () => {
    for (const bad of [
      '', ':', ':::', '1:::2', '1::2::3', ':1', '1:', '1:2', '12345::', '::g', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7',
      '1::2:3:4:5:6:7:8', '1.2.3.4', '::1.2.3', '::256.0.0.1', '::01.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '::ffff:1.2.3.4:5',
      'fe80::1%eth0', '[::1]', '2001:db8::/64', ' ::1', '::1 ',
    ]) {
      expect(isIPv6(bad), bad).toBe(false);
    }
  });
});

describe('formatIPv6 (RFC 5952)', () => {
  const vectors: Array<[string, string]> = [
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // 4.2.3: the first of two equal runs
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'], // 4.1 leading zeros, 4.2.1 longest
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // 4.2.2: one zero group is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // 4.2.3: the longest run
    ['2001:DB8::AbCd', '2001:db8::abcd'], // 4.3: lower case
    ['1:0:0:0:0:0:0:0', '1::'],
    ['1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0'],
    ['0:2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['ffff:ffff:ffff::', 'ffff:ffff:ffff::'],
    ['fe80:0:0:0:0:0:0:0', 'fe80::'],
    // section 5: mixed notation only where the bits alone say "IPv4 inside": IPv4-mapped
    ['::ffff:a00:1', '::ffff:10.0.0.1'],
    ['0:0:0:0:0:ffff:0:0', '::ffff:0.0.0.0'],
    ['::10.0.0.1', '::a00:1'], // IPv4-compatible (deprecated): hex
    ['fe80::5efe:192.0.2.1', 'fe80::5efe:c000:201'], // ISATAP: hex
    ['::fffe:a00:1', '::fffe:a00:1'],
    ['0:0:0:1:0:ffff:a00:1', '::1:0:ffff:a00:1'],
  ];
  for (const [input, want] of vectors) {
    it(`${input} -> ${want}`, () => {
      expect(canonicalIPv6(input)).toBe(want);
      expect(canonicalIPv6(want)).toBe(want); // a fixed point
    });
  }
  it('formats at an offset; canonicalIPv6 of a non-address is undefined', () => {
    expect(formatIPv6(Uint32Array.of(9, 0x20010db8, 1, 0, 0), 1)).toBe('2001:db8:0:1::');
    expect(canonicalIPv6('2001:db8::/64')).toBeUndefined();
  });
});

describe('prefixes of 128 bits', () => {
  it('masks, their lengths, alignment and order', () => {
    expect(formatIPv6(prefixToMask6(48))).toBe('ffff:ffff:ffff::');
    expect(formatIPv6(prefixToMask6(64))).toBe('ffff:ffff:ffff:ffff::');
    expect(formatIPv6(prefixToMask6(1))).toBe('8000::');
    expect(formatIPv6(prefixToMask6(127))).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe');
    expect(formatIPv6(prefixToMask6(128))).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
    for (const len of [0, 1, 31, 32, 33, 48, 56, 63, 64, 65, 96, 127, 128]) expect(mask6ToPrefix(prefixToMask6(len))).toBe(len);
    expect(mask6ToPrefix(words('ffff:ffff:0:ffff::'))).toBe(-1);
    expect(mask6ToPrefix(words('ffff:ffff:ffff:fffe:1::'))).toBe(-1);
    expect(isAligned6(words('2001:db8:0:100::'), 56)).toBe(true);
    expect(isAligned6(words('2001:db8:0:180::'), 56)).toBe(false);
    expect(isAligned6(words('2001:db8::1'), 128)).toBe(true);
    expect(isAligned6(words('2001:db8::1'), 127)).toBe(false);
    expect(formatIPv6(alignTo6(words('2001:db8:1:2:3:4:5:6'), 48))).toBe('2001:db8:1::');
    expect(formatIPv6(alignTo6(words('2001:db8:1:2:3:4:f005:6'), 100))).toBe('2001:db8:1:2:3:4:f000:0');
    expect(isAligned4(0x0a140100, 24)).toBe(true);
    expect(isAligned4(0x0a140101, 24)).toBe(false);
    expect(compare6(words('2001:db8:0:9::'), 0, words('2001:db8:0:10::'), 0)).toBe(-1); // numeric, not text order
    expect(compare6(words('ffff::'), 0, words('7fff::'), 0)).toBe(1); // unsigned
    expect(compare6(words('::1'), 0, words('::1'), 0)).toBe(0);
  });
});
