import { describe, expect, it } from 'vitest';
import { iso, isoIn, parseTime, periodAt, periodOfLabel, checkBillingDay, checkZone } from '../../src/ledger/periods.js';
import { nearestRank95 } from '../../src/ledger/query.js';

const P = (day: number, tz: string) => ({ billingDay: day, tz });
const span = (lab: string, day: number, tz: string) => {
  const p = periodOfLabel(lab, P(day, tz));
  return [iso(p.start), iso(p.end)];
};

describe('billing periods', () => {
  it('day 1/15/28/31 over February (2026 and leap 2028), clamped, never spilling into March', () => {
    expect(span('2026-02', 1, 'UTC')).toEqual(['2026-02-01T00:00:00Z', '2026-03-01T00:00:00Z']);
    expect(span('2026-02', 15, 'UTC')).toEqual(['2026-02-15T00:00:00Z', '2026-03-15T00:00:00Z']);
    expect(span('2026-02', 28, 'UTC')).toEqual(['2026-02-28T00:00:00Z', '2026-03-28T00:00:00Z']);
    expect(span('2026-01', 31, 'UTC')).toEqual(['2026-01-31T00:00:00Z', '2026-02-28T00:00:00Z']);
    expect(span('2026-02', 31, 'UTC')).toEqual(['2026-02-28T00:00:00Z', '2026-03-31T00:00:00Z']);
    expect(span('2028-02', 31, 'UTC')).toEqual(['2028-02-29T00:00:00Z', '2028-03-31T00:00:00Z']);
    expect(span('2026-04', 31, 'UTC')).toEqual(['2026-04-30T00:00:00Z', '2026-05-31T00:00:00Z']);
    expect(span('2026-12', 31, 'UTC')).toEqual(['2026-12-31T00:00:00Z', '2027-01-31T00:00:00Z']);
    // the instant 2026-02-28T00:00Z belongs to the period labelled 2026-02 with day 31, not 2026-01
    expect(periodAt(Date.UTC(2026, 1, 28), P(31, 'UTC')).label).toBe('2026-02');
    expect(periodAt(Date.UTC(2026, 1, 28) - 1, P(31, 'UTC')).label).toBe('2026-01');
    expect(periodAt(Date.UTC(2026, 0, 5), P(15, 'UTC')).label).toBe('2025-12');
  });

  it('DST: Europe/Berlin and America/New_York periods are 1 hour shorter/longer in their months', () => {
    // Berlin: DST starts 2026-03-29 02:00 local, ends 2026-10-25 03:00 local
    const b = periodOfLabel('2026-03', P(1, 'Europe/Berlin'));
    expect([iso(b.start), iso(b.end)]).toEqual(['2026-02-28T23:00:00Z', '2026-03-31T22:00:00Z']);
    expect((b.end - b.start) / 3_600_000).toBe(31 * 24 - 1);
    const o = periodOfLabel('2026-10', P(1, 'Europe/Berlin'));
    expect((o.end - o.start) / 3_600_000).toBe(31 * 24 + 1);
    // New York: DST 2026-03-08 and 2026-11-01; billing day 8 starts on the change day itself
    const n = periodOfLabel('2026-03', P(8, 'America/New_York'));
    expect([iso(n.start), iso(n.end)]).toEqual(['2026-03-08T05:00:00Z', '2026-04-08T04:00:00Z']);
    expect(isoIn(n.start, 'America/New_York')).toBe('2026-03-08T00:00:00-05:00');
    const nov = periodOfLabel('2026-11', P(1, 'America/New_York'));
    expect([iso(nov.start), iso(nov.end)]).toEqual(['2026-11-01T04:00:00Z', '2026-12-01T05:00:00Z']);
  });

  it('zones with :30 and :45 offsets: Asia/Kolkata, Asia/Kathmandu', () => {
    expect(span('2026-02', 1, 'Asia/Kolkata')).toEqual(['2026-01-31T18:30:00Z', '2026-02-28T18:30:00Z']);
    expect(span('2026-02', 31, 'Asia/Kathmandu')).toEqual(['2026-02-27T18:15:00Z', '2026-03-30T18:15:00Z']);
    expect(isoIn(Date.UTC(2026, 1, 27, 18, 15), 'Asia/Kathmandu')).toBe('2026-02-28T00:00:00+05:45');
    expect(periodAt(Date.UTC(2026, 1, 27, 18, 14), P(31, 'Asia/Kathmandu')).label).toBe('2026-01');
  });

  it('bad input is refused naming the value', () => {
    expect(() => checkBillingDay(0)).toThrow('billing day 0: must be 1..31');
    expect(() => checkBillingDay(32)).toThrow('billing day 32: must be 1..31');
    expect(() => checkZone('Mars/Olympus')).toThrow('time zone "Mars/Olympus": not an IANA time zone');
    expect(() => periodOfLabel('2026-13', P(1, 'UTC'))).toThrow('period "2026-13": expected YYYY-MM');
    expect(() => parseTime('2026-02-30', 'UTC')).toThrow('time "2026-02-30": no such date');
    expect(() => parseTime('2026-02-03T10:00', 'UTC')).toThrow('time "2026-02-03T10:00": expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] with Z or +HH:MM');
    expect(parseTime('2026-02-03', 'Asia/Kolkata')).toBe(Date.UTC(2026, 1, 2, 18, 30));
    expect(parseTime('2026-02-03T10:00:00+01:00', 'UTC')).toBe(Date.UTC(2026, 1, 3, 9));
  });
});

describe('95th percentile, nearest rank', () => {
  it('sorts ascending and takes the ceil(0.95 n)-th', () => {
    const v = Array.from({ length: 20 }, (_, i) => BigInt(i + 1)); // 1..20
    expect(nearestRank95(v)).toEqual({ rank: 19, value: 19n });
    const w = Array.from({ length: 100 }, (_, i) => BigInt(100 - i)); // 100..1
    expect(nearestRank95(w)).toEqual({ rank: 95, value: 95n });
    expect(nearestRank95([7n])).toEqual({ rank: 1, value: 7n });
    expect(nearestRank95([])).toEqual({ rank: 0, value: null });
    expect(nearestRank95(Array.from({ length: 21 }, (_, i) => BigInt(i)))).toEqual({ rank: 20, value: 19n });
  });
});
