/**
 * Counters file revision 2 (tables made with the module's reclaim_idle, docs/design.md
 * "Reclaiming idle entries"): the parser's serials and read number, ingest keyed by
 * (key, serial), and the collector's `ack N` only after the commit. A small model of the
 * kernel's table (entries with serials, freed only when idle since before the acked read)
 * drives the collector through random traffic, reclaims and crashes between commit and ack:
 * the ledger's totals must equal what was sent.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ParseError } from '../../src/core/errors.js';
import { collectOnce } from '../../src/ledger/collector.js';
import { hostsInRange } from '../../src/ledger/query.js';
import { parseCounters } from '../../src/proc/counters.js';
import { rng, tmpLedger, tr } from './helpers.js';

const T0 = Date.UTC(2026, 1, 10, 12, 0);
const MIN = 60_000;
const GEN = '5f0c2a9e13b7d4c1';
const HEAD = `name: R\ngeneration: ${GEN}\noptions: traffic\nnetbase: 10.0.0.0\nnetmask: 255.255.0.0\noverflow: 0\n`;

/** Revision-2 text: rows [ip, serial, 8 counters]. */
function text2(read: bigint, rows: Array<[string, bigint, bigint[]]>): string {
  return `xt_traffic_counters 2\n${HEAD}read: ${read}\n[traffic]\n${rows.map(([ip, s, c]) => `${ip}\t${s}\t${c.join('\t')}\n`).join('')}[end]\n`;
}

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
function ctrDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'xtt-rec-'));
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  mkdirSync(join(d, 'ctr'));
  return join(d, 'ctr');
}
function perr(t: string): ParseError {
  try {
    parseCounters(t, { path: '/x/R' });
  } catch (e) {
    return e as ParseError;
  }
  throw new Error('no error');
}

describe('counters file revision 2', () => {
  it('parses read and serials; revision 1 has neither', () => {
    const r = parseCounters(text2(7n, [['10.0.0.1', 3n, tr(5n, 1n)], ['10.0.0.2', 18446744073709551615n, tr(0n, 9n)]]));
    expect(r.revision).toBe(2);
    expect(r.read).toBe(7n);
    expect([...r.traffic!.serials!]).toEqual([3n, 18446744073709551615n]);
    expect([...r.traffic!.counters.slice(0, 8)]).toEqual(tr(5n, 1n));
    const r1 = parseCounters(`xt_traffic_counters 1\n${HEAD}[traffic]\n10.0.0.1\t5\t1\t5\t1\t0\t0\t0\t0\n[end]\n`);
    expect(r1.revision).toBe(1);
    expect(r1.read).toBeUndefined();
    expect(r1.traffic!.serials).toBeUndefined();
  });

  it('refuses a revision-2 file without its read line, a bad serial or a row without one', () => {
    expect(perr(text2(1n, []).replace('read: 1\n', '')).message).toMatch(/^\/x\/R: line 8: expected "read: N" \(revision 2\)/);
    expect(perr(text2(0n, [])).message).toMatch(/line 8: read: not a read number 1\.\.2\^64-1/);
    expect(perr(text2(1n, [['10.0.0.1', 0n, tr(1n, 1n)]])).message).toMatch(/line 10: serial: "0" is not a serial/);
    expect(perr(text2(1n, [['10.0.0.1', 18446744073709551616n, tr(1n, 1n)]])).message).toMatch(/line 10: serial: "18446744073709551616" is not a serial/);
    const noSerial = text2(1n, [['10.0.0.1', 1n, tr(1n, 1n)]]).replace('10.0.0.1\t1\t', '10.0.0.1\t');
    expect(perr(noSerial).message).toMatch(/line 10: expected a key, a serial and 8 counters separated by one tab \(revision 2\)/);
  });
});

