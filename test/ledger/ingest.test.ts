import { afterEach, describe, expect, it } from 'vitest';
import { BUCKET_5M } from '../../src/ledger/db.js';
import { addMembers } from '../../src/ledger/groups.js';
import { buildReport, hostsInPeriod, hostsInRange } from '../../src/ledger/query.js';
import { periodAt, periodOfLabel } from '../../src/ledger/periods.js';
import { randBig, reading, rng, tmpLedger, tr, type Rows } from './helpers.js';

const T0 = Date.UTC(2026, 1, 10, 12, 0); // 2026-02-10T12:00Z
const MIN = 60_000;
let cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup) f();
  cleanup = [];
});
function ledger() {
  const l = tmpLedger();
  cleanup.push(l.done);
  return l.ledger;
}
const GEN_A = '5f0c2a9e13b7d4c1';
const GEN_B = '0123456789abcdef';
const bytesIn = (v: { totals: { bytes: { total: { in: bigint } } } }) => v.totals.bytes.total.in;

describe('ingest: deltas against the last committed reading', () => {
  it('first reading counts everything since the table started, then deltas, flags first/reset/anomaly', () => {
    const l = ledger();
    const r1 = l.ingest({ readings: [reading({ name: 'lan', generation: GEN_A, traffic: new Map([['10.0.0.1', tr(100n, 10n)]]) })], readMs: T0 + MIN, at: T0 + MIN });
    expect(r1.intervals[0]!.flags).toEqual(['first']);
    l.ingest({ readings: [reading({ name: 'lan', generation: GEN_A, traffic: new Map([['10.0.0.1', tr(150n, 10n, 7n)], ['10.0.0.2', tr(5n, 0n)]]) })], readMs: T0 + 2 * MIN, at: T0 + 2 * MIN });
    // module reload: new generation, counters restarted: delta = the new values
    const r3 = l.ingest({ readings: [reading({ name: 'lan', generation: GEN_B, traffic: new Map([['10.0.0.1', tr(3n, 1n)]]) })], readMs: T0 + 3 * MIN, at: T0 + 3 * MIN });
    expect(r3.intervals[0]!.flags).toEqual(['reset']);
    // a decrease within a generation: anomaly, taken as reset for that key
    const r4 = l.ingest({ readings: [reading({ name: 'lan', generation: GEN_B, traffic: new Map([['10.0.0.1', tr(2n, 1n)]]) })], readMs: T0 + 4 * MIN, at: T0 + 4 * MIN });
    expect(r4.intervals[0]!.flags).toEqual(['anomaly']);
    expect(r4.intervals[0]!.anomalies).toBe(1);
    const hosts = hostsInRange(l.db, T0, T0 + 5 * MIN);
    // 10.0.0.1: 100 + 50 + 3 + 2 tcp in, udp in 7; out 10 + 0 + 1 + 1
    expect(hosts.get('10.0.0.1')).toEqual([155n, 12n, 7n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    expect(hosts.get('10.0.0.2')![0]).toBe(5n);
  });

  it('a crash inside the transaction (before commit) and a re-ingest after it lose and double nothing', () => {
    const l = ledger();
    const r = rng(7);
    let truth = 0n;
    let counter = 0n;
    for (let i = 1; i <= 40; i++) {
      const inc = randBig(r, 1n << 40n);
      counter += inc;
      truth += inc;
      const rd = reading({ name: 't', generation: GEN_A, traffic: new Map([['10.0.0.9', tr(counter, 0n)]]) });
      if (i % 3 === 0) {
        expect(() => l.ingest({ readings: [rd], readMs: T0 + i * MIN, at: T0 + i * MIN, beforeCommit: () => { throw new Error('killed'); } })).toThrow('killed');
        continue; // the kernel keeps counting: the next run takes the whole delta
      }
      l.ingest({ readings: [rd], readMs: T0 + i * MIN, at: T0 + i * MIN });
      if (i % 5 === 0) l.ingest({ readings: [rd], readMs: T0 + i * MIN + 1000, at: T0 + i * MIN + 1000 }); // killed after commit, re-read same values
    }
    // the last one crashed? ingest once more so every increment is committed
    l.ingest({ readings: [reading({ name: 't', generation: GEN_A, traffic: new Map([['10.0.0.9', tr(counter, 0n)]]) })], readMs: T0 + 41 * MIN, at: T0 + 41 * MIN });
    expect(hostsInRange(l.db, T0, T0 + 45 * MIN).get('10.0.0.9')![0]).toBe(truth);
    const p = periodOfLabel('2026-02', { billingDay: 1, tz: 'UTC' });
    expect(hostsInPeriod(l.db, p.start).get('10.0.0.9')![0]).toBe(truth);
  });

  it('random deltas near 2^53, 2^63 and 2^64 sum exactly into every rollup, group and period', () => {
    const l = ledger();
    addMembers(l.db, 'cust', ['10.0.0.0/30'], { from: 0, to: null, now: T0 });
    const r = rng(42);
    const ips = ['10.0.0.1', '10.0.0.2', '10.0.0.5'];
    const cur = new Map(ips.map((ip) => [ip, new Array<bigint>(8).fill(0n)]));
    const truth = new Map(ips.map((ip) => [ip, new Array<bigint>(6).fill(0n)]));
    const bases = [(1n << 53n) - 3n, (1n << 63n) - 1n, (1n << 62n)];
    let gen = GEN_A;
    let first = true;
    for (let i = 1; i <= 60; i++) {
      if (i === 30) {
        // table re-created: counters restart from zero
        gen = GEN_B;
        for (const v of cur.values()) v.fill(0n);
      }
      const rows: Rows = new Map();
      for (const ip of ips) {
        const v = cur.get(ip)!;
        for (let c = 0; c < 6; c++) {
          // the first reading of each generation: a value near 2^53 / 2^63 (all since the table started)
          const inc = (first || i === 30) ? bases[(c + i) % 3]! + randBig(r, 1000n) : randBig(r, i % 7 === 0 ? 1n << 53n : 1n << 20n);
          v[c + 2] = v[c + 2]! + inc;
          truth.get(ip)![c] = truth.get(ip)![c]! + inc;
        }
        v[0] = v[2]! + v[4]! + v[6]!;
        v[1] = v[3]! + v[5]! + v[7]!;
        rows.set(ip, [...v]);
      }
      first = false;
      l.ingest({ readings: [reading({ name: 'big', generation: gen, traffic: rows })], readMs: T0 + i * 7 * MIN, at: T0 + i * 7 * MIN });
    }
    const sum6 = (ip: string) => truth.get(ip)!;
    // single counters pass 2^63 and the sums pass 2^64: check they stay exact
    expect(truth.get('10.0.0.1')![0]! > (1n << 63n)).toBe(true);
    const allIn = ips.reduce((s, ip) => s + truth.get(ip)![0]! + truth.get(ip)![2]! + truth.get(ip)![4]!, 0n);
    expect(allIn > (1n << 64n)).toBe(true);
    for (const [from, to] of [[T0, T0 + 430 * MIN], [Date.UTC(2026, 1, 1), Date.UTC(2026, 2, 1)]] as const) {
      const hosts = hostsInRange(l.db, from, to);
      for (const ip of ips) expect(hosts.get(ip)!.slice(0, 6)).toEqual(sum6(ip));
    }
    const rep = buildReport(l.db, { period: '2026-02', now: T0 });
    for (const h of rep.hosts) expect(h.totals.bytes.tcp.in).toBe(truth.get(h.host)![0]);
    expect(rep.totals.bytes.total.in).toBe(allIn);
    const g = rep.groups.find((x) => x.group === 'cust')!;
    // 10.0.0.1 and .2 are in 10.0.0.0/30, .5 is not
    expect(g.totals.bytes.total.in).toBe([0, 2, 4].reduce((s, c) => s + truth.get('10.0.0.1')![c]! + truth.get('10.0.0.2')![c]!, 0n));
    const gr = buildReport(l.db, { period: '2026-02', group: 'cust', now: T0 });
    expect(gr.hosts.map((h) => h.host).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(bytesIn(gr)).toBe(g.totals.bytes.total.in);
    expect(gr.totals.bytes.udp.out).toBe(truth.get('10.0.0.1')![3]! + truth.get('10.0.0.2')![3]!);
    const rg = buildReport(l.db, { from: T0, to: T0 + 430 * MIN, group: 'cust', now: T0 });
    expect(rg.groups[0]!.totals.bytes.total.in).toBe(g.totals.bytes.total.in);
    expect(rep.coverage.events.map((e) => e.flags.join(' '))).toEqual(['first', 'reset']);
  });

  it('a gap is recorded and its counts land in the interval that ends when the collector is back', () => {
    const l = ledger();
    const rd = (v: bigint) => reading({ name: 'g', generation: GEN_A, traffic: new Map([['10.0.0.3', tr(v, 0n)]]) });
    l.ingest({ readings: [rd(10n)], readMs: T0 + MIN, at: T0 + MIN, intervalMs: MIN });
    const r = l.ingest({ readings: [rd(1010n)], readMs: T0 + 31 * MIN, at: T0 + 31 * MIN, intervalMs: MIN });
    expect(r.intervals[0]!.flags).toEqual(['gap']);
    expect(r.intervals[0]!.start).toBe(T0 + MIN);
    const b = hostsInRange(l.db, T0 + 30 * MIN, T0 + 35 * MIN);
    expect(b.get('10.0.0.3')![0]).toBe(1000n);
    expect(hostsInRange(l.db, T0 + 5 * MIN, T0 + 30 * MIN).size).toBe(0);
    void BUCKET_5M;
  });

  it('group membership in force at ingest is what is billed; a later change does not rewrite a closed period', () => {
    const l = ledger();
    addMembers(l.db, 'a', ['10.0.0.0/24'], { from: 0, to: Date.UTC(2026, 2, 1), now: T0 });
    addMembers(l.db, 'b', ['10.0.0.0/24'], { from: Date.UTC(2026, 2, 1), to: null, now: T0 });
    const rd = (v: bigint) => reading({ name: 'm', generation: GEN_A, traffic: new Map([['10.0.0.7', tr(v, 0n)]]) });
    l.ingest({ readings: [rd(100n)], readMs: Date.UTC(2026, 1, 27), at: Date.UTC(2026, 1, 27) });
    l.ingest({ readings: [rd(250n)], readMs: Date.UTC(2026, 2, 1), at: Date.UTC(2026, 2, 1) }); // (.., Mar 1 00:00] is February
    l.ingest({ readings: [rd(300n)], readMs: Date.UTC(2026, 2, 1, 0, 5), at: Date.UTC(2026, 2, 1, 0, 5) });
    const now = Date.UTC(2026, 2, 2);
    const feb = buildReport(l.db, { period: '2026-02', now });
    expect(feb.groups.map((g) => [g.group, g.totals.bytes.tcp.in, g.closed])).toEqual([['a', 250n, true], ['b', 0n, true]]);
    const mar = buildReport(l.db, { period: '2026-03', now });
    expect(mar.groups.map((g) => [g.group, g.totals.bytes.tcp.in, g.closed])).toEqual([['a', 0n, false], ['b', 50n, false]]);
    // a later change of membership (a moved to b's range etc.) does not move billed counts
    l.db.prepare(`DELETE FROM members`).run();
    expect(buildReport(l.db, { period: '2026-02', group: 'a', now }).totals.bytes.tcp.in).toBe(250n);
  });
});

describe('fold: host hour/day/period rollups from the closed 5-minute buckets, after the commit', () => {
  it('a ledger folded at random moments answers every query exactly as one never folded, and as the truth', async () => {
    const { history } = await import('../../src/ledger/query.js');
    const a = ledger(); // folds at random moments
    const b = ledger(); // never folds: every answer from the 5-minute buckets
    const r = rng(11);
    const ips = ['10.0.0.1', '10.0.0.2', '10.9.0.3'];
    const cur = new Map(ips.map((ip) => [ip, new Array<bigint>(8).fill(0n)]));
    const perPeriod = new Map<string, bigint>(); // "ip period" -> tcp in
    let t = Date.UTC(2026, 1, 26, 22, 0);
    const folds: number[] = [];
    for (let i = 1; i <= 150; i++) {
      // mostly forward by 1..40 minutes; once the clock goes back into a folded bucket
      const back = i === 120;
      const at = back ? t - 3 * 60 * MIN : (t += (1 + Math.floor(r() * 40)) * MIN);
      const rows: Rows = new Map();
      for (const ip of ips) {
        const v = cur.get(ip)!;
        const inc = r() < 0.1 ? (1n << 53n) + randBig(r, 1000n) : randBig(r, 1n << 30n);
        v[2] = v[2]! + inc;
        v[0] = v[0]! + inc;
        rows.set(ip, [...v]);
        const p = periodAt(at - 1, { billingDay: 1, tz: 'UTC' }).label;
        perPeriod.set(`${ip} ${p}`, (perPeriod.get(`${ip} ${p}`) ?? 0n) + inc);
      }
      const rd = reading({ name: 'f', generation: GEN_A, traffic: rows });
      a.ingest({ readings: [rd], readMs: at, at });
      b.ingest({ readings: [rd], readMs: at, at });
      if (r() < 0.5) folds.push(a.fold(at));
    }
    expect(folds.some((n) => n > 0)).toBe(true);
    const check = () => {
      for (const label of ['2026-02', '2026-03']) {
        const p = periodOfLabel(label, { billingDay: 1, tz: 'UTC' });
        const ha = hostsInPeriod(a.db, p.start);
        const hb = hostsInPeriod(b.db, p.start);
        for (const ip of ips) {
          expect(ha.get(ip)?.[0] ?? 0n).toBe(perPeriod.get(`${ip} ${label}`) ?? 0n);
          expect(hb.get(ip)?.[0] ?? 0n).toBe(perPeriod.get(`${ip} ${label}`) ?? 0n);
        }
        expect(hostsInPeriod(a.db, p.start, '10.0.0.2').get('10.0.0.2')?.[0] ?? 0n).toBe(perPeriod.get(`10.0.0.2 ${label}`) ?? 0n);
      }
      for (const [from, to] of [[Date.UTC(2026, 1, 26), Date.UTC(2026, 2, 8)], [Date.UTC(2026, 1, 27, 3, 5), Date.UTC(2026, 2, 1, 7, 35)], [Date.UTC(2026, 2, 1), Date.UTC(2026, 2, 2)]] as const) {
        expect(hostsInRange(a.db, from, to)).toEqual(hostsInRange(b.db, from, to));
      }
      for (const step of ['hour', 'day', 'month'] as const) expect(history(a.db, '10.0.0.1', step)).toEqual(history(b.db, '10.0.0.1', step));
    };
    check();
    // everything folded: host_period alone holds the truth
    a.fold(t + 10 * MIN);
    check();
    const p = periodOfLabel('2026-02', { billingDay: 1, tz: 'UTC' });
    const row = a.db.prepare(`SELECT tcp_in, tcp_in_hi FROM host_period r JOIN hosts h ON h.id = r.host_id WHERE h.key = '10.0.0.1' AND period_start = ?`).get(p.start) as { tcp_in: bigint; tcp_in_hi: bigint };
    expect(row.tcp_in_hi * (1n << 32n) + row.tcp_in).toBe(perPeriod.get('10.0.0.1 2026-02'));
    expect(a.fold(t + 10 * MIN)).toBe(0);
  });
});
