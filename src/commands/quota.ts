/** `xttraffic quota set|list|del`: byte quotas per billing period for a host or a group. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { UsageError } from '../core/errors.js';
import { dbPathFromEnv, openLedgerDb } from '../ledger/db.js';
import { iso } from '../ledger/periods.js';
import {
  blockedHosts, checkDir, checkPer, deleteQuota, getQuota, listQuotas, parseBytes, quotaUse, setQuota, type Quota, type QuotaAction,
} from '../ledger/quota.js';
import { getSettings } from '../ledger/db.js';
import { periodAt } from '../ledger/periods.js';
import { profileOf } from '../ledger/groups.js';
import { unblock } from '../system/block.js';
import { renderQuotasText } from '../output/ledger.js';
import { emit, examples, optsOf } from '../cmdline/options.js';

interface QuotaOpts {
  db?: string;
  per?: string;
  dir?: string;
  action?: string[];
}

const DB_OPT = ['--db <file>', 'the ledger (default $XTT_DB or /var/lib/xttraffic/ledger.db)'] as const;

const quotaJson = (q: Quota) => ({ kind: q.kind, target: q.target, limit: q.limit, per: q.per, dir: q.dir, action: q.action, ...(q.cmd !== null ? { cmd: q.cmd } : {}) });

/** `--action log`, `--action block`, `--action exec CMD` (the command one quoted word). */
function parseAction(words: string[] | undefined): { action: QuotaAction; cmd: string | null } {
  if (words === undefined || words.length === 0) return { action: 'log', cmd: null };
  const [a, ...rest] = words;
  if (a === 'log' || a === 'block') {
    if (rest.length > 0) throw new UsageError(`--action ${words.join(' ')}: ${a} takes no argument (only exec takes a command)`);
    return { action: a, cmd: null };
  }
  if (a === 'exec') {
    if (rest.length !== 1 || rest[0]!.trim() === '') throw new UsageError(`--action ${words.join(' ')}: exec takes one command, quoted: --action exec 'logger -t quota "$XTT_QUOTA_TARGET"'`);
    return { action: 'exec', cmd: rest[0]! };
  }
  throw new UsageError(`--action ${a}: must be log, block or exec CMD`);
}

export function registerQuota(program: Command, deps: Deps): void {
  const quota = program.command('quota').description('byte quotas per billing period (a host or a group): warn at 80 %, then log, block or run a command; lifted at the period\'s end');
  quota
    .command('set')
    .description('set (or replace) the quota of a host or group; evaluated by the collector after each committed interval')
    .argument('<who>', 'an IPv4 or IPv6 address or host prefix (the default billing profile; an IPv6 address means the prefix counting it) or a group name (its own billing day and zone)')
    .argument('<bytes>', 'the limit: 500G = 500*10^9, 1.5T, 10GiB = 10*2^30, or plain bytes')
    .option(...DB_OPT)
    .option('--per <period>', 'month (the billing period)', 'month')
    .option('--dir <dir>', 'in, out or sum (of in and out)', 'sum')
    .option('--action <action...>', 'log (default), block (ipset xttraffic-block + FORWARD DROP), or exec CMD (on reaching the limit; env XTT_QUOTA_*)')
    .addHelpText('after', examples([
      'xttraffic quota set 10.0.0.5 100G --action block',
      'xttraffic quota set cust-42 2TiB --dir in --action exec \'mail -s "quota $XTT_QUOTA_TARGET" noc@example.net </dev/null\'',
      'xttraffic quota list',
    ]))
    .action((who: string, bytes: string, _o: QuotaOpts, cmd: Command) => {
      const o = optsOf<QuotaOpts>(cmd);
      const limit = parseBytes(bytes);
      const per = checkPer(o.per ?? 'month');
      const dir = checkDir(o.dir ?? 'sum');
      const { action, cmd: command } = parseAction(o.action);
      const db = openLedgerDb(dbPathFromEnv(deps.env, o.db), { create: true });
      try {
        const q = setQuota(db, { target: who, limit, per, dir, action, cmd: command }, Math.round(deps.now()));
        emit(deps, o.json, quotaJson(q), () => `quota ${q.kind} ${q.target}: ${q.limit} bytes ${q.dir} per ${q.per}, action ${q.action}${q.cmd ? ` ${q.cmd}` : ''}\n`);
      } finally {
        db.close();
      }
    });
  quota
    .command('list')
    .description('the quotas with their use in the current billing period and the hosts they block')
    .option(...DB_OPT)
    .action((_o: QuotaOpts, cmd: Command) => {
      const o = optsOf<QuotaOpts>(cmd);
      const db = openLedgerDb(dbPathFromEnv(deps.env, o.db), { create: true });
      try {
        const s = getSettings(db);
        const now = Math.round(deps.now());
        const rows = listQuotas(db).map((q) => {
          const g = q.kind === 'group' ? (db.prepare(`SELECT billing_day AS billingDay, tz FROM groups WHERE name = ?`).get(q.target) as { billingDay: number; tz: string } | undefined) : undefined;
          const prof = q.kind === 'host' ? { billingDay: s.billingDay, tz: s.tz } : g ? profileOf({ billingDay: Number(g.billingDay), tz: g.tz }) : undefined;
          const period = prof ? periodAt(now, prof) : undefined;
          return { quota: q, used: period ? quotaUse(db, q, period).used : 0n, periodStart: period ? period.start : null, blocked: blockedHosts(db, q.id) };
        });
        emit(deps, o.json, rows.map((r) => ({ ...quotaJson(r.quota), used: r.used, periodStart: r.periodStart === null ? null : iso(r.periodStart), blocked: r.blocked })), () => renderQuotasText(rows));
      } finally {
        db.close();
      }
    });
  quota
    .command('del')
    .description('delete a quota; the hosts it blocks are unblocked first')
    .argument('<who>', 'the address or group name of the quota')
    .option(...DB_OPT)
    .action(async (who: string, _o: QuotaOpts, cmd: Command) => {
      const o = optsOf<QuotaOpts>(cmd);
      const db = openLedgerDb(dbPathFromEnv(deps.env, o.db));
      try {
        const q = getQuota(db, who);
        const hosts = blockedHosts(db, q.id);
        for (const h of hosts) await unblock(deps, h);
        deleteQuota(db, q.id);
        emit(deps, o.json, { deleted: quotaJson(q), unblocked: hosts }, () => `deleted quota ${q.kind} ${q.target}${hosts.length ? `; unblocked ${hosts.join(' ')}` : ''}\n`);
      } finally {
        db.close();
      }
    });
}
