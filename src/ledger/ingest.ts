/**
 * Ingest: deltas against the last committed reading, in the same transaction.
 *
 * For each table the ledger keeps its last committed reading (generation + every key's
 * monotonic counters). A new reading of the same generation gives delta = new - last per key
 * (a key not in the last reading: delta = its value); another generation means the table
 * instance was re-created (module reload, last rule removed): delta = the new values, the
 * interval is flagged `reset`. A counter that went down within one generation cannot happen
 * by the kernel's contract: the interval is flagged `anomaly` and that key is taken as reset.
 * The rollups, the interval row and the new last reading are written in ONE transaction: a
 * collector killed before the commit leaves the old last reading (the next run takes the whole
 * delta since it), killed after the commit leaves the new one: nothing lost, nothing doubled.
 */
import type { Statement } from 'better-sqlite3';
import { numberToIp } from '../core/ip.js';
import type { CounterSection, CountersReading } from '../proc/counters.js';
import {
  BUCKET_5M, BUCKET_DAY, BUCKET_HOUR, HOST_COLS, PORT_COLS, ROLLUPS, colsOf, getSettings,
  type DB, type RollupName, type Settings,
} from './db.js';
import { GroupIndex, allMembers, profileOf } from './groups.js';
import { periodAt } from './periods.js';
import { split, toSigned, fromSigned } from './u64.js';

export type IntervalFlag = 'first' | 'reset' | 'gap' | 'anomaly' | 'gone' | 'returned';

export interface IngestInput {
  readings: CountersReading[];
  /** Tables the ledger knows that were not there this time (when collecting every table). */
  missing?: string[];
  /** Wall clock of the read (ms, UTC). */
  readMs: number;
  /** The instant the counts are attributed to: the aligned tick (default readMs). */
  at?: number;
  /** Monotonic length since this process's previous reading (ms), when there was one. */
  monoMs?: number;
  /** The collection interval (ms): a reading later than 1.5 intervals + 1 s after the last one is a gap. */
  intervalMs?: number;
  /** Test hook: runs inside the transaction just before the commit (throw to simulate a crash). */
  beforeCommit?: () => void;
}

export interface IntervalSummary {
  table: string;
  generation: string;
  start: number | null;
  end: number;
  flags: IntervalFlag[];
  hosts: number;
  anomalies: number;
  overflowDelta: bigint;
}

export interface IngestResult {
  at: number;
  intervals: IntervalSummary[];
  /** Hosts with a non-zero delta. */
  hosts: number;
  pruned: boolean;
}

/** A section as a blob: u32 rows, u32 per, keys (u32, padded to 8 bytes), counters (u64), little-endian. */
export function encodeSection(s: CounterSection): Buffer {
  const keyBytes = Math.ceil((s.rows * 4) / 8) * 8;
  const b = Buffer.alloc(8 + keyBytes + s.rows * s.per * 8);
  b.writeUInt32LE(s.rows, 0);
  b.writeUInt32LE(s.per, 4);
  for (let i = 0; i < s.rows; i++) b.writeUInt32LE(s.keys[i]!, 8 + 4 * i);
  for (let i = 0; i < s.rows * s.per; i++) b.writeBigUInt64LE(s.counters[i]!, 8 + keyBytes + 8 * i);
  return b;
}

export function decodeSection(b: Buffer): CounterSection {
  const rows = b.readUInt32LE(0);
  const per = b.readUInt32LE(4) as 8 | 10;
  const keyBytes = Math.ceil((rows * 4) / 8) * 8;
  const keys = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) keys[i] = b.readUInt32LE(8 + 4 * i);
  const counters = new BigUint64Array(rows * per);
  for (let i = 0; i < rows * per; i++) counters[i] = b.readBigUInt64LE(8 + keyBytes + 8 * i);
  return { rows, per, keys, counters };
}

interface LastRow {
  generation: string;
  read_ms: bigint;
  at_ms: bigint;
  overflow: bigint;
  gone: bigint;
  traffic: Buffer | null;
  ipconn: Buffer | null;
  portconn: Buffer | null;
}

