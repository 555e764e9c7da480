/**
 * Exact counters in SQLite. SQLite's INTEGER is signed 64-bit and SUM() fails on overflow, so
 * every counter column `c` is stored as two: `c` (the low 32 bits) and `c_hi` (the rest), value
 * = c_hi * 2^32 + c. One delta is a u64, so each part is below 2^32 and sums of up to 2^31 rows
 * fit in a signed 64-bit integer; readers add the two sums as BigInt. A part that is zero costs
 * no byte in a SQLite record (serial type 8), so the usual small counts cost nothing extra.
 */
export const TWO32 = 4294967296;
const TWO32N = 1n << 32n;
export const U64_MAX = (1n << 64n) - 1n;

/** Splits a u64 into [low 32 bits, high 32 bits] as plain numbers. */
export function split(v: bigint): [number, number] {
  if (v <= 9007199254740991n) {
    const n = Number(v);
    const lo = n % TWO32;
    return [lo, (n - lo) / TWO32];
  }
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

/** hi * 2^32 + lo, from SQLite sums (bigint with safeIntegers, or numbers, or null). */
export function join2(lo: bigint | number | null | undefined, hi: bigint | number | null | undefined): bigint {
  return BigInt(hi ?? 0) * TWO32N + BigInt(lo ?? 0);
}

/** A u64 as a signed 64-bit integer (same bits), to store one exact u64 in one column. */
export function toSigned(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}

export function fromSigned(v: bigint | number): bigint {
  return BigInt.asUintN(64, BigInt(v));
}
