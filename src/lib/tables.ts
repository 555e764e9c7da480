/**
 * Reading /proc/net/xt_traffic/ tables: one open, one snapshot (docs/design.md), through the
 * addon when it is there (one read in a worker thread plus a native parse), else through node's
 * fs (also one open: the kernel snapshots at open, so the result is the same).
 */
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NativeBinding, NativeColumns } from './binding.js';
import { ResourceError, RuntimeError, XtError } from './errors.js';
import { nativeRowFormatter, type RowFormatter } from './format-rows.js';
import { XT_TRAFFIC_SUFFIX_INFO, checkTableName, procDirFromEnv, tableFile, type TableKind } from './names.js';

export { procDirFromEnv } from './names.js';
import { parseInfo, parseIpConn, parsePortConn, parseTraffic, type TableInfo } from './parse.js';
import { rowsFromColumns, type RowOf } from './parse-columns.js';

export { rowFromColumns, rowsFromColumns, type AnyRow, type RowOf } from './parse-columns.js';

export interface RawTable {
  text: string;
  /** Present when the addon parsed the text (it was exactly in the kernel's format). */
  columns?: NativeColumns | undefined;
}

/** How a table file is read. `clear` opens it O_RDWR (read and clear in one snapshot). */
export interface TableReader {
  readonly via: 'native' | 'fs';
  readTable(path: string, kind: TableKind, clear: boolean): Promise<RawTable>;
  readText(path: string): Promise<string>;
  /** The addon's output formatter (`read` uses the TypeScript one without it). */
  readonly formatter?: RowFormatter;
}

export function nativeReader(b: NativeBinding): TableReader {
  return {
    via: 'native',
    formatter: nativeRowFormatter(b),
    async readTable(path, kind, clear) {
      const r = await b.readTable(path, kind, { clear });
      // The text is only needed when the native parser declined it: decode it on demand.
      let text: string | undefined;
      return {
        columns: r.columns,
        get text() {
          return (text ??= r.text.toString('latin1'));
        },
      };
    },
    async readText(path) {
      return (await b.readFile(path)).toString('latin1');
    },
  };
}

export const fsReader: TableReader = {
  via: 'fs',
  async readTable(path, _kind, clear) {
    const fh = await open(path, clear ? 'r+' : 'r');
    try {
      return { text: await fh.readFile('latin1') };
    } finally {
      await fh.close();
    }
  },
  async readText(path) {
    return readFile(path, 'latin1');
  },
};

/** Parses a raw table: the addon's columns when present, else the TypeScript parser. */
export function rowsOf<K extends TableKind>(kind: K, raw: RawTable): RowOf<K>[] {
  if (raw.columns) return rowsFromColumns(kind, raw.columns);
  switch (kind) {
    case 'traffic':
      return parseTraffic(raw.text) as RowOf<K>[];
    case 'ipconn':
      return parseIpConn(raw.text) as RowOf<K>[];
    default:
      return parsePortConn(raw.text) as RowOf<K>[];
  }
}

export interface ReadTableOptions<K extends TableKind = TableKind> {
  /** Which file of the table (default traffic: /proc/net/xt_traffic/NAME). */
  kind?: K;
  /** Read and clear in one atomic snapshot (open O_RDWR; needs root or CAP_NET_ADMIN). */
  clear?: boolean;
  /** Default $XTT_PROC_DIR, else /proc/net/xt_traffic (the current network namespace's). */
  procDir?: string;
  /** Default: the addon if it loads, else node's fs. */
  reader?: TableReader;
}

let defaultReaderCache: TableReader | undefined;

/** The addon's reader if it loads, else fs. */
export async function defaultReader(): Promise<TableReader> {
  if (!defaultReaderCache) {
    const { bindingStatus } = await import('./binding.js');
    const b = bindingStatus().binding;
    defaultReaderCache = b ? nativeReader(b) : fsReader;
  }
  return defaultReaderCache;
}