const floorTo = (t: number, b: number) => Math.floor(t / b) * b;

function upsertSql(t: RollupName): string {
  const keys = ROLLUPS[t];
  const cols = colsOf(t).flatMap((c) => [c, `${c}_hi`]);
  return `INSERT INTO ${t} (${[...keys, ...cols].join(', ')}) VALUES (${[...keys, ...cols].map(() => '?').join(', ')})
    ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${cols.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`;
}

/** Counter values as [lo0, hi0, lo1, hi1, ...]. */
function params(v: bigint[]): number[] {
  const out = new Array<number>(v.length * 2);
  for (let i = 0; i < v.length; i++) {
    const [lo, hi] = split(v[i]!);
    out[2 * i] = lo;
    out[2 * i + 1] = hi;
  }
  return out;
}

/**
 * Adds the deltas of one section into `acc` (key -> vector): counters [from, from+n) of each
 * row go to vector slots [to, to+n). Returns the number of keys whose counters went down.
 */
function addDeltas(cur: CounterSection, prev: CounterSection | undefined, from: number, n: number, to: number, width: number, acc: Map<number, bigint[]>): number {
  let anomalies = 0;
  const idx = new Map<number, number>();
  if (prev) for (let r = 0; r < prev.rows; r++) idx.set(prev.keys[r]!, r);
  const d = new Array<bigint>(n);
  for (let r = 0; r < cur.rows; r++) {
    const key = cur.keys[r]!;
    const pr = idx.get(key);
    const base = r * cur.per + from;
    let any = false;
    if (pr === undefined) {
      for (let i = 0; i < n; i++) any = (d[i] = cur.counters[base + i]!) !== 0n || any;
    } else {
      idx.delete(key);
      const pbase = pr * prev!.per + from;
      let down = false;
      for (let i = 0; i < n; i++) {
        const x = cur.counters[base + i]! - prev!.counters[pbase + i]!;
        if (x < 0n) down = true;
        any = (d[i] = x) !== 0n || any;
      }
      // also the totals (not stored: they are the sums) must not go down
      for (let i = 0; i < from && !down; i++) if (cur.counters[r * cur.per + i]! < prev!.counters[pr * prev!.per + i]!) down = true;
      if (down) {
        anomalies++;
        any = false;
        for (let i = 0; i < n; i++) any = (d[i] = cur.counters[base + i]!) !== 0n || any;
      }
    }
    if (!any) continue;
    let v = acc.get(key);
    if (!v) acc.set(key, (v = new Array<bigint>(width).fill(0n)));
    for (let i = 0; i < n; i++) v[to + i] = v[to + i]! + d[i]!;
  }
  // a key that disappeared within a generation: against the contract too
  if (prev) anomalies += idx.size;
  return anomalies;
}

export class Ledger {
  readonly db: DB;
  private readonly hostIds = new Map<string, number>();
  private hostsLoaded = false;
  private readonly stmts = new Map<string, Statement<unknown[]>>();

  constructor(db: DB) {
    this.db = db;
    db.defaultSafeIntegers(true);
  }

  private stmt(sql: string): Statement<unknown[]> {
    let s = this.stmts.get(sql);
    if (!s) this.stmts.set(sql, (s = this.db.prepare<unknown[]>(sql)));
    return s;
  }

  settings(): Settings {
    return getSettings(this.db);
  }

  private loadHosts(): void {
    if (this.hostsLoaded) return;
    for (const r of this.db.prepare(`SELECT id, key FROM hosts`).all() as Array<{ id: bigint; key: string }>) this.hostIds.set(r.key, Number(r.id));
    this.hostsLoaded = true;
  }

