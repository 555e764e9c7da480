#!/usr/bin/env node
// bench/native-read.mjs [--rows N] [--tsv FILE]: host-side reading benchmark. Writes a large
// traffic table (a regular file in the kernel's format), reads it through the product's one
// reader (node's fs + the TypeScript parser, src/proc), best of three, then times the CLI's
// `read T --top 10 --json` and `read T --json`. (Until the layering of issue 10 an addon reader
// and parser stood beside it: ~60 ms faster at 65,536 rows, ~1,000 lines of C++; its column
// stays empty.) Wall-clock milliseconds on the host (a shared machine: noisy). Needs the
// compiled CLI (dist/, `npm run build:ts`). `npm run bench` runs it; alone:
// `npm run bench:native`. With --tsv, writes one line per step for bench/report.mjs:
//   step <TAB> (empty: no addon reader) <TAB> fs ms <TAB> note
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
};
const ROWS = Number(arg('--rows', process.env.BENCH_NATIVE_ROWS ?? 262144));
const TSV = arg('--tsv', '');
const REPEAT = 3;

const imp = (p) => import(pathToFileURL(join(root, 'dist', p)).href);

async function main() {
  const { TRAFFIC_HEADER } = await imp('proc/parse.js');
  const { readColumns, rowsFromColumns } = { ...(await imp('proc/tables.js')), ...(await imp('proc/parse.js')) };
  const { realDeps } = await imp('real-deps.js');
  const { run } = await imp('program.js');

  const dir = mkdtempSync(join(tmpdir(), 'xtt-native-read-'));
  try {
    const parts = [`${TRAFFIC_HEADER}\n`];
    for (let i = 0; i < ROWS; i++) {
      const ip = (0x0a000000 + i) >>> 0;
      const v = i * 1001;
      parts.push(`${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}\t${v * 3}\t${v}\t${v * 2}\t${v}\t${v}\t0\t0\t0\n`);
    }
    writeFileSync(join(dir, 'T'), parts.join(''));

    // readRaw + rowsOf, best (by total) of REPEAT; also the longest event-loop stall of the read
    const time = async () => {
      let best = { read: Infinity, rows: Infinity, total: Infinity, maxBlocked: 0 };
      for (let k = 0; k < REPEAT; k++) {
        let last = performance.now();
        let maxGap = 0;
        const iv = setInterval(() => {
          const now = performance.now();
          maxGap = Math.max(maxGap, now - last);
          last = now;
        }, 1);
        const t0 = performance.now();
        const cols = await readColumns('T', 'traffic', { proc: { dir, fromEnv: true } });
        const t1 = performance.now();
        clearInterval(iv);
        const rows = rowsFromColumns('traffic', cols);
        const t2 = performance.now();
        if (rows.length !== ROWS) throw new Error(`${rows.length} rows, expected ${ROWS}`);
        if (t2 - t0 < best.total) best = { read: t1 - t0, rows: t2 - t1, total: t2 - t0, maxBlocked: maxGap };
      }
      return best;
    };
    // the CLI in process, output discarded: best of REPEAT
    const cliTime = async (argv) => {
      let best = Infinity;
      for (let k = 0; k < REPEAT; k++) {
        const d = await realDeps();
        d.paths.proc = { dir, fromEnv: true };
        let bytes = 0;
        d.stdout = { write: (s) => { bytes += s.length; return true; } };
        d.writeAll = async (data) => { bytes += data.length; return { written: data.length }; };
        const t0 = performance.now();
        const rc = await run(argv, d);
        best = Math.min(best, performance.now() - t0);
        if (rc !== 0 || bytes === 0) throw new Error(`${argv.join(' ')}: exit ${rc}, ${bytes} bytes of output`);
      }
      return best;
    };

    const t = await time();
    const res = {
      fs: {
        read: t.read, blocked: t.maxBlocked, rows: t.rows, total: t.total,
        top: await cliTime(['read', 'T', '--top', '10', '--json']),
        json: await cliTime(['read', 'T', '--json']),
      },
    };
    const steps = [
      ['read', 'readColumns: one read of the file + the columnar parse'],
      ['blocked', 'longest event-loop stall during that read'],
      ['rows', 'rowsFromColumns: rows as objects'],
      ['total', 'readColumns + rowsFromColumns'],
      ['top', 'CLI in process: read T --top 10 --json'],
      ['json', 'CLI in process: read T --json (all rows)'],
    ];
    const ms = (x) => (x === undefined ? 'n/a' : x.toFixed(0));
    const w = Math.max(...steps.map(([, n]) => n.length));
    console.log(`native-read: ${ROWS.toLocaleString('en-US')} rows, best of ${REPEAT}, host wall ms`);
    for (const [k, name] of steps) console.log(`native-read: ${name.padEnd(w)} ${ms(res.fs[k]).padStart(8)}`);
    if (TSV) {
      writeFileSync(TSV, [
        `table_rows\t${ROWS}\t${ROWS}\trows in the table file`,
        ...steps.map(([k, name]) => `${k}\t\t${res.fs[k].toFixed(1)}\t${name}`),
      ].join('\n') + '\n');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`native-read: FAIL: ${e?.stack ?? e}`);
  process.exit(1);
});
