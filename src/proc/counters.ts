/**
 * The monotonic counters the ledger reads: /proc/net/xt_traffic_counters/NAME (docs/design.md,
 * "Monotonic counters for the ledger"). Opening or reading never clears anything. A strict
 * parser (a read without `[end]`, a duplicate key, a section out of order, a number beyond
 * 2^64-1: a ParseError naming the file and the line) and a reader with the same safe file
 * reading as the table files. The directory is $XTT_COUNTERS_DIR when set (tests), else
 * /proc/net/xt_traffic_counters.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ParseError, ResourceError, RuntimeError, type ParseSource } from '../core/errors.js';
import { ipValue, maskToPrefix, isIPv4 } from '../core/ip.js';
import { checkTableName, tableNameProblem, type TableKind } from './names.js';
import { parseU64, U64_MAX } from './parse.js';
import { readTableFile } from './tables.js';

export const COUNTERS_PROC_DIR = '/proc/net/xt_traffic_counters';
export const COUNTERS_MAGIC = 'xt_traffic_counters 1';

export interface CountersLocation {
  dir: string;
  fromEnv: boolean;
}

export function countersLocation(env: NodeJS.ProcessEnv = process.env): CountersLocation {
  const d = env['XTT_COUNTERS_DIR'];
  return d ? { dir: resolve(d), fromEnv: true } : { dir: COUNTERS_PROC_DIR, fromEnv: false };
}

/** One section of the counters file: keys (IPv4 as a number, or the port) in file order. */
export interface CounterSection {
  rows: number;
  /** 8 (traffic) or 10 (ipconn, portconn) counters per row. */
  per: 8 | 10;
  keys: Uint32Array;
  /** `per` counters per row, in the spec's column order (total_in, total_out, tcp_in, ...). */
  counters: BigUint64Array;
}

export interface CountersReading {
  name: string;
  generation: string;
  options: string[];
  netbase: string;
  netmask: string;
  prefixLength: number;
  overflow: bigint;
  traffic?: CounterSection;
  ipconn?: CounterSection;
  portconn?: CounterSection;
}

const SECTIONS: readonly TableKind[] = ['traffic', 'ipconn', 'portconn'];
const HEADER_KEYS = ['name', 'generation', 'options', 'netbase', 'netmask', 'overflow'] as const;
const OPTION_WORDS = new Set(['traffic', 'portconn', 'ipconn', 'nointernal', 'onlyinternal', 'clearonread']);

/** Parses the text of a counters file, or throws a ParseError naming the file and line. */
export function parseCounters(text: string, source: ParseSource = {}): CountersReading {
  const k = 'counters' as const;
  if (text.length === 0) throw new ParseError(k, 1, 'empty: the first line must be "xt_traffic_counters 1"', undefined, source);
  const lines = text.split('\n');
  const last = lines.pop();
  const nLines = lines.length;
  const err = (i: number, what: string): never => {
    throw new ParseError(k, i + 1, what, lines[i], source);
  };
  if (last !== '') {
    // the text does not end in a newline: the last line is cut
    throw new ParseError(k, nLines + 1, 'truncated: the last line has no terminating newline (a read without "[end]" is incomplete)', last, source);
  }
  if (lines[0] !== COUNTERS_MAGIC) {
    if (/^xt_traffic_counters \d+$/.test(lines[0] ?? '')) err(0, `unsupported revision: this xttraffic reads "${COUNTERS_MAGIC}"`);
    err(0, `expected "${COUNTERS_MAGIC}"`);
  }
  const head: Record<string, string> = {};
  let i = 1;
  for (const key of HEADER_KEYS) {
    if (i >= nLines) throw new ParseError(k, i + 1, `missing "${key}: ..." line`, undefined, source);
    const line = lines[i]!;
    const prefix = `${key}: `;
    if (!line.startsWith(prefix)) err(i, `expected "${key}: ..."`);
    head[key] = line.slice(prefix.length);
    i++;
  }
  const name = head['name']!;
  if (tableNameProblem(name) !== undefined) err(1, `name: ${tableNameProblem(name)}`);
  const generation = head['generation']!;
  if (!/^[0-9a-f]{16}$/.test(generation) || generation === '0000000000000000') err(2, 'generation: expected 16 lowercase hex digits, not all zero');
  const options = head['options']!.split(' ').filter((w) => w !== '');
  for (const w of options) if (!OPTION_WORDS.has(w)) err(3, `options: unknown option "${w}"`);
  if (!isIPv4(head['netbase']!)) err(4, 'netbase: not a dotted-quad IPv4 address');
  if (!isIPv4(head['netmask']!)) err(5, 'netmask: not a dotted-quad IPv4 address');
  const prefixLength = maskToPrefix(head['netmask']!);
  if (prefixLength < 0) err(5, 'netmask: not contiguous');
  const overflow = parseU64(head['overflow']!);
  if (overflow === undefined) err(6, 'overflow: not an unsigned 64-bit decimal number');

  const reading: CountersReading = {
    name, generation, options, netbase: head['netbase']!, netmask: head['netmask']!, prefixLength, overflow: overflow!,
  };
  let next = 0; // index into SECTIONS of the earliest section still allowed
  for (;;) {
    if (i >= nLines) throw new ParseError(k, i + 1, 'incomplete: no "[end]" line (the read was cut short)', undefined, source);
    const line = lines[i]!;
    if (line === '[end]') {
      if (i !== nLines - 1) err(i + 1, 'text after "[end]"');
      break;
    }
    const m = /^\[(traffic|ipconn|portconn)\]$/.exec(line);
    if (!m) err(i, 'expected a section "[traffic]", "[ipconn]", "[portconn]" or "[end]"');
    const kind = m![1] as TableKind;
    const idx = SECTIONS.indexOf(kind);
    if (idx < next) err(i, `section [${kind}] out of order or repeated (order: traffic, ipconn, portconn)`);
    if (!options.includes(kind)) err(i, `section [${kind}] but the options line does not list ${kind}`);
    next = idx + 1;
    i++;
    let j = i;
    while (j < nLines && !lines[j]!.startsWith('[')) j++;
    reading[kind] = parseSection(kind, lines, i, j, err);
    i = j;
  }
  for (const kind of SECTIONS) {
    if (options.includes(kind) && reading[kind] === undefined) {
      throw new ParseError(k, nLines, `options list ${kind} but there is no [${kind}] section`, undefined, source);
    }
  }
  return reading;
}

