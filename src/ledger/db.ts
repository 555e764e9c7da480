/**
 * The ledger file: SQLite (better-sqlite3), WAL, `PRAGMA application_id` = XTT_APP_ID and
 * `PRAGMA user_version` = the schema version, forward-only migrations. A file that is not a
 * SQLite database, has another application id, has tables but no id, or a newer schema is
 * refused before anything is written (the checks only read; WAL is switched on afterwards).
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { ResourceError, RuntimeError, VersionError } from '../core/errors.js';

type DB = Database.Database;
export type { DB };

/** "XTTL" */
export const XTT_APP_ID = 0x5854544c;
export const SCHEMA_VERSION = 4;
export const DEFAULT_DB = '/var/lib/xttraffic/ledger.db';

export function dbPathFromEnv(env: NodeJS.ProcessEnv, opt?: string): string {
  return opt ?? env['XTT_DB'] ?? DEFAULT_DB;
}

/** Host counters (per host, per group): bytes by protocol and direction, then connections. */
export const HOST_COLS = [
  'tcp_in', 'tcp_out', 'udp_in', 'udp_out', 'other_in', 'other_out',
  'ctcp_in', 'ctcp_out', 'cudp_in', 'cudp_out', 'cicmp_in', 'cicmp_out', 'cother_in', 'cother_out',
] as const;
/** Port counters: connections per port by protocol and direction. */
export const PORT_COLS = ['ctcp_in', 'ctcp_out', 'cudp_in', 'cudp_out', 'cicmp_in', 'cicmp_out', 'cother_in', 'cother_out'] as const;

export const BUCKET_5M = 300_000;
export const BUCKET_HOUR = 3_600_000;
export const BUCKET_DAY = 86_400_000;

const cols = (names: readonly string[]) => names.map((c) => `${c} INTEGER NOT NULL DEFAULT 0, ${c}_hi INTEGER NOT NULL DEFAULT 0`).join(', ');

/** Rollup tables: name -> key columns. Counters are HOST_COLS unless named port_*. */
export const ROLLUPS = {
  host_5m: ['bucket', 'host_id'],
  host_hour: ['bucket', 'host_id'],
  host_day: ['bucket', 'host_id'],
  host_period: ['period_start', 'host_id'],
  group_5m: ['bucket', 'group_id'],
  group_hour: ['bucket', 'group_id'],
  group_day: ['bucket', 'group_id'],
  group_period: ['group_id', 'period_start', 'host_id'],
  port_day: ['bucket', 'table_name', 'port'],
} as const;
export type RollupName = keyof typeof ROLLUPS;

export function colsOf(t: RollupName): readonly string[] {
  return t.startsWith('port_') ? PORT_COLS : HOST_COLS;
}

