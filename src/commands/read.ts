/** `xttraffic read NAME`: one atomic snapshot of a table, as a table, CSV or JSON. */
import { Option, type Command } from 'commander';
import { join } from 'node:path';
import type { Deps } from '../core/deps.js';
import { RuntimeError, UsageError } from '../core/errors.js';
import { checkTableName } from '../proc/names.js';
import { readJsonBytes, renderReadCsv, renderReadTable, selectOrder, sortKeys, totalsOfColumns, type ReadConfig, type ReadReport } from '../output/report.js';
import type { TableInfo, TableOptions } from '../proc/parse.js';
import { keysOfInfo, readColumns, readInfo } from '../proc/tables.js';
import { connOption, examples, jsonTwin, kindOf, optsOf, positiveInt, type Conn } from '../cmdline/options.js';

interface ReadOptions {
  clear?: boolean;
  conn?: Conn;
  csv?: boolean;
  sort?: string;
  top?: number;
  human?: boolean;
  output?: string;
}

const OPTION_ORDER: Array<keyof TableOptions> = ['traffic', 'portconn', 'ipconn', 'nointernal', 'onlyinternal', 'clearonread'];

function configOf(info: TableInfo | undefined): ReadConfig | null {
  if (info === undefined) return null;
  const c: ReadConfig = { netbase: info.netbase, netmask: info.netmask, options: OPTION_ORDER.filter((w) => info.options[w]) };
  // IPv6 or IPv4 per prefix: say so (IPv4 per address keeps revision 0's output)
  if (info.family !== 'ipv4' || info.hostPrefix !== 32) Object.assign(c, { family: info.family, hostprefix: info.hostPrefix });
  return c;
}


/** Reads the table (in columns: only the rows --human prints ever become objects) and reports. */
async function readReport(deps: Deps, name: string, o: ReadOptions): Promise<ReadReport> {
  const kind = kindOf(o.conn);
  checkTableName(name);
  if (o.sort !== undefined && !sortKeys(kind).includes(o.sort)) {
    throw new UsageError(`--sort ${o.sort}: not a column of ${kind} tables`, { hint: `use one of: ${sortKeys(kind).join(', ')}` });
  }
  // NAME_info first: a --clearonread table clears on every read, so its output is as precious as --clear's
  let info: TableInfo | undefined;
  try {
    info = await readInfo(name, { proc: deps.paths.proc, readFile: deps.readProcFile });
  } catch {
    // no or unreadable info file: the table read reports the real problem; config is null
  }
  const time = new Date(deps.now()).toISOString();
  const columns = await readColumns(name, kind, { clear: o.clear ?? false, proc: deps.paths.proc, readFile: deps.readProcFile, ...keysOfInfo(info) });
  return {
    table: name,
    kind,
    time,
    host: deps.hostname(),
    config: configOf(info),
    cleared: (o.clear ?? false) || (info?.options.clearonread ?? false),
    count: columns.rows,
    columns,
    order: selectOrder(kind, columns, o.sort, o.top),
    totals: totalsOfColumns(kind, columns),
  };
}

