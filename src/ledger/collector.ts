/**
 * The collector: every interval (aligned to the wall clock) reads the counters files and
 * ingests them in one transaction. Nothing is ever cleared, so a failed commit (disk full,
 * SQLITE_FULL, an I/O error) loses nothing: the next collection takes the whole delta since
 * the last committed reading. One collector per ledger: an exclusive SQLite lock on
 * LEDGER.lock, held by the process and released by the kernel when it dies (also kill -9).
 */
import Database from 'better-sqlite3';
import { ResourceError, toXtError } from '../core/errors.js';
import { listCounterTables, readCounters, type CountersLocation, type CountersReading } from '../proc/counters.js';
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
}

export interface CollectResult {
  result?: IngestResult;
  /** Tables that could not be read or parsed (their last reading stays: nothing is lost). */
  errors: Array<{ table: string; message: string }>;
  /** Quota events acted on (done) or failed (error: retried next collection). */
  quotas: Array<{ event: QuotaEvent; error?: string }>;
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
  return { result, errors, quotas };
}

/** The next tick strictly after `now` on a grid of `intervalMs` from the epoch. */
export function nextTick(now: number, intervalMs: number): number {
  return (Math.floor(now / intervalMs) + 1) * intervalMs;
}
