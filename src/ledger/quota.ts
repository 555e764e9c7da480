/**
 * Quotas: a byte limit per billing period for a host (the default billing profile) or a group
 * (its own profile), on bytes in, out or their sum. Evaluated after each committed collection
 * (never inside the ingest transaction): `quotaEvents()` says what is due, the caller acts
 * (log, block, exec: the command layer, this layer imports nothing of src/system) and then
 * `markQuota()` records it. The state is in the ledger, so an action happens once per period
 * whatever restarts happen: warn at 80 % once, the action once when the limit is reached, and
 * for `block`, each blocked host once and its lift once (at the first collection after the
 * period's end, or when the quota is raised above the use or deleted). A crash between the
 * action and its record repeats it at the next collection: `block`/`unblock` are idempotent;
 * an `exec` command may then run twice (its environment names the period, to deduplicate).
 */
import { UsageError } from '../core/errors.js';
import { getSettings, type DB } from './db.js';
import { checkGroupName, getGroup, profileOf } from './groups.js';
import { periodAt, type Period, type Profile } from './periods.js';
import { join2 } from './u64.js';
import { hostsInPeriod, isHostArg, resolveHostKey } from './query.js';

export type QuotaDir = 'in' | 'out' | 'sum';
export type QuotaAction = 'log' | 'block' | 'exec';

export interface Quota {
  id: number;
  kind: 'host' | 'group';
  target: string;
  limit: bigint;
  per: 'month';
  dir: QuotaDir;
  action: QuotaAction;
  cmd: string | null;
}

export interface QuotaEvent {
  event: 'warn' | 'over' | 'lift';
  quota: Quota;
  /** The billing period the event belongs to. */
  period: Period;
  /** Bytes used in that period (in the quota's direction) and the limit. */
  used: bigint;
  limit: bigint;
  /** Hosts to block (over) or unblock (lift) with action block; the host itself otherwise. */
  hosts: string[];
  /** Why a lift: the period ended, the quota was raised above the use. */
  why?: 'period-end' | 'raised';
}

const SI: Record<string, bigint> = { '': 1n, k: 10n ** 3n, m: 10n ** 6n, g: 10n ** 9n, t: 10n ** 12n, p: 10n ** 15n, e: 10n ** 18n };
const IEC: Record<string, bigint> = { ki: 1n << 10n, mi: 1n << 20n, gi: 1n << 30n, ti: 1n << 40n, pi: 1n << 50n, ei: 1n << 60n };
const U64_MAX = (1n << 64n) - 1n;

/**
 * A byte count: digits with an optional fraction and unit. SI units are powers of 10
 * (k/K = 10^3, M = 10^6, G = 10^9, T = 10^12, P = 10^15, E = 10^18, with or without a
 * trailing B), IEC units powers of 2 (KiB = 2^10 ... EiB = 2^60, the B optional). The result
 * must be a whole number of bytes, 1 .. 2^64-1.
 */
export function parseBytes(s: string): bigint {
  const bad = (why: string): never => {
    throw new UsageError(`BYTES "${s}": ${why}`, { hint: 'e.g. 500G (500 * 10^9), 1.5T, 10GiB (10 * 2^30), 123456789 (bytes)' });
  };
  const m = /^(\d+)(?:\.(\d+))?\s*([kKmMgGtTpPeE]i?)?[bB]?$/.exec(s.trim());
  if (!m || s.trim() === '') bad('expected a number with an optional unit k M G T P E (powers of 10) or KiB MiB GiB TiB PiB EiB (powers of 2)');
  const unit = (m![3] ?? '').toLowerCase();
  const mult = unit.endsWith('i') ? IEC[unit]! : SI[unit]!;
  const frac = m![2] ?? '';
  const scale = 10n ** BigInt(frac.length);
  const num = BigInt(m![1]! + frac) * mult;
  if (num % scale !== 0n) bad('not a whole number of bytes');
  const v = num / scale;
  if (v === 0n) bad('must be at least 1 byte');
  if (v > U64_MAX) bad(`beyond 2^64-1 (${U64_MAX}) bytes`);
  return v;
}

