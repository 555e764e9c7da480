/**
 * Reading the ledger: exact totals over billing periods or any 5-minute-aligned range, the
 * gaps inside them, the 95th percentile of 5-minute rates, and series for `history`. Sums are
 * BigInt (hi * 2^32 + lo, see u64.ts).
 */
import { UsageError } from '../core/errors.js';
import {
  BUCKET_5M, BUCKET_DAY, BUCKET_HOUR, HOST_COLS, foldedUntil, getSettings, type DB, type Settings,
} from './db.js';
import { compare6, ipValue as ipNum } from '../core/ip.js';
import { cidrContainsPrefix, getGroup, listGroups, parseCidr, profileOf, type Cidr, type Group } from './groups.js';
import { iso, periodAt, periodOfLabel, type Period, type Profile } from './periods.js';
import { join2 } from './u64.js';

const TWO32N = 1n << 32n;

export type Vec = bigint[];

export interface InOut {
  in: bigint;
  out: bigint;
}

export interface Totals {
  bytes: { tcp: InOut; udp: InOut; other: InOut; total: InOut };
  connections: { tcp: InOut; udp: InOut; icmp: InOut; other: InOut; total: InOut };
}

export function zeroVec(): Vec {
  return new Array<bigint>(HOST_COLS.length).fill(0n);
}

export function addVec(a: Vec, b: Vec): Vec {
  for (let i = 0; i < a.length; i++) a[i] = a[i]! + b[i]!;
  return a;
}

export function totalsOf(v: Vec): Totals {
  const io = (i: number): InOut => ({ in: v[i]!, out: v[i + 1]! });
  const sum = (idx: number[]): InOut => ({ in: idx.reduce((s, i) => s + v[i]!, 0n), out: idx.reduce((s, i) => s + v[i + 1]!, 0n) });
  return {
    bytes: { tcp: io(0), udp: io(2), other: io(4), total: sum([0, 2, 4]) },
    connections: { tcp: io(6), udp: io(8), icmp: io(10), other: io(12), total: sum([6, 8, 10, 12]) },
  };
}

const SUMS = HOST_COLS.map((c) => `SUM(${c}) AS ${c}, SUM(${c}_hi) AS ${c}_hi`).join(', ');

function vecOf(row: Record<string, bigint | number | null>): Vec {
  return HOST_COLS.map((c) => join2(row[c], row[`${c}_hi`]));
}

/** A 5-minute-aligned range cut into whole days, whole hours and 5-minute pieces. */
export function decompose(from: number, to: number): Array<{ table: '5m' | 'hour' | 'day'; lo: number; hi: number }> {
  const out: Array<{ table: '5m' | 'hour' | 'day'; lo: number; hi: number }> = [];
  let t = from;
  const step = (_size: number, table: '5m' | 'hour' | 'day', limit: number) => {
    const end = Math.min(limit, to);
    if (t >= end) return;
    out.push({ table, lo: t, hi: end });
    t = end;
  };
  const ceil = (x: number, b: number) => Math.ceil(x / b) * b;
  const floor = (x: number, b: number) => Math.floor(x / b) * b;
  if (floor(to, BUCKET_DAY) > ceil(from, BUCKET_DAY) || (floor(to, BUCKET_DAY) === ceil(from, BUCKET_DAY) && to - from >= BUCKET_DAY)) {
    step(BUCKET_5M, '5m', ceil(from, BUCKET_HOUR));
    step(BUCKET_HOUR, 'hour', ceil(from, BUCKET_DAY));
    step(BUCKET_DAY, 'day', floor(to, BUCKET_DAY));
    step(BUCKET_HOUR, 'hour', floor(to, BUCKET_HOUR));
    step(BUCKET_5M, '5m', to);
  } else {
    step(BUCKET_5M, '5m', ceil(from, BUCKET_HOUR));
    step(BUCKET_HOUR, 'hour', floor(to, BUCKET_HOUR));
    step(BUCKET_5M, '5m', to);
  }
  return out.filter((p) => p.hi > p.lo);
}

export interface Gap {
  table: string;
  from: number | null;
  to: number;
  flags: string[];
}

export interface Coverage {
  /** First and last reading in the ledger that fall into [from, to) (null: none). */
  first: number | null;
  last: number | null;
  /** Intervals with a flag (gap, reset, first, anomaly, gone) overlapping the range. */
  events: Gap[];
}

