/**
 * The ledger's commands in-process (run() with deps of our own: test/cli/fakes.ts is being
 * reworked by another engineer), against counters files in a temporary XTT_COUNTERS_DIR.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../src/program.js';
import { countersText, ledgerCli, tr } from './helpers.js';

let dir: string;
let now: number;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xtt-cli-ledger-'));
  mkdirSync(join(dir, 'ctr'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cli = ledgerCli(() => dir, () => ({ now: () => now }));

const GEN = 'aaaaaaaaaaaaaaaa';
function write(name: string, rows: Array<[string, bigint[]]>, gen = GEN): void {
  writeFileSync(join(dir, 'ctr', name), countersText({ name, generation: gen, traffic: new Map(rows), ipconn: new Map(rows.map(([ip]) => [ip, [2n, 1n, 2n, 1n, 0n, 0n, 0n, 0n, 0n, 0n]])) }));
}

describe('collect, group, report, history', () => {
  it('collects twice, bills a group over its period, reports exact JSON and CSV and SI text', async () => {
    now = Date.UTC(2026, 1, 20, 10, 0);
    expect((await cli(['group', 'add', 'cust', '10.0.0.0/30', '--billing-day', '15', '--tz', 'Europe/Berlin', '--from', '2026-01-01'])).code).toBe(0);
    write('lan', [['10.0.0.1', tr(9007199254740993n, 1000n, 5n)], ['10.0.0.9', tr(2500000000n, 0n)]]);
    let r = await cli(['collect', '--once']);
    expect(r.err).toBe('');
    expect(r.out).toBe('2026-02-20T10:00:00Z lan: 2 hosts [first]\n');
    now += 60_000;
    write('lan', [['10.0.0.1', tr(9007199254740993n + 7n, 1000n, 5n)], ['10.0.0.9', tr(2500000000n, 0n)]]);
    r = await cli(['collect', '--once', '--json']);
    expect(JSON.parse(r.out).intervals[0]).toMatchObject({ table: 'lan', flags: [], hosts: 1, start: '2026-02-20T10:00:00Z', end: '2026-02-20T10:01:00Z' });

    r = await cli(['report', '--group', 'cust', '--period', '2026-02', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.from).toBe('2026-02-14T23:00:00Z');
    expect(j.to).toBe('2026-03-14T23:00:00Z');
    expect(j.hosts).toHaveLength(1);
    expect(j.hosts[0].host).toBe('10.0.0.1');
    expect(j.hosts[0].totals.bytes.tcp.in).toBe(9007199254741000); // JSON number text is exact: check the raw text too
    expect(r.out).toContain('"in": 9007199254741005');
    expect(j.groups[0]).toMatchObject({ group: 'cust', closed: false });
    expect(j.coverage.events).toEqual([{ table: 'lan', from: null, to: '2026-02-20T10:00:00Z', flags: ['first'] }]);

    r = await cli(['report', '--period', '2026-02', '--csv']);
    expect(r.out.split('\n')[0]).toBe('kind,name,group,from,to,bytes_in,bytes_out,tcp_in,tcp_out,udp_in,udp_out,other_in,other_out,conn_in,conn_out,conn_tcp_in,conn_tcp_out,conn_udp_in,conn_udp_out,conn_icmp_in,conn_icmp_out,conn_other_in,conn_other_out');
    expect(r.out).toContain('host,10.0.0.1,,2026-02-01T00:00:00Z,2026-03-01T00:00:00Z,9007199254741005,1000,9007199254741000,1000,5,0,0,0,2,1,2,1,0,0,0,0,0,0\n');
    expect(r.out).toContain('host,10.0.0.9,,2026-02-01T00:00:00Z,2026-03-01T00:00:00Z,2500000000,0,2500000000,0,');

    r = await cli(['report', '--period', '2026-02', '--top', '1']);
    expect(r.out).toContain('period 2026-02 (billing day 1, UTC): 2026-02-01T00:00:00Z to 2026-03-01T00:00:00Z, end exclusive');
    expect(r.out).toMatch(/10\.0\.0\.1\s+9\.01 PB\s+1\.00 kB/);
    expect(r.out).toContain('total (2 hosts)');

    r = await cli(['history', '10.0.0.1', '--step', 'hour', '--json']);
    expect(JSON.parse(r.out).points.map((p: { from: string }) => p.from)).toEqual(['2026-02-20T09:00:00Z', '2026-02-20T10:00:00Z']);
  });

  it('95th on known 5-minute vectors with a gap, missing buckets excluded and listed', async () => {
    expect((await cli(['group', 'add', 'g', '10.0.0.0/24', '--from', '2026-01-01'])).code).toBe(0);
    const base = Date.UTC(2026, 2, 1, 0, 0);
    let c = 0n;
    // 20 buckets: bucket k (k=0..19) carries (k+1)*300 bytes in => (k+1)*8 bit/s; k = 12..13 missing (collector down)
    for (let k = 0; k < 20; k++) {
      if (k === 12 || k === 13) continue;
      c += BigInt((k + 1) * 300);
      write('lan', [['10.0.0.1', tr(c, 0n)]]);
      now = base + (k + 1) * 300_000;
      if (k === 0) {
        // the first reading: make it a bucket of its own so the first flag does not hit bucket 0
        await cli(['collect', '--once', '--interval', '300']);
        continue;
      }
      expect((await cli(['collect', '--once', '--interval', '300'])).code).toBe(0);
    }
    const r = await cli(['report', '--group', 'g', '--from', '2026-03-01T00:00Z', '--to', '2026-03-01T01:40Z', '--95th', '--json']);
    expect(r.err).toBe('');
    const p = JSON.parse(r.out).groups[0].p95;
    // buckets 0 (first reading), 12, 13 (missing) and 14 (its reading carries the gap) are out: 16 samples
    expect(p.buckets).toBe(20);
    expect(p.samples).toBe(16);
    expect(p.rank).toBe(16); // ceil(0.95 * 16) = 16
    expect(p.inBps).toBe(160); // the largest sample: bucket 19, 20 * 300 B * 8 / 300 s
    expect(p.excluded).toEqual([
      { from: '2026-03-01T00:00:00Z', to: '2026-03-01T00:05:00Z', why: 'gap' },
      { from: '2026-03-01T01:00:00Z', to: '2026-03-01T01:10:00Z', why: 'missing' },
      { from: '2026-03-01T01:10:00Z', to: '2026-03-01T01:15:00Z', why: 'gap' },
    ]);
  });

  it('bad input: usage errors naming the value; a foreign or newer ledger refused, nothing written', async () => {
    now = Date.UTC(2026, 1, 20);
    expect((await cli(['group', 'add', 'a', '10.0.0.0/24'])).code).toBe(0);
    let r = await cli(['group', 'add', 'b', '10.0.0.128/25']);
    expect([r.code, r.err]).toEqual([2, 'xttraffic: CIDR 10.0.0.128/25 of group "b" overlaps 10.0.0.0/24 of group "a" in the same time\nhint: a host belongs to one group at a time: end the other membership first (group del ... --to DATE)\n']);
    r = await cli(['group', 'add', 'b', '10.0.0.1/24']);
    expect(r.err.split('\n')[0]).toBe('xttraffic: CIDR "10.0.0.1/24": host bits are set (the network is 10.0.0.0/24)');
    r = await cli(['group', 'add', 'b', '10.1.0.0/33']);
    expect(r.err.split('\n')[0]).toBe('xttraffic: CIDR "10.1.0.0/33": expected a.b.c.d/N (N 0..32) or an IPv4 address');
    for (const d of ['0', '32']) {
      r = await cli(['group', 'add', 'b', '10.1.0.0/16', '--billing-day', d]);
      expect([r.code, r.err.split('\n')[0]]).toEqual([2, `xttraffic: billing day ${d}: must be 1..31 (days past a month's end are clamped to its last day)`]);
    }
    r = await cli(['group', 'add', 'b', '10.1.0.0/16', '--tz', 'Europe/Atlantis']);
    expect(r.err.split('\n')[0]).toBe('xttraffic: time zone "Europe/Atlantis": not an IANA time zone');
    r = await cli(['collect', '--once', '--interval', '0']);
    expect([r.code, r.err.split('\n')[0]]).toEqual([2, 'xttraffic: --interval 0: must be a whole number of seconds, 1..86400']);
    r = await cli(['report', '--period', '2026-2']);
    expect(r.err.split('\n')[0]).toBe('xttraffic: period "2026-2": expected YYYY-MM (the month the billing period starts in)');
    r = await cli(['report', '--from', '2026-02-01T00:01Z', '--to', '2026-02-02']);
    expect(r.err.split('\n')[0]).toBe('xttraffic: --from 2026-02-01T00:01:00Z / --to 2026-02-02T00:00:00Z: the ledger\'s finest buckets are 5 minutes: both ends must be on a 5-minute boundary (UTC)');

    writeFileSync(join(dir, 'foreign.db'), '');
    const Database = (await import('better-sqlite3')).default;
    const f = new Database(join(dir, 'foreign.db'));
    f.exec('CREATE TABLE t (x)');
    f.close();
    r = await cli(['report', '--db', join(dir, 'foreign.db')]);
    expect([r.code, r.err.split('\n')[0]]).toEqual([3, `xttraffic: ${join(dir, 'foreign.db')} is not an xttraffic ledger (SQLite application_id 0, 1 schema objects): nothing was written`]);
    const n = new Database(join(dir, 'ledger.db'));
    n.pragma('user_version = 9');
    n.close();
    r = await cli(['collect', '--once']);
    expect([r.code, r.err.split('\n')[0]]).toEqual([3, `xttraffic: ${join(dir, 'ledger.db')} has ledger schema 9, newer than this xttraffic's 4: nothing was written`]);
  });

  it('a second collector on the same ledger refuses', async () => {
    const { lockCollector } = await import('../../src/ledger/collector.js');
    const held = lockCollector(join(dir, 'ledger.db'));
    try {
      const r = await cli(['collect', '--once']);
      expect([r.code, r.err.split('\n')[0]]).toEqual([4, `xttraffic: another collector is running on ${join(dir, 'ledger.db')} (it holds ${join(dir, 'ledger.db')}.lock)`]);
    } finally {
      held.release();
    }
    now = Date.UTC(2026, 1, 20);
    expect((await cli(['collect', '--once'])).code).toBe(0);
  });
});
