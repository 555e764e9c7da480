/** `xttraffic read NAME`: one atomic snapshot of a table, as a table, CSV or JSON. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { UsageError } from '../core/errors.js';
import { checkTableName } from '../proc/names.js';
import { readJsonBytes, renderReadCsv, renderReadTable, selectOrder, sortKeys, totalsOfColumns, type ReadReport } from '../output/report.js';
import { readColumns } from '../proc/tables.js';
import { examples, kindOf, optsOf, positiveInt } from '../cmdline/options.js';

interface ReadOptions {
  clear?: boolean;
  conn?: string;
  csv?: boolean;
  sort?: string;
  top?: number;
  human?: boolean;
}


/** Reads the table (in columns: only the rows --human prints ever become objects) and reports. */
async function readReport(deps: Deps, name: string, o: ReadOptions): Promise<ReadReport> {
  const kind = kindOf(o.conn);
  checkTableName(name);
  if (o.sort !== undefined && !sortKeys(kind).includes(o.sort)) {
    throw new UsageError(`--sort ${o.sort}: not a column of ${kind} tables`, { hint: `use one of: ${sortKeys(kind).join(', ')}` });
  }
  const columns = await readColumns(name, kind, { clear: o.clear ?? false, proc: deps.paths.proc, readFile: deps.readProcFile });
  return {
    table: name,
    kind,
    cleared: o.clear ?? false,
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
    .option('--conn <ip|port>', 'read the connection counts per IP or per port instead of the traffic')
    .option('--csv', 'print CSV (no totals line)')
    .option('--sort <key>', 'sort by a column, largest first: total, in, out, tcp, udp, icmp, other, tcp_in, ... or ip/port')
    .option('--top <n>', 'only the first N rows (by total unless --sort)', positiveInt('--top'))
    .option('--human', 'sizes as KiB/MiB/... (connection counts as k/M)')
    .addHelpText('after', examples([
      'xttraffic read lan',
      'xttraffic read lan --sort total --top 10 --human',
      'xttraffic read lan --conn port --sort tcp',
      'sudo xttraffic read lan --clear --json > "lan-$(date +%F).json"',
      'xttraffic read lan --csv > lan.csv',
    ]))
    .action(async (name: string, _o: ReadOptions, cmd: Command) => {
      const o = optsOf<ReadOptions>(cmd);
      if (o.json && o.csv) throw new UsageError('--json and --csv exclude each other');
      const rep = await readReport(deps, name, o);
      // the whole output in one buffer, written once
      deps.stdout.write(o.csv ? renderReadCsv(rep) : o.json ? readJsonBytes(rep) : renderReadTable(rep, o.human ?? false));
    });
}
