/**
 * The ledger keyed by host prefix (issue 13's ledger part, issue 11 "keyed for IPv6"): IPv6
 * tables (hostprefix 64, 128) beside IPv4 ones, last-reading blobs with 4-word keys (and the
 * first blob format still read), groups of IPv6 and IPv4 prefixes (schema 4: members.net a
 * BLOB; a schema-3 ledger upgraded), host prefixes against member prefixes, report / history /
 * quota taking IPv6 addresses and prefixes, numeric order, exact sums near 2^53 and 2^63.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLedgerDb, SCHEMA_VERSION } from '../../src/ledger/db.js';
import { addMembers, allMembers } from '../../src/ledger/groups.js';
import { Ledger } from '../../src/ledger/ingest.js';
import { buildReport, compareHostKeys, history, hostsInPeriod, hostsInRange, resolveHostKey } from '../../src/ledger/query.js';
import { periodOfLabel } from '../../src/ledger/periods.js';
import { setQuota } from '../../src/ledger/quota.js';
import { parseCounters, type CountersReading } from '../../src/proc/counters.js';
import { ledgerCli, randBig, rng, tmpLedger, tr, type Rows } from './helpers.js';

const T0 = Date.UTC(2026, 1, 10, 12, 0);
const MIN = 60_000;
const GEN_A = '5f0c2a9e13b7d4c1';
const GEN_B = '0123456789abcdef';

interface T6 {
  name: string;
  generation: string;
  family?: 'ipv4' | 'ipv6';
  hostprefix?: number;
  traffic?: Rows;
  ipconn?: Rows;
  portconn?: Rows;
}

/** The counters file of docs/design.md for an IPv6 table (or an IPv4 one per prefix). */
function text6(t: T6): string {
  const fam = t.family ?? 'ipv6';
  const opts = (['traffic', 'ipconn', 'portconn'] as const).filter((k) => t[k] !== undefined);
  const order = ['traffic', 'portconn', 'ipconn'].filter((k) => opts.includes(k as never));
  const net = fam === 'ipv6' ? 'netbase: 2001:db8::\nnetmask: ffff:ffff::\n' : 'netbase: 10.0.0.0\nnetmask: 255.0.0.0\n';
  let s = `xt_traffic_counters 1\nname: ${t.name}\ngeneration: ${t.generation}\noptions: ${order.join(' ')}\n${net}family: ${fam}\nhostprefix: ${t.hostprefix ?? (fam === 'ipv6' ? 64 : 32)}\noverflow: 0\n`;
  for (const k of opts) {
    s += `[${k}]\n`;
    for (const [key, v] of t[k]!) s += `${key}\t${v.join('\t')}\n`;
  }
  return `${s}[end]\n`;
}
const r6 = (t: T6): CountersReading => parseCounters(text6(t));
/** An IPv4 table per address, as revision 0 writes it (no family/hostprefix lines). */
const r4 = (t: T6): CountersReading => parseCounters(text6({ ...t, family: 'ipv4' }).replace('family: ipv4\nhostprefix: 32\n', ''));
const conn = (tcpIn: bigint, tcpOut: bigint): bigint[] => [tcpIn, tcpOut, tcpIn, tcpOut, 0n, 0n, 0n, 0n, 0n, 0n];

let cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup) f();
  cleanup = [];
});
function ledger(): Ledger {
  const l = tmpLedger();
  cleanup.push(l.done);
  return l.ledger;
}

