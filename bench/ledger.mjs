#!/usr/bin/env node
// bench/ledger.mjs [--hosts N] [--growth-hosts N] [--growth-days D] [--tsv FILE] [--dist DIR]:
// the ledger's speed and size on the host (issue 11, "Speed and size").
//  - ingest: one collection of a table with N active hosts (default 65,536: a /16; traffic +
//    ipconn), read from a counters file (read + parse + deltas + rollups + commit), after a
//    first collection: the steady state. Wall and CPU (user + system) ms, median of 5, and
//    the read+parse part alone.
//  - report: `xttraffic report --period YYYY-MM --json` of that month (N hosts, every
//    interval of the run in it) as a new process (start-up included), wall ms, median of 3.
//  - growth: a simulated day of 5-minute collections (288) of G hosts all active (default
//    4,096) after a first day (the file's steady state: the same rollup rows, retention not
//    reached): file growth of the second day / G = bytes per active host per day.
// The machine is shared: the load average is printed beside each figure. Needs compiled
// JavaScript (dist/, `npm run build:ts`; --dist DIR for another). With --tsv, one line per
// figure for bench/report.mjs:  step <TAB> value <TAB> unit <TAB> note
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
};
const HOSTS = Number(arg('--hosts', process.env.BENCH_LEDGER_HOSTS ?? 65536));
const GROWTH_HOSTS = Number(arg('--growth-hosts', process.env.BENCH_LEDGER_GROWTH_HOSTS ?? 4096));
const GROWTH_DAYS = Number(arg('--growth-days', 1));
const TSV = arg('--tsv', '');
const DIST = resolve(arg('--dist', join(root, 'dist')));
const KEEP = process.argv.includes('--keep');
const imp = (p) => import(pathToFileURL(join(DIST, p)).href);
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The counters file of table `name` with `n` hosts from 10.0.0.0, every counter grown by step k. */
function countersText(name, n, k) {
  const parts = [`xt_traffic_counters 1\nname: ${name}\ngeneration: 5f0c2a9e13b7d4c1\noptions: traffic ipconn\nnetbase: 10.0.0.0\nnetmask: 255.0.0.0\noverflow: 0\n[traffic]\n`];
  const ips = new Array(n);
  for (let i = 0; i < n; i++) ips[i] = `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
  for (let i = 0; i < n; i++) {
    const t = (i % 97 + 1) * 1500 * k;
    const u = (i % 13) * 80 * k;
    const o = (i % 5) * k;
    parts.push(`${ips[i]}\t${t + u + o}\t${t / 2 + u}\t${t}\t${t / 2}\t${u}\t${u}\t${o}\t0\n`);
  }
  parts.push('[ipconn]\n');
  for (let i = 0; i < n; i++) {
    const c = (i % 7 + 1) * k;
    parts.push(`${ips[i]}\t${2 * c}\t${c}\t${c}\t${c}\t${c}\t0\t0\t0\t0\t0\n`);
  }
  parts.push('[end]\n');
  return parts.join('');
}

const lines = [];
function out(step, value, unit, note) {
  lines.push([step, value, unit, note].join('\t'));
  console.log(`${step.padEnd(26)} ${String(value).padStart(10)} ${unit.padEnd(6)} ${note}`);
}

async function main() {
  const { collectOnce } = await imp('ledger/collector.js');
  const { openLedgerDb } = await imp('ledger/db.js');
  const { Ledger } = await imp('ledger/ingest.js');
  const { readCounters } = await imp('proc/counters.js');
  const dir = mkdtempSync(join(tmpdir(), 'xtt-bench-ledger-'));
  try {
    const ctr = join(dir, 'ctr');
    mkdirSync(ctr);
    const loc = { dir: ctr, fromEnv: true };
    const dbPath = join(dir, 'ledger.db');
    const ledger = new Ledger(openLedgerDb(dbPath, { create: true }));
    // 2026-03-02T00:05Z onwards, one collection a minute
    const T0 = Date.UTC(2026, 2, 2, 0, 0);
    let k = 1;
    writeFileSync(join(ctr, 'lan'), countersText('lan', HOSTS, k++));
    await collectOnce(ledger, { loc, tables: ['lan'], readMs: T0 + 60_000, at: T0 + 60_000, intervalMs: 60_000 }); // the first: every host new
    const walls = [];
    const cpus = [];
    const parses = [];
    const folds = [];
    // one collection a minute from 00:01: the one at 00:05 and 00:10 also fold the closed
    // 5-minute bucket into hour/day/period (after the commit, its own transaction)
    for (let i = 2; i <= 11; i++) {
      writeFileSync(join(ctr, 'lan'), countersText('lan', HOSTS, k++));
      const at = T0 + i * 60_000;
      let t = performance.now();
      let c0 = process.cpuUsage();
      const rd = await readCounters('lan', loc);
      parses.push(performance.now() - t);
      const res = ledger.ingest({ readings: [rd], readMs: at, at, intervalMs: 60_000 });
      walls.push(performance.now() - t);
      let c = process.cpuUsage(c0);
      cpus.push((c.user + c.system) / 1000);
      if (res.hosts !== HOSTS) throw new Error(`ingest saw ${res.hosts} active hosts, expected ${HOSTS}`);
      t = performance.now();
      c0 = process.cpuUsage();
      const n = ledger.fold(at);
      c = process.cpuUsage(c0);
      if (n > 0) folds.push([performance.now() - t, (c.user + c.system) / 1000, n]);
    }
    const note = `${HOSTS} active hosts (traffic+ipconn): read, parse, deltas, 5-minute rollup, commit; median of 10, load ${load()}`;
    out('ledger_ingest_wall', median(walls).toFixed(0), 'ms', note);
    out('ledger_ingest_cpu', median(cpus).toFixed(0), 'ms', note);
    out('ledger_read_parse', median(parses).toFixed(0), 'ms', `read + parse of the counters file alone, ${HOSTS} hosts`);
    if (folds.length > 0) {
      out('ledger_fold_wall', median(folds.map((f) => f[0])).toFixed(0), 'ms', `fold of a closed 5-minute bucket (${folds[0][2]} host-hours) into hour/day/period, once per 5 minutes, after the commit, load ${load()}`);
      out('ledger_fold_cpu', median(folds.map((f) => f[1])).toFixed(0), 'ms', 'the same, CPU');
    }
    ledger.db.close();

    // report of the month, as a new process
    const cli = join(DIST, 'cli.js');
    const rep = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const txt = execFileSync(process.execPath, [cli, 'report', '--period', '2026-03', '--json'], { env: { ...process.env, XTT_DB: dbPath }, maxBuffer: 1 << 30 });
      rep.push(performance.now() - t);
      if (i === 0) {
        const j = JSON.parse(txt);
        if (j.hosts.length !== HOSTS) throw new Error(`report has ${j.hosts.length} hosts, expected ${HOSTS}`);
      }
    }
    out('ledger_report_month', median(rep).toFixed(0), 'ms', `report --period --json, ${HOSTS} hosts, new process, median of 3, load ${load()}`);

    // growth per active host per day
    if (GROWTH_HOSTS > 0) {
      const gPath = join(dir, 'growth.db');
      const g = new Ledger(openLedgerDb(gPath, { create: true }));
      const size = () => {
        g.db.pragma('wal_checkpoint(TRUNCATE)');
        return statSync(gPath).size;
      };
      const D0 = Date.UTC(2026, 2, 2);
      let kk = 1;
      let n = 0;
      const day = async (d) => {
        for (let i = 1; i <= 288; i++) {
          writeFileSync(join(ctr, 'g'), countersText('g', GROWTH_HOSTS, kk++));
          const at = D0 + d * 86_400_000 + i * 300_000;
          await collectOnce(g, { loc, tables: ['g'], readMs: at, at, intervalMs: 300_000 });
          n++;
        }
      };
      const t = performance.now();
      await day(0);
      const s1 = size();
      for (let d = 1; d <= GROWTH_DAYS; d++) await day(d);
      const s2 = size();
      const per = (s2 - s1) / GROWTH_DAYS / GROWTH_HOSTS;
      out('ledger_bytes_host_day', per.toFixed(0), 'B', `file growth per active host per day: ${GROWTH_HOSTS} hosts, 5-minute collections, day 2${GROWTH_DAYS > 1 ? `..${GROWTH_DAYS + 1}` : ''} (after a first day), ${n} ingests in ${((performance.now() - t) / 1000).toFixed(0)} s, load ${load()}`);
      g.db.close();
    }
  } finally {
    if (KEEP) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  if (TSV) writeFileSync(TSV, `${lines.join('\n')}\n`);
}

if (!existsSync(join(DIST, 'ledger', 'collector.js'))) {
  console.error(`bench/ledger.mjs: ${DIST}/ledger/collector.js missing: run \`npm run build:ts\` first (or --dist DIR)`);
  process.exit(2);
}
main().catch((e) => {
  console.error(`bench/ledger.mjs: ${e.stack ?? e}`);
  process.exit(1);
});
