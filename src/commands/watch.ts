/**
 * `xttraffic watch NAME`: a live top-N view with per-second rates. Each sample is read in
 * columns as `read` reads (no object per row: the rates come from a merge-join with the
 * previous sample's keys and totals), so a 1,048,576-row table costs what `read --top` costs.
 */
import { Option, type Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { XtError } from '../core/errors.js';
import { checkTableName } from '../proc/names.js';
import type { Columns } from '../proc/parse.js';
import { EMPTY_SAMPLE, renderWatchFrame, watchJsonLine, watchOrder, watchRates, type WatchRates, type WatchSample, type WatchUnits } from '../output/report.js';
import { readColumns, readInfo } from '../proc/tables.js';
import { connOption, examples, kindOf, optsOf, positiveInt, seconds, type Conn } from '../cmdline/options.js';

interface WatchOptions {
  interval?: number;
  top?: number;
  conn?: Conn;
  count?: number;
  bits?: boolean;
  si?: boolean;
}

/** How many samples in a row a table may be missing (a rule being replaced) before watch gives up. */
export const MISSING_RETRIES = 5;

/** Rows shown when there is no terminal to fit (text without --top). */
const TEXT_TOP = 20;

const ALT_SCREEN_ON = '\x1b[?1049h\x1b[?25l';
const ALT_SCREEN_OFF = '\x1b[?25h\x1b[?1049l';
const HOME_CLEAR = '\x1b[H\x1b[2J';

/** Rows of a terminal of `height` lines that fit beside the title, a blank line, the header, the rule line and the totals. */
function fitRows(height: number | undefined): number {
  return height ? Math.max(1, height - 6) : TEXT_TOP;
}

/** Each line cut to the terminal's width (a wrapped line would break the layout). */
function fitWidth(frame: string, width: number | undefined): string {
  if (!width) return frame;
  return frame.split('\n').map((l) => (l.length > width ? l.slice(0, width) : l)).join('\n');
}

export async function watch(deps: Deps, name: string, o: WatchOptions & { json?: boolean }): Promise<number> {
  checkTableName(name);
  const kind = kindOf(o.conn);
  const units: WatchUnits = { bits: o.bits ?? false, si: o.si ?? false };
  const intervalMs = Math.round((o.interval ?? 1) * 1000);
  const live = !!deps.stdout.isTTY && !o.json;
  // --json: every row unless --top; text: what fits the terminal (read again for every frame)
  const top = () => o.top ?? (o.json ? undefined : live ? fitRows(deps.stdout.rows) : TEXT_TOP);
  const proc = { proc: deps.paths.proc, readFile: deps.readProcFile };
  // A --clearonread table returns only what came since the previous read: those are deltas.
  let cumulative = true;
  try {
    cumulative = !(await readInfo(name, proc)).options.clearonread;
  } catch {
    // no info file (or not readable): the first read reports the real problem
  }
  if (!cumulative) {
    deps.stderr.write(`xttraffic: warning: table "${name}" has --clearonread: every sample of watch reads AND CLEARS its counters (what watch shows is gone from the table)\n`);
  }

  let stop = false;
  let resized = false;
  let wake: (() => void) | undefined;
  const stopNow = () => {
    stop = true;
    wake?.();
  };
  const onKey = (chunk: Buffer | string) => {
    const s = chunk.toString();
    if (/[qQ\x03\x04]/.test(s)) stopNow();
  };
  const onResize = () => {
    resized = true;
    wake?.();
  };
  const unsubscribe = [deps.onSignal('SIGINT', stopNow), deps.onSignal('SIGTERM', stopNow)];
  const keys = live && !!deps.stdin.isTTY;
  if (keys) {
    deps.stdin.setRawMode?.(true);
    deps.stdin.on('data', onKey);
    deps.stdin.resume();
  }
  if (live) {
    deps.stdout.on?.('resize', onResize);
    deps.stdout.write(ALT_SCREEN_ON);
  }

  const titleOf = (t: number) =>
    `xttraffic watch ${name} (${kind}${cumulative ? '' : ', clearonread'}), every ${intervalMs / 1000}s, ${new Date(t).toISOString().replace('T', ' ').slice(0, 19)}${keys ? '   q: quit' : ''}`;
  /** The last frame's data (live only: a resize draws it again at the new size). */
  let shown: { rates: WatchRates; title: string } | undefined;
  const draw = (rates: WatchRates, title: string) => {
    resized = false;
    const frame = renderWatchFrame(rates, watchOrder(rates, top()), title, units);
    if (live) {
      shown = { rates, title };
      deps.stdout.write(HOME_CLEAR + fitWidth(frame, deps.stdout.columns).replaceAll('\n', '\r\n'));
    } else {
      deps.stdout.write(`${frame}\n`);
    }
  };
  const note = (t: number, text: string) => {
    if (live) {
      shown = undefined;
      deps.stdout.write(HOME_CLEAR + fitWidth(`${titleOf(t)}\n\n${text}\n`, deps.stdout.columns).replaceAll('\n', '\r\n'));
    } else {
      deps.stderr.write(`xttraffic: ${text}\n`);
    }
  };
  /** Sleeps `ms` (less when stopped); a resize meanwhile draws the last frame again. */
  const pause = async (ms: number) => {
    const slept = deps.sleep(ms).then(() => true);
    for (;;) {
      if (stop) return;
      if (resized && shown) draw(shown.rates, shown.title);
      const done = await Promise.race([slept, new Promise<false>((r) => (wake = () => r(false)))]);
      wake = undefined;
      if (done) return;
    }
  };

  let frames = 0;
  try {
    let prev: WatchSample | undefined;
    let prevT: number | undefined;
    let missing = 0;
    while (!stop) {
      const t = deps.now();
      let cols: Columns;
      try {
        cols = await readColumns(name, kind, proc);
      } catch (e) {
        // gone between two samples (a rule being replaced): a few more tries, with a note
        if (prev === undefined || !(e instanceof XtError) || e.code !== 'ENOTABLE' || missing >= MISSING_RETRIES) throw e;
        missing++;
        note(t, `note: table "${name}" is missing (${e.message}): trying again in ${intervalMs / 1000}s (${missing} of ${MISSING_RETRIES})`);
        await pause(intervalMs);
        continue;
      }
      if (missing > 0) {
        // the table came back: a new instance, its counters count from zero since the last sample
        prev = EMPTY_SAMPLE;
        missing = 0;
      }
      const secs = prevT === undefined ? intervalMs / 1000 : Math.max(0.001, (t - prevT) / 1000);
      const rates = watchRates(kind, prev, cols, secs, cumulative);
      if (o.json) {
        const meta = { table: name, kind, cleared: !cumulative, time: new Date(t).toISOString(), seconds: secs };
        for (const piece of watchJsonLine(meta, rates, watchOrder(rates, top()), units)) deps.stdout.write(piece);
      } else {
        draw(rates, titleOf(t));
      }
      prev = rates.sample;
      prevT = t;
      frames++;
      if (o.count !== undefined && frames >= o.count) break;
      await pause(intervalMs);
    }
  } finally {
    if (live) {
      deps.stdout.write(ALT_SCREEN_OFF);
      deps.stdout.removeListener?.('resize', onResize);
    }
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
    .option('--top <n>', 'rows to show (default: what fits the terminal; 20 without one; --json: every row)', positiveInt('--top'))
    .addOption(connOption('connection rates per IP or per port instead of traffic'))
    .option('--count <n>', 'stop after N samples', positiveInt('--count'))
    .addOption(new Option('--bits', 'rates in bit/s (Kibit/s, ...; with --si kbit/s, ...) instead of bytes').conflicts('conn'))
    .option('--si', 'SI units: 1 kB = 1000 B (default IEC: 1 KiB = 1024 B)')
    .addHelpText('after', `
With --json: one line per sample: table, kind, cleared, time, seconds, unit (of the rates:
B/s, bit/s with --bits, connections/s), count (rows in the table), omitted (rows left out by
--top; without it every row is there), rows (key, inRate and outRate rounded to 0.001, total:
the exact counters in bytes or connections).
A table that goes missing between samples (a rule being replaced) is tried again for
${MISSING_RETRIES} intervals, with a note, before watch gives up.
${examples([
  'sudo xttraffic watch lan',
  'sudo xttraffic watch lan --interval 5 --top 20 --bits --si',
  'sudo xttraffic watch lan --conn port',
  'sudo xttraffic watch lan --count 3 --json   # three samples, one JSON line each',
])}`)
    .action(async (name: string, _o: WatchOptions, cmd: Command) => {
      await watch(deps, name, optsOf<WatchOptions>(cmd));
    });
}
