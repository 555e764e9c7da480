/** `xttraffic collect`: the collector daemon (or one collection with --once). */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { UsageError, toXtError } from '../core/errors.js';
import { checkTableName } from '../proc/names.js';
import { countersLocation } from '../proc/counters.js';
import { collectOnce, lockCollector, nextTick, removeCollectorInfo, writeCollectorInfo, type CollectResult } from '../ledger/collector.js';
import { dbPathFromEnv, getSettings, openLedgerDb, setSetting, type Settings } from '../ledger/db.js';
import { Ledger } from '../ledger/ingest.js';
import { iso } from '../ledger/periods.js';
import type { QuotaEvent } from '../ledger/quota.js';
import { block, ensureBlockRules, unblock } from '../system/block.js';
import { RuntimeError } from '../core/errors.js';
import { toJson } from '../output/format.js';
import { quotaEventLine } from '../output/ledger.js';
import { examples, optsOf } from '../cmdline/options.js';

interface CollectOpts {
  db?: string;
  interval?: string;
  once?: boolean;
  keep5min?: string;
  keepHour?: string;
  keepDay?: string;
  keepGroup5min?: string;
  keepIntervals?: string;
}

/** The retention options: flag -> setting (days; 0 = forever). */
const KEEP: ReadonlyArray<readonly [keyof CollectOpts, string, keyof Settings]> = [
  ['keep5min', '--keep-5min', 'keep5mDays'],
  ['keepHour', '--keep-hour', 'keepHourDays'],
  ['keepDay', '--keep-day', 'keepDayDays'],
  ['keepGroup5min', '--keep-group-5min', 'keepGroup5mDays'],
  ['keepIntervals', '--keep-intervals', 'keepIntervalsDays'],
];

function checkDays(flag: string, v: string): number {
  if (!/^\d{1,5}$/.test(v) || Number(v) > 36500) throw new UsageError(`${flag} ${v}: must be a whole number of days, 0 (forever) .. 36500`);
  return Number(v);
}

function doc(r: CollectResult) {
  const res = r.result!;
  return {
    at: iso(res.at), intervals: res.intervals.map((i) => ({ ...i, start: i.start === null ? null : iso(i.start), end: iso(i.end) })), errors: r.errors,
    acked: r.acked.map((a) => ({ table: a.table, read: a.read.toString(), ...(a.error !== undefined ? { error: a.error } : {}) })),
    quotas: r.quotas.map((x) => ({
      event: x.event.event, kind: x.event.quota.kind, target: x.event.quota.target, action: x.event.quota.action, dir: x.event.quota.dir,
      used: x.event.used, limit: x.event.limit, periodStart: iso(x.event.period.start), hosts: x.event.hosts, ...(x.event.why ? { why: x.event.why } : {}),
      ...(x.error !== undefined ? { error: x.error } : {}),
    })),
  };
}

/** What a quota event's action did, in words. */
function done(ev: QuotaEvent): string {
  const q = ev.quota;
  if (q.action === 'block' && ev.event !== 'warn') {
    if (ev.hosts.length === 0) return 'no host to block';
    return `${ev.event === 'over' ? 'blocked' : 'unblocked'} ${ev.hosts.join(' ')}`;
  }
  if (q.action === 'exec' && ev.event === 'over') return `ran ${q.cmd}`;
  return 'logged';
}

function line(r: CollectResult): string {
  const res = r.result!;
  const parts = res.intervals.map((i) => `${i.table}: ${i.hosts} ${i.hosts === 1 ? 'host' : 'hosts'}${i.flags.length ? ` [${i.flags.join(' ')}]` : ''}`);
  for (const e of r.errors) parts.push(`${e.table}: not read: ${e.message}`);
  for (const a of r.acked) if (a.error !== undefined) parts.push(`${a.table}: read ${a.read} committed, not acked (idle entries wait for the next ack): ${a.error}`);
  let s = `${iso(res.at)} ${parts.length ? parts.join('; ') : 'no tables'}\n`;
  for (const x of r.quotas) s += `${iso(res.at)} ${quotaEventLine(x.event, x.error === undefined ? done(x.event) : `FAILED, retried next collection: ${x.error}`)}\n`;
  return s;
}

/**
 * The quota actions (the ledger decides, this does): log (the collector's output line),
 * block (ipset xttraffic-block and its DROP rules, src/system/block.ts: idempotent), exec (a
 * shell command with the event in its environment, on `over`; a non-zero exit is retried at
 * the next collection). A throw leaves the event unrecorded: it comes again.
 */
export function quotaActor(deps: Deps): (ev: QuotaEvent) => Promise<void> {
  let ensured = false;
  return async (ev) => {
    const q = ev.quota;
    if (q.action === 'block' && ev.event !== 'warn') {
      if (ev.event === 'over') {
        if (!ensured) {
          await ensureBlockRules(deps);
          ensured = true;
        }
        for (const h of ev.hosts) await block(deps, h);
      } else {
        for (const h of ev.hosts) await unblock(deps, h);
      }
    } else if (q.action === 'exec' && ev.event === 'over') {
      const env = {
        ...deps.env, XTT_QUOTA_EVENT: ev.event, XTT_QUOTA_KIND: q.kind, XTT_QUOTA_TARGET: q.target, XTT_QUOTA_DIR: q.dir,
        XTT_QUOTA_USED: String(ev.used), XTT_QUOTA_LIMIT: String(ev.limit), XTT_QUOTA_PERIOD_START: iso(ev.period.start), XTT_QUOTA_HOSTS: ev.hosts.join(' '),
      };
      const r = await deps.run('/bin/sh', ['-c', q.cmd!], { env });
      if (r.code !== 0) throw new RuntimeError('EQUOTAEXEC', `quota command \`${q.cmd}\` exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').pop() ?? ''}`);
    }
  };
}

