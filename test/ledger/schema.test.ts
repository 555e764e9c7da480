import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUCKET_5M, BUCKET_DAY, BUCKET_HOUR, HOST_COLS, SCHEMA_VERSION, XTT_APP_ID, foldedUntil, openLedgerDb } from '../../src/ledger/db.js';
import { allMembers, getGroup } from '../../src/ledger/groups.js';
import { Ledger } from '../../src/ledger/ingest.js';
import { buildReport, history, hostsInPeriod, hostsInRange } from '../../src/ledger/query.js';
import { ledgerCli, reading, rng, tr } from './helpers.js';

// Upgrades of an old ledger, and a ledger from the future.
//
// A schema-1 file is built from the SQL of migration 1 as it was written (frozen here: the
// file a first-version collector left on disk), with rows as that version wrote them: every
// ingest upserted the 5-minute, hourly, daily and billing-period rows itself (the fold came in
// schema 3), counters as low 32 bits + high 32 bits. The current code must open it, migrate it
// 1 -> SCHEMA_VERSION, keep every row, and answer every query (period, ranges of hours and
// days, history by hour/day/month, a group's period) with exactly the sums of the 5-minute
// rows; then go on ingesting into it, also into the last old bucket (already folded).

const SCHEMA_1 = `
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE hosts (id INTEGER PRIMARY KEY, family INTEGER NOT NULL, key TEXT NOT NULL UNIQUE);
CREATE TABLE last_reading (table_name TEXT PRIMARY KEY, generation TEXT NOT NULL, read_ms INTEGER NOT NULL,
   at_ms INTEGER NOT NULL, overflow INTEGER NOT NULL, gone INTEGER NOT NULL DEFAULT 0,
   traffic BLOB, ipconn BLOB, portconn BLOB);
CREATE TABLE intervals (id INTEGER PRIMARY KEY, table_name TEXT NOT NULL, generation TEXT NOT NULL,
   start_ms INTEGER, end_ms INTEGER NOT NULL, at_ms INTEGER NOT NULL, mono_ms INTEGER,
   flags TEXT NOT NULL, overflow_delta INTEGER NOT NULL DEFAULT 0, hosts INTEGER NOT NULL, anomalies INTEGER NOT NULL DEFAULT 0);
CREATE INDEX intervals_at ON intervals (at_ms);
CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, billing_day INTEGER NOT NULL, tz TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE members (id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL REFERENCES groups(id), family INTEGER NOT NULL,
   prefix TEXT NOT NULL, net INTEGER NOT NULL, plen INTEGER NOT NULL, from_ms INTEGER NOT NULL, to_ms INTEGER);
${[
  ['host_5m', 'bucket INTEGER NOT NULL, host_id INTEGER NOT NULL', 'bucket, host_id', HOST_COLS],
  ['host_hour', 'bucket INTEGER NOT NULL, host_id INTEGER NOT NULL', 'bucket, host_id', HOST_COLS],
  ['host_day', 'bucket INTEGER NOT NULL, host_id INTEGER NOT NULL', 'bucket, host_id', HOST_COLS],
  ['host_period', 'period_start INTEGER NOT NULL, host_id INTEGER NOT NULL', 'period_start, host_id', HOST_COLS],
  ['group_5m', 'bucket INTEGER NOT NULL, group_id INTEGER NOT NULL', 'bucket, group_id', HOST_COLS],
  ['group_hour', 'bucket INTEGER NOT NULL, group_id INTEGER NOT NULL', 'bucket, group_id', HOST_COLS],
  ['group_day', 'bucket INTEGER NOT NULL, group_id INTEGER NOT NULL', 'bucket, group_id', HOST_COLS],
  ['group_period', 'group_id INTEGER NOT NULL, period_start INTEGER NOT NULL, host_id INTEGER NOT NULL', 'group_id, period_start, host_id', HOST_COLS],
  ['port_day', 'bucket INTEGER NOT NULL, table_name TEXT NOT NULL, port INTEGER NOT NULL', 'bucket, table_name, port',
    ['ctcp_in', 'ctcp_out', 'cudp_in', 'cudp_out', 'cicmp_in', 'cicmp_out', 'cother_in', 'cother_out']],
].map(([t, keys, pk, cs]) => `CREATE TABLE ${t} (${keys}, ${(cs as readonly string[]).map((c) => `${c} INTEGER NOT NULL DEFAULT 0, ${c}_hi INTEGER NOT NULL DEFAULT 0`).join(', ')}, PRIMARY KEY (${pk})) WITHOUT ROWID;`).join('\n')}
CREATE INDEX host_5m_host ON host_5m (host_id, bucket);
CREATE INDEX host_hour_host ON host_hour (host_id, bucket);
CREATE INDEX host_day_host ON host_day (host_id, bucket);
CREATE INDEX host_period_host ON host_period (host_id, period_start);
`;

