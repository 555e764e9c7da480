/**
 * Reading /proc/net/xt_traffic/ tables: one open, one snapshot (docs/design.md): the kernel
 * takes the snapshot when the file is opened, so reading it in chunks gives the same result as
 * one read. Opening with `clear` (O_RDWR) reads and clears in that one snapshot.
 *
 * Any directory of files in the kernel's formats works too ($XTT_PROC_DIR): there, a FIFO, a
 * device or an absurdly large file is refused with a message instead of hanging or exhausting
 * memory.
 */
import { constants, readSync } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProcLocation } from '../core/deps.js';
import { ResourceError, RuntimeError, XtError } from '../core/errors.js';
import { XT_TRAFFIC_SUFFIX_INFO, checkTableName, procDirFromEnv, tableFile, type TableKind } from './names.js';
import { parseInfo, parseTable, rowsFromColumns, type Columns, type RowOf, type TableInfo } from './parse.js';

/** What NAME_info says of the keys of the table's IP files (parseTable checks them against it). */
export function keysOfInfo(info: TableInfo | undefined): { family?: 'ipv4' | 'ipv6'; hostPrefix?: number } {
  return info === undefined ? {} : { family: info.family, hostPrefix: info.hostPrefix };
}

export { procDirFromEnv } from './names.js';

export type { ProcLocation } from '../core/deps.js';

export function procLocation(env: NodeJS.ProcessEnv = process.env): ProcLocation {
  return { dir: procDirFromEnv(env), fromEnv: Boolean(env['XTT_PROC_DIR']) };
}

/** The largest table file read (a 1,048,576-row table is about 100 MiB). */
export const MAX_TABLE_BYTES = 512 * 1024 * 1024;

/**
 * Reads a whole file of a table (latin1). Refuses anything that is not a regular file (/proc
 * files are regular files of size 0) and anything larger than `maxBytes`.
 */
export async function readTableFile(path: string, clear: boolean, maxBytes = MAX_TABLE_BYTES): Promise<string> {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
  const fh = await open(path, (clear ? constants.O_RDWR : constants.O_RDONLY) | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      const what = st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : st.isDirectory() ? 'a directory' : 'not a regular file';
      throw Object.assign(new Error(`${path} is ${what}`), { code: 'ENOTREG', path });
    }
    if (st.size > maxBytes) throw Object.assign(new Error(`${path} has ${st.size} bytes`), { code: 'EFBIG', path });
    // One buffer, filled in place and grown only when a read filled it: the module's files are
    // seq_files, whose read() returns about a page at a time (a fresh buffer per read, doubled
    // every time, made `read` of 65,536 rows ~10x slower: bench, 30 Nov 2026).
    let buf = Buffer.allocUnsafe(Math.max(65536, Math.min(st.size + 1, maxBytes + 1)));
    let total = 0;
    for (;;) {
      if (total === buf.length) {
        const grown = Buffer.allocUnsafe(Math.min(buf.length * 2, maxBytes + 1));
        buf.copy(grown, 0, 0, total);
        buf = grown;
      }
      // read(2) in this thread: the module's seq_files return a page per read, and each
      // fh.read() was a round trip through libuv's thread pool (a wake-up, a context switch
      // and a promise per 4 KiB: /proc/kallsyms, 1,330 reads, ~85 ms CPU against ~43 ms so);
      // the event loop gets a turn after every MiB, so a long read does not stall it
      const bytesRead = readSync(fh.fd, buf, total, buf.length - total, null);
      if (bytesRead === 0) break;
      if (((total + bytesRead) >>> 20) !== (total >>> 20)) await new Promise((r) => setImmediate(r));
      total += bytesRead;
      if (total > maxBytes) throw Object.assign(new Error(`${path} is larger than ${maxBytes} bytes`), { code: 'EFBIG', path });
    }
    return buf.toString('latin1', 0, total);
  } finally {
    await fh.close();
  }
}

function parseSource(path: string, loc: ProcLocation) {
  return {
    path,
    hint: loc.fromEnv
      ? `the file comes from XTT_PROC_DIR=${loc.dir}: it must be an exact copy of a /proc/net/xt_traffic file (unset XTT_PROC_DIR to read the kernel's)`
      : undefined,
  };
}