export function coverage(db: DB, from: number, to: number): Coverage {
  const rows = db.prepare(`SELECT table_name, start_ms, at_ms, flags FROM intervals WHERE at_ms > ? AND (start_ms IS NULL OR start_ms < ?) AND flags != '' ORDER BY at_ms, table_name`).all(from, to) as Array<{ table_name: string; start_ms: bigint | null; at_ms: bigint; flags: string }>;
  const mm = db.prepare(`SELECT MIN(at_ms) AS a, MAX(at_ms) AS b FROM intervals WHERE at_ms > ? AND at_ms <= ?`).get(from, to) as { a: bigint | null; b: bigint | null };
  return {
    first: mm.a === null ? null : Number(mm.a),
    last: mm.b === null ? null : Number(mm.b),
    events: rows.map((r) => ({ table: r.table_name, from: r.start_ms === null ? null : Number(r.start_ms), to: Number(r.at_ms), flags: r.flags.split(' ') })),
  };
}

/** The earliest bucket still kept at each resolution (after the last prune), or 0. */
function keptFrom(db: DB, s: Settings, table: '5m' | 'hour' | 'day', group: boolean): number {
  const row = db.prepare(`SELECT value FROM settings WHERE key = 'last_prune_ms'`).get() as { value: string } | undefined;
  if (!row) return 0;
  const days = table === '5m' ? (group ? s.keepGroup5mDays : s.keep5mDays) : table === 'hour' ? s.keepHourDays : s.keepDayDays;
  return days > 0 ? Number(row.value) - days * BUCKET_DAY : 0;
}

/** True when `who` names a host (an address or a prefix), not a group (group names have no ':' or '/'). */
export function isHostArg(who: string): boolean {
  return ipNum(who) >= 0 || who.includes(':') || who.includes('/');
}

/**
 * The ledger's key (`hosts.key`, the counters file's key) of a host argument: an IPv4 address
 * ("10.0.0.5"), an IPv6 address, or a prefix of either ("2001:db8:0:1::/64", "10.1.0.0/24").
 * A prefix names the host prefix of that text (RFC 5952, host bits zero; /32 and /128 are the
 * bare address). An address that is not a host key itself means the host prefix the ledger
 * counts it in ("2001:db8:0:1::5" -> "2001:db8:0:1::/64"; the longest when tables of several
 * lengths count it); unknown to the ledger, it is its own key (and has no counts). Bad text:
 * a UsageError naming it.
 */
export function resolveHostKey(db: DB, arg: string, what = '--ip'): string {
  let c: Cidr;
  try {
    c = parseCidr(arg);
  } catch (e) {
    throw new UsageError(`${what} ${arg}: ${(e as Error).message.replace(/^CIDR "[^"]*": /, '')}`, { hint: 'an IPv4 or IPv6 address, or a host prefix as the tables count it (2001:db8:0:1::/64)' });
  }
  const full = c.family === 4 ? 32 : 128;
  if (c.plen < full) return c.text;
  const bare = c.text.slice(0, c.text.lastIndexOf('/'));
  const exact = db.prepare(`SELECT 1 FROM hosts WHERE key = ?`).get(bare);
  if (exact) return bare;
  let best: Cidr | undefined;
  for (const k of db.prepare(`SELECT key FROM hosts WHERE family = ? AND key LIKE '%/%'`).pluck().all(c.family) as string[]) {
    const h = parseCidr(k);
    if (cidrContainsPrefix(h, c) && (!best || h.plen > best.plen)) best = h;
  }
  return best ? best.text : bare;
}

/** A host key's numeric order, computed once per key (an IPv4 address: no parse beyond ipValue). */
interface KeyOrder {
  family: number;
  net: number;
  words?: Uint32Array | undefined;
  plen: number;
}

function keyOrder(k: string): KeyOrder {
  const v = ipNum(k);
  if (v >= 0) return { family: 4, net: v, plen: 32 };
  const c = parseCidr(k);
  return { family: c.family, net: c.net, words: c.family === 6 ? c.words : undefined, plen: c.plen };
}