function parseSection(kind: TableKind, lines: string[], from: number, to: number, err: (i: number, what: string) => never): CounterSection {
  const per = kind === 'traffic' ? 8 : 10;
  const rows = to - from;
  const keys = new Uint32Array(rows);
  const counters = new BigUint64Array(rows * per);
  const seen = new Set<number>();
  for (let r = 0; r < rows; r++) {
    const li = from + r;
    const f = lines[li]!.split('\t');
    if (f.length !== per + 1) err(li, `expected a key and ${per} counters separated by one tab`);
    let key: number;
    if (kind === 'portconn') {
      if (!/^(0|[1-9]\d{0,4})$/.test(f[0]!) || Number(f[0]) > 65535) err(li, 'PORT: not a port number 0..65535 in decimal');
      key = Number(f[0]);
    } else {
      key = ipValue(f[0]!);
      if (key < 0) err(li, 'IP: not a dotted-quad IPv4 address');
    }
    if (seen.has(key)) err(li, `${kind === 'portconn' ? 'PORT' : 'IP'} ${f[0]}: the key appears twice in [${kind}]`);
    seen.add(key);
    keys[r] = key;
    for (let c = 0; c < per; c++) {
      const s = f[c + 1]!;
      let v: bigint | undefined;
      if (s.length > 0 && s.length <= 15 && /^(0|[1-9]\d*)$/.test(s)) v = BigInt(Number(s));
      else v = parseU64(s);
      if (v === undefined) {
        err(li, /^\d+$/.test(s) && s.length > 0 && s[0] !== '0' ? `counter ${c + 1}: ${s} is beyond 2^64-1 (${U64_MAX})` : `counter ${c + 1}: not an unsigned decimal number`);
      }
      counters[r * per + c] = v!;
    }
  }
  return { rows, per, keys, counters };
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Reads and parses the counters file of table NAME. */
export async function readCounters(name: string, loc: CountersLocation = countersLocation()): Promise<CountersReading> {
  checkTableName(name);
  const path = join(loc.dir, name);
  let text: string;
  try {
    text = await readTableFile(path, false);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') {
      if (!(await isDir(loc.dir))) {
        throw new ResourceError('ENOCOUNTERS', loc.fromEnv ? `XTT_COUNTERS_DIR=${loc.dir}: no such directory` : `${loc.dir} does not exist: the xt_traffic module is not loaded, or it is a version without monotonic counters`, {
          path: loc.dir, hint: loc.fromEnv ? 'point XTT_COUNTERS_DIR at a folder of counters files, or unset it' : 'load the module with `xttraffic load` (a version with /proc/net/xt_traffic_counters)',
        });
      }
      throw new ResourceError('ENOTABLE', `no table "${name}" (${path} does not exist)`, { path, hint: '`xttraffic status` lists the tables' });
    }
    if (err.code === 'EACCES' || err.code === 'EPERM') {
      throw new ResourceError(err.code, `permission denied reading ${path}`, { path, hint: 'run the collector as root (or with the module\'s proc_uid=/proc_gid=)' });
    }
    if (err.code === 'ENOTREG' || err.code === 'EFBIG') throw new ResourceError(err.code, `${err.message}: a counters file must be a regular file of sane size`, { path });
    throw new RuntimeError(err.code ?? 'EIO', `reading ${path} failed: ${err.message}`, { path, cause: e });
  }
  const r = parseCounters(text, { path, ...(loc.fromEnv ? { hint: `the file comes from XTT_COUNTERS_DIR=${loc.dir}: it must have the format of /proc/net/xt_traffic_counters/NAME` } : {}) });
  if (r.name !== name) {
    throw new ParseError('counters', 2, `name: "${r.name}" but the file is ${path}`, `name: ${r.name}`, { path });
  }
  return r;
}

/**
 * The tables of the counters directory, sorted. A missing /proc directory (module not
 * loaded) lists none; a missing $XTT_COUNTERS_DIR is an error. Names that are not table
 * names (editor files in a test folder) are skipped.
 */
export async function listCounterTables(loc: CountersLocation = countersLocation()): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(loc.dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !loc.fromEnv) return [];
    throw new ResourceError('ENOCOUNTERS', `${loc.fromEnv ? `XTT_COUNTERS_DIR=${loc.dir}` : loc.dir}: ${(e as Error).message}`, { path: loc.dir });
  }
  return names.filter((n) => tableNameProblem(n) === undefined).sort();
}
