import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// scripts/test.mjs's two lanes, end to end without a VM: a scratch tree with the real
// scripts/test.mjs and scripts/lib/vm-jobs.mjs, and stand-ins for the build, the kernel cache,
// scripts/vm.sh (runs "files" for 1 s each, writes a vitest-like JSON report, fails for a file
// named cifail and, with MOCK_LOGHIT, like a kernel log hit on 6.12: exit 1 with every test
// passed) and vitest on the host (prints a line a second for 4 s).
const repo = path.resolve(__dirname, '../..');
let dir = '';

const VM_SH = `#!/bin/bash
rep=; files=()
for a in "$@"; do case $a in --outputFile.json=*) rep=\${a#*=} ;; test/vm/*) files+=("$a") ;; esac; done
echo "mock vm ($XTT_KERNEL): \${files[*]}"
echo "start $XTT_KERNEL \${files[*]} $(date +%s%N)" >> "$MOCK_TRACE"
fail=0; n=0
for f in "\${files[@]}"; do sleep 1; n=$((n+1)); case $f in *cifail*) fail=1 ;; esac; done
printf '{"numPassedTests":%d,"numFailedTests":%d,"numPendingTests":0,"success":%s,"testResults":[]}\\n' $((n-fail)) $fail $([ $fail = 1 ] && echo false || echo true) > "$rep"
echo "end $XTT_KERNEL \${files[*]} $(date +%s%N)" >> "$MOCK_TRACE"
[ -n "$MOCK_LOGHIT" ] && [ "$XTT_KERNEL" = 6.12 ] && { echo "vm: FAIL: the guest kernel logged: WARNING"; exit 1; }
exit $fail
`;
const HOST_VITEST = `const fs = require('fs');
const rep = process.argv.find((a) => a.startsWith('--outputFile.json=')).split('=')[1];
let i = 0;
const t = setInterval(() => {
  console.error('host vitest line ' + ++i);
  if (i === 4) {
    clearInterval(t);
    fs.writeFileSync(rep, JSON.stringify({ numPassedTests: 5, numFailedTests: 0, numPendingTests: 0, success: true, testResults: [] }));
  }
}, 1000);
`;

