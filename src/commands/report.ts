/** `xttraffic report`: totals per host and per group over a billing period or a range. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { UsageError } from '../core/errors.js';
import { dbPathFromEnv, getSettings, openLedgerDb } from '../ledger/db.js';
import { listGroups } from '../ledger/groups.js';
import { iso, parseTime } from '../ledger/periods.js';
import { buildReport, type Report } from '../ledger/query.js';
import { renderReportCsv, renderReportText, reportJsonChunks } from '../output/ledger.js';
import { examples, optsOf, positiveInt } from '../cmdline/options.js';

interface ReportOpts {
  db?: string;
  period?: string;
  from?: string;
  to?: string;
  group?: string;
  ip?: string;
  top?: number;
  '95th'?: boolean;
  csv?: boolean;
}

function toJsonDoc(r: Report) {
  const at = (t: number) => iso(t);
  return {
    ...r,
    from: at(r.from),
    to: at(r.to),
    coverage: { first: r.coverage.first === null ? null : at(r.coverage.first), last: r.coverage.last === null ? null : at(r.coverage.last), events: r.coverage.events.map((e) => ({ ...e, from: e.from === null ? null : at(e.from), to: at(e.to) })) },
    groups: r.groups.map((g) => ({ ...g, from: at(g.from), to: at(g.to), ...(g.p95 ? { p95: { ...g.p95, excluded: g.p95.excluded.map((x) => ({ ...x, from: at(x.from), to: at(x.to) })) } } : {}) })),
    hosts: r.hosts.map((h) => ({ ...h, ...(h.p95 ? { p95: { ...h.p95, excluded: h.p95.excluded.map((x) => ({ ...x, from: at(x.from), to: at(x.to) })) } } : {}) })),
  };
}

export function registerReport(program: Command, deps: Deps): void {
  program
    .command('report')
    .description('totals per host and per group (bytes in/out by TCP/UDP/OTHER, connections) over a billing period or a range')
    .option('--db <file>', 'the ledger (default $XTT_DB or /var/lib/xttraffic/ledger.db)')
    .option('--period <YYYY-MM>', 'the billing period starting in that month (default: the current one)')
    .option('--from <time>', 'start of a range (YYYY-MM-DD, or ISO with Z/offset; on 5-minute boundaries)')
    .option('--to <time>', 'end of the range (exclusive)')
    .option('--group <name>', 'one group: its billing profile, its hosts as billed')
    .option('--ip <addr>', 'one host: an IPv4 or IPv6 address or a host prefix (2001:db8:0:1::/64; an IPv6 address means the prefix counting it)')
    .option('--top <n>', 'only the N hosts with the most bytes', positiveInt('--top'))
    .option('--95th', '95th percentile of 5-minute rates per direction (groups; with --ip the host)')
    .option('--csv', 'CSV with exact integers')
    .addHelpText('after', examples([
      'xttraffic report --period 2026-02',
      'xttraffic report --group town-a --period 2026-02 --95th',
      'xttraffic report --from 2026-02-01 --to 2026-02-08 --top 20',
      'xttraffic report --period 2026-02 --csv > feb.csv',
    ]))
    .action((_o: ReportOpts, cmd: Command) => {
      const o = optsOf<ReportOpts>(cmd);
      if (o.json && o.csv) throw new UsageError('--json and --csv exclude each other');
      const db = openLedgerDb(dbPathFromEnv(deps.env, o.db), { readonly: true });
      try {
        db.defaultSafeIntegers(true);
        const zone = o.group !== undefined ? (listGroups(db).find((g) => g.name === o.group)?.tz ?? 'UTC') : getSettings(db).tz;
        const r = buildReport(db, {
          period: o.period, group: o.group, ip: o.ip, top: o.top, p95: o['95th'], now: deps.now(),
          from: o.from !== undefined ? parseTime(o.from, zone, '--from') : undefined,
          to: o.to !== undefined ? parseTime(o.to, zone, '--to') : undefined,
        });
        if (o.csv) deps.stdout.write(renderReportCsv(r));
        else if (o.json) {
          for (const chunk of reportJsonChunks(toJsonDoc(r))) deps.stdout.write(chunk);
          deps.stdout.write('\n');
        }
        else deps.stdout.write(renderReportText(r));
      } finally {
        db.close();
      }
    });
}