const MIGRATIONS: string[] = [
  // 1: the first schema
  [
    `CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
    // family 4 or 6; key '10.0.0.1', later also '2001:db8::/64': no schema change for IPv6
    `CREATE TABLE hosts (id INTEGER PRIMARY KEY, family INTEGER NOT NULL, key TEXT NOT NULL UNIQUE)`,
    // the last committed reading of each table: what the next delta is taken against
    `CREATE TABLE last_reading (table_name TEXT PRIMARY KEY, generation TEXT NOT NULL, read_ms INTEGER NOT NULL,
       at_ms INTEGER NOT NULL, overflow INTEGER NOT NULL, gone INTEGER NOT NULL DEFAULT 0,
       traffic BLOB, ipconn BLOB, portconn BLOB)`,
    `CREATE TABLE intervals (id INTEGER PRIMARY KEY, table_name TEXT NOT NULL, generation TEXT NOT NULL,
       start_ms INTEGER, end_ms INTEGER NOT NULL, at_ms INTEGER NOT NULL, mono_ms INTEGER,
       flags TEXT NOT NULL, overflow_delta INTEGER NOT NULL DEFAULT 0, hosts INTEGER NOT NULL, anomalies INTEGER NOT NULL DEFAULT 0)`,
    `CREATE INDEX intervals_at ON intervals (at_ms)`,
    `CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, billing_day INTEGER NOT NULL, tz TEXT NOT NULL, created_ms INTEGER NOT NULL)`,
    // membership: a prefix of a group from from_ms (inclusive) to to_ms (exclusive, NULL: open)
    `CREATE TABLE members (id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL REFERENCES groups(id), family INTEGER NOT NULL,
       prefix TEXT NOT NULL, net INTEGER NOT NULL, plen INTEGER NOT NULL, from_ms INTEGER NOT NULL, to_ms INTEGER)`,
    ...Object.entries(ROLLUPS).map(([t, keys]) =>
      `CREATE TABLE ${t} (${keys.map((k) => `${k} ${k === 'table_name' ? 'TEXT' : 'INTEGER'} NOT NULL`).join(', ')}, ${cols(colsOf(t as RollupName))}, PRIMARY KEY (${keys.join(', ')})) WITHOUT ROWID`),
    `CREATE INDEX host_5m_host ON host_5m (host_id, bucket)`,
    `CREATE INDEX host_hour_host ON host_hour (host_id, bucket)`,
    `CREATE INDEX host_day_host ON host_day (host_id, bucket)`,
    `CREATE INDEX host_period_host ON host_period (host_id, period_start)`,
  ].join(';\n'),
  // 2: quotas (src/ledger/quota.ts): definitions, per-period state, blocked hosts
  [
    `CREATE TABLE quotas (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, limit_bytes TEXT NOT NULL,
       per TEXT NOT NULL, dir TEXT NOT NULL, action TEXT NOT NULL, cmd TEXT, created_ms INTEGER NOT NULL, UNIQUE (kind, target))`,
    `CREATE TABLE quota_state (quota_id INTEGER NOT NULL, period_start INTEGER NOT NULL, warned_ms INTEGER, over_ms INTEGER,
       PRIMARY KEY (quota_id, period_start))`,
    `CREATE TABLE quota_block (quota_id INTEGER NOT NULL, period_start INTEGER NOT NULL, host TEXT NOT NULL, blocked_ms INTEGER NOT NULL,
       lifted_ms INTEGER, PRIMARY KEY (quota_id, period_start, host))`,
  ].join(';\n'),
  // 3: host hour/day/period rollups folded from the 5-minute buckets after the commit
  // (Ledger.fold); a ledger of schema 1-2 had them written at ingest: all folded
  `INSERT INTO settings (key, value) SELECT 'folded_until', coalesce(MAX(bucket) + ${300_000}, 0) FROM host_5m`,
  // 4: groups take IPv6 prefixes: members.net is the network address as a BLOB, big-endian,
  // 4 bytes (family 4) or 16 (family 6), so both families order by (family, net); the IPv4
  // INTEGERs of schema 1-3 become their 4 bytes
  [
    `CREATE TABLE members_new (id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL REFERENCES groups(id), family INTEGER NOT NULL,
       prefix TEXT NOT NULL, net BLOB NOT NULL, plen INTEGER NOT NULL, from_ms INTEGER NOT NULL, to_ms INTEGER)`,
    `INSERT INTO members_new (id, group_id, family, prefix, net, plen, from_ms, to_ms)
       SELECT id, group_id, family, prefix, unhex(printf('%08x', net)), plen, from_ms, to_ms FROM members`,
    `DROP TABLE members`,
    `ALTER TABLE members_new RENAME TO members`,
  ].join(';\n'),
];

export interface OpenOptions {
  readonly?: boolean;
  /** Create the file (and its folder) when missing (the collector, group add). */
  create?: boolean;
}

/** Opens (and if needed creates or migrates) a ledger. */
export function openLedgerDb(path: string, opts: OpenOptions = {}): DB {
  const exists = existsSync(path);
  if (!exists && !opts.create) {
    throw new ResourceError('ENOLEDGER', `no ledger at ${path}`, { path, hint: 'run `xttraffic collect` first (or point --db / XTT_DB at the ledger)' });
  }
  if (!exists) {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (e) {
      throw new ResourceError('EACCES', `cannot create ${dirname(path)}: ${(e as Error).message}`, { path });
    }
  }
  if (exists) checkHeader(path);
  let db: DB;
  try {
    db = new Database(path, { readonly: Boolean(opts.readonly) && exists, fileMustExist: exists });
  } catch (e) {
    throw new ResourceError((e as { code?: string }).code ?? 'EOPEN', `cannot open ledger ${path}: ${(e as Error).message}`, { path });
  }
  try {
    checkFile(db, path);
    if (!db.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
    }
    db.pragma('busy_timeout = 5000');
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/**
 * A ledger of a newer schema, as its file header says (user_version at byte 60, application_id
 * at 68, big-endian), refused before SQLite opens it: a read-only open of a WAL file leaves
 * -wal and -shm files beside it, and a refused file gets nothing written, beside it either.
 * (A schema change still only in an uncheckpointed WAL is caught by checkFile.)
 */
function checkHeader(path: string): void {
  const h = Buffer.alloc(100);
  let n = 0;
  try {
    const fd = openSync(path, 'r');
    try {
      n = readSync(fd, h, 0, 100, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return; // opening it says why
  }
  if (n < 100 || h.subarray(0, 16).toString('latin1') !== 'SQLite format 3\0') return;
  const version = h.readUInt32BE(60);
  if (h.readUInt32BE(68) === XTT_APP_ID && version > SCHEMA_VERSION) throw newerError(path, version);
}

function newerError(path: string, version: number): VersionError {
  return new VersionError('ENEWERLEDGER', `${path} has ledger schema ${version}, newer than this xttraffic's ${SCHEMA_VERSION}: nothing was written`, { path, hint: 'use the xttraffic version that wrote it, or a newer one' });
}