/** Turns a failed open/read of a table file into a typed error saying what to do. */
export function tableReadError(err: unknown, name: string, kind: TableKind | 'info', clear: boolean, procDir: string, dirExists: boolean): XtError {
  if (err instanceof XtError) return err;
  const e = err as NodeJS.ErrnoException;
  const path = join(procDir, tableFile(name, kind));
  const sys = { syscall: e.syscall, path, cause: err } as const;
  const errno = typeof e.errno === 'number' ? { errno: e.errno } : {};
  switch (e.code) {
    case 'ENOENT':
      if (!dirExists) {
        return new ResourceError('ENOMODULE', `${procDir} does not exist: the xt_traffic module is not loaded`, {
          ...sys, ...errno, hint: 'load it with `xttraffic load` and add a rule with `xttraffic rule add`',
        });
      }
      if (kind === 'traffic' || kind === 'info') {
        return new ResourceError('ENOTABLE', `no table "${name}" in this network namespace (${path} does not exist)`, {
          ...sys, ...errno, hint: '`xttraffic status` lists the tables; a table exists while a rule with --name NAME exists',
        });
      }
      return new ResourceError('ENOTABLE', `table "${name}" does not count ${kind} (${path} does not exist)`, {
        ...sys, ...errno, hint: `its rule needs --${kind}; \`xttraffic status\` shows each table's options`,
      });
    case 'EACCES':
    case 'EPERM':
      return new ResourceError(e.code, `permission denied reading ${path}${clear ? ' for clearing' : ''}`, {
        ...sys, ...errno,
        hint: clear
          ? '--clear opens the file read-write, which needs root or CAP_NET_ADMIN'
          : 'run as root, or load the module with proc_uid=/proc_gid=/proc_perms= to open the files to a user or group',
      });
    case 'EFBIG':
      return new ResourceError(e.code, `${path} is larger than allowed`, { ...sys, ...errno });
    default:
      return new RuntimeError(e.code ?? 'EIO', `reading ${path} failed: ${e.message}`, { ...sys, ...errno });
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await readdir(p);
    return true;
  } catch {
    return false;
  }
}

/** Reads one table file in one atomic snapshot. */
export async function readRaw(name: string, kind: TableKind, opts: Omit<ReadTableOptions, 'kind'> = {}): Promise<RawTable> {
  checkTableName(name);
  const procDir = opts.procDir ?? procDirFromEnv();
  const reader = opts.reader ?? (await defaultReader());
  const clear = opts.clear ?? false;
  try {
    return await reader.readTable(join(procDir, tableFile(name, kind)), kind, clear);
  } catch (err) {
    throw tableReadError(err, name, kind, clear, procDir, await exists(procDir));
  }
}

/**
 * Reads table NAME (by default its traffic file) in one atomic snapshot and parses it.
 *   const rows = await readTable('RSN');                       // TrafficRow[]
 *   const ports = await readTable('RSN', { kind: 'portconn' }); // PortConnRow[]
 *   const rows = await readTable('RSN', { clear: true });       // read and clear, losslessly
 */
export async function readTable<K extends TableKind = 'traffic'>(name: string, opts: ReadTableOptions<K> = {}): Promise<RowOf<K>[]> {
  const kind = (opts.kind ?? 'traffic') as K;
  return rowsOf(kind, await readRaw(name, kind, opts));
}

/** Reads and parses NAME_info. */
export async function readInfo(name: string, opts: { procDir?: string; reader?: TableReader } = {}): Promise<TableInfo> {
  checkTableName(name);
  const procDir = opts.procDir ?? procDirFromEnv();
  const reader = opts.reader ?? (await defaultReader());
  let text: string;
  try {
    text = await reader.readText(join(procDir, tableFile(name, 'info')));
  } catch (err) {
    throw tableReadError(err, name, 'info', false, procDir, await exists(procDir));
  }
  return parseInfo(text);
}

/** Names of the tables of the current network namespace (from the NAME_info files), sorted. */
export async function listTables(opts: { procDir?: string } = {}): Promise<string[]> {
  const procDir = opts.procDir ?? procDirFromEnv();
  let names: string[];
  try {
    names = await readdir(procDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw tableReadError(err, '', 'info', false, procDir, true);
  }
  return names
    .filter((n) => n.endsWith(XT_TRAFFIC_SUFFIX_INFO))
    .map((n) => n.slice(0, -XT_TRAFFIC_SUFFIX_INFO.length))
    .sort();
}