type Vec = bigint[];
const LO = (v: bigint) => v & 0xffffffffn;
const HI = (v: bigint) => v >> 32n;
const add = (a: Vec, b: Vec) => a.map((x, i) => x + b[i]!);
const zero = (): Vec => new Array<bigint>(HOST_COLS.length).fill(0n);
const JAN = Date.UTC(2026, 0, 1);
const FEB = Date.UTC(2026, 1, 1);
const MAR = Date.UTC(2026, 2, 1);
const periodOf = (t: number) => (t < FEB ? JAN : FEB);

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'xtt-schema-'));
  dirs.push(d);
  return d;
}

/** The 5-minute rows of the fixture: (bucket, host key) -> 14 counters, around a month's end. */
function fixture(): Array<{ bucket: number; host: string; v: Vec }> {
  const r = rng(11);
  const big = (bits: number) => BigInt(Math.floor(r() * 2 ** 26)) * (1n << BigInt(Math.max(0, bits - 26))) + BigInt(Math.floor(r() * 1000));
  const buckets = [
    Date.UTC(2026, 0, 31, 22, 50), Date.UTC(2026, 0, 31, 23, 55), Date.UTC(2026, 1, 1, 0, 0), Date.UTC(2026, 1, 1, 0, 5),
    Date.UTC(2026, 1, 1, 1, 30), Date.UTC(2026, 1, 1, 1, 35), Date.UTC(2026, 1, 2, 10, 0),
  ];
  const rows: Array<{ bucket: number; host: string; v: Vec }> = [];
  for (const bucket of buckets) {
    for (const host of ['10.0.0.1', '10.0.0.2', '10.0.0.9']) {
      if (host === '10.0.0.2' && bucket === buckets[1]) continue; // not active in every bucket
      // bytes up to 2^40 and past 2^32 (a high part), connections small
      rows.push({ bucket, host, v: HOST_COLS.map((c, i) => (c.startsWith('c') ? BigInt(Math.floor(r() * 50)) : big(i % 2 === 0 ? 40 : 30))) });
    }
  }
  return rows;
}

/** A schema-1 ledger with the fixture, as the first version's ingest wrote it. */
function schema1Ledger(path: string): void {
  const db = new Database(path);
  db.exec(SCHEMA_1);
  db.pragma(`application_id = ${XTT_APP_ID}`);
  db.pragma('user_version = 1');
  db.pragma('journal_mode = WAL');
  const hostIds = new Map([['10.0.0.1', 1], ['10.0.0.2', 2], ['10.0.0.9', 3]]);
  for (const [k, id] of hostIds) db.prepare(`INSERT INTO hosts (id, family, key) VALUES (?, 4, ?)`).run(id, k);
  db.prepare(`INSERT INTO groups (id, name, billing_day, tz, created_ms) VALUES (1, 'cust', 1, 'UTC', ?)`).run(JAN);
  db.prepare(`INSERT INTO members (group_id, family, prefix, net, plen, from_ms, to_ms) VALUES (1, 4, '10.0.0.0/30', ?, 30, ?, NULL)`).run(0x0a000000, JAN);
  const upsert = (table: string, keys: Record<string, number>, v: Vec) => {
    const kc = Object.keys(keys);
    const cols = HOST_COLS.flatMap((c) => [c, `${c}_hi`]);
    const vals = v.flatMap((x) => [LO(x), HI(x)]);
    db.prepare(`INSERT INTO ${table} (${[...kc, ...cols].join(', ')}) VALUES (${[...kc, ...cols].map(() => '?').join(', ')})
      ON CONFLICT (${kc.join(', ')}) DO UPDATE SET ${cols.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`)
      .run(...Object.values(keys), ...vals);
  };
  let prev: number | null = null;
  for (const bucket of [...new Set(fixture().map((f) => f.bucket))]) {
    const rows = fixture().filter((f) => f.bucket === bucket);
    db.prepare(`INSERT INTO intervals (table_name, generation, start_ms, end_ms, at_ms, flags, hosts) VALUES ('lan', '5f0c2a9e13b7d4c1', ?, ?, ?, ?, ?)`)
      .run(prev, bucket + 60_000, bucket + 60_000, prev === null ? 'first' : '', rows.length);
    prev = bucket + 60_000;
    for (const { host, v } of rows) {
      const id = hostIds.get(host)!;
      upsert('host_5m', { bucket, host_id: id }, v);
      upsert('host_hour', { bucket: Math.floor(bucket / BUCKET_HOUR) * BUCKET_HOUR, host_id: id }, v);
      upsert('host_day', { bucket: Math.floor(bucket / BUCKET_DAY) * BUCKET_DAY, host_id: id }, v);
      upsert('host_period', { period_start: periodOf(bucket), host_id: id }, v);
      if (host !== '10.0.0.9') {
        upsert('group_5m', { bucket, group_id: 1 }, v);
        upsert('group_hour', { bucket: Math.floor(bucket / BUCKET_HOUR) * BUCKET_HOUR, group_id: 1 }, v);
        upsert('group_day', { bucket: Math.floor(bucket / BUCKET_DAY) * BUCKET_DAY, group_id: 1 }, v);
        upsert('group_period', { group_id: 1, period_start: periodOf(bucket), host_id: id }, v);
      }
    }
  }
  db.close();
}