export function registerCollect(program: Command, deps: Deps): void {
  program
    .command('collect')
    .description('collect the monotonic counters into the ledger every interval (a foreground daemon; --once: one collection)')
    .argument('[table...]', 'tables to collect (default: every table of the network namespace)')
    .option('--db <file>', 'the ledger (default $XTT_DB or /var/lib/xttraffic/ledger.db)')
    .option('--interval <seconds>', 'seconds between collections, aligned to the wall clock (>= 1)', '60')
    .option('--once', 'collect once and exit')
    .option('--keep-5min <days>', 'keep host 5-minute rows this many days (default 35; 0 = forever); stored in the ledger')
    .option('--keep-hour <days>', 'keep host and group hourly rows (default 400)')
    .option('--keep-day <days>', 'keep daily rows (default 0 = forever)')
    .option('--keep-group-5min <days>', 'keep group 5-minute rows, the 95th\'s samples (default 400)')
    .option('--keep-intervals <days>', 'keep the intervals (gaps, resets) (default 400)')
    .addHelpText('after', examples([
      'sudo xttraffic collect                      # every 60 s, every table, until SIGTERM',
      'sudo xttraffic collect --interval 10 lan',
      'sudo xttraffic collect --once --json',
      'sudo xttraffic collect --keep-5min 62 --keep-hour 800   # retention, kept in the ledger',
    ]))
    .action(async (tables: string[], _o: CollectOpts, cmd: Command) => {
      const o = optsOf<CollectOpts>(cmd);
      const iv = o.interval ?? '60';
      if (!/^\d+$/.test(iv) || Number(iv) < 1 || Number(iv) > 86400) throw new UsageError(`--interval ${iv}: must be a whole number of seconds, 1..86400`);
      const intervalMs = Number(iv) * 1000;
      for (const t of tables) checkTableName(t);
      const keep = KEEP.flatMap(([o2, flag, key]) => (o[o2] !== undefined ? [[key, checkDays(flag, o[o2] as string)] as const] : []));
      const dbPath = dbPathFromEnv(deps.env, o.db);
      const loc = countersLocation(deps.env);
      // the ledger first: one that is not ours, or of a newer schema, is refused before
      // anything is written beside it (the lock file included)
      const db = openLedgerDb(dbPath, { create: true });
      let lock: { release(): void };
      try {
        lock = lockCollector(dbPath);
      } catch (e) {
        db.close();
        throw e;
      }
      const ledger = new Ledger(db);
      if (keep.length > 0) {
        for (const [key, days] of keep) setSetting(ledger.db, key, days);
        const st = getSettings(ledger.db);
        deps.stderr.write(`xttraffic collect: retention (days, 0 = forever): host 5-minute ${st.keep5mDays}, hourly ${st.keepHourDays}, daily ${st.keepDayDays}, group 5-minute ${st.keepGroup5mDays}, intervals ${st.keepIntervalsDays}\n`);
      }
      const onQuota = quotaActor(deps);
      const clock = () => Math.round(deps.now());
      try {
        if (o.once) {
          const now = Math.round(deps.now());
          const r = await collectOnce(ledger, { loc, tables, readMs: now, at: now, intervalMs, onQuota, now: clock });
          deps.stdout.write(o.json ? `${toJson(doc(r))}\n` : line(r));
          return;
        }
        let stop = false;
        let now1 = false;
        let wake: (() => void) | undefined;
        const onStop = () => {
          stop = true;
          wake?.();
        };
        // SIGUSR1: collect now (`unload` and `rule del` ask for it before a table goes away)
        const onNow = () => {
          now1 = true;
          wake?.();
        };
        const offs = [deps.onSignal('SIGTERM', onStop), deps.onSignal('SIGINT', onStop), deps.onSignal('SIGUSR1', onNow)];
        let lastMono: number | undefined;
        const info = { pid: deps.pid ?? process.pid, since: new Date(deps.now()).toISOString(), collections: 0 };
        writeCollectorInfo(dbPath, info);
        try {
          for (;;) {
            const tick = nextTick(deps.now(), intervalMs);
            if (!stop && !now1) {
              await new Promise<void>((res) => {
                const t = setTimeout(res, Math.max(0, tick - deps.now()));
                wake = () => {
                  clearTimeout(t);
                  res();
                };
              });
            }
            const asked = now1;
            now1 = false;
            const now = Math.round(deps.now());
            const mono = performance.now();
            // the last collection on a signal, one asked for: its counts belong to the instant of the read
            const at = stop || (asked && now < tick) ? now : tick;
            try {
              const r = await collectOnce(ledger, { loc, tables, readMs: now, at, intervalMs, onQuota, now: clock, ...(lastMono !== undefined ? { monoMs: Math.round(mono - lastMono) } : {}) });
              lastMono = mono;
              info.collections++;
              writeCollectorInfo(dbPath, info);
              deps.stdout.write(o.json ? `${toJson(doc(r), 0)}\n` : line(r));
            } catch (e) {
              // SQLITE_FULL, I/O errors, an unreadable directory: nothing was cleared, so nothing
              // is lost; the next collection takes the whole delta since the last commit
              const err = toXtError(e);
              deps.stderr.write(`xttraffic collect: ${iso(now)}: collection not committed (${err.code}): ${err.message}; retrying next interval\n`);
            }
            if (stop) break;
          }
        } finally {
          for (const off of offs) off();
          removeCollectorInfo(dbPath);
        }
      } finally {
        ledger.db.close();
        lock.release();
      }
    });
}