describe('ingest keyed by (key, serial)', () => {
  it('same serial: the delta; a new serial: its whole value; a vanished serial: no anomaly', () => {
    const l = ledger();
    const ing = (i: number, t: string) => l.ingest({ readings: [parseCounters(t)], readMs: T0 + i * MIN, at: T0 + i * MIN });
    ing(1, text2(1n, [['10.0.0.1', 1n, tr(100n, 10n)], ['10.0.0.2', 2n, tr(7n, 0n)]]));
    // .1 grew by 50; .2 was reclaimed (serial 2 gone)
    const r2 = ing(2, text2(2n, [['10.0.0.1', 1n, tr(150n, 10n)]]));
    expect(r2.intervals[0]!.flags).toEqual([]);
    expect(r2.intervals[0]!.anomalies).toBe(0);
    // .2 comes back with serial 3 and 4 bytes: all 4 are new; .1 reclaimed and back with 1 byte
    const r3 = ing(3, text2(3n, [['10.0.0.2', 3n, tr(4n, 0n)], ['10.0.0.1', 5n, tr(1n, 0n)]]));
    expect(r3.intervals[0]!.anomalies).toBe(0);
    expect(r3.intervals[0]!.hosts).toBe(2);
    // a counter going down under the same serial is still an anomaly
    const r4 = ing(4, text2(4n, [['10.0.0.2', 3n, tr(2n, 0n)], ['10.0.0.1', 5n, tr(1n, 0n)]]));
    expect(r4.intervals[0]!.anomalies).toBe(1);
    const h = hostsInRange(l.db, T0, T0 + 5 * MIN);
    expect(h.get('10.0.0.1')![0]).toBe(151n);
    expect(h.get('10.0.0.1')![1]).toBe(10n);
    expect(h.get('10.0.0.2')![0]).toBe(7n + 4n + 2n);
  });

  it('without serials (revision 1) a vanished key stays an anomaly', () => {
    const l = ledger();
    const t1 = (rows: string) => parseCounters(`xt_traffic_counters 1\n${HEAD}[traffic]\n${rows}[end]\n`);
    l.ingest({ readings: [t1('10.0.0.1\t1\t0\t1\t0\t0\t0\t0\t0\n10.0.0.2\t1\t0\t1\t0\t0\t0\t0\t0\n')], readMs: T0 + MIN, at: T0 + MIN });
    const r = l.ingest({ readings: [t1('10.0.0.1\t1\t0\t1\t0\t0\t0\t0\t0\n')], readMs: T0 + 2 * MIN, at: T0 + 2 * MIN });
    expect(r.intervals[0]!.anomalies).toBe(1);
  });
});

