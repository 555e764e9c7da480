/**
 * The collector: every interval (aligned to the wall clock) reads the counters files and
 * ingests them in one transaction. Nothing is ever cleared, so a failed commit (disk full,
 * SQLITE_FULL, an I/O error) loses nothing: the next collection takes the whole delta since
 * the last committed reading. One collector per ledger: an exclusive SQLite lock on
 * LEDGER.lock, held by the process and released by the kernel when it dies (also kill -9).
 * Counters files of revision 2 (tables that reclaim idle entries) are acked (`ack N`) after the
 * commit, never before: a crash between the two only delays reclaiming (the next collection
 * acks its own read), and nothing is lost or counted twice.
 */
import Database from 'better-sqlite3';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { ResourceError, toXtError } from '../core/errors.js';
import { openLedgerDb } from './db.js';
import { ackCounters, listCounterTables, readCounters, type CountersLocation, type CountersReading } from '../proc/counters.js';
import { Ledger, type IngestResult } from './ingest.js';
import { markQuota, quotaEvents, type QuotaEvent } from './quota.js';

/** Takes the collector lock of `dbPath` or throws a ResourceError saying who holds it. */
export function lockCollector(dbPath: string): { release(): void } {
  const path = `${dbPath}.lock`;
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec(`CREATE TABLE IF NOT EXISTS collector (pid INTEGER, since TEXT)`);
    db.exec(`DELETE FROM collector`);
    db.prepare(`INSERT INTO collector VALUES (?, ?)`).run(process.pid, new Date().toISOString());
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      throw new ResourceError('ECOLLECTOR', `another collector is running on ${dbPath} (it holds ${path})`, { path, hint: 'one collector per ledger: stop the other one (systemctl stop xttraffic-collect) or use another --db' });
    }
    throw new ResourceError(code || 'ELOCK', `cannot take the collector lock ${path}: ${(e as Error).message}`, { path });
  }
  return { release: () => db.close() };
}

export interface CollectOptions {
  loc: CountersLocation;
  /** The named tables, or every table of the directory. */
  tables: string[];
  intervalMs?: number;
  /** Wall clock of the read. */
  readMs: number;
  /** The aligned tick the counts belong to. */
  at: number;
  monoMs?: number;
  /**
   * Quotas: called after the commit for each event due (warn, over, lift); the event is
   * recorded in the ledger only when it resolves, so a failed action is retried at the next
   * collection. The command layer does the action (log, block through src/system, exec).
   * Without it, quotas are not evaluated.
   */
  onQuota?: (ev: QuotaEvent) => Promise<void> | void;
  /** Wall clock for the quota records (default readMs). */
  now?: () => number;
  /**
   * Acks read `n` of a revision-2 table after the commit (default: `ack N` written to its
   * counters file; none when the files come from $XTT_COUNTERS_DIR, which is not the kernel's).
   */
  ack?: (table: string, n: bigint) => Promise<void> | void;
}

export interface CollectResult {
  result?: IngestResult;
  /** Tables that could not be read or parsed (their last reading stays: nothing is lost). */
  errors: Array<{ table: string; message: string }>;
  /** Quota events acted on (done) or failed (error: retried next collection). */
  quotas: Array<{ event: QuotaEvent; error?: string }>;
  /** Revision-2 reads acked after the commit, and acks that failed (the next collection acks again). */
  acked: Array<{ table: string; read: bigint; error?: string }>;
}

/** One collection: read every table, ingest them in one transaction. */
export async function collectOnce(ledger: Ledger, o: CollectOptions): Promise<CollectResult> {
  const names = o.tables.length > 0 ? o.tables : await listCounterTables(o.loc);
  const readings: CountersReading[] = [];
  const errors: CollectResult['errors'] = [];
  const missing: string[] = [];
  for (const name of names) {
    try {
      readings.push(await readCounters(name, o.loc));
    } catch (e) {
      const err = toXtError(e);
      if (err.code === 'ENOTABLE') missing.push(name);
      else errors.push({ table: name, message: err.message });
    }
  }
  if (o.tables.length === 0) {
    const known = (ledger.db.prepare(`SELECT table_name FROM last_reading WHERE gone = 0`).all() as Array<{ table_name: string }>).map((r) => r.table_name);
    for (const k of known) if (!names.includes(k)) missing.push(k);
  }
  const result = ledger.ingest({
    readings, missing, readMs: o.readMs, at: o.at,
    ...(o.intervalMs !== undefined ? { intervalMs: o.intervalMs } : {}),
    ...(o.monoMs !== undefined ? { monoMs: o.monoMs } : {}),
  });
  // committed: now (never before) the kernel may free entries whose final values read N had
  const acked: CollectResult['acked'] = [];
  const ack = o.ack ?? (o.loc.fromEnv ? undefined : (t: string, n: bigint) => ackCounters(t, n, o.loc));
  for (const r of readings) {
    if (r.revision !== 2 || r.read === undefined || !ack) continue;
    try {
      await ack(r.name, r.read);
      acked.push({ table: r.name, read: r.read });
    } catch (e) {
      acked.push({ table: r.name, read: r.read, error: toXtError(e).message });
    }
  }
  // hour/day/period rollups of the closed 5-minute buckets, in a transaction of their own
  ledger.fold(o.at);
  const quotas: CollectResult['quotas'] = [];
  if (o.onQuota) {
    // after the commit, never inside the ingest transaction
    for (const ev of quotaEvents(ledger.db, o.at)) {
      try {
        await o.onQuota(ev);
        markQuota(ledger.db, ev, o.now ? o.now() : o.readMs);
        quotas.push({ event: ev });
      } catch (e) {
        quotas.push({ event: ev, error: toXtError(e).message });
      }
    }
  }
  return { result, errors, quotas, acked };
}

