/** IPv4 addresses as 32-bit unsigned numbers, IPv6 addresses as 4 of them (RFC 4291 text in, RFC 5952 text out). Pure. */

/** Value of a dotted quad (no leading zeros, octets 0..255), or -1 if it is not one. */
export function ipValue(s: string): number {
  const len = s.length;
  if (len < 7 || len > 15) return -1;
  let v = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      v = v * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      const d = c - 48;
      if (d < 0 || d > 9 || (digits === 1 && octet === 0)) return -1;
      octet = octet * 10 + d;
      if (octet > 255) return -1;
      digits++;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return v * 256 + octet;
}

/** Validates a dotted-quad IPv4 address (no leading zeros, octets 0..255). */
export function isIPv4(s: string): boolean {
  return ipValue(s) >= 0;
}

/** IPv4 dotted quad to its 32-bit unsigned value (assumes isIPv4). */
export function ipToNumber(ip: string): number {
  return ipValue(ip);
}

export function numberToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Prefix length of a contiguous dotted-quad netmask, or -1 if it is not contiguous. */
export function maskToPrefix(mask: string): number {
  const n = ipToNumber(mask);
  let len = 0;
  while (len < 32 && (n & (0x80000000 >>> len)) !== 0) len++;
  const back = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return back === n ? len : -1;
}

// ---------------------------------------------------------------------------------------------
// IPv6: 128-bit values as 4 unsigned 32-bit words, most significant first (network order).

/**
 * Parses an IPv6 address in any RFC 4291 text form (hex groups, one `::`, a dotted quad in the
 * last 32 bits) into `out[off..off+3]`. Returns false (out unspecified) if it is not one. No
 * zone (`%eth0`), no brackets, no prefix.
 */
export function parseIPv6(s: string, out: Uint32Array | number[] = new Uint32Array(4), off = 0): boolean {
  const len = s.length;
  if (len < 2 || len > 45) return false;
  const g = [0, 0, 0, 0, 0, 0, 0, 0];
  let n = 0; // groups written
  let gap = -1; // group index where `::` stands
  let p = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    p = 2;
    if (p === len) return fill(g, n, gap, out, off);
  }
  for (;;) {
    // one group, or a dotted quad at the end
    const start = p;
    let v = 0;
    while (p < len && p - start < 5) {
      const c = s.charCodeAt(p);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      v = v * 16 + d;
      p++;
    }
    const digits = p - start;
    if (p < len && s.charCodeAt(p) === 46) {
      // a dotted quad: the last 32 bits
      const q = ipValue(s.slice(start));
      if (q < 0 || n > 6) return false;
      g[n++] = q >>> 16;
      g[n++] = q & 0xffff;
      p = len;
      break;
    }
    if (digits === 0 || digits > 4 || n === 8) return false;
    g[n++] = v;
    if (p === len) break;
    if (s.charCodeAt(p) !== 58) return false;
    p++;
    if (p < len && s.charCodeAt(p) === 58) {
      if (gap >= 0) return false;
      gap = n;
      p++;
      if (p === len) break;
    } else if (p === len) {
      return false; // a trailing single colon
    }
  }
  return fill(g, n, gap, out, off);
}

function fill(g: number[], n: number, gap: number, out: Uint32Array | number[], off: number): boolean {
  if (gap < 0 ? n !== 8 : n > 7) return false;
  const w = [0, 0, 0, 0, 0, 0, 0, 0];
  if (gap < 0) {
    for (let i = 0; i < 8; i++) w[i] = g[i]!;
  } else {
    for (let i = 0; i < gap; i++) w[i] = g[i]!;
    const tail = n - gap;
    for (let i = 0; i < tail; i++) w[8 - tail + i] = g[gap + i]!;
  }
  for (let i = 0; i < 4; i++) out[off + i] = ((w[2 * i]! << 16) | w[2 * i + 1]!) >>> 0;
  return true;
}

/** True for any RFC 4291 text form of an IPv6 address. */
export function isIPv6(s: string): boolean {
  return parseIPv6(s, [0, 0, 0, 0]);
}

/**
 * The RFC 5952 text of the address in `w[off..off+3]`: lowercase, no leading zeros, the longest
 * run (the first of equal ones) of two or more zero groups as `::`. Section 5: IPv4-mapped
 * addresses (::ffff:0:0/96, the one kind the bits alone identify) in mixed notation,
 * `::ffff:10.0.0.1`; everything else in hex.
 */
export function formatIPv6(w: ArrayLike<number>, off = 0): string {
  const w0 = w[off]!;
  const w1 = w[off + 1]!;
  const w2 = w[off + 2]!;
  const w3 = w[off + 3]!;
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) return `::ffff:${numberToIp(w3)}`;
  const g = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return g.map((x) => x.toString(16)).join(':');
  const head = g.slice(0, best).map((x) => x.toString(16)).join(':');
  const tail = g.slice(best + bestLen).map((x) => x.toString(16)).join(':');
  return `${head}::${tail}`;
}

/** The RFC 5952 form of an IPv6 address text, or undefined if it is not one. */
export function canonicalIPv6(s: string): string | undefined {
  const w = new Uint32Array(4);
  return parseIPv6(s, w) ? formatIPv6(w) : undefined;
}

/** Word i (0..3) of the mask of a prefix of `len` bits (0..128). */
export function maskWord6(len: number, i: number): number {
  const bits = len - 32 * i;
  return bits >= 32 ? 0xffffffff : bits <= 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** The IPv6 mask of a prefix length as 4 words. */
export function prefixToMask6(len: number): Uint32Array {
  return Uint32Array.from([0, 1, 2, 3], (i) => maskWord6(len, i));
}

/** Prefix length of a contiguous IPv6 mask (4 words), or -1 if it is not contiguous. */
export function mask6ToPrefix(w: ArrayLike<number>, off = 0): number {
  let len = 0;
  for (let i = 0; i < 4; i++) {
    const x = w[off + i]! >>> 0;
    let b = 0;
    while (b < 32 && (x & (0x80000000 >>> b)) !== 0) b++;
    len += b;
    if (b < 32) break;
  }
  for (let i = 0; i < 4; i++) if ((w[off + i]! >>> 0) !== maskWord6(len, i)) return -1;
  return len;
}

/** True when the address has no bit set past the first `len` bits (it is a prefix's first address). */
export function isAligned6(w: ArrayLike<number>, len: number, off = 0): boolean {
  for (let i = 0; i < 4; i++) if (((w[off + i]! & ~maskWord6(len, i)) >>> 0) !== 0) return false;
  return true;
}

/** True when the IPv4 value has no bit set past the first `len` bits (0..32). */
export function isAligned4(v: number, len: number): boolean {
  const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((v & ~m) >>> 0) === 0;
}

/** The address with every bit past the first `len` cleared. */
export function alignTo6(w: ArrayLike<number>, len: number, off = 0): Uint32Array {
  return Uint32Array.from([0, 1, 2, 3], (i) => (w[off + i]! & maskWord6(len, i)) >>> 0);
}

/** -1, 0, 1: the order of two 128-bit values (unsigned). */
export function compare6(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number): number {
  for (let i = 0; i < 4; i++) {
    const x = a[ao + i]!;
    const y = b[bo + i]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