export function checkDir(s: string): QuotaDir {
  if (s === 'in' || s === 'out' || s === 'sum') return s;
  throw new UsageError(`--dir ${s}: must be in, out or sum`);
}

export function checkPer(s: string): 'month' {
  if (s === 'month') return s;
  throw new UsageError(`--per ${s}: only month (the billing period) is supported`);
}

/**
 * An address or a host prefix is a host quota (its ledger key: an IPv6 address means the host
 * prefix the ledger counts it in, see resolveHostKey), anything else must be a group's name.
 */
export function targetOf(s: string, db?: DB): { kind: 'host' | 'group'; target: string } {
  if (isHostArg(s)) {
    if (!db) return { kind: 'host', target: s };
    try {
      return { kind: 'host', target: resolveHostKey(db, s, 'quota') };
    } catch {
      // below: the message for a text that is neither
    }
  }
  if (/^[\d.]+$/.test(s) || s.includes('/') || s.includes(':')) {
    throw new UsageError(`"${s}": not an IPv4 address (a.b.c.d), an IPv6 address or a host prefix, nor a group name`, { hint: 'a quota is per host (an address, or a host prefix such as 2001:db8:0:1::/64) or per group (`xttraffic group add` one for several prefixes)' });
  }
  return { kind: 'group', target: checkGroupName(s) };
}

type Row = { id: bigint | number; kind: string; target: string; limit_bytes: string; per: string; dir: string; action: string; cmd: string | null };
const quotaOf = (r: Row): Quota => ({
  id: Number(r.id), kind: r.kind as Quota['kind'], target: r.target, limit: BigInt(r.limit_bytes), per: 'month', dir: r.dir as QuotaDir, action: r.action as QuotaAction, cmd: r.cmd,
});

export function listQuotas(db: DB): Quota[] {
  return (db.prepare(`SELECT id, kind, target, limit_bytes, per, dir, action, cmd FROM quotas ORDER BY kind, target`).all() as Row[]).map(quotaOf);
}

export interface QuotaSpec {
  target: string;
  limit: bigint;
  per?: 'month';
  dir?: QuotaDir;
  action?: QuotaAction;
  cmd?: string | null;
}

/** Sets (or replaces) the quota of a host or group; a group must exist. */
export function setQuota(db: DB, spec: QuotaSpec, now: number): Quota {
  const t = targetOf(spec.target, db);
  if (t.kind === 'group') getGroup(db, t.target); // throws naming it when unknown
  const action = spec.action ?? 'log';
  if (action === 'exec' && !spec.cmd) throw new UsageError('--action exec needs a command: --action exec --exec-cmd CMD');
  db.prepare(`INSERT INTO quotas (kind, target, limit_bytes, per, dir, action, cmd, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (kind, target) DO UPDATE SET limit_bytes = excluded.limit_bytes, per = excluded.per, dir = excluded.dir, action = excluded.action, cmd = excluded.cmd`)
    .run(t.kind, t.target, spec.limit.toString(), spec.per ?? 'month', spec.dir ?? 'sum', action, action === 'exec' ? spec.cmd! : null, now);
  return listQuotas(db).find((q) => q.kind === t.kind && q.target === t.target)!;
}

export function getQuota(db: DB, target: string): Quota {
  const t = targetOf(target, db);
  const q = listQuotas(db).find((x) => x.kind === t.kind && x.target === t.target);
  if (!q) throw new UsageError(`no quota on ${t.kind} "${t.target}"`, { hint: '`xttraffic quota list` lists them' });
  return q;
}

/** Hosts a quota still holds blocked (any period): what `quota del` must unblock first. */
export function blockedHosts(db: DB, quotaId: number): string[] {
  return (db.prepare(`SELECT DISTINCT host FROM quota_block WHERE quota_id = ? AND lifted_ms IS NULL ORDER BY host`).all(quotaId) as Array<{ host: string }>).map((r) => r.host);
}

