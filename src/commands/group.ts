/** `xttraffic group add|del|list`: groups of prefixes with validity dates and a billing profile. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { dbPathFromEnv, openLedgerDb } from '../ledger/db.js';
import { addMembers, endMembers, listGroups, type Group } from '../ledger/groups.js';
import { checkBillingDay, checkZone, iso, parseTime } from '../ledger/periods.js';
import { renderTable } from '../output/format.js';
import { emit, examples, optsOf } from '../cmdline/options.js';

interface GroupOpts {
  db?: string;
  from?: string;
  to?: string;
  billingDay?: string;
  tz?: string;
}

function groupsText(gs: Group[]): string {
  if (gs.length === 0) return 'no groups\n';
  const rows: string[][] = [];
  for (const g of gs) {
    if (g.members.length === 0) rows.push([g.name, String(g.billingDay), g.tz, '', '', '']);
    for (const m of g.members) rows.push([g.name, String(g.billingDay), g.tz, m.prefix, iso(m.from), m.to === null ? '' : iso(m.to)]);
  }
  return renderTable({ headers: ['GROUP', 'DAY', 'ZONE', 'PREFIX', 'FROM', 'TO'], align: ['left', 'right', 'left', 'left', 'left', 'left'], rows });
}

const json = (g: Group) => ({ name: g.name, billingDay: g.billingDay, tz: g.tz, members: g.members.map((m) => ({ prefix: m.prefix, from: iso(m.from), to: m.to === null ? null : iso(m.to) })) });

export function registerGroup(program: Command, deps: Deps): void {
  const group = program.command('group').description('groups of prefixes (a customer, a town) with validity dates and a billing day and zone');
  group
    .command('add')
    .description('add prefixes to a group (created if new); overlapping another group at the same time is refused')
    .argument('<name>', 'group name')
    .argument('<cidr...>', 'prefixes a.b.c.d/N or IPv6 2001:db8:100::/48 (or addresses); a host prefix is billed whole: a member longer than a host prefix the ledger counts is refused')
    .option('--db <file>', 'the ledger (default $XTT_DB or /var/lib/xttraffic/ledger.db)')
    .option('--from <date>', 'membership starts (YYYY-MM-DD in the group\'s zone, or ISO with Z/offset; default now)')
    .option('--to <date>', 'membership ends (exclusive; default open)')
    .option('--billing-day <n>', 'billing day 1..31 (clamped to the month\'s end; default 1)')
    .option('--tz <zone>', 'IANA time zone of the billing periods (default UTC)')
    .addHelpText('after', examples([
      'xttraffic group add town-a 10.1.0.0/16 10.2.0.0/16 --billing-day 15 --tz Europe/Berlin',
      'xttraffic group add cust-42 192.0.2.0/28 --from 2026-03-01',
      'xttraffic group add cust1 2001:db8:100::/48 10.1.0.0/24   # IPv6 /64 hosts inside the /48 and the IPv4 /24',
    ]))
    .action((name: string, cidrs: string[], _o: GroupOpts, cmd: Command) => {
      const o = optsOf<GroupOpts>(cmd);
      const day = o.billingDay !== undefined ? checkBillingDay(o.billingDay) : undefined;
      const tz = o.tz !== undefined ? checkZone(o.tz) : undefined;
      const db = openLedgerDb(dbPathFromEnv(deps.env, o.db), { create: true });
      try {
        const existing = listGroups(db).find((g) => g.name === name);
        const zone = tz ?? existing?.tz ?? 'UTC';
        const now = deps.now();
        const from = o.from !== undefined ? parseTime(o.from, zone, '--from') : now;
        const to = o.to !== undefined ? parseTime(o.to, zone, '--to') : null;
        const g = addMembers(db, name, cidrs, { from, to, billingDay: day, tz, now });
        emit(deps, o.json, json(g), () => groupsText([g]));
      } finally {
        db.close();
      }
    });
  group
    .command('del')
    .description('end a group\'s memberships (the named prefixes, or all) now or at --to; billed history stays')
    .argument('<name>', 'group name')
    .argument('[cidr...]', 'prefixes to end (default: all of the group)')
    .option('--db <file>', 'the ledger')
    .option('--to <date>', 'when the memberships end (default now)')
    .action((name: string, cidrs: string[], _o: GroupOpts, cmd: Command) => {
      const o = optsOf<GroupOpts>(cmd);
      const db = openLedgerDb(dbPathFromEnv(deps.env, o.db));
      try {
        const zone = listGroups(db).find((g) => g.name === name)?.tz ?? 'UTC';
        const at = o.to !== undefined ? parseTime(o.to, zone, '--to') : deps.now();
        const g = endMembers(db, name, cidrs, at);
        emit(deps, o.json, json(g), () => groupsText([g]));
      } finally {
        db.close();
      }
    });
  group
    .command('list')
    .description('the groups, their billing profile and memberships')
    .option('--db <file>', 'the ledger')
    .action((_o: GroupOpts, cmd: Command) => {
      const o = optsOf<GroupOpts>(cmd);
      const db = openLedgerDb(dbPathFromEnv(deps.env, o.db), { readonly: true });
      try {
        const gs = listGroups(db);
        emit(deps, o.json, { groups: gs.map(json) }, () => groupsText(gs));
      } finally {
        db.close();
      }
    });
}
