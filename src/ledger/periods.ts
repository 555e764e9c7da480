/**
 * Billing periods. A profile is a billing day (1..31) and an IANA time zone. A period starts
 * at local midnight of the billing day, clamped to the month's last day (day 31 starts on
 * Feb 28/29, never spills into March), in the profile's zone, and ends where the next one
 * starts. Instants are UTC milliseconds; the machine's own zone is never used. Pure.
 */
import { UsageError } from '../core/errors.js';

export interface Profile {
  billingDay: number;
  tz: string;
}

const fmtCache = new Map<string, Intl.DateTimeFormat>();

function fmt(tz: string): Intl.DateTimeFormat {
  let f = fmtCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    fmtCache.set(tz, f);
  }
  return f;
}

/** Throws a UsageError naming the zone unless it is an IANA zone this runtime knows. */
export function checkZone(tz: string): string {
  try {
    fmt(tz);
  } catch {
    throw new UsageError(`time zone "${tz}": not an IANA time zone`, { hint: 'e.g. UTC, Europe/Berlin, America/New_York, Asia/Kathmandu' });
  }
  return tz;
}

export function checkBillingDay(v: string | number): number {
  const s = String(v);
  if (!/^\d{1,2}$/.test(s) || Number(s) < 1 || Number(s) > 31) throw new UsageError(`billing day ${s}: must be 1..31 (days past a month's end are clamped to its last day)`);
  return Number(s);
}

export interface LocalTime {
  y: number;
  m: number; // 1..12
  d: number;
  h: number;
  mi: number;
  s: number;
}

/** The wall-clock fields in `tz` at instant `t` (ms). */
export function localTime(t: number, tz: string): LocalTime {
  const parts = fmt(tz).formatToParts(new Date(t));
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return { y: get('year'), m: get('month'), d: get('day'), h: get('hour'), mi: get('minute'), s: get('second') };
}

/** Offset of `tz` from UTC at instant t, in ms (local = utc + offset). */
export function zoneOffset(t: number, tz: string): number {
  const l = localTime(t, tz);
  const asUtc = Date.UTC(l.y, l.m - 1, l.d, l.h, l.mi, l.s);
  return asUtc - (t - (((t % 1000) + 1000) % 1000));
}

/**
 * The UTC instant of local wall time y-m-d h:mi in tz. A wall time that does not exist (a DST
 * gap) gives the first instant after the gap; an ambiguous one (the hour repeated) the first.
 */
export function zonedToUtc(y: number, m: number, d: number, tz: string, h = 0, mi = 0): number {
  const wall = Date.UTC(y, m - 1, d, h, mi);
  // try the offsets in force a day before and after: one of them is right unless in a gap
  const cands = new Set([zoneOffset(wall - 86_400_000, tz), zoneOffset(wall, tz), zoneOffset(wall + 86_400_000, tz)]);
  const ok: number[] = [];
  for (const off of cands) {
    const t = wall - off;
    if (zoneOffset(t, tz) === off) ok.push(t);
  }
  if (ok.length > 0) return Math.min(...ok);
  // a gap: the instant where the later offset starts
  let lo = wall - Math.max(...cands);
  let hi = wall - Math.min(...cands);
  if (lo > hi) [lo, hi] = [hi, lo];
  const offLo = zoneOffset(lo, tz);
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2 / 1000) * 1000;
    if (zoneOffset(mid, tz) === offLo) lo = mid;
    else hi = mid;
  }
  return hi;
}

export function daysInMonth(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/** Start of the period that starts in month y-m (m 1..12; out-of-range m wraps). */
export function periodStartOfMonth(y: number, m: number, p: Profile): number {
  const yy = y + Math.floor((m - 1) / 12);
  const mm = ((((m - 1) % 12) + 12) % 12) + 1;
  return zonedToUtc(yy, mm, Math.min(p.billingDay, daysInMonth(yy, mm)), p.tz);
}

export interface Period {
  /** YYYY-MM of the month it starts in. */
  label: string;
  start: number;
  end: number;
  billingDay: number;
  tz: string;
}

function label(y: number, m: number): string {
  const yy = y + Math.floor((m - 1) / 12);
  const mm = ((((m - 1) % 12) + 12) % 12) + 1;
  return `${String(yy).padStart(4, '0')}-${String(mm).padStart(2, '0')}`;
}

/** The period labelled YYYY-MM (the one that starts in that month). */
export function periodOfLabel(lab: string, p: Profile): Period {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(lab);
  if (!m) throw new UsageError(`period "${lab}": expected YYYY-MM (the month the billing period starts in)`);
  const y = Number(m[1]);
  const mo = Number(m[2]);
  return { label: label(y, mo), start: periodStartOfMonth(y, mo, p), end: periodStartOfMonth(y, mo + 1, p), billingDay: p.billingDay, tz: p.tz };
}

/** The period containing instant t. */
export function periodAt(t: number, p: Profile): Period {
  const l = localTime(t, p.tz);
  let y = l.y;
  let m = l.m;
  if (t < periodStartOfMonth(y, m, p)) m -= 1;
  const s = periodStartOfMonth(y, m, p);
  return { label: label(y, m), start: s, end: periodStartOfMonth(y, m + 1, p), billingDay: p.billingDay, tz: p.tz };
}

/**
 * A time given on the command line: YYYY-MM-DD (midnight in `tz`), or an ISO date-time with
 * Z or an offset (YYYY-MM-DDTHH:MM[:SS](Z|+HH:MM)). A date-time without a zone is refused: the
 * machine's zone is never taken implicitly.
 */
export function parseTime(s: string, tz: string, what = 'time'): number {
  let m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m) {
    const y = Number(m[1]);
    const mo = Number(m[2]);
    const d = Number(m[3]);
    if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) throw new UsageError(`${what} "${s}": no such date`);
    return zonedToUtc(y, mo, d, tz);
  }
  m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (m) {
    const t = Date.parse(s);
    if (Number.isNaN(t)) throw new UsageError(`${what} "${s}": not a valid date-time`);
    return t;
  }
  throw new UsageError(`${what} "${s}": expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] with Z or +HH:MM`, { hint: 'a date-time without a zone is refused: the machine\'s zone is never used implicitly' });
}

/** An instant as ISO 8601 in UTC, without milliseconds when they are zero. */
export function iso(t: number): string {
  const s = new Date(t).toISOString();
  return s.endsWith('.000Z') ? `${s.slice(0, -5)}Z` : s;
}

/** An instant as local ISO 8601 with its offset in tz ("2026-03-29T00:00:00+01:00"). */
export function isoIn(t: number, tz: string): string {
  if (tz === 'UTC') return iso(t);
  const l = localTime(t, tz);
  const off = zoneOffset(t, tz) / 60000;
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${l.y}-${p2(l.m)}-${p2(l.d)}T${p2(l.h)}:${p2(l.mi)}:${p2(l.s)}${sign}${p2(Math.floor(a / 60))}:${p2(a % 60)}`;
}
