/**
 * Quotas: BYTES parsing, the events the ledger decides, and the whole loop through the CLI
 * with a fake clock and a fake ipset/iptables that keeps state (block at the collection that
 * crosses the limit, once, surviving restarts; unblock at the first collection after the
 * period's end).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Deps, RunResult } from '../../src/core/deps.js';
import { parseBytes, quotaEvents, markQuota, setQuota } from '../../src/ledger/quota.js';
import { addMembers } from '../../src/ledger/groups.js';
import { countersText, ledgerCli, reading, tmpLedger, tr } from './helpers.js';

describe('parseBytes', () => {
  it('SI powers of 10, IEC powers of 2, exact fractions, plain bytes', () => {
    expect(parseBytes('10G')).toBe(10_000_000_000n);
    expect(parseBytes('10GB')).toBe(10_000_000_000n);
    expect(parseBytes('10GiB')).toBe(10n * 1073741824n);
    expect(parseBytes('10Gi')).toBe(10737418240n);
    expect(parseBytes('1.5T')).toBe(1_500_000_000_000n);
    expect(parseBytes('500k')).toBe(500_000n);
    expect(parseBytes('500K')).toBe(500_000n);
    expect(parseBytes('1KiB')).toBe(1024n);
    expect(parseBytes('123456789')).toBe(123456789n);
    expect(parseBytes('18446744073709551615')).toBe(18446744073709551615n);
    expect(parseBytes('15EiB')).toBe(15n * 2n ** 60n);
    expect(parseBytes('0.5KiB')).toBe(512n);
  });
  it('bad values are named', () => {
    expect(() => parseBytes('10X')).toThrow('BYTES "10X": expected a number');
    expect(() => parseBytes('')).toThrow('BYTES "": expected a number');
    expect(() => parseBytes('-5G')).toThrow('BYTES "-5G"');
    expect(() => parseBytes('0')).toThrow('BYTES "0": must be at least 1 byte');
    expect(() => parseBytes('1.0001k')).toThrow('BYTES "1.0001k": not a whole number of bytes');
    expect(() => parseBytes('16EiB')).toThrow('BYTES "16EiB": beyond 2^64-1 (18446744073709551615) bytes');
    expect(() => parseBytes('18446744073709551616')).toThrow('beyond 2^64-1');
  });
});

const GEN = 'aaaaaaaaaaaaaaaa';
const MIN = 60_000;

describe('quota events (ledger layer)', () => {
  it('warn at 80 % once, over once, a group blocks each of its billed hosts once, lift after the period', () => {
    const l = tmpLedger();
    try {
      const db = l.ledger.db;
      const t0 = Date.UTC(2026, 2, 31, 23, 50); // 2026-03-31T23:50Z
      addMembers(db, 'cust', ['10.0.0.0/30'], { from: 0, to: null, billingDay: undefined, tz: undefined, now: 0 });
      setQuota(db, { target: '10.0.0.9', limit: 1000n, dir: 'in' }, t0);
      setQuota(db, { target: 'cust', limit: 3000n, action: 'block' }, t0);
      const ing = (i: number, a: bigint, b: bigint, c: bigint) => {
        const at = t0 + i * MIN;
        l.ledger.ingest({ readings: [reading({ name: 'lan', generation: GEN, traffic: new Map([['10.0.0.1', tr(a, 0n)], ['10.0.0.2', tr(0n, b)], ['10.0.0.9', tr(c, 5000n)]]) })], readMs: at, at });
        const evs = quotaEvents(db, at);
        for (const e of evs) markQuota(db, e, at);
        return evs.map((e) => `${e.event} ${e.quota.target} ${e.used} ${e.hosts.join(',')}${e.why ? ` ${e.why}` : ''}`);
      };
      expect(ing(1, 100n, 100n, 799n)).toEqual([]);
      expect(ing(2, 1000n, 1400n, 800n)).toEqual(['warn cust 2400 10.0.0.1,10.0.0.2', 'warn 10.0.0.9 800 10.0.0.9']);
      expect(ing(3, 1000n, 1400n, 999n)).toEqual([]);
      expect(ing(4, 1600n, 1400n, 1000n)).toEqual(['over cust 3000 10.0.0.1,10.0.0.2', 'over 10.0.0.9 1000 10.0.0.9']);
      expect(ing(5, 1700n, 1400n, 5000n)).toEqual([]);
      // a new host of the group billed after the block: blocked too, once
      l.ledger.ingest({ readings: [reading({ name: 'lan', generation: GEN, traffic: new Map([['10.0.0.1', tr(1700n, 0n)], ['10.0.0.2', tr(0n, 1400n)], ['10.0.0.3', tr(1n, 0n)], ['10.0.0.9', tr(5000n, 5000n)]]) })], readMs: t0 + 6 * MIN, at: t0 + 6 * MIN });
      let evs = quotaEvents(db, t0 + 6 * MIN);
      expect(evs.map((e) => `${e.event} ${e.quota.target} ${e.hosts.join(',')}`)).toEqual(['over cust 10.0.0.3']);
      for (const e of evs) markQuota(db, e, t0 + 6 * MIN);
      expect(quotaEvents(db, t0 + 7 * MIN)).toEqual([]);
      // 2026-04-01T00:00Z is the boundary: the collection at it lifts the block of March
      evs = quotaEvents(db, Date.UTC(2026, 3, 1));
      expect(evs.map((e) => `${e.event} ${e.quota.target} ${e.used} ${e.hosts.join(',')} ${e.why}`)).toEqual(['lift cust 3101 10.0.0.1,10.0.0.2,10.0.0.3 period-end']);
      for (const e of evs) markQuota(db, e, Date.UTC(2026, 3, 1));
      expect(quotaEvents(db, Date.UTC(2026, 3, 1) + MIN)).toEqual([]);
    } finally {
      l.done();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI with a fake clock and a fake ipset/iptables

let dir: string;
let now: number;
let calls: string[];
let set: Set<string> | undefined;
let rules: Set<string>;
let ipsetMissing = false;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xtt-quota-'));
  mkdirSync(join(dir, 'ctr'));
  calls = [];
  set = undefined;
  rules = new Set();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function fakeRun(cmd: string, args: readonly string[]): Promise<RunResult> {
  const a = [...args];
  const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
  const err = (code: number, stderr: string): RunResult => ({ code, stdout: '', stderr });
  if (cmd === 'ipset') {
    if (ipsetMissing) return { code: 127, stdout: '', stderr: '', notFound: true };
    if (a[0] !== 'list') calls.push(`ipset ${a.join(' ')}`);
    if (a[0] === 'create') {
      set = new Set();
      return ok();
    }
    if (!set) return err(1, 'ipset v7.17: The set with the given name does not exist\n');
    if (a[0] === 'list') return ok(`Name: xttraffic-block\nType: hash:ip\nRevision: 6\nHeader: family inet hashsize 1024 maxelem 65536 timeout 0\nReferences: ${rules.size}\nNumber of entries: ${set.size}\n`);
    if (a[0] === 'test') return set.has(a[2]!) ? ok() : err(1, `ipset v7.17: ${a[2]} is NOT in set xttraffic-block.\n`);
    if (a[0] === 'add') return set.has(a[2]!) ? err(1, "it's already added") : (set.add(a[2]!), ok());
    if (a[0] === 'del') return set.delete(a[2]!) ? ok() : err(1, "it's not added");
    return err(1, 'unexpected');
  }
  if (cmd === 'iptables') {
    const i = a.indexOf('-C') >= 0 ? a.indexOf('-C') : a.indexOf('-I');
    const rule = a.slice(a[i] === '-I' ? i + 3 : i + 2).join(' ');
    if (a[i] === '-C') return rules.has(rule) ? ok() : err(1, 'iptables: Bad rule (does a matching rule exist in that chain?).\n');
    calls.push(`iptables ${a.join(' ')}`);
    rules.add(rule);
    return ok();
  }
  calls.push(`${cmd} ${a.join(' ')}`);
  return ok();
}

const cli = ledgerCli(() => dir, () => ({ now: () => now, run: fakeRun, env: { XTABLES_LIBDIR: '/nonexistent' } }));

function write(inBytes: bigint, outBytes: bigint): void {
  writeFileSync(join(dir, 'ctr', 'lan'), countersText({ name: 'lan', generation: GEN, traffic: new Map([['10.0.0.7', tr(inBytes, outBytes)], ['10.0.0.8', tr(1n, 1n)]]) }));
}

describe('quota through the CLI (fake clock)', () => {
  it('a host over its quota is blocked within one interval, once across restarts, and unblocked at the period\'s end', async () => {
    now = Date.UTC(2026, 1, 28, 23, 55); // 2026-02-28T23:55Z, the period ends 2026-03-01T00:00Z
    let r = await cli(['quota', 'set', '10.0.0.7', '1k', '--action', 'block']);
    expect(r).toEqual({ code: 0, out: 'quota host 10.0.0.7: 1000 bytes sum per month, action block\n', err: '' });
    write(300n, 100n);
    r = await cli(['collect', '--once']);
    expect(r.out).toBe('2026-02-28T23:55:00Z lan: 2 hosts [first]\n');
    now += MIN;
    write(600n, 200n); // 800 of 1000: the warning
    r = await cli(['collect', '--once']);
    expect(r.out).toBe('2026-02-28T23:56:00Z lan: 1 host\n2026-02-28T23:56:00Z quota host 10.0.0.7: at 80 % of its quota (sum 800 B of 1.00 kB, period from 2026-02-01T00:00:00Z): logged\n');
    expect(calls).toEqual([]);
    now += MIN;
    write(700n, 300n); // exactly 1000: over, blocked in this collection
    r = await cli(['collect', '--once', '--json']);
    const j = JSON.parse(r.out);
    expect(j.quotas).toEqual([{ event: 'over', kind: 'host', target: '10.0.0.7', action: 'block', dir: 'sum', used: 1000, limit: 1000, periodStart: '2026-02-01T00:00:00Z', hosts: ['10.0.0.7'] }]);
    expect(calls).toEqual([
      'ipset create xttraffic-block hash:ip family inet timeout 0',
      'iptables -t filter -I FORWARD 1 -m set --match-set xttraffic-block dst -m comment --comment xttraffic block dst -j DROP',
      'iptables -t filter -I FORWARD 1 -m set --match-set xttraffic-block src -m comment --comment xttraffic block src -j DROP',
      'ipset test xttraffic-block 10.0.0.7',
      'ipset add xttraffic-block 10.0.0.7',
    ]);
    expect([...set!]).toEqual(['10.0.0.7']);
    // each `collect --once` is a new process: the state is in the ledger, the block is not repeated
    calls = [];
    for (let i = 0; i < 2; i++) {
      now += MIN;
      write(900n + BigInt(i), 300n);
      r = await cli(['collect', '--once']);
      expect(r.out).toBe(`${new Date(now).toISOString().replace('.000', '')} lan: 1 host\n`);
    }
    expect(calls).toEqual([]);
    r = await cli(['quota', 'list', '--json']);
    expect(JSON.parse(r.out)).toEqual([{ kind: 'host', target: '10.0.0.7', limit: 1000, per: 'month', dir: 'sum', action: 'block', used: 1201, periodStart: '2026-02-01T00:00:00Z', blocked: ['10.0.0.7'] }]);
    // 2026-03-01T00:00Z: the first collection at the period's end lifts the block
    now = Date.UTC(2026, 2, 1, 0, 0);
    write(950n, 300n);
    r = await cli(['collect', '--once']);
    expect(r.out).toBe('2026-03-01T00:00:00Z lan: 1 host\n2026-03-01T00:00:00Z quota host 10.0.0.7: billing period ended (sum 1.25 kB of 1.00 kB, period from 2026-02-01T00:00:00Z): unblocked 10.0.0.7\n');
    expect(calls).toEqual(['ipset test xttraffic-block 10.0.0.7', 'ipset del xttraffic-block 10.0.0.7']);
    expect([...set!]).toEqual([]);
    calls = [];
    now += MIN;
    write(960n, 300n);
    r = await cli(['collect', '--once']);
    expect(r.out).toBe('2026-03-01T00:01:00Z lan: 1 host\n');
    expect(calls).toEqual([]);
  });

  it('a failing block is retried at the next collection; quota del unblocks; bad input is named', async () => {
    now = Date.UTC(2026, 5, 10, 12, 0);
    expect((await cli(['quota', 'set', '10.0.0.7', '10', '--action', 'block', '--dir', 'in'])).code).toBe(0);
    write(50n, 0n);
    // no ipset binary this time: the event is not recorded, it comes again
    ipsetMissing = true;
    let r = await cli(['collect', '--once']);
    expect(r.out).toBe('2026-06-10T12:00:00Z lan: 2 hosts [first]\n2026-06-10T12:00:00Z quota host 10.0.0.7: over its quota (in 50 B of 10 B, period from 2026-06-01T00:00:00Z): FAILED, retried next collection: ipset not found\n');
    expect(set).toBe(undefined);
    ipsetMissing = false;
    now += MIN;
    r = await cli(['collect', '--once']);
    expect(r.out).toContain('quota host 10.0.0.7: over its quota (in 50 B of 10 B, period from 2026-06-01T00:00:00Z): blocked 10.0.0.7');
    r = await cli(['quota', 'del', '10.0.0.7']);
    expect(r.out).toBe('deleted quota host 10.0.0.7; unblocked 10.0.0.7\n');
    expect([...set!]).toEqual([]);
    r = await cli(['quota', 'set', '10.0.0.7', '5Q']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('BYTES "5Q"');
    r = await cli(['quota', 'set', 'nosuch', '5G']);
    expect(r.err).toContain('nosuch');
    r = await cli(['quota', 'set', '10.0.0.300', '5G']);
    expect(r.err).toContain('"10.0.0.300": not an IPv4 address');
    r = await cli(['quota', 'set', '10.0.0.7', '5G', '--dir', 'both']);
    expect(r.err).toContain('--dir both: must be in, out or sum');
    r = await cli(['quota', 'set', '10.0.0.7', '5G', '--action', 'exec']);
    expect(r.err).toContain('exec takes one command');
    r = await cli(['quota', 'set', '10.0.0.7', '5G', '--action', 'drop']);
    expect(r.err).toContain('--action drop: must be log, block or exec CMD');
    r = await cli(['quota', 'del', '10.0.0.9']);
    expect(r.err).toContain('no quota on host "10.0.0.9"');
  });
});
