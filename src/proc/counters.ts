/**
 * The monotonic counters the ledger reads: /proc/net/xt_traffic_counters/NAME (docs/design.md,
 * "Monotonic counters for the ledger"). Opening or reading never clears anything. A strict
 * parser (a read without `[end]`, a duplicate key, a section out of order, a number beyond
 * 2^64-1: a ParseError naming the file and the line) and a reader with the same safe file
 * reading as the table files. The directory is $XTT_COUNTERS_DIR when set (tests), else
 * /proc/net/xt_traffic_counters. Revision 2 (tables made with the module's reclaim_idle): the
 * head ends in `read: N` and each row has the entry's serial after its key; the collector
 * writes `ack N` after committing read N (ackCounters), which lets idle entries be freed.
 */
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ParseError, ResourceError, RuntimeError, type ParseSource } from '../core/errors.js';
import { alignTo6, formatIPv6, ipValue, isAligned4, isAligned6, isIPv4, mask6ToPrefix, maskToPrefix, numberToIp, parseIPv6 } from '../core/ip.js';
import { checkTableName, tableNameProblem, type TableKind } from './names.js';
import { parseU64, U64_MAX, type KeyColumn } from './parse.js';
import { readTableFile } from './tables.js';

export const COUNTERS_PROC_DIR = '/proc/net/xt_traffic_counters';
export const COUNTERS_MAGIC = 'xt_traffic_counters 1';
/** Revision 2: rows carry serials, the head a read number (tables that reclaim idle entries). */
export const COUNTERS_MAGIC_2 = 'xt_traffic_counters 2';

export interface CountersLocation {
  dir: string;
  fromEnv: boolean;
}

export function countersLocation(env: NodeJS.ProcessEnv = process.env): CountersLocation {
  const d = env['XTT_COUNTERS_DIR'];
  return d ? { dir: resolve(d), fromEnv: true } : { dir: COUNTERS_PROC_DIR, fromEnv: false };
}

/**
 * One section of the counters file: keys in file order, as the table files' key columns
 * (src/proc/parse.ts, KeyColumn): an IPv4 key is one word (the address, host order), an IPv6
 * key four (most significant first), a port one; `keyPrefix` is the table's host prefix (32
 * or 128: bare addresses; 16 for ports). `keyText(section, r)` gives the key as the file has it.
 */
export interface CounterSection extends KeyColumn {
  rows: number;
  /** 8 (traffic) or 10 (ipconn, portconn) counters per row. */
  per: 8 | 10;
  /** The keys as the file has them, for IPv6 and IPv4-per-prefix sections (what keyText() would give; parsed once). */
  keyTexts?: string[] | undefined;
  /** `per` counters per row, in the spec's column order (total_in, total_out, tcp_in, ...). */
  counters: BigUint64Array;
  /**
   * Revision 2: each row's entry serial (never reused within a generation). A key with another
   * serial is another entry (the old one was reclaimed): its values start from zero.
   */
  serials?: BigUint64Array | undefined;
}

export interface CountersReading {
  name: string;
  generation: string;
  options: string[];
  netbase: string;
  netmask: string;
  prefixLength: number;
  /** `family:` (absent: ipv4). */
  family: 'ipv4' | 'ipv6';
  /** `hostprefix:` (absent: 32): the length of every IP key. */
  hostPrefix: number;
  overflow: bigint;
  /** 1, or 2 (rows with serials; `read`, to ack after the commit). */
  revision: 1 | 2;
  /** Revision 2: the number of this read (`read: N`), for `ack N`. */
  read?: bigint;
  traffic?: CounterSection;
  ipconn?: CounterSection;
  portconn?: CounterSection;
}