function compareOrder(x: KeyOrder, y: KeyOrder): number {
  if (x.family !== y.family) return x.family - y.family;
  const c = x.words && y.words ? compare6(x.words, 0, y.words, 0) : x.net < y.net ? -1 : x.net > y.net ? 1 : 0;
  return c !== 0 ? c : x.plen - y.plen;
}

/** Numeric order of host keys: IPv4 before IPv6, then by address, then by prefix length. */
export function compareHostKeys(a: string, b: string): number {
  return compareOrder(keyOrder(a), keyOrder(b));
}

export interface Line {
  key: string;
  group?: string | undefined;
  totals: Totals;
  vec: Vec;
}

function checkAligned(from: number, to: number): void {
  if (from % BUCKET_5M !== 0 || to % BUCKET_5M !== 0) {
    throw new UsageError(`--from ${iso(from)} / --to ${iso(to)}: the ledger's finest buckets are 5 minutes: both ends must be on a 5-minute boundary (UTC)`);
  }
  if (to <= from) throw new UsageError(`--to ${iso(to)} must be after --from ${iso(from)}`);
}

/** Host lines (ip filter optional) over any 5-minute-aligned range. */
export function hostsInRange(db: DB, from: number, to: number, ip?: string): Map<string, Vec> {
  checkAligned(from, to);
  const s = getSettings(db);
  const out = new Map<string, Vec>();
  for (const p of hostPieces(db, from, to)) {
    const kept = keptFrom(db, s, p.table, false);
    if (p.lo < kept) throw new UsageError(`the range needs host ${p.table === '5m' ? '5-minute' : p.table === 'hour' ? 'hourly' : 'daily'} data from ${iso(p.lo)}, kept only from ${iso(kept)}`, { hint: 'choose whole hours or days inside the retention, or --period (billing periods are kept forever)' });
    const rows = db.prepare(`SELECT h.key AS key, ${SUMS} FROM host_${p.table} r JOIN hosts h ON h.id = r.host_id WHERE r.bucket >= ? AND r.bucket < ? ${ip ? 'AND h.key = ?' : ''} GROUP BY h.key`)
      .all(...(ip ? [p.lo, p.hi, ip] : [p.lo, p.hi])) as Array<Record<string, bigint> & { key: string }>;
    for (const r of rows) {
      const v = out.get(r.key);
      if (v) addVec(v, vecOf(r));
      else out.set(r.key, vecOf(r));
    }
  }
  return out;
}

/**
 * decompose() for host rollups: hour and day pieces after `folded_until` come from the
 * 5-minute buckets (not folded yet, see Ledger.fold).
 */
function hostPieces(db: DB, from: number, to: number): Array<{ table: '5m' | 'hour' | 'day'; lo: number; hi: number }> {
  const fu = foldedUntil(db);
  const out: Array<{ table: '5m' | 'hour' | 'day'; lo: number; hi: number }> = [];
  for (const p of decompose(from, to)) {
    if (p.table === '5m' || p.hi <= fu) out.push(p);
    else {
      if (p.lo < fu) out.push({ ...p, hi: fu });
      out.push({ table: '5m', lo: Math.max(p.lo, fu), hi: p.hi });
    }
  }
  return out;
}

/** A group's total over any 5-minute-aligned range. */
export function groupInRange(db: DB, gid: number, from: number, to: number): Vec {
  checkAligned(from, to);
  const s = getSettings(db);
  const v = zeroVec();
  for (const p of decompose(from, to)) {
    const kept = keptFrom(db, s, p.table, true);
    if (p.lo < kept) throw new UsageError(`the range needs group ${p.table} data from ${iso(p.lo)}, kept only from ${iso(kept)}`);
    const r = db.prepare(`SELECT ${SUMS} FROM group_${p.table} WHERE group_id = ? AND bucket >= ? AND bucket < ?`).get(gid, p.lo, p.hi) as Record<string, bigint | null>;
    addVec(v, vecOf(r));
  }
  return v;
}