/** Turns a failed open/read of a table file into a typed error saying what to do. */
export function tableReadError(err: unknown, name: string, kind: TableKind | 'info', clear: boolean, loc: ProcLocation, dirExists: boolean): XtError {
  if (err instanceof XtError) return err;
  const e = err as NodeJS.ErrnoException;
  const path = join(loc.dir, tableFile(name, kind));
  const sys = { syscall: e.syscall, path, cause: err } as const;
  const errno = typeof e.errno === 'number' ? { errno: e.errno } : {};
  const envHint = loc.fromEnv ? `XTT_PROC_DIR=${loc.dir} is set: unset it to read the kernel's tables` : undefined;
  switch (e.code) {
    case 'ENOENT':
      if (!dirExists) {
        if (loc.fromEnv) {
          return new ResourceError('ENOPROCDIR', `XTT_PROC_DIR=${loc.dir}: no such directory`, { ...sys, ...errno, hint: 'point XTT_PROC_DIR at a folder of table files, or unset it to read /proc/net/xt_traffic' });
        }
        return new ResourceError('ENOMODULE', `${loc.dir} does not exist: the xt_traffic module is not loaded`, {
          ...sys, ...errno, hint: 'load it with `xttraffic load` and add a rule with `xttraffic rule add`',
        });
      }
      if (kind === 'traffic' || kind === 'info') {
        return new ResourceError('ENOTABLE', `no table "${name}" ${loc.fromEnv ? `in XTT_PROC_DIR=${loc.dir}` : 'in this network namespace'} (${path} does not exist)`, {
          ...sys, ...errno, hint: envHint ?? '`xttraffic status` lists the tables; a table exists while a rule with --name NAME exists',
        });
      }
      return new ResourceError('ENOTABLE', `table "${name}" does not count ${kind} (${path} does not exist)`, {
        ...sys, ...errno, hint: envHint ?? `its rule needs --${kind}; \`xttraffic status\` shows each table's options`,
      });
    case 'EACCES':
    case 'EPERM':
      return new ResourceError(e.code, `permission denied reading ${path}${clear ? ' for clearing' : ''}`, {
        ...sys, ...errno,
        hint: clear
          ? '--clear opens the file read-write, which needs root or CAP_NET_ADMIN'
          : 'run as root, or load the module with proc_uid=/proc_gid=/proc_perms= to open the files to a user or group',
      });
    case 'ENOTREG':
    case 'EISDIR':
      return new ResourceError('ENOTREG', `${e.code === 'EISDIR' ? `${path} is a directory` : e.message}: a table file must be a regular file`, { path, ...(envHint ? { hint: envHint } : {}) });
    case 'EFBIG':
      return new ResourceError('EFBIG', `${e.message}: a table file is at most ${MAX_TABLE_BYTES} bytes`, { path, ...(envHint ? { hint: envHint } : {}) });
    default:
      return new RuntimeError(e.code ?? 'EIO', `reading ${path} failed: ${e.message}`, { ...sys, ...errno });
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export interface ReadTableOptions<K extends TableKind = TableKind> {
  /** Which file of the table (default traffic: /proc/net/xt_traffic/NAME). */
  kind?: K;
  /** Read and clear in one atomic snapshot (open O_RDWR; needs root or CAP_NET_ADMIN). */
  clear?: boolean;
  /** Default: $XTT_PROC_DIR, else /proc/net/xt_traffic (the current network namespace's). */
  proc?: ProcLocation;
  /** How a file is read (default readTableFile; the CLI passes deps.readProcFile). */
  readFile?: (path: string, clear: boolean) => Promise<string>;
  /** The family of the IP keys, when known (NAME_info's): keys of the other one are an error. */
  family?: 'ipv4' | 'ipv6' | undefined;
  /** The length of every IP key, when known (NAME_info's hostprefix). */
  hostPrefix?: number | undefined;
}

/** Reads and parses one table file in one atomic snapshot, as columns. */
export async function readColumns(name: string, kind: TableKind, opts: Omit<ReadTableOptions, 'kind'> = {}): Promise<Columns> {
  checkTableName(name);
  const loc = opts.proc ?? procLocation();
  const clear = opts.clear ?? false;
  const path = join(loc.dir, tableFile(name, kind));
  let text: string;
  try {
    text = await (opts.readFile ?? readTableFile)(path, clear);
  } catch (err) {
    throw tableReadError(err, name, kind, clear, loc, await exists(loc.dir));
  }
  return parseTable(kind, text, parseSource(path, loc), { family: opts.family, hostPrefix: opts.hostPrefix });
}

/**
 * Reads table NAME (by default its traffic file) in one atomic snapshot and parses it.
 *   const rows = await readTable('RSN');                       // TrafficRow[]
 *   const ports = await readTable('RSN', { kind: 'portconn' }); // PortConnRow[]
 *   const rows = await readTable('RSN', { clear: true });       // read and clear, losslessly
 */
export async function readTable<K extends TableKind = 'traffic'>(name: string, opts: ReadTableOptions<K> = {}): Promise<RowOf<K>[]> {
  const kind = (opts.kind ?? 'traffic') as K;
  return rowsFromColumns(kind, await readColumns(name, kind, opts));
}

/** Reads and parses NAME_info. */
export async function readInfo(name: string, opts: Pick<ReadTableOptions, 'proc' | 'readFile'> = {}): Promise<TableInfo> {
  checkTableName(name);
  const loc = opts.proc ?? procLocation();
  const path = join(loc.dir, tableFile(name, 'info'));
  let text: string;
  try {
    text = await (opts.readFile ?? readTableFile)(path, false);
  } catch (err) {
    throw tableReadError(err, name, 'info', false, loc, await exists(loc.dir));
  }
  return parseInfo(text, parseSource(path, loc));
}

/**
 * Names of the tables (from the NAME_info files), sorted. A missing /proc/net/xt_traffic (the
 * module is not loaded) lists none; a missing $XTT_PROC_DIR is an error.
 */
export async function listTables(opts: { proc?: ProcLocation } = {}): Promise<string[]> {
  const loc = opts.proc ?? procLocation();
  let names: string[];
  try {
    names = await readdir(loc.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !loc.fromEnv) return [];
    throw tableReadError(err, '', 'info', false, loc, false);
  }
  return names
    .filter((n) => n.endsWith(XT_TRAFFIC_SUFFIX_INFO))
    .map((n) => n.slice(0, -XT_TRAFFIC_SUFFIX_INFO.length))
    .sort();
}
