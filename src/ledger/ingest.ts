/**
 * Ingest: deltas against the last committed reading, in the same transaction.
 *
 * For each table the ledger keeps its last committed reading (generation + every key's
 * monotonic counters). A new reading of the same generation gives delta = new - last per key
 * (a key not in the last reading: delta = its value); another generation means the table
 * instance was re-created (module reload, last rule removed): delta = the new values, the
 * interval is flagged `reset`. A counter that went down within one generation cannot happen
 * by the kernel's contract: the interval is flagged `anomaly` and that key is taken as reset.
 * Revision 2 (tables that reclaim idle entries): rows are matched by (key, serial): a key with
 * a new serial is a new entry whose whole value is the delta, and a serial that disappeared
 * was reclaimed after the collector acked a read that had its final values (not an anomaly).
 * The rollups, the interval row and the new last reading are written in ONE transaction: a
 * collector killed before the commit leaves the old last reading (the next run takes the whole
 * delta since it), killed after the commit leaves the new one: nothing lost, nothing doubled.
 */
import type { Statement } from 'better-sqlite3';
import { ipValue, numberToIp } from '../core/ip.js';
import type { CounterSection, CountersReading } from '../proc/counters.js';
import { keyText } from '../proc/parse.js';
import {
  BUCKET_5M, BUCKET_DAY, BUCKET_HOUR, HOST_COLS, PORT_COLS, ROLLUPS, colsOf, foldedUntil, getSettings, setFoldedUntil,
  type DB, type RollupName, type Settings,
} from './db.js';
import { GroupIndex, allMembers, profileOf } from './groups.js';
import { periodAt } from './periods.js';
import { toSigned, fromSigned } from './u64.js';

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

/**
 * A section as a blob, little-endian: the typed arrays' own memory (x86, arm64:
 * little-endian), copied as is:
 *
 *   u32 rows, u32 format, keys (rows * keyWords u32, padded to 8 bytes), counters (rows * per u64)
 *
 * `format` is `per` (8 or 10) | keyWords << 8 | keyPrefix << 16 | family << 24 (family 4, 6,
 * or 0 for ports): an IPv6 key is 4 words (most significant first). The first blobs (before
 * IPv6 keys) have `format` = per alone: 1-word keys, IPv4 addresses (32) or ports (16), and
 * still read so. Bit 30 of `format` (revision 2): rows * u64 serials follow the counters.
 */
const SERIALS = 1 << 30;
export function encodeSection(s: CounterSection): Buffer {
  const kw = s.keyWords;
  const keyBytes = Math.ceil((s.rows * kw * 4) / 8) * 8;
  const cBytes = s.rows * s.per * 8;
  const b = Buffer.alloc(8 + keyBytes + cBytes + (s.serials ? s.rows * 8 : 0));
  b.writeUInt32LE(s.rows, 0);
  const fam = s.family === 'ipv6' ? 6 : s.family === 'ipv4' ? 4 : 0;
  b.writeUInt32LE((s.per | (kw << 8) | (s.keyPrefix << 16) | (fam << 24) | (s.serials ? SERIALS : 0)) >>> 0, 4);
  b.set(new Uint8Array(s.keys.buffer, s.keys.byteOffset, s.rows * kw * 4), 8);
  b.set(new Uint8Array(s.counters.buffer, s.counters.byteOffset, cBytes), 8 + keyBytes);
  if (s.serials) b.set(new Uint8Array(s.serials.buffer, s.serials.byteOffset, s.rows * 8), 8 + keyBytes + cBytes);
  return b;
}

export function decodeSection(b: Buffer): CounterSection {
  const rows = b.readUInt32LE(0);
  const format = b.readUInt32LE(4);
  const per = (format & 0xff) as 8 | 10;
  let kw: 1 | 4 = 1;
  let keyPrefix = per === 8 ? 32 : -1; // an old blob: IPv4 (traffic, ipconn) or ports: told apart below
  let family: CounterSection['family'] = 'ipv4';
  if (format > 0xff) {
    kw = ((format >>> 8) & 0xff) as 1 | 4;
    keyPrefix = (format >>> 16) & 0xff;
    const f = (format >>> 24) & 0x3f;
    family = f === 6 ? 'ipv6' : f === 4 ? 'ipv4' : 'port';
  }
  const keyBytes = Math.ceil((rows * kw * 4) / 8) * 8;
  const keys = new Uint32Array(rows * kw);
  new Uint8Array(keys.buffer).set(b.subarray(8, 8 + rows * kw * 4));
  const counters = new BigUint64Array(rows * per);
  new Uint8Array(counters.buffer).set(b.subarray(8 + keyBytes, 8 + keyBytes + rows * per * 8));
  if (!(format & SERIALS)) return { rows, per, family, keyWords: kw, keyPrefix, keys, counters };
  const serials = new BigUint64Array(rows);
  const so = 8 + keyBytes + rows * per * 8;
  new Uint8Array(serials.buffer).set(b.subarray(so, so + rows * 8));
  return { rows, per, family, keyWords: kw, keyPrefix, keys, counters, serials };
}