/** Host lines of the default profile's billing period starting at `start`. */
export function hostsInPeriod(db: DB, start: number, ip?: string): Map<string, Vec> {
  const s = getSettings(db);
  const end = periodAt(start, { billingDay: s.billingDay, tz: s.tz }).end;
  const fu = foldedUntil(db);
  const byId = new Map<number, Vec>();
  const hostId = ip ? (db.prepare(`SELECT id FROM hosts WHERE key = ?`).raw(true).safeIntegers(false).get(ip) as [number] | undefined)?.[0] : undefined;
  if (ip && hostId === undefined) return new Map();
  // One row per host with the 14 values as plain numbers where exact (a BigInt per part
  // costs ~1 s for a /16): value = SUM(c) when SUM(c_hi) = 0 and below 2^53; otherwise NULL and
  // the host's row is read again as BigInt parts.
  const P = ip ? ' AND host_id = ?' : '';
  const cols = HOST_COLS.map((c) => `CASE WHEN SUM(${c}_hi) = 0 THEN SUM(${c}) END`).join(', ');
  const parts = HOST_COLS.map((c) => `${c}, ${c}_hi`).join(', ');
  const union = `SELECT host_id, ${parts} FROM host_period WHERE period_start = ?${P}`
    + (end > fu ? ` UNION ALL SELECT host_id, ${parts} FROM host_5m WHERE bucket >= ? AND bucket < ?${P}` : '');
  const params: unknown[] = ip ? [start, hostId] : [start];
  if (end > fu) params.push(Math.max(start, fu), end, ...(ip ? [hostId] : []));
  const rows = db.prepare(`SELECT host_id, ${cols} FROM (${union}) GROUP BY host_id`).raw(true).safeIntegers(false).all(...params) as Array<Array<number | null>>;
  let exactSt: { get(...a: unknown[]): unknown } | undefined;
  for (const r of rows) {
    const id = r[0]!;
    const v = new Array<bigint>(HOST_COLS.length);
    let exact = true;
    for (let i = 0; i < HOST_COLS.length; i++) {
      const x = r[1 + i]!;
      if (x === null || !Number.isSafeInteger(x)) {
        exact = false;
        break;
      }
      v[i] = BigInt(x);
    }
    if (!exact) {
      exactSt ??= db.prepare(`SELECT ${SUMS} FROM (${union}) WHERE host_id = ?`).raw(true).safeIntegers(true);
      const big = exactSt.get(...params, id) as bigint[];
      for (let i = 0; i < HOST_COLS.length; i++) v[i] = join2(big[2 * i], big[2 * i + 1]);
    }
    byId.set(id, v);
  }
  const out = new Map<string, Vec>();
  if (ip) {
    for (const v of byId.values()) out.set(ip, v);
    return out;
  }
  const keys = new Map<number, string>();
  for (const r of db.prepare(`SELECT id, key FROM hosts`).raw(true).safeIntegers(false).all() as Array<[number, string]>) keys.set(r[0], r[1]);
  for (const [id, v] of byId) out.set(keys.get(id)!, v);
  return out;
}

/** Per-host lines of a group's billing period as billed (the membership used at ingest). */
export function groupPeriodHosts(db: DB, gid: number, start: number): Map<string, Vec> {
  const rows = db.prepare(`SELECT h.key AS key, ${SUMS} FROM group_period r JOIN hosts h ON h.id = r.host_id WHERE r.group_id = ? AND r.period_start = ? GROUP BY h.key`)
    .all(gid, start) as Array<Record<string, bigint> & { key: string }>;
  return new Map(rows.map((r) => [r.key, vecOf(r)]));
}

// ---------------------------------------------------------------------------------------------
// 95th percentile

export interface P95 {
  /** 5-minute buckets in the range. */
  buckets: number;
  /** Samples used (buckets the collector covered). */
  samples: number;
  /** 1-based rank taken: ceil(0.95 * samples). */
  rank: number;
  /** Bits per second of the 5-minute bucket at that rank, per direction, and the max of both. */
  inBps: number | null;
  outBps: number | null;
  maxBps: number | null;
  /** Buckets left out: not covered by the collector, or holding a gap's counts. */
  excluded: Array<{ from: number; to: number; why: 'missing' | 'gap' }>;
}

/** The nearest-rank 95th percentile of `samples` (sorted ascending, the ceil(0.95 n)-th). */
export function nearestRank95(samples: readonly bigint[]): { rank: number; value: bigint | null } {
  const n = samples.length;
  if (n === 0) return { rank: 0, value: null };
  const sorted = [...samples].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const rank = Math.ceil((95 * n) / 100);
  return { rank, value: sorted[rank - 1]! };
}