/** Sum of the fixture's 5-minute rows of `host` with bucket in [lo, hi). */
function sum5m(host: string | ((h: string) => boolean), lo: number, hi: number, extra: Array<{ bucket: number; host: string; v: Vec }> = []): Vec {
  const f = typeof host === 'string' ? (h: string) => h === host : host;
  return [...fixture(), ...extra].filter((x) => f(x.host) && x.bucket >= lo && x.bucket < hi).reduce((s, x) => add(s, x.v), zero());
}

describe('a schema-1 ledger opened by the current code', () => {
  it(`is migrated 1 -> ${SCHEMA_VERSION}, keeps every row, and every rollup equals the 5-minute rows`, () => {
    const path = join(tmp(), 'ledger.db');
    schema1Ledger(path);
    const db = openLedgerDb(path);
    try {
      db.defaultSafeIntegers(true);
      expect(db.pragma('user_version', { simple: true })).toBe(BigInt(SCHEMA_VERSION));
      expect(db.pragma('application_id', { simple: true })).toBe(BigInt(XTT_APP_ID));
      // the data survived
      expect(db.prepare(`SELECT id, family, key FROM hosts ORDER BY id`).all()).toEqual([
        { id: 1n, family: 4n, key: '10.0.0.1' }, { id: 2n, family: 4n, key: '10.0.0.2' }, { id: 3n, family: 4n, key: '10.0.0.9' },
      ]);
      for (const t of ['host_5m', 'host_hour', 'host_day', 'host_period', 'group_5m', 'group_period', 'intervals']) {
        const n = (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: bigint }).n;
        expect(n, t).toBeGreaterThan(0n);
      }
      expect((db.prepare(`SELECT count(*) AS n FROM host_5m`).get() as { n: bigint }).n).toBe(BigInt(fixture().length));
      db.defaultSafeIntegers(false);
      expect(allMembers(db).map((m) => [m.prefix, m.plen, m.from, m.to])).toEqual([['10.0.0.0/30', 30, JAN, null]]);
      expect(getGroup(db, 'cust')).toMatchObject({ name: 'cust', billingDay: 1, tz: 'UTC' });
      // schema 1-2 wrote every level at ingest: all folded, up to the end of the last bucket
      const last = Math.max(...fixture().map((f) => f.bucket));
      expect(foldedUntil(db)).toBe(last + BUCKET_5M);
      db.defaultSafeIntegers(true);

      for (const host of ['10.0.0.1', '10.0.0.2', '10.0.0.9']) {
        // billing periods (host_period)
        expect(hostsInPeriod(db, JAN).get(host), `${host} January`).toEqual(sum5m(host, JAN, FEB));
        expect(hostsInPeriod(db, FEB).get(host), `${host} February`).toEqual(sum5m(host, FEB, MAR));
        // a range of whole days (host_day), of hours and 5-minute pieces (host_hour, host_5m)
        expect(hostsInRange(db, FEB, FEB + 2 * BUCKET_DAY).get(host)).toEqual(sum5m(host, FEB, FEB + 2 * BUCKET_DAY));
        const lo = Date.UTC(2026, 0, 31, 22, 0);
        const hi = Date.UTC(2026, 1, 1, 1, 35);
        expect(hostsInRange(db, lo, hi).get(host)).toEqual(sum5m(host, lo, hi));
        // history: each hour, day and month equals its 5-minute rows
        for (const step of ['hour', 'day', 'month'] as const) {
          const pts = history(db, host, step).points;
          expect(pts.length).toBeGreaterThan(0);
          for (const p of pts) {
            const want = sum5m(host, p.from, p.to);
            expect(p.totals.bytes.tcp, `${host} ${step} ${p.from}`).toEqual({ in: want[0], out: want[1] });
            expect(p.totals.bytes.other).toEqual({ in: want[4], out: want[5] });
            expect(p.totals.connections.other).toEqual({ in: want[12], out: want[13] });
          }
          expect(pts.reduce((s, p) => s + p.totals.bytes.total.in, 0n)).toBe(sum5m(host, 0, MAR).filter((_, i) => i < 6 && i % 2 === 0).reduce((a, b) => a + b, 0n));
        }
      }
      // the group's period (group_period: the hosts as billed), in the report
      const inGroup = (h: string) => h !== '10.0.0.9';
      const rep = buildReport(db, { period: '2026-02', group: 'cust', now: MAR + BUCKET_DAY });
      expect(rep.groups[0]!.totals.bytes.udp).toEqual({ in: sum5m(inGroup, FEB, MAR)[2], out: sum5m(inGroup, FEB, MAR)[3] });
      expect(rep.groups[0]!.totals.connections.tcp).toEqual({ in: sum5m(inGroup, FEB, MAR)[6], out: sum5m(inGroup, FEB, MAR)[7] });
      expect(rep.hosts.map((h) => h.host).sort()).toEqual(['10.0.0.1', '10.0.0.2']);

      // and it goes on: a new table's first reading into the last old bucket (already folded:
      // that ingest writes all four levels itself), then one into a later bucket, folded
      const l = new Ledger(db);
      const x1 = tr(1000n, 2000n, 30n, 40n, 5n, 6n);
      l.ingest({ readings: [reading({ name: 'wan', generation: '0123456789abcdef', traffic: new Map([['10.0.0.9', x1]]) })], readMs: last + 120_000, at: last + 120_000 });
      const x2 = tr(1500n, 2100n, 31n, 40n, 5n, 9n);
      const t2 = Date.UTC(2026, 1, 3, 8, 1);
      l.ingest({ readings: [reading({ name: 'wan', generation: '0123456789abcdef', traffic: new Map([['10.0.0.9', x2]]) })], readMs: t2, at: t2 });
      l.fold(t2 + BUCKET_DAY);
      const v = (t: bigint[]): Vec => [t[2]!, t[3]!, t[4]!, t[5]!, t[6]!, t[7]!, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n];
      const extra = [{ bucket: last, host: '10.0.0.9', v: v(x1) }, { bucket: Date.UTC(2026, 1, 3, 8, 0), host: '10.0.0.9', v: v(x2.map((c, i) => c - x1[i]!)) }];
      expect(hostsInPeriod(db, FEB).get('10.0.0.9')).toEqual(sum5m('10.0.0.9', FEB, MAR, extra));
      expect(hostsInRange(db, FEB, FEB + 3 * BUCKET_DAY).get('10.0.0.9')).toEqual(sum5m('10.0.0.9', FEB, FEB + 3 * BUCKET_DAY, extra));
      const days = history(db, '10.0.0.9', 'day').points;
      for (const p of days) expect(p.totals.bytes.tcp, `day ${p.from}`).toEqual({ in: sum5m('10.0.0.9', p.from, p.to, extra)[0], out: sum5m('10.0.0.9', p.from, p.to, extra)[1] });
    } finally {
      db.close();
    }
  });
});

