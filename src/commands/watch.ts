/** `xttraffic watch NAME`: a live top-N view with per-second rates. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { toJson } from '../output/format.js';
import { checkTableName } from '../proc/names.js';
import type { InOut } from '../proc/parse.js';
import { keyName, ratesOf, renderWatch } from '../output/report.js';
import { readInfo, readTable } from '../proc/tables.js';
import { examples, kindOf, optsOf, positiveInt, seconds } from '../cmdline/options.js';

interface WatchOptions {
  interval?: number;
  top?: number;
  conn?: string;
  count?: number;
}

const ALT_SCREEN_ON = '\x1b[?1049h\x1b[?25l';
const ALT_SCREEN_OFF = '\x1b[?25h\x1b[?1049l';
const HOME_CLEAR = '\x1b[H\x1b[2J';

export async function watch(deps: Deps, name: string, o: WatchOptions & { json?: boolean }): Promise<number> {
  checkTableName(name);
  const kind = kindOf(o.conn);
  const intervalMs = Math.round((o.interval ?? 1) * 1000);
  const live = !!deps.stdout.isTTY && !o.json;
  const top = o.top ?? (live && deps.stdout.rows ? Math.max(5, deps.stdout.rows - 8) : 20);
  // A --clearonread table returns only what came since the previous read: those are deltas.
  let cumulative = true;
  try {
    cumulative = !(await readInfo(name, { proc: deps.paths.proc, readFile: deps.readProcFile })).options.clearonread;
  } catch {
    // no info file (or not readable): the first read reports the real problem
  }
  if (!cumulative) {
    deps.stderr.write(`xttraffic: warning: table "${name}" has --clearonread: every sample of watch reads AND CLEARS its counters (what watch shows is gone from the table)\n`);
  }

  let stop = false;
  let wake: (() => void) | undefined;
  const stopNow = () => {
    stop = true;
    wake?.();
  };
  const onKey = (chunk: Buffer | string) => {
    const s = chunk.toString();
    if (/[qQ\x03\x04]/.test(s)) stopNow();
  };
  const unsubscribe = [deps.onSignal('SIGINT', stopNow), deps.onSignal('SIGTERM', stopNow)];
  const keys = live && !!deps.stdin.isTTY;
  if (keys) {
    deps.stdin.setRawMode?.(true);
    deps.stdin.on('data', onKey);
    deps.stdin.resume();
  }
  if (live) deps.stdout.write(ALT_SCREEN_ON);
  let frames = 0;
  try {
    let prev: Map<string, InOut> | undefined;
    let prevT: number | undefined;
    while (!stop) {
      const t = deps.now();
      const rows = await readTable(name, { kind, proc: deps.paths.proc, readFile: deps.readProcFile });
      const secs = prevT === undefined ? intervalMs / 1000 : Math.max(0.001, (t - prevT) / 1000);
      const rates = ratesOf(prev, rows, secs, cumulative);
      if (o.json) {
        deps.stdout.write(`${toJson({
          table: name, kind, cleared: !cumulative, time: new Date(t).toISOString(), seconds: secs,
          rows: rates.slice(0, top).map((r) => ({ [keyName(kind)]: kind === 'portconn' ? Number(r.key) : r.key, inRate: r.inRate, outRate: r.outRate, total: r.total })),
        }, 0)}\n`);
      } else {
        const title = `xttraffic watch ${name} (${kind}${cumulative ? '' : ', clearonread'}), every ${intervalMs / 1000}s, ${new Date(t).toISOString().replace('T', ' ').slice(0, 19)}${keys ? '   q: quit' : ''}`;
        const frame = renderWatch(kind, title, rates, top);
        deps.stdout.write(live ? HOME_CLEAR + frame.replaceAll('\n', '\r\n') : `${frame}\n`);
      }
      prev = new Map(rows.map((r) => ['port' in r ? String(r.port) : r.ip, r.total]));
      prevT = t;
      frames++;
      if (o.count !== undefined && frames >= o.count) break;
      if (stop) break;
      await Promise.race([deps.sleep(intervalMs), new Promise<void>((r) => (wake = r))]);
      wake = undefined;
    }
  } finally {
    if (live) deps.stdout.write(ALT_SCREEN_OFF);
    if (keys) {
      deps.stdin.removeListener('data', onKey);
      deps.stdin.setRawMode?.(false);
      deps.stdin.pause();
    }
    unsubscribe.forEach((f) => f());
  }
  return frames;
}

export function registerWatch(program: Command, deps: Deps): void {
  program
    .command('watch')
    .description('live top-N view with per-second rates (q or Ctrl-C quits)')
    .argument('<name>', 'table name')
    .option('--interval <s>', 'seconds between samples', seconds, 1)
    .option('--top <n>', 'rows to show (default: what fits the terminal)', positiveInt('--top'))
    .option('--conn <ip|port>', 'connection rates per IP or per port instead of traffic')
    .option('--count <n>', 'stop after N samples', positiveInt('--count'))
    .addHelpText('after', examples([
      'sudo xttraffic watch lan',
      'sudo xttraffic watch lan --interval 5 --top 20',
      'sudo xttraffic watch lan --conn port',
      'sudo xttraffic watch lan --count 3 --json   # three samples, one JSON line each',
    ]))
    .action(async (name: string, _o: WatchOptions, cmd: Command) => {
      await watch(deps, name, optsOf<WatchOptions>(cmd));
    });
}