/**
 * 95th percentile of 5-minute rates over [from, to) for a group (gid) or a host (hostKey).
 * A bucket is a sample when at least one collection ended in it and none of those carried a
 * gap, a first reading or a reset (their counts span more than the bucket); a bucket covered
 * with no traffic counts as 0; the others are excluded and listed.
 */
export function p95(db: DB, from: number, to: number, who: { gid: number } | { hostKey: string }): P95 {
  if (to > from) checkAligned(from, to);
  const cov = new Map<number, boolean>(); // bucket -> usable
  const rows = db.prepare(`SELECT at_ms, flags FROM intervals WHERE at_ms > ? AND at_ms <= ?`).all(from, to) as Array<{ at_ms: bigint; flags: string }>;
  for (const r of rows) {
    const b = Math.floor((Number(r.at_ms) - 1) / BUCKET_5M) * BUCKET_5M;
    const bad = /\b(gap|first|reset|returned)\b/.test(r.flags);
    cov.set(b, (cov.get(b) ?? true) && !bad);
  }
  const data = new Map<number, [bigint, bigint]>();
  const sel = 'gid' in who
    ? db.prepare(`SELECT bucket, ${SUMS} FROM group_5m WHERE group_id = ? AND bucket >= ? AND bucket < ? GROUP BY bucket`).all(who.gid, from, to)
    : db.prepare(`SELECT bucket, ${SUMS} FROM host_5m r JOIN hosts h ON h.id = r.host_id WHERE h.key = ? AND bucket >= ? AND bucket < ? GROUP BY bucket`).all(who.hostKey, from, to);
  for (const r of sel as Array<Record<string, bigint>>) {
    const t = totalsOf(vecOf(r)).bytes.total;
    data.set(Number(r['bucket']), [t.in, t.out]);
  }
  const ins: bigint[] = [];
  const outs: bigint[] = [];
  const maxs: bigint[] = [];
  const excluded: P95['excluded'] = [];
  let buckets = 0;
  for (let b = from; b < to; b += BUCKET_5M) {
    buckets++;
    const c = cov.get(b);
    if (c !== true) {
      const why = c === undefined ? 'missing' : 'gap';
      const lastEx = excluded[excluded.length - 1];
      if (lastEx && lastEx.to === b && lastEx.why === why) lastEx.to = b + BUCKET_5M;
      else excluded.push({ from: b, to: b + BUCKET_5M, why });
      continue;
    }
    const [i, o] = data.get(b) ?? [0n, 0n];
    ins.push(i);
    outs.push(o);
    maxs.push(i > o ? i : o);
  }
  const bps = (v: bigint | null) => (v === null ? null : Number(v * 8n) / (BUCKET_5M / 1000));
  const a = nearestRank95(ins);
  return { buckets, samples: ins.length, rank: a.rank, inBps: bps(a.value), outBps: bps(nearestRank95(outs).value), maxBps: bps(nearestRank95(maxs).value), excluded };
}

// ---------------------------------------------------------------------------------------------
// the report

export interface ReportQuery {
  period?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
  group?: string | undefined;
  ip?: string | undefined;
  top?: number | undefined;
  p95?: boolean | undefined;
  now: number;
}

export interface GroupLine {
  group: string;
  from: number;
  to: number;
  billingDay: number;
  tz: string;
  totals: Totals;
  p95?: P95 | undefined;
  /** The period has ended: its numbers no longer change. */
  closed: boolean;
}

export interface Report {
  kind: 'period' | 'range';
  label?: string | undefined;
  from: number;
  to: number;
  billingDay?: number | undefined;
  tz: string;
  coverage: Coverage;
  hosts: Array<{ host: string; group?: string | undefined; totals: Totals; p95?: P95 | undefined }>;
  hostCount: number;
  groups: GroupLine[];
  totals: Totals;
}