describe('ingest: IPv6 host prefixes beside IPv4 hosts', () => {
  it('keys are the prefixes as the file has them; deltas from 4-word blobs, rows in any order; families in hosts', () => {
    const l = ledger();
    const a = '2001:db8:0:1::/64';
    const b = '2001:db8::/64';
    l.ingest({
      readings: [
        r6({ name: 'v6', generation: GEN_A, traffic: new Map([[a, tr(1000n, 84n)], [b, tr(5n, 6n, 7n)]]), ipconn: new Map([[a, conn(1n, 2n)]]) }),
        r4({ name: 'lan', generation: GEN_A, traffic: new Map([['10.0.0.1', tr(100n, 10n)]]) }),
      ],
      readMs: T0 + MIN, at: T0 + MIN,
    });
    // the next reading lists the rows in another order (the file promises none), plus a new key
    const r = l.ingest({
      readings: [
        r6({ name: 'v6', generation: GEN_A, traffic: new Map([[b, tr(5n, 6n, 9n)], ['2001:db8:ffff::/64', tr(1n, 0n)], [a, tr(1500n, 84n)]]), ipconn: new Map([[a, conn(4n, 2n)]]) }),
        r4({ name: 'lan', generation: GEN_A, traffic: new Map([['10.0.0.1', tr(130n, 10n)]]) }),
      ],
      readMs: T0 + 2 * MIN, at: T0 + 2 * MIN,
    });
    expect(r.intervals.map((i) => [i.table, i.flags, i.hosts, i.anomalies])).toEqual([['v6', [], 3, 0], ['lan', [], 1, 0]]);
    const h = hostsInRange(l.db, T0, T0 + 5 * MIN);
    expect(h.get(a)).toEqual([1500n, 84n, 0n, 0n, 0n, 0n, 4n, 2n, 0n, 0n, 0n, 0n, 0n, 0n]);
    expect(h.get(b)).toEqual([5n, 6n, 9n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    expect(h.get('2001:db8:ffff::/64')![0]).toBe(1n);
    expect(h.get('10.0.0.1')![0]).toBe(130n);
    expect(l.db.prepare(`SELECT family, key FROM hosts ORDER BY id`).raw(true).safeIntegers(false).all()).toEqual([[6, a], [6, b], [4, '10.0.0.1'], [6, '2001:db8:ffff::/64']]);
    // a blob of 4-word keys: rows, format word (per | keyWords << 8 | prefix << 16 | family << 24), keys
    const blob = (l.db.prepare(`SELECT traffic FROM last_reading WHERE table_name = 'v6'`).get() as { traffic: Buffer }).traffic;
    expect([blob.readUInt32LE(0), blob.readUInt32LE(4).toString(16), blob.length]).toEqual([3, (8 | (4 << 8) | (64 << 16) | (6 << 24)).toString(16), 8 + 3 * 16 + 3 * 8 * 8]);
  });

  it('host prefix 128 (bare addresses) and an IPv4 table per /24 are keys of their own', () => {
    const l = ledger();
    l.ingest({
      readings: [
        r6({ name: 'full', generation: GEN_A, hostprefix: 128, traffic: new Map([['2001:db8::1', tr(7n, 0n)], ['::ffff:10.0.0.1', tr(8n, 0n)]]) }),
        r6({ name: 'p24', generation: GEN_A, family: 'ipv4', hostprefix: 24, traffic: new Map([['10.0.0.0/24', tr(9n, 0n)]]) }),
        r4({ name: 'lan', generation: GEN_A, traffic: new Map([['10.0.0.0', tr(10n, 0n)]]) }),
      ],
      readMs: T0 + MIN, at: T0 + MIN,
    });
    const h = hostsInRange(l.db, T0, T0 + 5 * MIN);
    expect([...h.entries()].map(([k, v]) => [k, v[0]]).sort((x, y) => compareHostKeys(x[0] as string, y[0] as string)))
      .toEqual([['10.0.0.0/24', 9n], ['10.0.0.0', 10n], ['::ffff:10.0.0.1', 8n], ['2001:db8::1', 7n]]);
  });

  it('blobs of the first format (format word = per, IPv4 and port keys) still read: the next delta is against them', () => {
    const l = ledger();
    const rd = (v: bigint) => r4({ name: 'lan', generation: GEN_A, traffic: new Map([['10.0.0.1', tr(v, 1n)], ['10.0.0.2', tr(v, 2n)]]), ipconn: new Map([['10.0.0.1', conn(v, 0n)]]), portconn: new Map([['53', conn(v, 0n)]]) });
    l.ingest({ readings: [rd(100n)], readMs: T0 + MIN, at: T0 + MIN });
    // rewrite the stored blobs as the first format wrote them: the format word was `per`
    for (const k of ['traffic', 'ipconn', 'portconn']) {
      const b = Buffer.from((l.db.prepare(`SELECT ${k} AS b FROM last_reading`).get() as { b: Buffer }).b);
      b.writeUInt32LE(b.readUInt32LE(4) & 0xff, 4);
      l.db.prepare(`UPDATE last_reading SET ${k} = ?`).run(b);
    }
    const r = l.ingest({ readings: [rd(175n)], readMs: T0 + 2 * MIN, at: T0 + 2 * MIN });
    expect(r.intervals[0]!.anomalies).toBe(0);
    const h = hostsInRange(l.db, T0, T0 + 5 * MIN);
    expect(h.get('10.0.0.1')!.slice(0, 8)).toEqual([175n, 1n, 0n, 0n, 0n, 0n, 175n, 0n]);
    expect(h.get('10.0.0.2')![0]).toBe(175n);
    // the 5-minute bucket of T0+1min..T0+2min holds both; the delta of the second ingest is 75
    const rows = l.db.prepare(`SELECT SUM(tcp_in) FROM host_5m`).pluck().safeIntegers(false).get();
    expect(rows).toBe(350);
    const port = l.db.prepare(`SELECT ctcp_in FROM port_day`).pluck().safeIntegers(false).get();
    expect(port).toBe(175);
  });
});

describe('groups of IPv6 and IPv4 prefixes', () => {
  it('a /64 host inside a /48 member is billed to it; IPv4 and IPv6 members of one group; overlaps checked per family', () => {
    const l = ledger();
    addMembers(l.db, 'cust1', ['2001:db8:100::/48', '10.1.0.0/24'], { from: 0, to: null, now: T0 });
    expect(allMembers(l.db).map((m) => [m.prefix, m.family, m.plen])).toEqual([['10.1.0.0/24', 4, 24], ['2001:db8:100::/48', 6, 48]]);
    expect(() => addMembers(l.db, 'b', ['2001:db8:100:8000::/49'], { from: 0, to: null, now: T0 }))
      .toThrow('CIDR 2001:db8:100:8000::/49 of group "b" overlaps 2001:db8:100::/48 of group "cust1" in the same time');
    expect(() => addMembers(l.db, 'b', ['2001:db8::/32'], { from: 0, to: null, now: T0 })).toThrow('CIDR 2001:db8::/32 of group "b" overlaps 2001:db8:100::/48 of group "cust1"');
    expect(() => addMembers(l.db, 'b', ['2001:db8:200::/48', '2001:db8:200:1::/64'], { from: 0, to: null, now: T0 })).toThrow('CIDR 2001:db8:200:1::/64 overlaps 2001:db8:200::/48 given in the same command');
    // the same bits as another family's prefix are no overlap: ::a01:0/120 is not 10.1.0.0/24
    addMembers(l.db, 'b', ['::a01:0/120', '0.0.0.0/1'.replace('0.0.0.0/1', '192.0.2.0/24')], { from: 0, to: null, now: T0 });
    expect(() => addMembers(l.db, 'c', ['2001:db8:100::1/48'], { from: 0, to: null, now: T0 })).toThrow('CIDR "2001:db8:100::1/48": host bits are set (the network is 2001:db8:100::/48)');
    expect(() => addMembers(l.db, 'c', ['2001:db8::/129'], { from: 0, to: null, now: T0 })).toThrow('CIDR "2001:db8::/129": not an IPv6 address or prefix (prefix length 0..128)');
    const rows: Rows = new Map([
      ['2001:db8:100:5::/64', tr(1000n, 10n)], // in cust1
      ['2001:db8:100:ffff::/64', tr(1n << 62n, 0n)], // in cust1
      ['2001:db8:101::/64', tr(77n, 0n)], // outside
    ]);
    l.ingest({
      readings: [r6({ name: 'v6', generation: GEN_A, traffic: rows }), r4({ name: 'lan', generation: GEN_A, traffic: new Map([['10.1.0.7', tr(3n, 4n)], ['10.2.0.1', tr(5n, 0n)]]) })],
      readMs: T0 + MIN, at: T0 + MIN,
    });
    const rep = buildReport(l.db, { period: '2026-02', now: T0 + MIN });
    const g = rep.groups.find((x) => x.group === 'cust1')!;
    expect([g.totals.bytes.tcp.in, g.totals.bytes.tcp.out]).toEqual([1000n + (1n << 62n) + 3n, 14n]);
    const gr = buildReport(l.db, { period: '2026-02', group: 'cust1', now: T0 + MIN });
    expect(gr.hosts.map((h) => [h.host, h.group])).toEqual([['2001:db8:100:ffff::/64', 'cust1'], ['2001:db8:100:5::/64', 'cust1'], ['10.1.0.7', 'cust1']]);
    // a range report filters the group's hosts by prefix too
    const rg = buildReport(l.db, { from: T0, to: T0 + 5 * MIN, group: 'cust1', now: T0 + MIN });
    expect(rg.hosts.map((h) => h.host).sort(compareHostKeys)).toEqual(['10.1.0.7', '2001:db8:100:5::/64', '2001:db8:100:ffff::/64']);
  });

  it('a member prefix longer than a host prefix the ledger counts is refused naming both; a host prefix shorter than a member is in no group', () => {
    const l = ledger();
    addMembers(l.db, 'early', ['2001:db8:300::/64'], { from: 0, to: null, now: T0 });
    l.ingest({ readings: [r6({ name: 'v56', generation: GEN_A, hostprefix: 56, traffic: new Map([['2001:db8:200::/56', tr(5n, 0n)], ['2001:db8:300::/56', tr(6n, 0n)]]) })], readMs: T0 + MIN, at: T0 + MIN });
    expect(() => addMembers(l.db, 'c', ['2001:db8:200:1::/64'], { from: 0, to: null, now: T0 }))
      .toThrow('CIDR 2001:db8:200:1::/64 of group "c" is longer (/64) than the host prefix 2001:db8:200::/56 (/56) the ledger counts: a host prefix is billed whole to one group');
    addMembers(l.db, 'c', ['2001:db8:200::/56'], { from: 0, to: null, now: T0 });
    addMembers(l.db, 'd', ['2001:db8:400::/64'], { from: 0, to: null, now: T0 }); // no host counted there: fine
    l.ingest({ readings: [r6({ name: 'v56', generation: GEN_A, hostprefix: 56, traffic: new Map([['2001:db8:200::/56', tr(8n, 0n)], ['2001:db8:300::/56', tr(10n, 0n)]]) })], readMs: T0 + 2 * MIN, at: T0 + 2 * MIN });
    const rep = buildReport(l.db, { period: '2026-02', now: T0 + 2 * MIN });
    // c billed only from its add on: 8 - 5; early's /64 member cannot hold the /56 host
    expect(rep.groups.map((g) => [g.group, g.totals.bytes.tcp.in])).toEqual([['c', 3n], ['d', 0n], ['early', 0n]]);
    expect(rep.totals.bytes.tcp.in).toBe(18n);
  });

  it('a schema-3 ledger (members.net INTEGER) is upgraded: its IPv4 members read and bill as before', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xtt-v6-mig-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'ledger.db');
    openLedgerDb(path, { create: true }).close();
    // the schema-3 file: the same tables, members as schema 1 created it, user_version 3
    const raw = new Database(path);
    raw.exec(`DROP TABLE members;
      CREATE TABLE members (id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL REFERENCES groups(id), family INTEGER NOT NULL,
        prefix TEXT NOT NULL, net INTEGER NOT NULL, plen INTEGER NOT NULL, from_ms INTEGER NOT NULL, to_ms INTEGER);
      INSERT INTO groups (id, name, billing_day, tz, created_ms) VALUES (1, 'a', 1, 'UTC', 0), (2, 'b', 1, 'UTC', 0);
      INSERT INTO members (group_id, family, prefix, net, plen, from_ms, to_ms) VALUES
        (1, 4, '10.0.0.0/24', ${(10 << 24) >>> 0}, 24, 0, NULL), (2, 4, '192.168.255.255/32', ${0xc0a8ffff}, 32, 0, ${T0 + 3 * MIN});
      PRAGMA user_version = 3;`);
    raw.close();
    const db = openLedgerDb(path);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(4);
    expect(db.prepare(`SELECT prefix, hex(net) FROM members ORDER BY id`).raw(true).all()).toEqual([['10.0.0.0/24', '0A000000'], ['192.168.255.255/32', 'C0A8FFFF']]);
    const l = new Ledger(db);
    cleanup.push(() => db.close());
    expect(allMembers(db).map((m) => [m.group, m.prefix, m.net, m.to])).toEqual([['a', '10.0.0.0/24', 10 << 24, null], ['b', '192.168.255.255/32', 0xc0a8ffff, T0 + 3 * MIN]]);
    addMembers(db, 'a', ['2001:db8:100::/48'], { from: 0, to: null, now: T0 });
    l.ingest({ readings: [r4({ name: 'lan', generation: GEN_A, traffic: new Map([['10.0.0.9', tr(11n, 0n)], ['192.168.255.255', tr(12n, 0n)]]) }), r6({ name: 'v6', generation: GEN_A, traffic: new Map([['2001:db8:100:1::/64', tr(13n, 0n)]]) })], readMs: T0 + MIN, at: T0 + MIN });
    const rep = buildReport(db, { period: '2026-02', now: T0 + MIN });
    expect(rep.groups.map((g) => [g.group, g.totals.bytes.tcp.in])).toEqual([['a', 24n], ['b', 12n]]);
  });
});