describe('collector: ack N after the commit', () => {
  it('acks the read of each revision-2 table after its commit, and never when the ingest fails', async () => {
    const l = ledger();
    const dir = ctrDir();
    writeFileSync(join(dir, 'R'), text2(41n, [['10.0.0.1', 1n, tr(100n, 10n)]]));
    writeFileSync(join(dir, 'V1'), `xt_traffic_counters 1\n${HEAD.replace('name: R', 'name: V1')}[traffic]\n10.0.0.3\t1\t0\t1\t0\t0\t0\t0\t0\n[end]\n`);
    const acks: Array<[string, bigint, boolean, number]> = [];
    const ack = (t: string, n: bigint) => {
      const c = l.db.prepare(`SELECT count(*) AS n FROM last_reading WHERE table_name = ?`).get(t) as { n: bigint };
      acks.push([t, n, l.db.inTransaction, Number(c.n)]);
    };
    const res = await collectOnce(l, { loc: { dir, fromEnv: true }, tables: [], readMs: T0 + MIN, at: T0 + MIN, ack });
    // only R (revision 2), outside the transaction, its reading already committed
    expect(acks).toEqual([['R', 41n, false, 1]]);
    expect(res.acked).toEqual([{ table: 'R', read: 41n }]);
    // a failing ingest (the commit never happens): no ack
    const ingest = l.ingest.bind(l);
    l.ingest = () => { throw new Error('SQLITE_FULL'); };
    await expect(collectOnce(l, { loc: { dir, fromEnv: true }, tables: ['R'], readMs: T0 + 2 * MIN, at: T0 + 2 * MIN, ack })).rejects.toThrow('SQLITE_FULL');
    expect(acks.length).toBe(1);
    l.ingest = ingest;
    // a failing ack is reported, the collection stands
    const r2 = await collectOnce(l, { loc: { dir, fromEnv: true }, tables: ['R'], readMs: T0 + 3 * MIN, at: T0 + 3 * MIN, ack: () => { throw new Error('EPERM'); } });
    expect(r2.acked).toEqual([{ table: 'R', read: 41n, error: 'EPERM' }]);
    expect(r2.result!.intervals[0]!.flags).toEqual([]);
  });

  it('random traffic, reclaims and crashes between commit and ack: the ledger equals what was sent', async () => {
    const l = ledger();
    const dir = ctrDir();
    const r = rng(12);
    // the kernel's table: entries with serials; a read's start time kept for its ack
    let now = 0;
    let serial = 0n;
    let reads = 0n;
    let ackedAt = -1;
    const readAt = new Map<bigint, number>();
    const entries = new Map<string, { serial: bigint; c: bigint[]; last: number }>();
    const sent = new Map<string, bigint>();
    const IDLE = 2;
    let reclaimed = 0;
    let acksLost = 0;
    for (let round = 1; round <= 120; round++) {
      now++;
      // traffic to a few of 20 hosts (some rounds none: hosts go idle)
      const n = r() < 0.3 ? 0 : Math.floor(r() * 6);
      for (let i = 0; i < n; i++) {
        const ip = `10.0.0.${1 + Math.floor(r() * 20)}`;
        const bytes = BigInt(1 + Math.floor(r() * 1500));
        let e = entries.get(ip);
        if (!e) entries.set(ip, (e = { serial: ++serial, c: tr(0n, 0n), last: now }));
        e.c[0]! += bytes;
        e.c[2]! += bytes;
        e.last = now;
        sent.set(ip, (sent.get(ip) ?? 0n) + bytes);
      }
      // the kernel's reclaim: idle long enough and last changed before the acked read began
      for (const [ip, e] of entries) {
        if (now - e.last >= IDLE && e.last < ackedAt) {
          entries.delete(ip);
          reclaimed++;
        }
      }
      if (round % 2 === 0) {
        now++;
        const read = ++reads;
        readAt.set(read, now);
        writeFileSync(join(dir, 'R'), text2(read, [...entries].map(([ip, e]) => [ip, e.serial, e.c])));
        // one collection in four dies after its commit, before its ack
        const lost = r() < 0.25;
        if (lost) acksLost++;
        await collectOnce(l, {
          loc: { dir, fromEnv: true }, tables: ['R'], readMs: T0 + round * MIN, at: T0 + round * MIN,
          ack: (_t, k) => {
            if (lost) throw new Error('killed');
            ackedAt = Math.max(ackedAt, readAt.get(k)!);
          },
        });
      }
    }
    // a last collection of what is left
    writeFileSync(join(dir, 'R'), text2(++reads, [...entries].map(([ip, e]) => [ip, e.serial, e.c])));
    await collectOnce(l, { loc: { dir, fromEnv: true }, tables: ['R'], readMs: T0 + 200 * MIN, at: T0 + 200 * MIN, ack: () => undefined });
    expect(reclaimed).toBeGreaterThan(20);
    expect(acksLost).toBeGreaterThan(3);
    const h = hostsInRange(l.db, T0, T0 + 205 * MIN);
    let total = 0n;
    for (const [ip, v] of sent) {
      expect([ip, h.get(ip)?.[0]]).toEqual([ip, v]);
      total += v;
    }
    expect([...h.values()].reduce((s, v) => s + v[0]!, 0n)).toBe(total);
    const anomalies = l.db.prepare(`SELECT sum(anomalies) AS a FROM intervals`).get() as { a: bigint };
    expect(Number(anomalies.a)).toBe(0);
  });
});
