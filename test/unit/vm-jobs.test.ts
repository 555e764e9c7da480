import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module of scripts/ without types
import { balance, bootOverhead, fileSeconds, pickNext, planJobs, simulate, TIMING_SENSITIVE, UNKNOWN_FILE } from '../../scripts/lib/vm-jobs.mjs';

// scripts/lib/vm-jobs.mjs: how npm test splits the kernel suites into VM jobs for two lanes.
const f = (n: string) => `test/vm/${n}.test.ts`;
type Job = { kernel: string; id: string; files: string[]; estimate: number; pinned: boolean };

describe('vm jobs', () => {
  it('file times: measured, scaled from 6.1 on another kernel, or the fallback for unknown files', () => {
    expect(fileSeconds('6.1', f('mirror'))).toBe(364);
    expect(fileSeconds('6.12', f('mirror'))).toBe(236);
    // no 6.12 figure for replay: 6.1's 351 s x 0.9
    expect(fileSeconds('6.12', f('replay'))).toBe(Math.round(351 * 0.9));
    expect(fileSeconds('6.1', f('no-such-file'))).toBe(UNKNOWN_FILE);
    expect(fileSeconds('debug', f('no-such-file'))).toBe(UNKNOWN_FILE * 5);
    expect(fileSeconds('newest', f('ledger'))).toBe(208);
  });

  it('balance: every file in exactly one chunk, longest first to the lightest chunk', () => {
    const files = ['mirror', 'replay', 'install', 'ledger', 'gso', 'memory'].map(f);
    const parts: string[][] = balance('6.1', files, 2);
    expect(parts.flat().sort()).toEqual([...files].sort());
    // 364 | 351, then 209 to 351 (560), 208 to 364 (572), 24 to 560 (584), 18 to 572 (590)
    const secs = parts.map((p) => p.reduce((s, x) => s + fileSeconds('6.1', x), 0));
    expect(secs.reduce((a, b) => a + b)).toBe(364 + 351 + 209 + 208 + 24 + 25);
    expect(Math.abs(secs[0]! - secs[1]!)).toBeLessThanOrEqual(24);
    expect(balance('6.1', [f('gso')], 3)).toEqual([[f('gso')]]);
  });

  it('plan: the timing-sensitive 6.1 files in one pinned boot first, the rest in chunks, longest first', () => {
    const stock = ['mirror', 'replay', 'ledger', 'ledger6', 'reclaim', 'resched', 'install', 'lifecycle', 'gso', 'memory'].map(f);
    const jobs: Job[] = planJobs({
      kernels: ['6.1', '6.12', 'debug'],
      filesOf: (k: string) => (k === 'debug' ? [f('gso'), f('memory')] : k === '6.12' ? [f('mirror'), f('gso')] : stock),
      lanes: 2,
      chunks61: 2,
    });
    expect(jobs[0]).toMatchObject({ id: '6.1-timed', pinned: true });
    expect(jobs[0]!.files.map((x) => x.replace(/^test\/vm\/|\.test\.ts$/g, '')).sort()).toEqual([...TIMING_SENSITIVE].sort());
    expect(jobs[0]!.estimate).toBe(bootOverhead('6.1', 5) + 351 + 208 + 104 + 89 + 40);
    const rest = jobs.slice(1);
    expect(rest.map((j) => j.id).sort()).toEqual(['6.1-1', '6.1-2', '6.12', 'debug']);
    for (let i = 1; i < rest.length; i++) expect(rest[i - 1]!.estimate).toBeGreaterThanOrEqual(rest[i]!.estimate);
    // every 6.1 file exactly once
    expect(jobs.filter((j) => j.kernel === '6.1').flatMap((j) => j.files).sort()).toEqual([...stock].sort());
    expect(jobs.find((j) => j.id === 'debug')!.estimate).toBe(bootOverhead('debug', 2) + 184 + 230);
  });

  it('plan: the stress suite boots alone (2 vCPUs) on each kernel that runs it; with one lane it stays in the kernel\'s boot', () => {
    const stock = ['mirror', 'gso', 'stress'].map(f);
    const jobs: Job[] = planJobs({ kernels: ['6.1', 'debug'], filesOf: (k: string) => (k === 'debug' ? [f('gso'), f('stress')] : stock), lanes: 2, chunks61: 2 });
    expect(jobs.find((j) => j.id === '6.1-stress')!.files).toEqual([f('stress')]);
    expect(jobs.find((j) => j.id === 'debug-stress')!.files).toEqual([f('stress')]);
    expect(jobs.find((j) => j.id === 'debug')!.files).toEqual([f('gso')]);
    expect(jobs.filter((j) => j.kernel === '6.1').flatMap((j) => j.files).sort()).toEqual([...stock].sort());
    expect(jobs.filter((j) => j.files.includes(f('stress'))).length).toBe(2);
    // a kernel whose only file is stress: one boot, named after the kernel
    expect(planJobs({ kernels: ['6.12'], filesOf: () => [f('stress')], lanes: 2, chunks61: 2 }).map((j: Job) => j.id)).toEqual(['6.12']);
    const one: Job[] = planJobs({ kernels: ['6.1'], filesOf: () => stock, lanes: 1, chunks61: 1 });
    expect(one.map((j) => j.id)).toEqual(['6.1']);
    expect(one[0]!.files).toEqual(stock);
  });

  it('plan with one lane: one boot per kernel, as before the lanes', () => {
    const jobs: Job[] = planJobs({ kernels: ['6.1', '6.12'], filesOf: () => [f('replay'), f('gso')], lanes: 1, chunks61: 1 });
    expect(jobs.map((j) => [j.id, j.files.length])).toEqual([['6.1', 2], ['6.12', 2]]);
  });

  it('simulate: lane 1 starts after the host steps; a free lane takes the next job', () => {
    const jobs = [
      { id: 'a', estimate: 800 }, { id: 'b', estimate: 900 }, { id: 'c', estimate: 700 }, { id: 'd', estimate: 500 },
    ];
    const s = simulate(jobs, 2, 720);
    // lane 2: a 0-800; lane 1: b 720-1620; lane 2: c 800-1500; lane 2: d 1500-2000
    expect(s.lanes[1]).toEqual([{ id: 'a', start: 0, end: 800 }, { id: 'c', start: 800, end: 1500 }, { id: 'd', start: 1500, end: 2000 }]);
    expect(s.lanes[0]).toEqual([{ id: 'b', start: 720, end: 1620 }]);
    expect(s.end).toBe(2000);
  });

  it('the timing-sensitive boot never runs beside the debug boot: a free lane takes the next job that may, or waits', () => {
    const timed = { id: 't', kernel: '6.1', pinned: true, estimate: 800 };
    const debug = { id: 'debug', kernel: 'debug', pinned: false, estimate: 900 };
    const a = { id: 'a', kernel: '6.1', pinned: false, estimate: 700 };
    expect(pickNext([debug, a], [timed])).toBe(1);
    expect(pickNext([debug], [timed])).toBe(-1);
    expect(pickNext([timed], [debug])).toBe(-1);
    expect(pickNext([debug, a], [a])).toBe(0);
    // lane 2: t 0-800; lane 1 (host until 100) skips debug for a (100-800); debug waits for t
    const s = simulate([timed, debug, a], 2, 100);
    expect(s.lanes[1]).toEqual([{ id: 't', start: 0, end: 800 }, { id: 'debug', start: 800, end: 1700 }]);
    expect(s.lanes[0]).toEqual([{ id: 'a', start: 100, end: 800 }]);
    // only debug left while t runs: lane 1 waits until t ends at 800
    const w = simulate([timed, debug], 2, 100);
    expect(w.lanes.flat().find((x: { id: string }) => x.id === 'debug')).toEqual({ id: 'debug', start: 800, end: 1700 });
    expect(w.end).toBe(1700);
  });
});
