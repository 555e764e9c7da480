/**
 * A full disk under the ledger (issue 11, "Bad input and faults"): the collection that cannot
 * commit fails with a message naming the cause and commits nothing; once there is room again
 * the next collection takes the whole delta since the last commit: nothing lost, nothing
 * counted twice. A real tmpfs of 16 MiB filled to the last byte (needs root, as CI runs).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedgerDb } from '../../src/ledger/db.js';
import { periodAt } from '../../src/ledger/periods.js';
import { hostsInPeriod } from '../../src/ledger/query.js';
import { countersText, ledgerCli, tr } from './helpers.js';

const root = process.getuid?.() === 0;
let dir = '';
const GEN = 'cccccccccccccccc';
const T = Date.UTC(2026, 10, 3, 12, 0, 0);
const hosts = (n: number) => Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
const write = (n: number, bytes: (i: number) => bigint) =>
  writeFileSync(join(dir, 'ctr', 'lan'), countersText({
    name: 'lan', generation: GEN, traffic: new Map(hosts(n).map((ip, i) => [ip, tr(bytes(i), 2n * bytes(i))])),
  }));

describe.runIf(root)('a full disk under the ledger', () => {
  let now = T;
  const cli = ledgerCli(() => dir, () => ({ now: () => now, env: { XTT_DB: join(dir, 'fs', 'ledger.db') } }));
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'xtt-full-'));
    mkdirSync(join(dir, 'ctr'));
    mkdirSync(join(dir, 'fs'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'xtt-full', join(dir, 'fs')]);
  });
  afterAll(() => {
    try {
      execFileSync('umount', [join(dir, 'fs')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the collection that hits ENOSPC commits nothing and says why; the next one, with room, bills every byte once', async () => {
    write(10, (i) => 1000n + BigInt(i));
    expect((await cli(['collect', '--once'])).code).toBe(0);

    // fill the file system to the last byte
    const fd = openSync(join(dir, 'fs', 'filler'), 'w');
    const chunk = Buffer.alloc(4096, 0x55);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    try {
      for (;;) writeSync(fd, chunk, 0, 1);
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    closeSync(fd);

    // 5,000 hosts now: their rows do not fit
    now = T + 60_000;
    write(5000, (i) => 5000n + BigInt(i) * 7n);
    const full = await cli(['collect', '--once']);
    expect(full.code).not.toBe(0);
    // not "is not an xttraffic ledger ... use a new file": that advice would lose the ledger
    expect(full.code).toBe(1);
    expect(full.err).toMatch(new RegExp(`^xttraffic: ${join(dir, 'fs', 'ledger.db')}: cannot read the ledger: .*(disk is full|I/O error).*: nothing was written\nhint: a full disk or an I/O error`));
    expect(full.err).not.toContain('not an xttraffic ledger');

    // room again: one collection bills each host's whole total once
    rmSync(join(dir, 'fs', 'filler'));
    now = T + 120_000;
    const ok = await cli(['collect', '--once']);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    const db = openLedgerDb(join(dir, 'fs', 'ledger.db'), { readonly: true });
    try {
      db.defaultSafeIntegers(true);
      const billed = hostsInPeriod(db, periodAt(T, { billingDay: 1, tz: 'UTC' }).start);
      expect(billed.size).toBe(5000);
      let sumIn = 0n;
      let sumOut = 0n;
      for (const [i, ip] of hosts(5000).entries()) {
        const v = billed.get(ip)!;
        expect([ip, v[0], v[1]]).toEqual([ip, 5000n + BigInt(i) * 7n, 2n * (5000n + BigInt(i) * 7n)]);
        sumIn += v[0]!;
        sumOut += v[1]!;
      }
      // sum of 5000 + 7i over i < 5000, and twice that out
      expect(sumIn).toBe(5000n * 5000n + 7n * ((4999n * 5000n) / 2n));
      expect(sumOut).toBe(2n * sumIn);
    } finally {
      db.close();
    }
  });
});
