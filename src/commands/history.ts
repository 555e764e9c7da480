/** `xttraffic history ADDR|GROUP`: a host's or a group's series by hour, day or billing month. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { UsageError } from '../core/errors.js';
import { dbPathFromEnv, openLedgerDb } from '../ledger/db.js';
import { iso, parseTime } from '../ledger/periods.js';
import { history, type Step } from '../ledger/query.js';
import { renderHistoryCsv, renderHistoryText } from '../output/ledger.js';
import { emit, examples, optsOf } from '../cmdline/options.js';

interface HistoryOpts {
  db?: string;
  step?: string;
  from?: string;
  to?: string;
  csv?: boolean;
}

export function registerHistory(program: Command, deps: Deps): void {
  program
    .command('history')
    .description('a host\'s or a group\'s series from the ledger (hour, day, or billing month)')
    .argument('<who>', 'an IPv4 or IPv6 address (an IPv6 address means the host prefix counting it), a host prefix (2001:db8:0:1::/64) or a group name')
    .option('--db <file>', 'the ledger (default $XTT_DB or /var/lib/xttraffic/ledger.db)')
    .option('--step <step>', 'hour, day or month (billing periods)', 'day')
    .option('--from <time>', 'first bucket (YYYY-MM-DD UTC, or ISO with Z/offset)')
    .option('--to <time>', 'end (exclusive)')
    .option('--csv', 'CSV with exact integers')
    .addHelpText('after', examples(['xttraffic history 10.0.0.5 --step hour', 'xttraffic history town-a --step month --json']))
    .action((who: string, _o: HistoryOpts, cmd: Command) => {
      const o = optsOf<HistoryOpts>(cmd);
      const step = o.step ?? 'day';
      if (!['hour', 'day', 'month'].includes(step)) throw new UsageError(`--step ${step}: must be hour, day or month`);
      if (o.json && o.csv) throw new UsageError('--json and --csv exclude each other');
      const db = openLedgerDb(dbPathFromEnv(deps.env, o.db), { readonly: true });
      try {
        db.defaultSafeIntegers(true);
        const h = history(db, who, step as Step, o.from !== undefined ? parseTime(o.from, 'UTC', '--from') : undefined, o.to !== undefined ? parseTime(o.to, 'UTC', '--to') : undefined);
        if (o.csv) deps.stdout.write(renderHistoryCsv(h));
        else emit(deps, o.json, { ...h, points: h.points.map((p) => ({ ...p, from: iso(p.from), to: iso(p.to) })) }, () => renderHistoryText(h));
      } finally {
        db.close();
      }
    });
}