function sortLines(m: Map<string, Vec>, top?: number): Array<[string, Vec]> {
  // the total bytes once per host (not per comparison), compared as numbers when exact
  const arr = [...m.entries()].map(([k, v]) => {
    const t = v[0]! + v[1]! + v[2]! + v[3]! + v[4]! + v[5]!;
    const n = Number(t);
    return { k, v, t, n, safe: Number.isSafeInteger(n), o: keyOrder(k) };
  });
  arr.sort((a, b) => {
    const c = a.safe && b.safe ? b.n - a.n : a.t > b.t ? -1 : a.t < b.t ? 1 : 0;
    return c !== 0 ? c : compareOrder(a.o, b.o);
  });
  const out = arr.map((x): [string, Vec] => [x.k, x.v]);
  return top === undefined ? out : out.slice(0, top);
}

export function buildReport(db: DB, q: ReportQuery): Report {
  const s = getSettings(db);
  // the 95th of a period in progress: buckets up to now (later ones are not missing, just not yet)
  const upToNow = (t: number) => Math.min(t, Math.ceil(q.now / BUCKET_5M) * BUCKET_5M);
  if (q.period !== undefined && (q.from !== undefined || q.to !== undefined)) throw new UsageError('--period and --from/--to exclude each other');
  if ((q.from === undefined) !== (q.to === undefined)) throw new UsageError('--from and --to go together');
  if (q.ip !== undefined) q = { ...q, ip: resolveHostKey(db, q.ip) };
  const group: Group | undefined = q.group !== undefined ? getGroup(db, q.group) : undefined;
  const defProfile: Profile = { billingDay: s.billingDay, tz: s.tz };
  let label = q.period;
  if (label === undefined && q.from === undefined) {
    // default: the current period of the group's (or the default) profile
    const p = group ? profileOf(group) : defProfile;
    label = periodAt(q.now, p).label;
  }
  const groups = group ? [group] : listGroups(db);
  let hostsMap: Map<string, Vec>;
  let from: number;
  let to: number;
  let tz: string;
  let billingDay: number | undefined;
  const groupLines: GroupLine[] = [];
  const hostGroup = new Map<string, string>();
  if (label !== undefined) {
    const period: Period = periodOfLabel(label, group ? profileOf(group) : defProfile);
    from = period.start;
    to = period.end;
    tz = period.tz;
    billingDay = period.billingDay;
    if (group) {
      hostsMap = groupPeriodHosts(db, group.id, period.start);
      if (q.ip) hostsMap = new Map([...hostsMap].filter(([k]) => k === q.ip));
      for (const k of hostsMap.keys()) hostGroup.set(k, group.name);
    } else {
      hostsMap = hostsInPeriod(db, period.start, q.ip);
    }
    for (const g of groups) {
      const gp = periodOfLabel(label, profileOf(g));
      const v = zeroVec();
      for (const hv of groupPeriodHosts(db, g.id, gp.start).values()) addVec(v, hv);
      groupLines.push({ group: g.name, from: gp.start, to: gp.end, billingDay: g.billingDay, tz: g.tz, totals: totalsOf(v), closed: gp.end <= q.now, ...(q.p95 ? { p95: p95(db, gp.start, Math.max(gp.start, upToNow(gp.end)), { gid: g.id }) } : {}) });
    }
  } else {
    from = q.from!;
    to = q.to!;
    tz = group?.tz ?? 'UTC';
    hostsMap = hostsInRange(db, from, to, q.ip);
    if (group) {
      // hosts of the group: those inside one of its prefixes at any time of the range
      const ms = group.members.filter((m) => m.from < to && (m.to === null || m.to > from));
      hostsMap = new Map([...hostsMap].filter(([k]) => { const h = parseCidr(k); return ms.some((m) => cidrContainsPrefix(m, h)); }));
      for (const k of hostsMap.keys()) hostGroup.set(k, group.name);
    }
    for (const g of groups) {
      groupLines.push({ group: g.name, from, to, billingDay: g.billingDay, tz: g.tz, totals: totalsOf(groupInRange(db, g.id, from, to)), closed: to <= q.now, ...(q.p95 ? { p95: p95(db, from, Math.max(from, upToNow(to)), { gid: g.id }) } : {}) });
    }
  }
  const total = zeroVec();
  for (const v of hostsMap.values()) addVec(total, v);
  const lines = sortLines(hostsMap, q.top);
  return {
    kind: label !== undefined ? 'period' : 'range',
    label,
    from,
    to,
    billingDay,
    tz,
    coverage: coverage(db, from, to),
    hosts: lines.map(([k, v]) => ({ host: k, group: hostGroup.get(k), totals: totalsOf(v), ...(q.p95 && q.ip ? { p95: p95(db, Math.floor(from / BUCKET_5M) * BUCKET_5M, Math.max(Math.floor(from / BUCKET_5M) * BUCKET_5M, upToNow(Math.ceil(to / BUCKET_5M) * BUCKET_5M)), { hostKey: k }) } : {}) })),
    hostCount: hostsMap.size,
    groups: groupLines,
    totals: totalsOf(total),
  };
}