/** Deletes a quota and its state (the caller unblocked its hosts first). */
export function deleteQuota(db: DB, id: number): void {
  db.transaction(() => {
    db.prepare(`DELETE FROM quota_block WHERE quota_id = ?`).run(id);
    db.prepare(`DELETE FROM quota_state WHERE quota_id = ?`).run(id);
    db.prepare(`DELETE FROM quotas WHERE id = ?`).run(id);
  }).immediate();
}

const DIR_SQL: Record<QuotaDir, string> = {
  in: 'SUM(tcp_in) + SUM(udp_in) + SUM(other_in)',
  out: 'SUM(tcp_out) + SUM(udp_out) + SUM(other_out)',
  sum: 'SUM(tcp_in) + SUM(udp_in) + SUM(other_in) + SUM(tcp_out) + SUM(udp_out) + SUM(other_out)',
};
const hiOf = (s: string) => s.replace(/SUM\((\w+)\)/g, 'SUM($1_hi)');

/** Bytes used in a period and the hosts billed in it. */
export function quotaUse(db: DB, q: Quota, period: Period): { used: bigint; hosts: string[] } {
  const sql = `SELECT ${DIR_SQL[q.dir]} AS lo, ${hiOf(DIR_SQL[q.dir])} AS hi`;
  if (q.kind === 'host') {
    // the period rollup and the 5-minute buckets not folded into it yet
    const v = hostsInPeriod(db, period.start, q.target).get(q.target);
    if (!v) return { used: 0n, hosts: [q.target] };
    const inB = v[0]! + v[2]! + v[4]!;
    const outB = v[1]! + v[3]! + v[5]!;
    return { used: q.dir === 'in' ? inB : q.dir === 'out' ? outB : inB + outB, hosts: [q.target] };
  }
  const g = db.prepare(`SELECT id FROM groups WHERE name = ?`).get(q.target) as { id: bigint } | undefined;
  if (!g) return { used: 0n, hosts: [] };
  const r = db.prepare(`${sql} FROM group_period WHERE group_id = ? AND period_start = ?`).safeIntegers(true).get(g.id, period.start) as { lo: bigint | null; hi: bigint | null };
  const hosts = (db.prepare(`SELECT h.key FROM group_period r JOIN hosts h ON h.id = r.host_id WHERE r.group_id = ? AND r.period_start = ? ORDER BY h.id`).all(g.id, period.start) as Array<{ key: string }>).map((x) => x.key);
  return { used: join2(r.lo, r.hi), hosts };
}

function profileFor(db: DB, q: Quota): Profile | undefined {
  if (q.kind === 'host') {
    const s = getSettings(db);
    return { billingDay: s.billingDay, tz: s.tz };
  }
  const g = db.prepare(`SELECT billing_day AS billingDay, tz FROM groups WHERE name = ?`).get(q.target) as { billingDay: bigint; tz: string } | undefined;
  return g ? profileOf({ billingDay: Number(g.billingDay), tz: g.tz }) : undefined;
}

/**
 * What is due after the collection attributed to `at` was committed: lifts of blocks of
 * ended periods (or of a quota raised above the use), the over action, the 80 % warning.
 * Counts of the collection ending at `at` belong to the period containing `at - 1`; a block
 * of a period that ended by `at` is lifted (the first collection after the boundary).
 */