export function registerRead(program: Command, deps: Deps): void {
  program
    .command('read')
    .description('read a table in one atomic snapshot (with --clear: read and clear, losing nothing)')
    .argument('<name>', 'table name (the rule\'s --name)')
    .option('--clear', 'read and clear atomically (opens the file read-write; needs root)')
    .addOption(connOption('read the connection counts per IP or per port instead of the traffic'))
    .addOption(new Option('--csv', 'print CSV (rows only: no totals; the snapshot\'s time, host and table configuration are in --json)').conflicts('json'))
    .option('--output <file>', 'write to FILE atomically (FILE.tmp-PID, fsync, rename) instead of stdout')
    .option('--sort <key>', 'sort by a column, largest first: total, in, out, tcp, udp, icmp, other, tcp_in, ... or ip/port')
    .option('--top <n>', 'only the first N rows (by total unless --sort)', positiveInt('--top'))
    .addOption(new Option('--human', 'sizes as KiB/MiB/... (connection counts as k/M) in the aligned table').conflicts(['csv', 'json']))
    .addOption(jsonTwin())
    .addHelpText('after', examples([
      'xttraffic read lan',
      'xttraffic read lan --sort total --top 10 --human',
      'xttraffic read lan --conn port --sort tcp',
      'sudo xttraffic read lan --clear --json > "lan-$(date +%F).json"',
      'xttraffic read lan --csv > lan.csv',
      'sudo xttraffic read lan --clear --json --output /var/lib/xttraffic/lan.json',
    ]))
    .action(async (name: string, _o: ReadOptions, cmd: Command) => {
      const o = optsOf<ReadOptions>(cmd);
      const rep = await readReport(deps, name, o);
      // the whole output in one buffer, written once
      const data = o.csv ? renderReadCsv(rep) : o.json ? readJsonBytes(rep) : renderReadTable(rep, o.human ?? false);
      await deliver(deps, rep, data, o);
    });
}

function errText(e: NodeJS.ErrnoException): string {
  return e.code ? `${e.code}: ${e.message.replace(/^[A-Z]+: /, '')}` : e.message;
}

function what(rep: ReadReport): string {
  const unit = rep.kind === 'portconn' ? 'port' : 'IP';
  return `${rep.count} ${unit}${rep.count === 1 ? '' : 's'}`;
}

/**
 * Writes the output to stdout or --output FILE (atomically). When it cannot be written whole
 * and the read cleared the counters, the data is kept: saved to $TMPDIR (atomically too), or,
 * when even that fails, written to stderr; the error says what was lost and where the data is.
 */
async function deliver(deps: Deps, rep: ReadReport, data: Uint8Array, o: ReadOptions & { json?: boolean }): Promise<void> {
  let failure: string;
  let cause: NodeJS.ErrnoException;
  if (o.output !== undefined) {
    try {
      await deps.writeFileAtomic(o.output, data);
      return;
    } catch (e) {
      cause = e as NodeJS.ErrnoException;
      failure = `writing ${o.output} failed (${errText(cause)}): ${o.output} is unchanged`;
    }
  } else {
    const r = await deps.writeAll(data);
    if (r.error === undefined) return;
    cause = r.error;
    // a reader that stops early ends a non-clearing read quietly, as for any Unix filter
    if (cause.code === 'EPIPE' && !rep.cleared) return;
    failure = `writing the output failed (${errText(cause)}) after ${r.written} of ${data.length} bytes: ${data.length - r.written} bytes were lost`;
  }
  if (!rep.cleared) throw new RuntimeError('EOUTPUT', failure, { cause, errno: cause.errno, syscall: cause.syscall });
  const how = o.clear ? 'read --clear' : 'the table has --clearonread, so this read';
  const lost = `${failure}; ${how} CLEARED the counters of table "${rep.table}" (${what(rep)}, snapshot ${rep.time})`;
  const ext = o.csv ? 'csv' : o.json ? 'json' : 'txt';
  const saved = join(deps.env['TMPDIR'] || '/tmp', `xttraffic-${rep.table}-${rep.time.replace(/[-:]/g, '').replace(/\.\d+/, '')}-${deps.pid}.${ext}`);
  try {
    await deps.writeFileAtomic(saved, data);
  } catch (e) {
    // the last place left: stderr, before the message
    deps.stderr.write(data);
    throw new RuntimeError('EOUTPUT', `${lost}; saving the snapshot to ${saved} failed too (${errText(e as NodeJS.ErrnoException)}): the whole snapshot (${data.length} bytes) was written to stderr above`, { cause });
  }
  throw new RuntimeError('EOUTPUT', `${lost}; the whole snapshot (${data.length} bytes) is saved in ${saved}`, {
    cause,
    path: saved,
    hint: `take the data from ${saved}; the counters now count from zero`,
  });
}