// ---------------------------------------------------------------------------------------------
// history

export type Step = 'hour' | 'day' | 'month';

export interface HistoryPoint {
  from: number;
  to: number;
  totals: Totals;
}

/** A host's (dotted quad) or a group's series, oldest first. */
export function history(db: DB, who: string, step: Step, from?: number, to?: number): { kind: 'host' | 'group'; name: string; tz: string; points: HistoryPoint[] } {
  const s = getSettings(db);
  let gid: number | undefined;
  let hostId: number | undefined;
  let profile: Profile = { billingDay: s.billingDay, tz: s.tz };
  if (isHostArg(who)) {
    who = resolveHostKey(db, who, 'history');
    const h = db.prepare(`SELECT id FROM hosts WHERE key = ?`).get(who) as { id: bigint } | undefined;
    if (!h) return { kind: 'host', name: who, tz: profile.tz, points: [] };
    hostId = Number(h.id);
  } else {
    const g = getGroup(db, who);
    gid = g.id;
    profile = profileOf(g);
  }
  const kind = gid !== undefined ? 'group' : 'host';
  const lo = from ?? 0;
  const hi = to ?? Number.MAX_SAFE_INTEGER;
  let rows: Array<Record<string, bigint>>;
  let width = 0;
  if (step === 'month') {
    rows = (gid !== undefined
      ? db.prepare(`SELECT period_start AS t, ${SUMS} FROM group_period WHERE group_id = ? AND period_start >= ? AND period_start < ? GROUP BY period_start ORDER BY period_start`).all(gid, lo, hi)
      : db.prepare(`SELECT period_start AS t, ${SUMS} FROM host_period WHERE host_id = ? AND period_start >= ? AND period_start < ? GROUP BY period_start ORDER BY period_start`).all(hostId, lo, hi)) as Array<Record<string, bigint>>;
  } else {
    width = step === 'hour' ? BUCKET_HOUR : BUCKET_DAY;
    rows = (gid !== undefined
      ? db.prepare(`SELECT bucket AS t, ${SUMS} FROM group_${step} WHERE group_id = ? AND bucket >= ? AND bucket < ? GROUP BY bucket ORDER BY bucket`).all(gid, lo, hi)
      : db.prepare(`SELECT bucket AS t, ${SUMS} FROM host_${step} WHERE host_id = ? AND bucket >= ? AND bucket < ? GROUP BY bucket ORDER BY bucket`).all(hostId, lo, hi)) as Array<Record<string, bigint>>;
  }
  const series = new Map<number, Vec>(rows.map((r) => [Number(r['t']), vecOf(r)]));
  if (hostId !== undefined) {
    // the host's 5-minute buckets not folded into hour/day/period yet (Ledger.fold)
    const fu = foldedUntil(db);
    if (hi > fu) {
      const unfolded = db.prepare(`SELECT bucket AS t, ${SUMS} FROM host_5m WHERE host_id = ? AND bucket >= ? AND bucket < ? GROUP BY bucket`).safeIntegers(true)
        .all(hostId, Math.max(lo, fu), hi) as Array<Record<string, bigint>>;
      for (const r of unfolded) {
        const b = Number(r['t']);
        const t = step === 'month' ? periodAt(b, profile).start : Math.floor(b / width) * width;
        if (t < lo) continue;
        const v = series.get(t);
        if (v) addVec(v, vecOf(r));
        else series.set(t, vecOf(r));
      }
    }
  }
  return {
    kind, name: who, tz: step === 'month' ? profile.tz : 'UTC',
    points: [...series].sort((a, b) => a[0] - b[0]).map(([t, v]) => {
      const end = step === 'month' ? periodAt(t, profile).end : t + width;
      return { from: t, to: end, totals: totalsOf(v) };
    }),
  };
}