function run(env: Record<string, string>) {
  const trace = path.join(dir, `trace-${Math.random().toString(36).slice(2)}`);
  writeFileSync(trace, '');
  rmSync(path.join(dir, '.cache'), { recursive: true, force: true });
  const r = spawnSync('node', ['scripts/test.mjs'], {
    cwd: dir,
    encoding: 'utf8',
    env: {
      PATH: process.env['PATH'] ?? '', MOCK_TRACE: trace, XTT_NEWEST_SUITES: 'gso', XTT_TEST_ONLY: 'host,vm',
      XTT_TEST_KERNELS: '6.1 6.12 debug', XTT_612_SUITES: 'gso packets', XTT_DEBUG_SUITES: 'gso', ...env,
    },
  });
  const events = readFileSync(trace, 'utf8').trim().split('\n').map((l) => {
    const [what, kernel, ...rest] = l.split(' ');
    return { what, kernel, files: rest.slice(0, -1).join(' '), t: Number(rest[rest.length - 1]) / 1e6 };
  });
  return { status: r.status, out: r.stdout + r.stderr, last: r.stdout.trim().split('\n').pop(), err: r.stderr, events };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'xtt-lanes-'));
  for (const d of ['scripts/lib', 'test/vm', 'node_modules/.bin']) mkdirSync(path.join(dir, d), { recursive: true });
  copyFileSync(path.join(repo, 'scripts/test.mjs'), path.join(dir, 'scripts/test.mjs'));
  copyFileSync(path.join(repo, 'scripts/lib/vm-jobs.mjs'), path.join(dir, 'scripts/lib/vm-jobs.mjs'));
  for (const n of ['replay', 'ledger', 'mirror', 'gso', 'packets', 'cifail', 'stress']) writeFileSync(path.join(dir, `test/vm/${n}.test.ts`), '// stand-in\n');
  writeFileSync(path.join(dir, 'scripts/lib/kernels.sh'), 'kernel_cached_release() { echo "mock-$1"; }\n');
  writeFileSync(path.join(dir, 'scripts/build.sh'), 'echo "mock build $*"\n');
  writeFileSync(path.join(dir, 'scripts/vm.sh'), VM_SH);
  chmodSync(path.join(dir, 'scripts/vm.sh'), 0o755);
  writeFileSync(path.join(dir, 'node_modules/.bin/vitest'), HOST_VITEST);
  writeFileSync(path.join(dir, 'vitest.config.ts'), '');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm test in two lanes (stand-in VMs)', () => {
  it('lane 2 starts the timing-sensitive 6.1 boot beside the host steps; at most two boots at once; debug never beside it; output held until the host step ends', () => {
    const r = run({ XTT_STOCK_EXCLUDE: 'stress cifail' });
    expect(r.status, r.out).toBe(0);
    // host 5 passed; 6.1: ledger replay | mirror | gso packets; debug gso; 6.12 gso packets
    expect(r.last).toBe('13 passed, 0 failed');
    const starts = r.events.filter((e) => e.what === 'start');
    expect(starts.map((e) => `${e.kernel}:${e.files}`).sort()).toEqual([
      '6.1:test/vm/gso.test.ts test/vm/packets.test.ts', '6.1:test/vm/ledger.test.ts test/vm/replay.test.ts',
      '6.1:test/vm/mirror.test.ts', 'debug:test/vm/gso.test.ts', '6.12:test/vm/gso.test.ts test/vm/packets.test.ts',
    ].sort());
    expect(starts[0]!.files).toBe('test/vm/ledger.test.ts test/vm/replay.test.ts');
    // at every start, at most one other boot is running; the timed one and debug never overlap
    const spans = starts.map((s) => ({ ...s, end: r.events.find((e) => e.what === 'end' && e.kernel === s.kernel && e.files === s.files)!.t }));
    for (const s of spans) {
      const during = spans.filter((o) => o !== s && o.t <= s.t && o.end > s.t);
      expect(during.length).toBeLessThanOrEqual(1);
    }
    const timed = spans.find((s) => s.files.includes('ledger'))!;
    const debug = spans.find((s) => s.kernel === 'debug')!;
    expect(debug.t >= timed.end || debug.end <= timed.t).toBe(true);
    // the timed job (2 s) ended during the host step (4 s): its log comes after the host lines
    expect(r.err).toContain('host vitest line 4');
    expect(r.err.indexOf('job 6.1-timed (kernel 6.1, 2 files')).toBeGreaterThan(r.err.indexOf('host vitest line 4'));
    for (const k of ['6.1', '6.12', 'debug']) expect(r.err).toMatch(new RegExp(`kernel suites on ${k.replace('.', '\\.')}: \\d+ s`));
  }, 60_000);

  it('a failing file in one job and a kernel log hit in another each fail the run', () => {
    const r = run({ XTT_STOCK_EXCLUDE: 'stress', MOCK_LOGHIT: '1' });
    expect(r.status).toBe(1);
    expect(r.out).toContain('vm 6.12: run exited 1 although its tests passed');
    expect(r.last).toBe('13 passed, 2 failed');
  }, 60_000);

  it('XTT_VM_LANES=1: one boot per kernel, one at a time, after the host steps', () => {
    const r = run({ XTT_STOCK_EXCLUDE: 'stress cifail', XTT_VM_LANES: '1' });
    expect(r.status, r.out).toBe(0);
    const starts = r.events.filter((e) => e.what === 'start');
    expect(starts.map((e) => e.kernel)).toEqual(['6.1', 'debug', '6.12']);
    const ends = r.events.filter((e) => e.what === 'end');
    for (let i = 1; i < starts.length; i++) expect(starts[i]!.t).toBeGreaterThanOrEqual(ends[i - 1]!.t);
    expect(r.err.indexOf('[lane 1] 6.1 started')).toBeGreaterThan(r.err.indexOf('host vitest line 4'));
  }, 60_000);
});