/** An old blob (format = per) of ipconn or portconn: its family is the section's. */
function oldBlobAs(s: CounterSection, cur: CounterSection): CounterSection {
  if (s.keyPrefix >= 0) return s;
  return { ...s, family: cur.family === 'port' ? 'port' : 'ipv4', keyPrefix: cur.family === 'port' ? 16 : 32 };
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
const TWO32 = 4294967296;

/** The u64 counters of a section as [lo, hi] u32 pairs (a view, no copy, no BigInt). */
const halves = (s: CounterSection) => new Uint32Array(s.counters.buffer, s.counters.byteOffset, s.rows * s.per * 2);

/**
 * A vector of counters as numbers: [lo0, hi0, lo1, hi1, ...], value i = hi * 2^32 + lo. The
 * parts of one delta are below 2^32; sums of parts stay exact numbers far below 2^53 (the
 * stored columns `c` and `c_hi` are such sums, see u64.ts).
 */
type NVec = Float64Array;

/**
 * A host in memory: an IPv4 address counted per address as its number (the common case, no
 * string per key), any other key (an IPv6 prefix or address, an IPv4 prefix) as its text as
 * the counters file has it, which is also `hosts.key`.
 */
type HostKey = number | string;

/** The hosts.key of a HostKey. */
export const hostKeyText = (k: HostKey): string => (typeof k === 'number' ? numberToIp(k) : k);

/** Keys of this section are numbers in the ledger (IPv4 per address, ports), not texts. */
const numericKeys = (s: CounterSection) => s.keyWords === 1 && (s.family === 'port' || s.keyPrefix === 32);

/** Row r's key words (and serial, revision 2) as one Map key (for matching rows of two readings). */
const wordsKey = (s: CounterSection, r: number): number | string => {
  const k = s.keyWords === 1 ? s.keys[r]! : `${s.keys[4 * r]},${s.keys[4 * r + 1]},${s.keys[4 * r + 2]},${s.keys[4 * r + 3]}`;
  return s.serials ? `${k}#${s.serials[r]}` : k;
};

/**
 * Counter vectors of many keys in one growing Float64Array (no object per key: an ingest of
 * a /16 would otherwise allocate 65,536 arrays): key -> slot, slot * stride = offset.
 */
class Acc {
  readonly index = new Map<HostKey, number>();
  readonly keys: HostKey[] = [];
  data: Float64Array;
  /** Per slot: the last reading that touched it (to count each table's hosts once). */
  mark: Int32Array;
  constructor(readonly stride: number, capacity = 1024) {
    this.data = new Float64Array(capacity * stride);
    this.mark = new Int32Array(capacity).fill(-1);
  }

  get size(): number {
    return this.keys.length;
  }

  /** The offset of key's vector (created zero). */
  slot(key: HostKey): number {
    let s = this.index.get(key);
    if (s === undefined) {
      s = this.keys.length;
      if ((s + 1) * this.stride > this.data.length) {
        const d = new Float64Array(this.data.length * 2);
        d.set(this.data);
        this.data = d;
        const m = new Int32Array(this.mark.length * 2).fill(-1);
        m.set(this.mark);
        this.mark = m;
      }
      this.index.set(key, s);
      this.keys.push(key);
    }
    return s;
  }
}

/**
 * Adds the deltas of one section into `acc` (lo/hi parts): counters [from, from+n) of each
 * row go to vector slots [to, to+n). Counts in `touched` the keys this reading (`mark`)
 * touched first. Returns the number of keys whose counters went down. Numbers only: a u64
 * delta as two 32-bit halves with a borrow.
 */
function addDeltas(cur: CounterSection, prevIn: CounterSection | undefined, from: number, n: number, to: number, acc: Acc, mark: number, touched: { n: number }): number {
  let anomalies = 0;
  let prev = prevIn && oldBlobAs(prevIn, cur);
  if (prev && (prev.family !== cur.family || prev.keyWords !== cur.keyWords || prev.keyPrefix !== cur.keyPrefix || prev.per !== cur.per || !prev.serials !== !cur.serials)) {
    // another kind of key within one generation: against the contract; every key taken as new
    anomalies += prev.rows;
    prev = undefined;
  }
  const c32 = halves(cur);
  const p32 = prev ? halves(prev) : undefined;
  const numeric = numericKeys(cur);
  const kw = cur.keyWords;
  const ck = cur.keys;
  const cs = cur.serials;
  let idx: Map<number | string, number> | undefined;
  let seen = 0;
  const d = new Float64Array(2 * n);
  for (let r = 0; r < cur.rows; r++) {
    let pr = -1;
    if (prev) {
      // the kernel streams in a stable order: the same row first, else a lookup
      const pk = prev.keys;
      if (r < prev.rows && (kw === 1 ? pk[r] === ck[r] : pk[4 * r] === ck[4 * r] && pk[4 * r + 1] === ck[4 * r + 1] && pk[4 * r + 2] === ck[4 * r + 2] && pk[4 * r + 3] === ck[4 * r + 3]) && (!cs || cs[r] === prev.serials![r])) pr = r;
      else {
        if (!idx) {
          idx = new Map();
          for (let i = 0; i < prev.rows; i++) idx.set(wordsKey(prev, i), i);
        }
        pr = idx.get(wordsKey(cur, r)) ?? -1;
      }
    }
    const base = 2 * (r * cur.per + from);
    let any = false;
    if (pr < 0) {
      for (let i = 0; i < 2 * n; i++) if ((d[i] = c32[base + i]!) !== 0) any = true;
    } else {
      seen++;
      const pbase = 2 * (pr * prev!.per + from);
      let down = false;
      for (let i = 0; i < n; i++) {
        let lo = c32[base + 2 * i]! - p32![pbase + 2 * i]!;
        let hi = c32[base + 2 * i + 1]! - p32![pbase + 2 * i + 1]!;
        if (lo < 0) {
          lo += TWO32;
          hi -= 1;
        }
        if (hi < 0) down = true;
        d[2 * i] = lo;
        d[2 * i + 1] = hi;
        if (lo !== 0 || hi !== 0) any = true;
      }
      // also the totals (not stored: they are the sums) must not go down
      const rb = 2 * r * cur.per;
      const pb = 2 * pr * prev!.per;
      for (let i = 0; i < from && !down; i++) {
        const ch = c32[rb + 2 * i + 1]!;
        const ph = p32![pb + 2 * i + 1]!;
        if (ch < ph || (ch === ph && c32[rb + 2 * i]! < p32![pb + 2 * i]!)) down = true;
      }
      if (down) {
        anomalies++;
        any = false;
        for (let i = 0; i < 2 * n; i++) if ((d[i] = c32[base + i]!) !== 0) any = true;
      }
    }
    if (!any) continue;
    const sl = acc.slot(numeric ? ck[r]! : cur.keyTexts?.[r] ?? keyText(cur, r));
    if (acc.mark[sl] !== mark) {
      acc.mark[sl] = mark;
      touched.n++;
    }
    const o = sl * acc.stride + 2 * to;
    const v = acc.data;
    for (let i = 0; i < 2 * n; i++) v[o + i] = v[o + i]! + d[i]!;
  }
  // a key that disappeared within a generation: against the contract too, except in
  // revision 2, where an entry's serial goes when the kernel reclaims it (after our ack)
  if (prev && !cs) anomalies += prev.rows - seen;
  return anomalies;
}

/** A key column of an upsert: one value for every row, or one per row. */
type KeyCol = number | string | ArrayLike<number | string>;

/**
 * Batched upserts: 64 rows per statement (fewer calls into SQLite), and for rows whose high
 * parts are all zero (nearly all) a statement that binds only the low parts.
 */
class Upserter {
  private readonly keys: readonly string[];
  private readonly cols: readonly string[];
  private readonly stmts = new Map<string, { st: Statement<unknown[]>; p: unknown[] }>();
  constructor(private readonly db: DB, private readonly table: RollupName, private readonly batch = 64) {
    this.keys = ROLLUPS[table];
    this.cols = colsOf(table);
  }

  private stmt(lowOnly: boolean, rows: number): { st: Statement<unknown[]>; p: unknown[] } {
    const k = `${lowOnly ? 'l' : 'f'}${rows}`;
    let st = this.stmts.get(k);
    if (!st) {
      const cols = lowOnly ? this.cols : this.cols.flatMap((c) => [c, `${c}_hi`]);
      const names = [...this.keys, ...cols];
      const one = `(${names.map(() => '?').join(', ')})`;
      st = {
        st: this.db.prepare<unknown[]>(`INSERT INTO ${this.table} (${names.join(', ')}) VALUES ${new Array(rows).fill(one).join(', ')}
          ON CONFLICT (${this.keys.join(', ')}) DO UPDATE SET ${cols.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`),
        p: new Array(rows * names.length),
      };
      this.stmts.set(k, st);
    }
    return st;
  }

  /** Upserts n rows: row i has the key columns `keys` and the vector at data[off[i] ...]. */
  run(n: number, keys: readonly KeyCol[], data: Float64Array, off: ArrayLike<number>): void {
    const w = 2 * this.cols.length;
    const low: number[] = [];
    const full: number[] = [];
    for (let i = 0; i < n; i++) {
      const o = off[i]!;
      let hi = false;
      for (let j = 1; j < w; j += 2) if (data[o + j] !== 0) { hi = true; break; }
      (hi ? full : low).push(i);
    }
    this.write(low, true, keys, data, off);
    this.write(full, false, keys, data, off);
  }

  private write(rows: number[], lowOnly: boolean, keys: readonly KeyCol[], data: Float64Array, off: ArrayLike<number>): void {
    const w = 2 * this.cols.length;
    let i = 0;
    const flush = (count: number) => {
      const { st, p } = this.stmt(lowOnly, count);
      let k = 0;
      for (let r = 0; r < count; r++) {
        const row = rows[i + r]!;
        for (const kc of keys) p[k++] = typeof kc === 'object' ? kc[row]! : kc;
        const o = off[row]!;
        if (lowOnly) for (let j = 0; j < w; j += 2) p[k++] = data[o + j]!;
        else for (let j = 0; j < w; j++) p[k++] = data[o + j]!;
      }
      st.run(p);
      i += count;
    };
    while (rows.length - i >= this.batch) flush(this.batch);
    if (rows.length > i) flush(rows.length - i);
  }
}

export class Ledger {
  readonly db: DB;
  /** host (a HostKey: an IPv4 address as a number, any other key as its text) -> hosts.id */
  private readonly hostIds = new Map<HostKey, number>();
  private hostsLoaded = false;
  private readonly stmts = new Map<string, Statement<unknown[]>>();
  private readonly upserters = new Map<RollupName, Upserter>();

  constructor(db: DB) {
    this.db = db;
    db.defaultSafeIntegers(true);
  }

  private stmt(sql: string): Statement<unknown[]> {
    let s = this.stmts.get(sql);
    if (!s) this.stmts.set(sql, (s = this.db.prepare<unknown[]>(sql)));
    return s;
  }

  private up(t: RollupName): Upserter {
    let u = this.upserters.get(t);
    if (!u) this.upserters.set(t, (u = new Upserter(this.db, t)));
    return u;
  }

  settings(): Settings {
    return getSettings(this.db);
  }

  private loadHosts(): void {
    if (this.hostsLoaded) return;
    for (const r of this.db.prepare(`SELECT id, family, key FROM hosts`).all() as Array<{ id: bigint; family: bigint; key: string }>) {
      const v = Number(r.family) === 4 ? ipValue(r.key) : -1;
      this.hostIds.set(v >= 0 ? v : r.key, Number(r.id));
    }
    this.hostsLoaded = true;
  }

  /** Ingests one collection (every table read at one tick) in one transaction. */
  ingest(input: IngestInput): IngestResult {
    const at = input.at ?? input.readMs;
    const pending = new Map<HostKey, number>();
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

      const W = 2 * HOST_COLS.length;
      const hostAcc = new Acc(W, 4096);
      const portAcc = new Map<string, Acc>();
      const intervals: IntervalSummary[] = [];
      const getLast = this.stmt(`SELECT generation, read_ms, at_ms, overflow, gone, traffic, ipconn, portconn FROM last_reading WHERE table_name = ?`);
      const putLast = this.stmt(`INSERT INTO last_reading (table_name, generation, read_ms, at_ms, overflow, gone, traffic, ipconn, portconn)
        VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (table_name) DO UPDATE SET generation = excluded.generation, read_ms = excluded.read_ms,
        at_ms = excluded.at_ms, overflow = excluded.overflow, gone = 0, traffic = excluded.traffic, ipconn = excluded.ipconn, portconn = excluded.portconn`);
      const putInterval = this.stmt(`INSERT INTO intervals (table_name, generation, start_ms, end_ms, at_ms, mono_ms, flags, overflow_delta, hosts, anomalies)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);

      let mark = 0;
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
        const touched = { n: 0 };
        mark++;
        if (r.traffic) anomalies += addDeltas(r.traffic, prev(last?.traffic), 2, 6, 0, hostAcc, mark, touched);
        if (r.ipconn) anomalies += addDeltas(r.ipconn, prev(last?.ipconn), 2, 8, 6, hostAcc, mark, touched);
        if (r.portconn) {
          const pm = new Acc(2 * PORT_COLS.length, 256);
          anomalies += addDeltas(r.portconn, prev(last?.portconn), 2, 8, 0, pm, -1, { n: 0 });
          if (pm.size > 0) portAcc.set(r.name, pm);
        }
        if (anomalies > 0) flags.push('anomaly');
        const start = last ? Number(last.read_ms) : null;
        putInterval.run(r.name, r.generation, start, input.readMs, at, input.monoMs ?? null, flags.join(' '), toSigned(overflowDelta), touched.n, anomalies);
        putLast.run(r.name, r.generation, input.readMs, at, toSigned(r.overflow),
          r.traffic ? encodeSection(r.traffic) : null, r.ipconn ? encodeSection(r.ipconn) : null, r.portconn ? encodeSection(r.portconn) : null);
        intervals.push({ table: r.name, generation: r.generation, start, end: input.readMs, flags, hosts: touched.n, anomalies, overflowDelta });
      }
      for (const name of input.missing ?? []) {
        const last = getLast.get(name) as LastRow | undefined;
        if (!last || Number(last.gone)) continue;
        putInterval.run(name, last.generation, Number(last.read_ms), input.readMs, at, input.monoMs ?? null, 'gone', 0, 0, 0);
        this.stmt(`UPDATE last_reading SET gone = 1 WHERE table_name = ?`).run(name);
        intervals.push({ table: name, generation: last.generation, start: Number(last.read_ms), end: input.readMs, flags: ['gone'], hosts: 0, anomalies: 0, overflowDelta: 0n });
      }

      // rollups: the host's 5-minute bucket now; hour, day and period by fold() once the
      // bucket is closed (or now, for a bucket already folded: a clock that went back)
      const insHost = this.stmt(`INSERT INTO hosts (family, key) VALUES (?, ?) RETURNING id`);
      const n = hostAcc.size;
      const ids = new Float64Array(n);
      const offs = new Float64Array(n);
      const groupAcc = new Acc(W, 16);
      const gpGid: number[] = [];
      const gpStart: number[] = [];
      const gpId: number[] = [];
      const gpOff: number[] = [];
      const groupPeriod = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        const ip = hostAcc.keys[i]!;
        let id = this.hostIds.get(ip) ?? pending.get(ip);
        if (id === undefined) {
          const row = (typeof ip === 'number' ? insHost.get(4, numberToIp(ip)) : insHost.get(ip.includes(':') ? 6 : 4, ip)) as { id: bigint };
          id = Number(row.id);
          pending.set(ip, id);
        }
        ids[i] = id;
        offs[i] = i * W;
        if (!groupIdx.empty) {
          const gid = groupIdx.groupOf(ip);
          if (gid !== undefined) {
            const go = groupAcc.slot(gid) * W;
            for (let j = 0; j < W; j++) groupAcc.data[go + j] = groupAcc.data[go + j]! + hostAcc.data[i * W + j]!;
            let ps = groupPeriod.get(gid);
            if (ps === undefined) groupPeriod.set(gid, (ps = periodAt(tick, profileOf(groups.get(gid)!)).start));
            gpGid.push(gid);
            gpStart.push(ps);
            gpId.push(id);
            gpOff.push(i * W);
          }
        }
      }
      this.up('host_5m').run(n, [b5, ids], hostAcc.data, offs);
      if (b5 < this.foldedUntil()) {
        const hostPeriod = periodAt(tick, { billingDay: settings.billingDay, tz: settings.tz }).start;
        this.up('host_hour').run(n, [bh, ids], hostAcc.data, offs);
        this.up('host_day').run(n, [bd, ids], hostAcc.data, offs);
        this.up('host_period').run(n, [hostPeriod, ids], hostAcc.data, offs);
      }
      this.up('group_period').run(gpId.length, [gpGid, gpStart, gpId], hostAcc.data, gpOff);
      const gOffs = groupAcc.keys.map((_, i) => i * W);
      this.up('group_5m').run(groupAcc.size, [b5, groupAcc.keys], groupAcc.data, gOffs);
      this.up('group_hour').run(groupAcc.size, [bh, groupAcc.keys], groupAcc.data, gOffs);
      this.up('group_day').run(groupAcc.size, [bd, groupAcc.keys], groupAcc.data, gOffs);
      for (const [table, pm] of portAcc) this.up('port_day').run(pm.size, [bd, table, pm.keys], pm.data, pm.keys.map((_, i) => i * pm.stride));

      const pruned = this.maybePrune(at, settings);
      input.beforeCommit?.();
      return { at, intervals, hosts: hostAcc.size, pruned };
    }).immediate();
    for (const [k, id] of pending) this.hostIds.set(k, id);
    return result;
  }

  /** Host 5-minute buckets before this instant are folded into hour, day and period. */
  foldedUntil(): number {
    return foldedUntil(this.db);
  }

  /**
   * Folds the host 5-minute buckets that are closed at `at` (those before the bucket of
   * at - 1) into host_hour, host_day and host_period (the default profile's periods), in one
   * transaction with the new `folded_until`: exactly once. The collector calls it after each
   * commit, outside the ingest's transaction (an ingest then writes one rollup level per host,
   * not four); readers add the unfolded 5-minute buckets (query.ts), so nothing is missing in
   * between. Returns the number of 5-minute rows folded.
   */
  fold(at: number): number {
    const upTo = floorTo(at - 1, BUCKET_5M);
    return this.db.transaction((): number => {
      let from = this.foldedUntil();
      if (from === 0) {
        const m = this.stmt(`SELECT MIN(bucket) AS b FROM host_5m`).get() as { b: bigint | null };
        if (m.b === null) return 0;
        from = Number(m.b);
      }
      if (from >= upTo) return 0;
      const s = this.settings();
      const prof = { billingDay: s.billingDay, tz: s.tz };
      const cols = HOST_COLS.flatMap((c) => [c, `${c}_hi`]);
      const sums = cols.map((c) => `SUM(${c})`).join(', ');
      const set = cols.map((c) => `${c} = ${c} + excluded.${c}`).join(', ');
      let n = 0;
      const into = (table: string, key: string, width: number | undefined, lo: number, hi: number, value?: number) => {
        const k = width !== undefined ? `(bucket / ${width}) * ${width}` : '?';
        const r = this.stmt(`INSERT INTO ${table} (${key}, host_id, ${cols.join(', ')}) SELECT ${k} AS k, host_id, ${sums} FROM host_5m
          WHERE bucket >= ? AND bucket < ? GROUP BY k, host_id ON CONFLICT (${key}, host_id) DO UPDATE SET ${set}`)
          .run(...(value !== undefined ? [value] : []), lo, hi);
        return r.changes;
      };
      n = into('host_hour', 'bucket', BUCKET_HOUR, from, upTo);
      into('host_day', 'bucket', BUCKET_DAY, from, upTo);
      // the period rollup, cut at the default profile's period boundaries
      for (let t = from; t < upTo;) {
        const p = periodAt(t, prof);
        const end = Math.min(upTo, Math.ceil(p.end / BUCKET_5M) * BUCKET_5M);
        into('host_period', 'period_start', undefined, t, end, p.start);
        t = end;
      }
      setFoldedUntil(this.db, upTo);
      return n;
    }).immediate();
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
    // never a 5-minute bucket not folded yet into hour/day/period
    if (s.keep5mDays > 0) this.stmt(`DELETE FROM host_5m WHERE bucket < ?`).run(Math.min(cut(s.keep5mDays), Math.max(this.foldedUntil(), 0)));
    del('host_hour', 'bucket', s.keepHourDays);
    del('host_day', 'bucket', s.keepDayDays);
    del('port_day', 'bucket', s.keepDayDays);
    del('group_5m', 'bucket', s.keepGroup5mDays);
    del('group_hour', 'bucket', s.keepHourDays);
    del('group_day', 'bucket', s.keepDayDays);
    del('intervals', 'end_ms', s.keepIntervalsDays);
  }
}