/** Refuses a file that is not ours, or of a newer schema; only reads. */
function checkFile(db: DB, path: string): void {
  let appId: number;
  let version: number;
  let tables: number;
  try {
    appId = db.pragma('application_id', { simple: true }) as number;
    version = db.pragma('user_version', { simple: true }) as number;
    tables = (db.prepare(`SELECT count(*) AS n FROM sqlite_master`).get() as { n: number }).n;
  } catch (e) {
    // only SQLite's own verdicts on the file's contents mean "not a ledger"; a full disk, an
    // I/O error or a lock (SQLITE_FULL, SQLITE_IOERR_*, SQLITE_BUSY, SQLITE_CANTOPEN) says
    // nothing about the file, and telling an operator to use a new file then would lose a ledger
    const code = (e as { code?: unknown }).code;
    if (code !== 'SQLITE_NOTADB' && code !== 'SQLITE_CORRUPT') {
      throw new RuntimeError('ELEDGERIO', `${path}: cannot read the ledger: ${(e as Error).message}${typeof code === 'string' ? ` (${code})` : ''}: nothing was written`, { path, hint: 'a full disk or an I/O error: free space (df) or check the device, then retry; the ledger file is not touched' });
    }
    throw new VersionError('ENOTLEDGER', `${path} is not an xttraffic ledger: ${(e as Error).message}`, { path, hint: 'point --db / XTT_DB at an xttraffic ledger or at a new file' });
  }
  if (appId !== XTT_APP_ID && (appId !== 0 || tables > 0)) {
    throw new VersionError('ENOTLEDGER', `${path} is not an xttraffic ledger (SQLite application_id ${appId}, ${tables} schema objects): nothing was written`, { path, hint: 'point --db / XTT_DB at an xttraffic ledger or at a new file' });
  }
  if (version > SCHEMA_VERSION) {
    throw newerError(path, version);
  }
}

function migrate(db: DB): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version >= SCHEMA_VERSION) return;
  db.transaction(() => {
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`application_id = ${XTT_APP_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

export interface Settings {
  /** Default billing profile for hosts: day 1..31 and IANA zone. */
  billingDay: number;
  tz: string;
  keep5mDays: number;
  keepHourDays: number;
  /** 0: forever */
  keepDayDays: number;
  keepGroup5mDays: number;
  keepIntervalsDays: number;
}

export const DEFAULT_SETTINGS: Settings = {
  billingDay: 1, tz: 'UTC', keep5mDays: 35, keepHourDays: 400, keepDayDays: 0, keepGroup5mDays: 400, keepIntervalsDays: 400,
};

export function getSettings(db: DB): Settings {
  const s: Settings = { ...DEFAULT_SETTINGS };
  for (const r of db.prepare(`SELECT key, value FROM settings`).all() as Array<{ key: string; value: string }>) {
    if (r.key in s) {
      const k = r.key as keyof Settings;
      (s as unknown as Record<string, unknown>)[k] = typeof DEFAULT_SETTINGS[k] === 'number' ? Number(r.value) : r.value;
    }
  }
  return s;
}

export function setSetting(db: DB, key: keyof Settings, value: string | number): void {
  db.prepare(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(key, String(value));
}

/** Host 5-minute buckets before this instant are in host_hour/day/period (0: none folded yet). */
export function foldedUntil(db: DB): number {
  const r = db.prepare(`SELECT value FROM settings WHERE key = 'folded_until'`).get() as { value: string } | undefined;
  return r ? Number(r.value) : 0;
}

export function setFoldedUntil(db: DB, t: number): void {
  db.prepare(`INSERT INTO settings (key, value) VALUES ('folded_until', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(String(t));
}