// ---------------------------------------------------------------------------------------------
// Collect first: `unload` and `rule del` make the ledger take the counts of a table before it
// goes away. The running collector (it holds LEDGER.lock) announces itself in LEDGER.collector
// ({pid, since, collections}: rewritten after each commit); SIGUSR1 makes it collect at once.
// Without a running collector, one collection is made under the lock by the caller itself.

export interface CollectorInfo {
  pid: number;
  since: string;
  /** Collections committed by this process. */
  collections: number;
}

export const infoPath = (dbPath: string) => `${dbPath}.collector`;

/** Written by the collector: at start (collections 0) and after each commit. */
export function writeCollectorInfo(dbPath: string, info: CollectorInfo): void {
  const p = infoPath(dbPath);
  try {
    writeFileSync(`${p}.tmp`, `${JSON.stringify(info)}\n`);
    renameSync(`${p}.tmp`, p);
  } catch {
    // informational: a read-only folder only disables collect-first signalling
  }
}

export function removeCollectorInfo(dbPath: string): void {
  rmSync(infoPath(dbPath), { force: true });
}

export function readCollectorInfo(dbPath: string): CollectorInfo | undefined {
  try {
    const j = JSON.parse(readFileSync(infoPath(dbPath), 'utf8')) as CollectorInfo;
    return Number.isInteger(j.pid) && Number.isInteger(j.collections) ? j : undefined;
  } catch {
    return undefined;
  }
}

export interface CollectFirstOptions {
  dbPath: string;
  loc: CountersLocation;
  /** Sends SIGUSR1 to the collector. */
  signal(pid: number): void;
  /** Whether a process runs (default: kill(pid, 0)). */
  alive?(pid: number): boolean;
  sleep(ms: number): Promise<void>;
  now(): number;
  /** How long to wait for the collector's commit (default 30 s). */
  timeoutMs?: number;
  /** Why (for messages): "rule del --name lan". */
  why: string;
}

export type CollectFirstResult =
  | { how: 'no-ledger' }
  | { how: 'collector'; pid: number; ms: number }
  | { how: 'once'; result: CollectResult };

/**
 * Makes the ledger at `dbPath` (when there is one) commit a collection now: through the
 * running collector (SIGUSR1, then waits for its commit), or, with none running, one
 * collection of every table under the collector lock. Throws a ResourceError (the caller
 * then does not go on) when the collector does not commit in time or cannot be signalled.
 */
export async function collectFirst(o: CollectFirstOptions): Promise<CollectFirstResult> {
  if (!existsSync(o.dbPath)) return { how: 'no-ledger' };
  const hint = `stop the collector first (systemctl stop xttraffic-collect: it collects once more), then ${o.why}`;
  const alive = o.alive ?? ((pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  });
  const timeout = o.timeoutMs ?? 30_000;
  const t0 = o.now();
  let polls = 0;
  let signalled: CollectorInfo | undefined;
  let problem = '';
  for (;;) {
    if (!signalled) {
      // no collector (any more)? then one collection of our own, under the lock
      let lock: { release(): void } | undefined;
      try {
        lock = lockCollector(o.dbPath);
      } catch (e) {
        if (toXtError(e).code !== 'ECOLLECTOR') throw e;
      }
      if (lock) {
        try {
          const ledger = new Ledger(openLedgerDb(o.dbPath));
          try {
            const now = Math.round(o.now());
            const result = await collectOnce(ledger, { loc: o.loc, tables: [], readMs: now, at: now });
            return { how: 'once', result };
          } finally {
            ledger.db.close();
          }
        } finally {
          lock.release();
        }
      }
      // a collector holds the lock; a starting one has not written its pid yet: wait for it
      const info = readCollectorInfo(o.dbPath);
      if (!info) problem = `a collector holds ${o.dbPath}.lock but ${infoPath(o.dbPath)} does not say its pid`;
      else if (!alive(info.pid)) problem = `a collector holds ${o.dbPath}.lock but the pid in ${infoPath(o.dbPath)} (${info.pid}) is not running`;
      else {
        try {
          o.signal(info.pid);
          signalled = info;
        } catch (e) {
          problem = `cannot signal the collector (pid ${info.pid}): ${(e as Error).message}`;
        }
      }
    } else {
      const cur = readCollectorInfo(o.dbPath);
      if (cur && cur.pid === signalled.pid && cur.collections > signalled.collections) return { how: 'collector', pid: signalled.pid, ms: Math.round(o.now() - t0) };
      if (!alive(signalled.pid) || (cur && cur.pid !== signalled.pid)) {
        signalled = undefined; // it died before its commit: start over
        problem = 'the collector exited before it committed';
      } else problem = `the collector (pid ${signalled.pid}) did not commit a collection`;
    }
    if (o.now() - t0 > timeout || ++polls > timeout / 50) {
      throw new ResourceError(signalled ? 'ETIMEDOUT' : 'ECOLLECTOR', `${problem} within ${timeout / 1000} s: not going on with ${o.why} (the counts since the last collection would be lost)`, { path: o.dbPath, hint });
    }
    await o.sleep(50);
  }
}

/** The next tick strictly after `now` on a grid of `intervalMs` from the epoch. */
export function nextTick(now: number, intervalMs: number): number {
  return (Math.floor(now / intervalMs) + 1) * intervalMs;
}
