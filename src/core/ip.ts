/** IPv4 addresses as 32-bit unsigned numbers. Pure. */

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