  /** Ingests one collection (every table read at one tick) in one transaction. */
  ingest(input: IngestInput): IngestResult {
    const at = input.at ?? input.readMs;
    const pending = new Map<string, number>();
    const result = this.db.transaction((): IngestResult => {
      this.loadHosts();
      const settings = this.settings();
      const members = allMembers(this.db);
      const groupIdx = new GroupIndex(members, at);
      const groups = new Map<number, { billingDay: number; tz: string }>();
      for (const g of this.db.prepare(`SELECT id, billing_day AS billingDay, tz FROM groups`).all() as Array<{ id: bigint; billingDay: bigint; tz: string }>) {
        groups.set(Number(g.id), { billingDay: Number(g.billingDay), tz: g.tz });
      }
      const tick = at - 1; // counts of (start, at] land in the buckets containing at - 1 ms
      const b5 = floorTo(tick, BUCKET_5M);
      const bh = floorTo(tick, BUCKET_HOUR);
      const bd = floorTo(tick, BUCKET_DAY);
      const hostPeriod = periodAt(tick, { billingDay: settings.billingDay, tz: settings.tz }).start;

      const hostAcc = new Map<number, bigint[]>();
      const portAcc = new Map<string, Map<number, bigint[]>>();
      const intervals: IntervalSummary[] = [];
      const getLast = this.stmt(`SELECT generation, read_ms, at_ms, overflow, gone, traffic, ipconn, portconn FROM last_reading WHERE table_name = ?`);
      const putLast = this.stmt(`INSERT INTO last_reading (table_name, generation, read_ms, at_ms, overflow, gone, traffic, ipconn, portconn)
        VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (table_name) DO UPDATE SET generation = excluded.generation, read_ms = excluded.read_ms,
        at_ms = excluded.at_ms, overflow = excluded.overflow, gone = 0, traffic = excluded.traffic, ipconn = excluded.ipconn, portconn = excluded.portconn`);
      const putInterval = this.stmt(`INSERT INTO intervals (table_name, generation, start_ms, end_ms, at_ms, mono_ms, flags, overflow_delta, hosts, anomalies)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);

      for (const r of input.readings) {
        const last = getLast.get(r.name) as LastRow | undefined;
        const flags: IntervalFlag[] = [];
        const same = last !== undefined && last.generation === r.generation;
        if (!last) flags.push('first');
        else if (!same) flags.push('reset');
        if (last && Number(last.gone)) flags.push('returned');
        if (last && input.intervalMs !== undefined && input.readMs - Number(last.read_ms) > 1.5 * input.intervalMs + 1000) flags.push('gap');
        let overflowDelta = same ? r.overflow - fromSigned(last!.overflow) : r.overflow;
        let anomalies = 0;
        if (overflowDelta < 0n) {
          anomalies++;
          overflowDelta = r.overflow;
        }
        const prev = (b: Buffer | null | undefined) => (same && b ? decodeSection(b) : undefined);
        const keysTouched = new Set<number>();
        const tmp = new Map<number, bigint[]>();
        if (r.traffic) anomalies += addDeltas(r.traffic, prev(last?.traffic), 2, 6, 0, HOST_COLS.length, tmp);
        if (r.ipconn) anomalies += addDeltas(r.ipconn, prev(last?.ipconn), 2, 8, 6, HOST_COLS.length, tmp);
        for (const [k, v] of tmp) {
          keysTouched.add(k);
          const a = hostAcc.get(k);
          if (!a) hostAcc.set(k, v);
          else for (let i = 0; i < v.length; i++) a[i] = a[i]! + v[i]!;
        }
        if (r.portconn) {
          const pm = new Map<number, bigint[]>();
          anomalies += addDeltas(r.portconn, prev(last?.portconn), 2, 8, 0, PORT_COLS.length, pm);
          if (pm.size > 0) portAcc.set(r.name, pm);
        }
        if (anomalies > 0) flags.push('anomaly');
        const start = last ? Number(last.read_ms) : null;
        putInterval.run(r.name, r.generation, start, input.readMs, at, input.monoMs ?? null, flags.join(' '), toSigned(overflowDelta), keysTouched.size, anomalies);
        putLast.run(r.name, r.generation, input.readMs, at, toSigned(r.overflow),
          r.traffic ? encodeSection(r.traffic) : null, r.ipconn ? encodeSection(r.ipconn) : null, r.portconn ? encodeSection(r.portconn) : null);
        intervals.push({ table: r.name, generation: r.generation, start, end: input.readMs, flags, hosts: keysTouched.size, anomalies, overflowDelta });
      }
      for (const name of input.missing ?? []) {
        const last = getLast.get(name) as LastRow | undefined;
        if (!last || Number(last.gone)) continue;
        putInterval.run(name, last.generation, Number(last.read_ms), input.readMs, at, input.monoMs ?? null, 'gone', 0, 0, 0);
        this.stmt(`UPDATE last_reading SET gone = 1 WHERE table_name = ?`).run(name);
        intervals.push({ table: name, generation: last.generation, start: Number(last.read_ms), end: input.readMs, flags: ['gone'], hosts: 0, anomalies: 0, overflowDelta: 0n });
      }

      // rollups
      const up = (t: RollupName) => this.stmt(upsertSql(t));
      const u5 = up('host_5m');
      const uh = up('host_hour');
      const ud = up('host_day');
      const up_ = up('host_period');
      const ugp = up('group_period');
      const insHost = this.stmt(`INSERT INTO hosts (family, key) VALUES (4, ?) RETURNING id`);
      const groupAcc = new Map<number, bigint[]>();
      const groupPeriod = new Map<number, number>();
      for (const [ip, v] of hostAcc) {
        const key = numberToIp(ip);
        let id = this.hostIds.get(key) ?? pending.get(key);
        if (id === undefined) {
          id = Number((insHost.get(key) as { id: bigint }).id);
          pending.set(key, id);
        }
        const p = params(v);
        u5.run(b5, id, ...p);
        uh.run(bh, id, ...p);
        ud.run(bd, id, ...p);
        up_.run(hostPeriod, id, ...p);
        if (!groupIdx.empty) {
          const gid = groupIdx.groupOf(ip);
          if (gid !== undefined) {
            let ga = groupAcc.get(gid);
            if (!ga) groupAcc.set(gid, (ga = new Array<bigint>(HOST_COLS.length).fill(0n)));
            for (let i = 0; i < v.length; i++) ga[i] = ga[i]! + v[i]!;
            let ps = groupPeriod.get(gid);
            if (ps === undefined) groupPeriod.set(gid, (ps = periodAt(tick, profileOf(groups.get(gid)!)).start));
            ugp.run(gid, ps, id, ...p);
          }
        }
      }
      for (const [gid, v] of groupAcc) {
        const p = params(v);
        up('group_5m').run(b5, gid, ...p);
        up('group_hour').run(bh, gid, ...p);
        up('group_day').run(bd, gid, ...p);
      }
      for (const [table, pm] of portAcc) for (const [port, v] of pm) up('port_day').run(bd, table, port, ...params(v));

      const pruned = this.maybePrune(at, settings);
      input.beforeCommit?.();
      return { at, intervals, hosts: hostAcc.size, pruned };
    }).immediate();
    for (const [k, id] of pending) this.hostIds.set(k, id);
    return result;
  }

  /** Drops rows past their retention, at most once per hour of ledger time. */
  private maybePrune(at: number, s: Settings): boolean {
    const row = this.stmt(`SELECT value FROM settings WHERE key = 'last_prune_ms'`).get() as { value: string } | undefined;
    if (row && at - Number(row.value) < BUCKET_HOUR && at >= Number(row.value)) return false;
    this.pruneNow(at, s);
    this.stmt(`INSERT INTO settings (key, value) VALUES ('last_prune_ms', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(String(at));
    return true;
  }

  pruneNow(at: number, s: Settings = this.settings()): void {
    const cut = (days: number) => at - days * BUCKET_DAY;
    const del = (t: string, col: string, days: number) => {
      if (days > 0) this.stmt(`DELETE FROM ${t} WHERE ${col} < ?`).run(cut(days));
    };
    del('host_5m', 'bucket', s.keep5mDays);
    del('host_hour', 'bucket', s.keepHourDays);
    del('host_day', 'bucket', s.keepDayDays);
    del('port_day', 'bucket', s.keepDayDays);
    del('group_5m', 'bucket', s.keepGroup5mDays);
    del('group_hour', 'bucket', s.keepHourDays);
    del('group_day', 'bucket', s.keepDayDays);
    del('intervals', 'end_ms', s.keepIntervalsDays);
  }
}