describe('a ledger from a newer schema', () => {
  it('is refused (ENEWERLEDGER) with nothing written: same bytes, same files, same journal mode', async () => {
    const dir = tmp();
    const path = join(dir, 'ledger.db');
    const l = new Ledger(openLedgerDb(path, { create: true }));
    l.ingest({ readings: [reading({ name: 'lan', generation: '5f0c2a9e13b7d4c1', traffic: new Map([['10.0.0.1', tr(5n, 6n)]]) })], readMs: FEB, at: FEB });
    l.db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    l.db.close();
    const hash = () => createHash('sha256').update(readFileSync(path)).digest('hex');
    const before = { hash: hash(), files: readdirSync(dir).sort() };
    expect(before.files).toEqual(['ledger.db']);
    let err: unknown;
    try {
      openLedgerDb(path).close();
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ENEWERLEDGER', message: `${path} has ledger schema ${SCHEMA_VERSION + 1}, newer than this xttraffic's ${SCHEMA_VERSION}: nothing was written` });
    expect(() => openLedgerDb(path, { readonly: true })).toThrow(/newer than this xttraffic's/);
    expect({ hash: hash(), files: readdirSync(dir).sort() }).toEqual(before);
    expect(readFileSync(path).readUInt32BE(60)).toBe(SCHEMA_VERSION + 1); // the header's user_version (a read-only SQLite open would leave -wal/-shm)
    // the commands too, the collector included: no lock file, no info file, no -wal beside it
    const cli = ledgerCli(() => dir);
    for (const args of [['collect', '--once'], ['report'], ['history', '10.0.0.1'], ['group', 'list'], ['quota', 'list']]) {
      const r = await cli(args);
      expect([args[0], r.code, r.err.split('\n')[0]]).toEqual([args[0], 3, `xttraffic: ${path} has ledger schema ${SCHEMA_VERSION + 1}, newer than this xttraffic's ${SCHEMA_VERSION}: nothing was written`]);
      expect({ hash: hash(), files: readdirSync(dir).sort() }).toEqual(before);
    }
  });
});
