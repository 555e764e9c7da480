// Does the addon measurably beat plain node? Reads a large traffic table (a regular file in the
// kernel's format) through the addon (one read in a worker thread + native parse) and through
// node's fs + the TypeScript parser, best of three each, and prints the figures.
// Opt-in (timing on a shared machine is noisy): XTT_BENCH=1 npx vitest run test/unit/native-bench.test.ts
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tryLoadBinding } from '../../src/lib/binding.js';
import { TRAFFIC_HEADER } from '../../src/lib/parse.js';
import { fsReader, nativeReader, readRaw, rowsOf, type TableReader } from '../../src/lib/tables.js';

const ROWS = Number(process.env['XTT_BENCH_ROWS'] ?? 262144);

describe.skipIf(process.env['XTT_BENCH'] !== '1')('native vs plain node', () => {
  it(`reads and parses ${ROWS} rows`, async () => {
    const b = tryLoadBinding().binding;
    expect(b).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'xtt-bench-'));
    const parts = [`${TRAFFIC_HEADER}\n`];
    for (let i = 0; i < ROWS; i++) {
      const ip = (0x0a000000 + i) >>> 0;
      const v = i * 1001;
      parts.push(`${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}\t${v * 3}\t${v}\t${v * 2}\t${v}\t${v}\t0\t0\t0\n`);
    }
    writeFileSync(join(dir, 'T'), parts.join(''));
    const time = async (reader: TableReader) => {
      let best = { read: Infinity, rows: Infinity, total: Infinity, maxBlocked: 0 };
      for (let k = 0; k < 3; k++) {
        let last = performance.now();
        let maxGap = 0;
        const iv = setInterval(() => {
          const now = performance.now();
          maxGap = Math.max(maxGap, now - last);
          last = now;
        }, 1);
        const t0 = performance.now();
        const raw = await readRaw('T', 'traffic', { procDir: dir, reader });
        const t1 = performance.now();
        clearInterval(iv);
        const rows = rowsOf('traffic', raw);
        const t2 = performance.now();
        expect(rows).toHaveLength(ROWS);
        if (t2 - t0 < best.total) best = { read: t1 - t0, rows: t2 - t1, total: t2 - t0, maxBlocked: maxGap };
      }
      return best;
    };
    const native = await time(nativeReader(b!));
    const fs = await time(fsReader);
    const f = (x: { read: number; rows: number; total: number; maxBlocked: number }) =>
      `read ${x.read.toFixed(0)} ms (event loop blocked at most ${x.maxBlocked.toFixed(0)} ms), rows ${x.rows.toFixed(0)} ms, total ${x.total.toFixed(0)} ms`;
    console.log(`${ROWS} rows\n  addon: ${f(native)}\n  fs + TypeScript parser: ${f(fs)}`);

    // `xttraffic read T --top 10 --json`: with the addon's columns only ten rows become objects
    const { realDeps } = await import('../../src/lib/deps.js');
    const { run } = await import('../../src/program.js');
    const cliTime = async (reader: TableReader) => {
      let best = Infinity;
      for (let k = 0; k < 3; k++) {
        const d = await realDeps();
        d.paths.procNet = dir;
        d.stdout = { write: () => true };
        d.reader = async () => reader;
        const t0 = performance.now();
        expect(await run(['read', 'T', '--top', '10', '--json'], d)).toBe(0);
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    console.log(`  read T --top 10 --json: addon ${(await cliTime(nativeReader(b!))).toFixed(0)} ms, fs + TypeScript parser ${(await cliTime(fsReader)).toFixed(0)} ms`);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