export function quotaEvents(db: DB, at: number): QuotaEvent[] {
  const out: QuotaEvent[] = [];
  for (const q of listQuotas(db)) {
    const prof = profileFor(db, q);
    if (!prof) continue;
    const cur = periodAt(at - 1, prof);
    const { used, hosts } = quotaUse(db, q, cur);
    const over = used >= q.limit;
    // lifts: blocks of earlier periods; blocks of this one when the quota now allows the use
    const blocked = db.prepare(`SELECT period_start, host FROM quota_block WHERE quota_id = ? AND lifted_ms IS NULL ORDER BY period_start, host`).all(q.id) as Array<{ period_start: bigint; host: string }>;
    const liftOld = new Map<number, string[]>();
    const liftNow: string[] = [];
    for (const b of blocked) {
      const ps = Number(b.period_start);
      if (ps < cur.start || cur.end <= at) {
        const l = liftOld.get(ps) ?? [];
        l.push(b.host);
        liftOld.set(ps, l);
      } else if (!over || q.action !== 'block') liftNow.push(b.host);
    }
    for (const [ps, hs] of liftOld) {
      const p = periodAt(ps, prof);
      out.push({ event: 'lift', quota: q, period: p, used: quotaUse(db, q, p).used, limit: q.limit, hosts: hs, why: 'period-end' });
    }
    if (liftNow.length > 0) out.push({ event: 'lift', quota: q, period: cur, used, limit: q.limit, hosts: liftNow, why: 'raised' });
    if (cur.end <= at) continue; // that period is over: nothing to act on any more
    const st = db.prepare(`SELECT warned_ms, over_ms FROM quota_state WHERE quota_id = ? AND period_start = ?`).get(q.id, cur.start) as { warned_ms: bigint | null; over_ms: bigint | null } | undefined;
    if (over) {
      if (q.action === 'block') {
        const done = new Set((db.prepare(`SELECT host FROM quota_block WHERE quota_id = ? AND period_start = ? AND lifted_ms IS NULL`).all(q.id, cur.start) as Array<{ host: string }>).map((r) => r.host));
        const todo = hosts.filter((h) => !done.has(h));
        if (todo.length > 0 || !st?.over_ms) out.push({ event: 'over', quota: q, period: cur, used, limit: q.limit, hosts: todo });
      } else if (!st?.over_ms) out.push({ event: 'over', quota: q, period: cur, used, limit: q.limit, hosts });
    } else if (used * 5n >= q.limit * 4n && !st?.warned_ms) {
      out.push({ event: 'warn', quota: q, period: cur, used, limit: q.limit, hosts });
    }
  }
  return out;
}

/** Records that an event's action was done (after it succeeded). */
export function markQuota(db: DB, ev: QuotaEvent, now: number): void {
  const q = ev.quota;
  db.transaction(() => {
    const ensure = db.prepare(`INSERT INTO quota_state (quota_id, period_start) VALUES (?, ?) ON CONFLICT DO NOTHING`);
    if (ev.event === 'warn') {
      ensure.run(q.id, ev.period.start);
      db.prepare(`UPDATE quota_state SET warned_ms = ? WHERE quota_id = ? AND period_start = ? AND warned_ms IS NULL`).run(now, q.id, ev.period.start);
    } else if (ev.event === 'over') {
      ensure.run(q.id, ev.period.start);
      // over implies the warning: it is not given afterwards
      db.prepare(`UPDATE quota_state SET over_ms = coalesce(over_ms, ?), warned_ms = coalesce(warned_ms, ?) WHERE quota_id = ? AND period_start = ?`).run(now, now, q.id, ev.period.start);
      if (q.action === 'block') {
        const ins = db.prepare(`INSERT INTO quota_block (quota_id, period_start, host, blocked_ms) VALUES (?, ?, ?, ?)
          ON CONFLICT (quota_id, period_start, host) DO UPDATE SET blocked_ms = excluded.blocked_ms, lifted_ms = NULL`);
        for (const h of ev.hosts) ins.run(q.id, ev.period.start, h, now);
      }
    } else {
      const upd = db.prepare(`UPDATE quota_block SET lifted_ms = ? WHERE quota_id = ? AND host = ? AND lifted_ms IS NULL AND period_start = ?`);
      for (const h of ev.hosts) upd.run(now, q.id, h, ev.period.start);
      if (ev.why === 'raised') db.prepare(`UPDATE quota_state SET over_ms = NULL WHERE quota_id = ? AND period_start = ?`).run(q.id, ev.period.start);
    }
  }).immediate();
}