const SECTIONS: readonly TableKind[] = ['traffic', 'ipconn', 'portconn'];
const HEADER_KEYS = ['name', 'generation', 'options', 'netbase', 'netmask', 'family', 'hostprefix', 'overflow'] as const;
/** Header lines that may be absent (both or neither): a table counted per IPv4 address. */
const OPTIONAL_KEYS = new Set(['family', 'hostprefix']);
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
  if (lines[0] !== COUNTERS_MAGIC && lines[0] !== COUNTERS_MAGIC_2) {
    if (/^xt_traffic_counters \d+$/.test(lines[0] ?? '')) err(0, `unsupported revision: this xttraffic reads "${COUNTERS_MAGIC}" and "${COUNTERS_MAGIC_2}"`);
    err(0, `expected "${COUNTERS_MAGIC}"`);
  }
  const revision = lines[0] === COUNTERS_MAGIC_2 ? 2 : 1;
  const head: Record<string, string> = {};
  const at: Record<string, number> = {};
  let i = 1;
  for (const key of HEADER_KEYS) {
    const prefix = `${key}: `;
    if (OPTIONAL_KEYS.has(key) && (i >= nLines || !lines[i]!.startsWith(prefix))) continue;
    if (i >= nLines) throw new ParseError(k, i + 1, `missing "${key}: ..." line`, undefined, source);
    const line = lines[i]!;
    if (!line.startsWith(prefix)) err(i, `expected "${key}: ..."`);
    head[key] = line.slice(prefix.length);
    at[key] = i;
    i++;
  }
  const name = head['name']!;
  if (tableNameProblem(name) !== undefined) err(1, `name: ${tableNameProblem(name)}`);
  const generation = head['generation']!;
  if (!/^[0-9a-f]{16}$/.test(generation) || generation === '0000000000000000') err(2, 'generation: expected 16 lowercase hex digits, not all zero');
  const options = head['options']!.split(' ').filter((w) => w !== '');
  for (const w of options) if (!OPTION_WORDS.has(w)) err(3, `options: unknown option "${w}"`);
  if ((head['family'] === undefined) !== (head['hostprefix'] === undefined)) {
    err(at['family'] ?? at['hostprefix']!, head['family'] === undefined ? 'hostprefix without a "family: ..." line before it' : 'family without a "hostprefix: ..." line after it');
  }
  const fam = head['family'] ?? 'ipv4';
  if (fam !== 'ipv4' && fam !== 'ipv6') err(at['family']!, `family: "${fam}" is neither ipv4 nor ipv6`);
  const family = fam as 'ipv4' | 'ipv6';
  const bits = family === 'ipv6' ? 128 : 32;
  let prefixLength: number;
  let netbase = head['netbase']!;
  if (family === 'ipv4') {
    if (!isIPv4(netbase)) err(at['netbase']!, 'netbase: not a dotted-quad IPv4 address');
    if (!isIPv4(head['netmask']!)) err(at['netmask']!, 'netmask: not a dotted-quad IPv4 address');
    prefixLength = maskToPrefix(head['netmask']!);
    if (prefixLength < 0) err(at['netmask']!, 'netmask: not contiguous');
    if (!isAligned4(ipValue(netbase), prefixLength)) err(at['netbase']!, `netbase: ${netbase} has host bits set for the /${prefixLength} net`);
  } else {
    const w = new Uint32Array(4);
    if (!parseIPv6(netbase, w)) err(at['netbase']!, `netbase: "${netbase}" is not an IPv6 address (family ipv6)`);
    if (formatIPv6(w) !== netbase) err(at['netbase']!, `netbase: "${netbase}" is not in RFC 5952 form (${formatIPv6(w)})`);
    const m = new Uint32Array(4);
    if (!parseIPv6(head['netmask']!, m)) err(at['netmask']!, `netmask: "${head['netmask']}" is not an IPv6 mask (family ipv6)`);
    prefixLength = mask6ToPrefix(m);
    if (prefixLength < 0) err(at['netmask']!, 'netmask: not contiguous');
    if (formatIPv6(m) !== head['netmask']) err(at['netmask']!, `netmask: "${head['netmask']}" is not in RFC 5952 form (${formatIPv6(m)})`);
    if (!isAligned6(w, prefixLength)) err(at['netbase']!, `netbase: ${netbase} has host bits set for the /${prefixLength} net (${formatIPv6(alignTo6(w, prefixLength))})`);
    netbase = formatIPv6(w);
  }
  let hostPrefix = bits;
  if (head['hostprefix'] !== undefined) {
    const hp = head['hostprefix'];
    hostPrefix = /^(0|[1-9]\d{0,2})$/.test(hp) ? Number(hp) : -1;
    if (hostPrefix < prefixLength || hostPrefix > bits) err(at['hostprefix']!, `hostprefix: "${hp}" is not between the net's length ${prefixLength} and ${bits}`);
  }
  const overflow = parseU64(head['overflow']!);
  if (overflow === undefined) err(at['overflow']!, 'overflow: not an unsigned 64-bit decimal number');
  let read: bigint | undefined;
  if (revision === 2) {
    if (i >= nLines || !lines[i]!.startsWith('read: ')) err(Math.min(i, nLines - 1), 'expected "read: N" (revision 2)');
    read = parseU64(lines[i]!.slice('read: '.length));
    if (read === undefined || read === 0n) err(i, 'read: not a read number 1..2^64-1 in decimal');
    i++;
  }

  const reading: CountersReading = {
    name, generation, options, netbase, netmask: head['netmask']!, prefixLength, family, hostPrefix, overflow: overflow!, revision,
    ...(read !== undefined ? { read } : {}),
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
    reading[kind] = parseSection(kind, lines, i, j, err, family, hostPrefix, revision === 2);
    i = j;
  }
  for (const kind of SECTIONS) {
    if (options.includes(kind) && reading[kind] === undefined) {
      throw new ParseError(k, nLines, `options list ${kind} but there is no [${kind}] section`, undefined, source);
    }
  }
  return reading;
}