describe('report, history and quota take IPv6 addresses and prefixes', () => {
  let dir: string;
  let now: number;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xtt-v6-cli-'));
    mkdirSync(join(dir, 'ctr'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const cli = ledgerCli(() => dir, () => ({ now: () => now }));

  it('collect of an IPv6 table; group add of both families; report --ip PREFIX and --ip ADDR (its prefix); history; quota; JSON keys as /proc; numeric order', async () => {
    now = Date.UTC(2026, 1, 20, 10, 0);
    let r = await cli(['group', 'add', 'cust1', '2001:db8:100::/48', '10.1.0.0/24', '--from', '2026-01-01', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).members.map((m: { prefix: string }) => m.prefix)).toEqual(['10.1.0.0/24', '2001:db8:100::/48']);
    const rows: Array<[string, bigint[]]> = [
      ['2001:db8:100::/64', tr(500n, 1n)],
      ['2001:db8:100:9::/64', tr(500n, 1n)],
      ['2001:db8:100:10::/64', tr(500n, 1n)],
      ['2001:db8:100:a::/64', tr(9007199254740993n, 0n)],
    ];
    writeFileSync(join(dir, 'ctr', 'V6'), text6({ name: 'V6', generation: GEN_A, traffic: new Map(rows) }));
    writeFileSync(join(dir, 'ctr', 'lan'), r4Text([['10.1.0.10', tr(500n, 1n)], ['10.1.0.9', tr(500n, 1n)]]));
    r = await cli(['collect', '--once']);
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out).toBe('2026-02-20T10:00:00Z V6: 4 hosts [first]; lan: 2 hosts [first]\n');
    r = await cli(['report', '--period', '2026-02', '--json']);
    const j = JSON.parse(r.out);
    // by total bytes, ties in numeric order (IPv4 first): not the text order ("10.1.0.10" < "10.1.0.9")
    expect(j.hosts.map((h: { host: string }) => h.host)).toEqual(['2001:db8:100:a::/64', '10.1.0.9', '10.1.0.10', '2001:db8:100::/64', '2001:db8:100:9::/64', '2001:db8:100:10::/64']);
    expect(r.out).toContain('"host": "2001:db8:100:a::/64"');
    expect(r.out).toContain('"in": 9007199254740993');
    expect(r.out.slice(r.out.indexOf('"groups"'))).toContain(`"in": ${9007199254740993n + 2500n}`);
    for (const ip of ['2001:db8:100:a::/64', '2001:db8:100:a::5', '2001:DB8:100:A:0:0:0:5']) {
      r = await cli(['report', '--period', '2026-02', '--ip', ip, '--json']);
      expect([r.code, JSON.parse(r.out).hosts.map((h: { host: string }) => h.host)]).toEqual([0, ['2001:db8:100:a::/64']]);
    }
    r = await cli(['report', '--period', '2026-02', '--ip', '2001:db8:100:a::5/64']);
    expect([r.code, r.err.split('\n')[0]]).toEqual([2, 'xttraffic: --ip 2001:db8:100:a::5/64: host bits are set (the network is 2001:db8:100:a::/64)']);
    r = await cli(['report', '--period', '2026-02', '--ip', '2001:db8:100:a::g']);
    expect([r.code, r.err.split('\n')[0]]).toEqual([2, 'xttraffic: --ip 2001:db8:100:a::g: not an IPv6 address or prefix (prefix length 0..128)']);
    r = await cli(['history', '2001:db8:100:a::77', '--step', 'day', '--json']);
    expect(r.code).toBe(0);
    const hj = JSON.parse(r.out);
    expect([hj.kind, hj.name, hj.points.length, hj.points[0].totals.bytes.tcp.in]).toEqual(['host', '2001:db8:100:a::/64', 1, 9007199254740993]);
    r = await cli(['quota', 'set', '2001:db8:100:9::1', '1k', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ kind: 'host', target: '2001:db8:100:9::/64' });
    r = await cli(['report', '--period', '2026-02', '--csv']);
    expect(r.out).toContain('host,2001:db8:100:a::/64,,2026-02-01T00:00:00Z,2026-03-01T00:00:00Z,9007199254740993,0,9007199254740993,0,');
  });
});

function r4Text(rows: Array<[string, bigint[]]>): string {
  return text6({ name: 'lan', generation: GEN_A, family: 'ipv4', traffic: new Map(rows) }).replace('family: ipv4\nhostprefix: 32\n', '');
}

describe('property: random IPv6 and IPv4 deltas sum exactly into every rollup, group and period', () => {
  it('values near 2^53 and 2^63, sums past 2^64, a re-created table, folds at random moments', () => {
    const l = ledger();
    addMembers(l.db, 'v6cust', ['2001:db8:100::/48'], { from: 0, to: null, now: T0 });
    addMembers(l.db, 'mixed', ['2001:db8:200::/40', '10.0.0.0/30'], { from: 0, to: null, now: T0 });
    const r = rng(1313);
    const v6 = ['2001:db8:100::/64', '2001:db8:100:ffff::/64', '2001:db8:200:1::/64', '2001:db8:9999::/64'];
    const v4 = ['10.0.0.1', '10.0.0.2', '10.0.0.5'];
    const all = [...v6, ...v4];
    const cur = new Map(all.map((k) => [k, new Array<bigint>(8).fill(0n)]));
    const truth = new Map(all.map((k) => [k, new Array<bigint>(6).fill(0n)]));
    const bases = [(1n << 53n) - 3n, (1n << 63n) - 1n, (1n << 62n) + 1n];
    let gen = GEN_A;
    for (let i = 1; i <= 50; i++) {
      const fresh = i === 1 || i === 25;
      if (i === 25) {
        gen = GEN_B; // both tables re-created: counters restart from zero
        for (const v of cur.values()) v.fill(0n);
      }
      for (const k of all) {
        const v = cur.get(k)!;
        for (let c = 0; c < 6; c++) {
          const inc = fresh ? bases[(c + i + k.length) % 3]! + randBig(r, 1000n) : randBig(r, i % 6 === 0 ? 1n << 53n : 1n << 24n);
          v[c + 2] = v[c + 2]! + inc;
          truth.get(k)![c] = truth.get(k)![c]! + inc;
        }
        v[0] = v[2]! + v[4]! + v[6]!;
        v[1] = v[3]! + v[5]! + v[7]!;
      }
      // rows in a random order each time (the counters file promises none)
      const shuffled = (ks: string[]) => ks.map((k) => [r(), k] as const).sort((a, b) => a[0] - b[0]).map(([, k]) => [k, [...cur.get(k)!]] as [string, bigint[]]);
      const at = T0 + i * 7 * MIN;
      l.ingest({ readings: [r6({ name: 'v6', generation: gen, traffic: new Map(shuffled(v6)) }), r4({ name: 'lan', generation: gen, traffic: new Map(shuffled(v4)) })], readMs: at, at });
      if (r() < 0.3) l.fold(at);
    }
    expect([...truth.values()].filter((v) => v.some((x) => x > (1n << 63n))).length).toBe(all.length);
    const allIn = all.reduce((s, k) => s + truth.get(k)![0]! + truth.get(k)![2]! + truth.get(k)![4]!, 0n);
    expect(allIn > (1n << 64n)).toBe(true);
    const inOf = (ks: string[]) => ks.reduce((s, k) => s + truth.get(k)![0]! + truth.get(k)![2]! + truth.get(k)![4]!, 0n);
    const check = () => {
      for (const [from, to] of [[T0, T0 + 360 * MIN], [Date.UTC(2026, 1, 1), Date.UTC(2026, 2, 1)]] as const) {
        const hosts = hostsInRange(l.db, from, to);
        for (const k of all) expect(hosts.get(k)!.slice(0, 6)).toEqual(truth.get(k));
      }
      const p = periodOfLabel('2026-02', { billingDay: 1, tz: 'UTC' });
      const hp = hostsInPeriod(l.db, p.start);
      for (const k of all) expect(hp.get(k)!.slice(0, 6)).toEqual(truth.get(k));
      const rep = buildReport(l.db, { period: '2026-02', now: T0 });
      expect(rep.totals.bytes.total.in).toBe(allIn);
      expect(rep.hosts.map((h) => h.host).sort(compareHostKeys)).toEqual([...v4, ...v6]);
      for (const h of rep.hosts) expect(h.totals.bytes.udp.out).toBe(truth.get(h.host)![3]);
      const g = (name: string) => rep.groups.find((x) => x.group === name)!.totals.bytes.total.in;
      expect(g('v6cust')).toBe(inOf([v6[0]!, v6[1]!]));
      expect(g('mixed')).toBe(inOf([v6[2]!, '10.0.0.1', '10.0.0.2']));
      const rg = buildReport(l.db, { from: T0, to: T0 + 360 * MIN, group: 'mixed', now: T0 });
      expect(rg.groups[0]!.totals.bytes.total.in).toBe(inOf([v6[2]!, '10.0.0.1', '10.0.0.2']));
      expect(rg.totals.bytes.total.in).toBe(inOf([v6[2]!, '10.0.0.1', '10.0.0.2']));
      const months = history(l.db, '2001:db8:100:ffff::1', 'month');
      expect([months.name, months.points.length, months.points[0]!.totals.bytes.tcp.in]).toEqual([v6[1], 1, truth.get(v6[1]!)![0]]);
      const days = history(l.db, 'mixed', 'day');
      expect(days.points.reduce((s, pt) => s + pt.totals.bytes.total.in, 0n)).toBe(inOf([v6[2]!, '10.0.0.1', '10.0.0.2']));
    };
    check();
    l.fold(T0 + 400 * MIN);
    check();
  });

  it('resolveHostKey and quota targets: an address means the longest host prefix counting it', () => {
    const l = ledger();
    l.ingest({ readings: [r6({ name: 'a', generation: GEN_A, hostprefix: 56, traffic: new Map([['2001:db8:100::/56', tr(1n, 0n)]]) }), r6({ name: 'b', generation: GEN_A, traffic: new Map([['2001:db8:100::/64', tr(1n, 0n)]]) })], readMs: T0 + MIN, at: T0 + MIN });
    expect(resolveHostKey(l.db, '2001:db8:100::9')).toBe('2001:db8:100::/64');
    expect(resolveHostKey(l.db, '2001:db8:100:80::9')).toBe('2001:db8:100::/56');
    expect(resolveHostKey(l.db, '2001:db8:100::/56')).toBe('2001:db8:100::/56');
    expect(resolveHostKey(l.db, '2001:db8:200::9')).toBe('2001:db8:200::9');
    expect(resolveHostKey(l.db, '2001:db8:200::9/128')).toBe('2001:db8:200::9');
    expect(resolveHostKey(l.db, '10.0.0.1')).toBe('10.0.0.1');
    expect(setQuota(l.db, { target: '2001:db8:100:80::1', limit: 5n }, T0).target).toBe('2001:db8:100::/56');
    expect(() => setQuota(l.db, { target: '2001:db8::zz', limit: 5n }, T0)).toThrow('"2001:db8::zz": not an IPv4 address (a.b.c.d), an IPv6 address or a host prefix, nor a group name');
  });
});

describe('quota block of an IPv6 host prefix through the CLI (fake ipset / ip6tables)', () => {
  let dir: string;
  let now: number;
  let calls: string[];
  const sets = new Map<string, { type: string; family: string; members: Set<string> }>();
  const rules = new Set<string>();
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xtt-v6-quota-'));
    mkdirSync(join(dir, 'ctr'));
    calls = [];
    sets.clear();
    rules.clear();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  type RR = { code: number; stdout: string; stderr: string };
  const run = async (cmd: string, args: readonly string[]): Promise<RR> => {
    const a = [...args];
    const ok = (stdout = ''): RR => ({ code: 0, stdout, stderr: '' });
    const err = (code: number, stderr: string): RR => ({ code, stdout: '', stderr });
    if (cmd === 'ipset') {
      const name = a[0] === 'list' ? a[2]! : a[1]!;
      if (a[0] !== 'list') calls.push(`ipset ${a.join(' ')}`);
      if (a[0] === 'create') {
        sets.set(name, { type: a[2]!, family: a[4]!, members: new Set() });
        return ok();
      }
      const s = sets.get(name);
      if (!s) return err(1, 'ipset v7.17: The set with the given name does not exist\n');
      if (a[0] === 'list') return ok(`Name: ${name}\nType: ${s.type}\nRevision: 7\nHeader: family ${s.family} hashsize 1024 maxelem 65536 timeout 0\nReferences: 2\nNumber of entries: ${s.members.size}\n`);
      if (a[0] === 'test') return s.members.has(a[2]!) ? ok() : err(1, `ipset v7.17: ${a[2]} is NOT in set ${name}.\n`);
      if (a[0] === 'add') return s.members.has(a[2]!) ? err(1, "it's already added") : (s.members.add(a[2]!), ok());
      if (a[0] === 'del') return s.members.delete(a[2]!) ? ok() : err(1, "it's not added");
      return err(1, 'unexpected');
    }
    if (cmd === 'iptables' || cmd === 'ip6tables') {
      const i = a.indexOf('-C') >= 0 ? a.indexOf('-C') : a.indexOf('-I');
      const rule = `${cmd} ${a.slice(a[i] === '-I' ? i + 3 : i + 2).join(' ')}`;
      if (a[i] === '-C') return rules.has(rule) ? ok() : err(1, `${cmd}: Bad rule (does a matching rule exist in that chain?).\n`);
      calls.push(`${cmd} ${a.join(' ')}`);
      rules.add(rule);
      return ok();
    }
    calls.push(`${cmd} ${a.join(' ')}`);
    return ok();
  };
  const cli = ledgerCli(() => dir, () => ({ now: () => now, run, env: { XTABLES_LIBDIR: '/nonexistent' } }));
  const write = (v: bigint) => writeFileSync(join(dir, 'ctr', 'V6'), text6({ name: 'V6', generation: GEN_A, traffic: new Map([['2001:db8:0:9::/64', tr(v, 0n)], ['2001:db8:0:a::/64', tr(1n, 0n)]]) }));

  it('a quota on an address of a /64 blocks the /64 in xttraffic-block6 (created with its ip6tables rules), once; lifted at the period end', async () => {
    now = Date.UTC(2026, 1, 27, 10, 0);
    write(10n);
    expect((await cli(['collect', '--once'])).code).toBe(0);
    let r = await cli(['quota', 'set', '2001:db8:0:9::abcd', '1k', '--action', 'block']);
    expect(r).toEqual({ code: 0, out: 'quota host 2001:db8:0:9::/64: 1000 bytes sum per month, action block\n', err: '' });
    now += MIN;
    write(1010n);
    r = await cli(['collect', '--once']);
    expect(r.err).toBe('');
    expect(calls).toEqual([
      'ipset create xttraffic-block hash:ip family inet timeout 0',
      'iptables -t filter -I FORWARD 1 -m set --match-set xttraffic-block dst -m comment --comment xttraffic block dst -j DROP',
      'iptables -t filter -I FORWARD 1 -m set --match-set xttraffic-block src -m comment --comment xttraffic block src -j DROP',
      'ipset create xttraffic-block6 hash:net family inet6 timeout 0',
      'ip6tables -t filter -I FORWARD 1 -m set --match-set xttraffic-block6 dst -m comment --comment xttraffic block6 dst -j DROP',
      'ip6tables -t filter -I FORWARD 1 -m set --match-set xttraffic-block6 src -m comment --comment xttraffic block6 src -j DROP',
      'ipset test xttraffic-block6 2001:db8:0:9::/64',
      'ipset add xttraffic-block6 2001:db8:0:9::/64',
    ]);
    expect([...sets.get('xttraffic-block6')!.members]).toEqual(['2001:db8:0:9::/64']);
    calls = [];
    now += MIN;
    write(1020n);
    expect((await cli(['collect', '--once'])).code).toBe(0);
    expect(calls.filter((c) => /ipset (add|del)/.test(c))).toEqual([]);
    now = Date.UTC(2026, 2, 1);
    write(1030n);
    r = await cli(['collect', '--once']);
    expect(r.out).toContain('unblocked 2001:db8:0:9::/64');
    expect(calls).toEqual(['ipset test xttraffic-block6 2001:db8:0:9::/64', 'ipset del xttraffic-block6 2001:db8:0:9::/64']);
  });
});
