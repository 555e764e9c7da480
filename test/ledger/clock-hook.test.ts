import { afterEach, describe, expect, it } from 'vitest';
import { clockOffsetMs, realDeps } from '../../src/real-deps.js';

// The test hook XTT_CLOCK_OFFSET_MS (src/real-deps.ts): the VM ledger test moves a real
// collector to just before a billing period's end with it.
describe('XTT_CLOCK_OFFSET_MS', () => {
  const saved = process.env['XTT_CLOCK_OFFSET_MS'];
  afterEach(() => {
    if (saved === undefined) delete process.env['XTT_CLOCK_OFFSET_MS'];
    else process.env['XTT_CLOCK_OFFSET_MS'] = saved;
  });

  it('unset or empty: 0; a whole number of ms (also negative): that', () => {
    expect(clockOffsetMs({})).toBe(0);
    expect(clockOffsetMs({ XTT_CLOCK_OFFSET_MS: '' })).toBe(0);
    expect(clockOffsetMs({ XTT_CLOCK_OFFSET_MS: '2678400000' })).toBe(2678400000);
    expect(clockOffsetMs({ XTT_CLOCK_OFFSET_MS: '-1500' })).toBe(-1500);
  });

  it('anything else: a usage error naming the value', () => {
    for (const v of ['1.5', '10s', ' 5', '1e9', '9999999999999999']) {
      expect(() => clockOffsetMs({ XTT_CLOCK_OFFSET_MS: v })).toThrow(`XTT_CLOCK_OFFSET_MS ${JSON.stringify(v)}: must be a whole number of milliseconds (a test hook; unset it)`);
    }
  });

  it('realDeps().now() is the wall clock plus the offset', async () => {
    const deps = await realDeps();
    process.env['XTT_CLOCK_OFFSET_MS'] = String(Date.UTC(2027, 0, 1) - Date.now());
    const t = deps.now();
    expect(Math.abs(t - Date.UTC(2027, 0, 1))).toBeLessThan(5_000);
    delete process.env['XTT_CLOCK_OFFSET_MS'];
    expect(Math.abs(deps.now() - Date.now())).toBeLessThan(1_000);
  });
});