function parseSection(kind: TableKind, lines: string[], from: number, to: number, err: (i: number, what: string) => never, family: 'ipv4' | 'ipv6', hostPrefix: number, withSerial: boolean): CounterSection {
  const per = kind === 'traffic' ? 8 : 10;
  const cs = withSerial ? 2 : 1; // the first counter's column
  const serials = withSerial ? new BigUint64Array(to - from) : undefined;
  const rows = to - from;
  const port = kind === 'portconn';
  const v6 = !port && family === 'ipv6';
  const keyPrefix = port ? 16 : hostPrefix;
  const keys = new Uint32Array(v6 ? 4 * rows : rows);
  const counters = new BigUint64Array(rows * per);
  const seen = new Set<number | string>();
  const texts: string[] | undefined = v6 || (!port && keyPrefix !== 32) ? new Array<string>(rows) : undefined;
  const lenText = (l: number) => (l === (v6 ? 128 : 32) ? 'a bare address' : `/${l}`);
  for (let r = 0; r < rows; r++) {
    const li = from + r;
    const f = lines[li]!.split('\t');
    if (f.length !== per + cs) err(li, withSerial ? `expected a key, a serial and ${per} counters separated by one tab (revision 2)` : `expected a key and ${per} counters separated by one tab`);
    const k = f[0]!;
    let key: number | string;
    if (port) {
      if (!/^(0|[1-9]\d{0,4})$/.test(k) || Number(k) > 65535) err(li, 'PORT: not a port number 0..65535 in decimal');
      key = Number(k);
      keys[r] = key;
    } else if (!v6) {
      const slash = k.indexOf('/');
      const v = ipValue(slash < 0 ? k : k.slice(0, slash));
      if (v < 0) err(li, k.includes(':') ? `IP ${k}: an IPv6 key in a table of IPv4 keys (family ipv4)` : `IP ${k}: not a dotted-quad IPv4 address${slash < 0 ? '' : ' and prefix length'}`);
      const kp = slash < 0 ? 32 : /^[1-9]\d?$/.test(k.slice(slash + 1)) && Number(k.slice(slash + 1)) < 32 ? Number(k.slice(slash + 1)) : -1;
      if (kp < 0) err(li, `IP ${k}: the prefix length after "/" must be 1..31 in decimal (a full-length key is the bare address)`);
      if (kp !== keyPrefix) err(li, `IP ${k}: ${lenText(kp)}, but the table's keys are ${lenText(keyPrefix)} (hostprefix ${keyPrefix})`);
      if (!isAligned4(v, kp)) err(li, `IP ${k}: host bits set: a key is its prefix's first address (${numberToIp(v - (v & (0xffffffff >>> kp)))}/${kp})`);
      key = v;
      keys[r] = v;
      if (texts) texts[r] = k;
    } else {
      const slash = k.indexOf('/');
      const addr = slash < 0 ? k : k.slice(0, slash);
      if (!parseIPv6(addr, keys, 4 * r)) err(li, isIPv4(addr) ? `IP ${k}: an IPv4 key in a table of IPv6 keys (family ipv6)` : `IP ${k}: not an IPv6 address${slash < 0 ? '' : ' and prefix length'}`);
      const kp = slash < 0 ? 128 : /^[1-9]\d{0,2}$/.test(k.slice(slash + 1)) && Number(k.slice(slash + 1)) < 128 ? Number(k.slice(slash + 1)) : -1;
      if (kp < 0) err(li, `IP ${k}: the prefix length after "/" must be 1..127 in decimal (a full-length key is the bare address)`);
      const canon = formatIPv6(keys, 4 * r);
      if (canon !== addr) err(li, `IP ${k}: not in RFC 5952 form (${canon}${slash < 0 ? '' : `/${kp}`})`);
      if (kp !== keyPrefix) err(li, `IP ${k}: ${lenText(kp)}, but the table's keys are ${lenText(keyPrefix)} (hostprefix ${keyPrefix})`);
      if (!isAligned6(keys, kp, 4 * r)) err(li, `IP ${k}: host bits set: a key is its prefix's first address (${formatIPv6(alignTo6(keys, kp, 4 * r))}/${kp})`);
      key = k;
      texts![r] = k;
    }
    if (seen.has(key)) err(li, `${port ? 'PORT' : 'IP'} ${k}: the key appears twice in [${kind}]`);
    seen.add(key);
    if (serials) {
      const sv = /^[1-9]\d*$/.test(f[1]!) ? parseU64(f[1]!) : undefined;
      if (sv === undefined) err(li, `serial: "${f[1]}" is not a serial 1..2^64-1 in decimal`);
      serials[r] = sv!;
    }
    for (let c = 0; c < per; c++) {
      const s = f[c + cs]!;
      let v: bigint | undefined;
      if (s.length > 0 && s.length <= 15 && /^(0|[1-9]\d*)$/.test(s)) v = BigInt(Number(s));
      else v = parseU64(s);
      if (v === undefined) {
        err(li, /^\d+$/.test(s) && s.length > 0 && s[0] !== '0' ? `counter ${c + 1}: ${s} is beyond 2^64-1 (${U64_MAX})` : `counter ${c + 1}: not an unsigned decimal number`);
      }
      counters[r * per + c] = v!;
    }
  }
  return { rows, per, family: port ? 'port' : family, keyWords: v6 ? 4 : 1, keyPrefix, keys, counters, keyTexts: texts, ...(serials ? { serials } : {}) };
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
 * Revision 2: tells the kernel that read `n` of table `name` is committed (`ack N`), so
 * entries idle since may be freed. Only after the commit: an ack lost (a crash before it)
 * only delays reclaiming. Needs CAP_NET_ADMIN.
 */
export async function ackCounters(name: string, n: bigint, loc: CountersLocation = countersLocation()): Promise<void> {
  checkTableName(name);
  const path = join(loc.dir, name);
  try {
    await writeFile(path, `ack ${n}\n`, { flag: 'w' });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new RuntimeError(err.code ?? 'EIO', `ack ${n} to ${path} failed: ${err.message}`, { path, cause: e });
  }
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
