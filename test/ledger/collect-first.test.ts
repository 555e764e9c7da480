/**
 * Collect first (`unload`, `rule del`): with no ledger nothing happens; with a ledger and no
 * collector, one collection under the lock; with a collector running, SIGUSR1 and a wait for
 * its commit (the collector in-process, its signal handlers called directly); a collector that
 * does not answer: refused. Retention flags of `collect`.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collectFirst, infoPath, lockCollector, readCollectorInfo, writeCollectorInfo } from '../../src/ledger/collector.js';
import { getSettings, openLedgerDb } from '../../src/ledger/db.js';
import { hostsInPeriod } from '../../src/ledger/query.js';
import { periodAt } from '../../src/ledger/periods.js';
import { countersText, ledgerCli, tr } from './helpers.js';

let dir: string;
const GEN = 'bbbbbbbbbbbbbbbb';
const T = Date.UTC(2026, 3, 7, 9, 30, 10);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xtt-cf-'));
  mkdirSync(join(dir, 'ctr'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const handlers = new Map<string, () => void>();
const cli = ledgerCli(() => dir, () => ({
  now: () => T,
  pid: 4242,
  onSignal: (sig: string, f: () => void) => {
    handlers.set(sig, f);
    return () => handlers.delete(sig);
  },
}));
const write = (bytes: bigint) => writeFileSync(join(dir, 'ctr', 'lan'), countersText({ name: 'lan', generation: GEN, traffic: new Map([['10.1.2.3', tr(bytes, 0n)]]) }));
const loc = () => ({ dir: join(dir, 'ctr'), fromEnv: true });
const opts = (extra: object = {}) => ({
  dbPath: join(dir, 'ledger.db'), loc: loc(), why: 'rule del --name lan', signal: () => undefined,
  sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)), now: () => Date.now(), ...extra,
});
const billed = () => {
  const db = openLedgerDb(join(dir, 'ledger.db'), { readonly: true });
  try {
    db.defaultSafeIntegers(true);
    return hostsInPeriod(db, periodAt(T, { billingDay: 1, tz: 'UTC' }).start).get('10.1.2.3')?.[0];
  } finally {
    db.close();
  }
};

describe('collect first', () => {
  it('no ledger: nothing; a ledger and no collector: one collection under the lock', async () => {
    write(100n);
    expect(await collectFirst(opts())).toEqual({ how: 'no-ledger' });
    expect(existsSync(join(dir, 'ledger.db'))).toBe(false);
    expect((await cli(['collect', '--once'])).code).toBe(0);
    write(175n);
    const r = await collectFirst(opts({ now: () => T + 60_000 }));
    expect(r.how).toBe('once');
    expect(billed()).toBe(175n);
  });

  it('a running collector is signalled (SIGUSR1) and its commit awaited; SIGTERM: last collection, info removed', async () => {
    write(1000n);
    handlers.clear();
    const daemon = cli(['collect', '--interval', '60']);
    for (let i = 0; i < 200 && !(handlers.has('SIGUSR1') && existsSync(infoPath(join(dir, 'ledger.db')))); i++) await new Promise((r) => setTimeout(r, 10));
    expect(readCollectorInfo(join(dir, 'ledger.db'))).toEqual({ pid: 4242, since: '2026-04-07T09:30:10.000Z', collections: 0 });
    write(1500n);
    let signalled = 0;
    const r = await collectFirst(opts({ alive: (pid: number) => pid === 4242, signal: (pid: number) => { expect(pid).toBe(4242); signalled++; handlers.get('SIGUSR1')!(); } }));
    expect(r.how).toBe('collector');
    expect(signalled).toBe(1);
    expect(readCollectorInfo(join(dir, 'ledger.db'))!.collections).toBe(1);
    expect(billed()).toBe(1500n);
    write(1600n);
    handlers.get('SIGTERM')!();
    const d = await daemon;
    expect(d.code).toBe(0);
    expect(d.out).toBe('2026-04-07T09:30:10Z lan: 1 host [first]\n2026-04-07T09:30:10Z lan: 1 host\n');
    expect(billed()).toBe(1600n);
    expect(existsSync(infoPath(join(dir, 'ledger.db')))).toBe(false);
  });

  it('a collector that does not commit in time: refused, naming it; no info file: refused', async () => {
    write(1n);
    expect((await cli(['collect', '--once'])).code).toBe(0);
    const lock = lockCollector(join(dir, 'ledger.db'));
    try {
      await expect(collectFirst(opts({ timeoutMs: 200 }))).rejects.toThrow(/holds .*ledger\.db\.lock but .*ledger\.db\.collector does not say its pid within 0\.2 s: not going on with rule del --name lan/);
      // a stale pid (a collector killed, the next one not announced yet)
      writeCollectorInfo(join(dir, 'ledger.db'), { pid: 999999, since: 'x', collections: 3 });
      await expect(collectFirst(opts({ timeoutMs: 200, alive: () => false }))).rejects.toThrow('the pid in');
      // alive, signalled, never commits
      let n = 0;
      await expect(collectFirst(opts({ timeoutMs: 200, alive: () => true, signal: () => { n++; } }))).rejects.toThrow('the collector (pid 999999) did not commit a collection within 0.2 s: not going on with rule del --name lan');
      expect(n).toBe(1);
      // announced late (a starting collector): signalled once it is, then its commit
      rmSync(infoPath(join(dir, 'ledger.db')));
      setTimeout(() => writeCollectorInfo(join(dir, 'ledger.db'), { pid: 777, since: 'y', collections: 0 }), 100);
      const r = await collectFirst(opts({ alive: () => true, signal: (pid: number) => { expect(pid).toBe(777); setTimeout(() => writeCollectorInfo(join(dir, 'ledger.db'), { pid: 777, since: 'y', collections: 1 }), 50); } }));
      expect(r.how).toBe('collector');
    } finally {
      lock.release();
    }
  });
});

describe('collect: retention flags', () => {
  it('stores the retention in the ledger; bad values named', async () => {
    write(5n);
    let r = await cli(['collect', '--once', '--keep-5min', '62', '--keep-day', '0', '--keep-group-5min', '800']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('xttraffic collect: retention (days, 0 = forever): host 5-minute 62, hourly 400, daily 0, group 5-minute 800, intervals 400\n');
    const db = openLedgerDb(join(dir, 'ledger.db'), { readonly: true });
    expect(getSettings(db)).toMatchObject({ keep5mDays: 62, keepHourDays: 400, keepDayDays: 0, keepGroup5mDays: 800 });
    db.close();
    r = await cli(['collect', '--once', '--keep-hour', '1.5']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--keep-hour 1.5: must be a whole number of days, 0 (forever) .. 36500');
    r = await cli(['collect', '--once', '--keep-intervals', '99999']);
    expect(r.err).toContain('--keep-intervals 99999');
  });
});
