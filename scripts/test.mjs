#!/usr/bin/env node
// npm test: the host suites, the bench smoke test (BENCH_QUICK=1 bash bench/bench.sh, then
// checks of its report), the harness self-tests (which boot VMs), then the kernel suites
// inside the VM on every kernel of XTT_TEST_KERNELS (default "6.1 6.12"; add debug for the
// KASAN/lockdep/kmemleak/UBSAN build of scripts/debug-kernel.sh, which runs only the
// kernel-facing suites of XTT_DEBUG_SUITES, in one boot, and scans kmemleak at the end).
// Ends with one line "N passed, N failed"; exits non-zero on any failure.
//   XTT_TEST_ONLY=host,operator,bench,harness,vm   run a subset (operator: README's install in
//   Debian 13/12 chroots, test/operator/)
//   XTT_DEBUG_SUITES="lifecycle clear ..." test/vm files run on the debug kernel
//   XTT_612_SUITES="checkentry counters ..." test/vm files run on 6.12 (default: the kernel-facing
//   ones; "all": every stock file); XTT_STOCK_EXCLUDE (default "stress") left out on stock kernels
// "newest" (the newest Debian 13 kernel of scripts/newest-kernel.sh, opt-in) runs the suites
// of XTT_NEWEST_SUITES; without it, the harness self-tests boot that kernel once anyway
// (test/harness/newest-kernel.test.ts: module built in its trixie chroot, 3 pings counted).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const outDir = path.join(root, '.cache', 'test-results');
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const kernels = (process.env.XTT_TEST_KERNELS ?? '6.1 6.12').split(/[\s,]+/).filter(Boolean);
// About the module: install (depmod of Debian's tree, 3-4 min, and it runs on Debian's 6.1
// only), libxt (iptables' parser), replay (pcap timing), mirror (tc set-up) and scale (long)
// stay on the stock kernels. Figures in README ("Kernel tests in a VM").
// promisc-patch: the PROMISC patch route, which only the debug kernel carries.
// stress (issue 12: pktgen on both CPUs, clearing readers, replaces, netns churn, rmmod, for
// XTT_STRESS_SECONDS, both backends) is a debug-kernel candidate and stays out of the stock
// kernels' run (XTT_STOCK_EXCLUDE="" takes it in) until the CI budget has room for it: 294 s
// of VM on 6.1 (TCG, 2 x 120 s of stress, boot included; 300 s with issue 12's module patch),
// 310 s on 6.12; not yet measured on the debug kernel.
const stockExclude = (process.env.XTT_STOCK_EXCLUDE ?? 'stress')
  .split(/[\s,]+/)
  .filter(Boolean)
  .flatMap((n) => ['--exclude', `test/vm/${n}.test.ts`]);
const debugSuites = (process.env.XTT_DEBUG_SUITES ?? 'lifecycle clear accounting checkentry gso counters cli promisc-patch stress')
  .split(/[\s,]+/)
  .filter(Boolean)
  .map((n) => `test/vm/${n}.test.ts`)
  .filter((f) => existsSync(f));
// 6.12, the second stock kernel: the files whose outcome depends on the kernel (the module, its
// /proc files, GSO, memory, checkentry, tc/nft of the mirror port), not the ones that test
// userspace over a kernel already proven on 6.1 (replay: pcap timing through the same mirror
// set-up, 317 s; ledger: the collector, 218 s; persist, install, libxt, scale), to keep
// `.ci/run` inside its budget: the full 6.1 list took 1,705 s under TCG on Nov 30 (session 4).
// XTT_612_SUITES=all runs every stock file on 6.12 too.
const suites612 = (process.env.XTT_612_SUITES ?? 'checkentry counters lifecycle accounting accounting6 clear gso memory edges packets cli mirror harness')
  .split(/[\s,]+/)
  .filter(Boolean)
  .map((n) => `test/vm/${n}.test.ts`)
  .filter((f) => existsSync(f));
// The newest kernel: the suites about the module (promisc-patch needs the patched debug kernel).
const newestSuites = (process.env.XTT_NEWEST_SUITES ?? 'lifecycle clear accounting checkentry gso counters cli')
  .split(/[\s,]+/)
  .filter(Boolean)
  .map((n) => `test/vm/${n}.test.ts`)
  .filter((f) => existsSync(f));
const only = (process.env.XTT_TEST_ONLY ?? 'host,operator,bench,harness,vm').split(',');
const totals = { passed: 0, failed: 0, skipped: 0 };
const failures = [];

function step(title) {
  process.stderr.write(`\n=== ${title}\n`);
}

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  return r.status ?? 1;
}

/** Adds a vitest JSON report to the totals; a missing report counts as one failure. */
function account(label, file, status) {
  if (!existsSync(file)) {
    totals.failed += 1;
    failures.push(`${label}: no test report (exit ${status})`);
    return;
  }
  const rep = JSON.parse(readFileSync(file, 'utf8'));
  totals.passed += rep.numPassedTests;
  totals.failed += rep.numFailedTests;
  totals.skipped += rep.numPendingTests + (rep.numTodoTests ?? 0);
  for (const suite of rep.testResults ?? []) {
    for (const t of suite.assertionResults ?? []) {
      if (t.status === 'failed') failures.push(`${label}: ${t.fullName}`);
    }
    if (suite.status === 'failed' && !(suite.assertionResults ?? []).some((t) => t.status === 'failed')) {
      totals.failed += 1;
      failures.push(`${label}: ${path.relative(root, suite.name)}: ${(suite.message ?? '').split('\n')[0]}`);
    }
  }
  if (status !== 0 && rep.numFailedTests === 0 && rep.success !== false) {
    // e.g. the VM run failed its kernel log scan after every test passed
    totals.failed += 1;
    failures.push(`${label}: run exited ${status} although its tests passed (see the vm: lines above)`);
  }
}

function vitest(config, report) {
  return ['node_modules/.bin/vitest', 'run', '--config', config, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`];
}

step('build');
const rels = [];
for (const k of kernels) {
  const r = spawnSync('bash', ['-c', `ROOT=$PWD; . scripts/lib/kernels.sh; kernel_cached_release ${k}`], { encoding: 'utf8' });
  const rel = r.stdout.trim();
  if (!rel) {
    console.error(`test: no cached ${k} kernel: run 'npm run setup'`);
    process.exit(4);
  }
  rels.push(rel);
}
if (run('bash', ['scripts/build.sh', ...rels.flatMap((r) => ['--kernel', r])]) !== 0) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}
// The PROMISC suite on the debug kernel (which carries patches/linux-6.1) needs the patched
// iptables-legacy 1.8.9 (patches/iptables-1.8.9): built once per machine (~2 min), cached.
if (kernels.includes('debug') && only.includes('vm') && debugSuites.includes('test/vm/promisc-patch.test.ts')) {
  if (run('bash', ['-c', 'bash scripts/iptables-promisc.sh >/dev/null']) !== 0) {
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

if (only.includes('host')) {
  step('host suites (unit, CLI, C logic)');
  const rep = path.join(outDir, 'host.json');
  account('host', rep, run('node', vitest('vitest.config.ts', rep)));
}

if (only.includes('operator')) {
  // README's install on stock Debian (scripts/operator-chroot.sh): root, debootstrap, Debian's
  // archive and the npm registry. The chroots are cached in /var/cache/xttraffic (made once
  // per machine, by `npm run setup` or here); each run installs into a fresh overlay.
  step('operator install in Debian chroots (13 trixie: README install; 12 bookworm: Node 18)');
  const rep = path.join(outDir, 'operator.json');
  const t0 = Date.now();
  account('operator', rep, run('node', vitest('vitest.operator.config.ts', rep)));
  process.stderr.write(`operator suite: ${Math.round((Date.now() - t0) / 1000)} s\n`);
}

if (only.includes('bench')) {
  // One icount VM plus a small native read: about 1.5-2 minutes. Writes into the test
  // results folder, never over bench/results/. Asserts nothing about speed.
  step('bench smoke test (BENCH_QUICK=1 bash bench/bench.sh, then checks of its report)');
  const benchDir = path.join(outDir, 'bench');
  const status = run('bash', ['bench/bench.sh'], {
    BENCH_QUICK: '1',
    XTT_VM_OUTDIR: benchDir,
    XTT_NO_BUILD: '1',
    XTT_KERNEL: kernels.includes('6.1') ? '6.1' : kernels[0],
  });
  if (status !== 0) {
    totals.failed += 1;
    failures.push(`bench: BENCH_QUICK=1 bash bench/bench.sh exited ${status}`);
  }
  const rep = path.join(outDir, 'bench.json');
  account('bench', rep, run('node', vitest('vitest.bench.config.ts', rep), { XTT_BENCH_QUICK_DIR: benchDir }));
}

if (only.includes('harness')) {
  step(`harness self-tests (boot VMs: ${kernels.join(', ')})`);
  const rep = path.join(outDir, 'harness.json');
  account('harness', rep, run('node', vitest('vitest.harness.config.ts', rep), {
    // newest has its own self-test (test/harness/newest-kernel.test.ts), which always runs
    XTT_TEST_KERNELS: kernels.filter((k) => k !== 'newest').join(' '),
  }));
}

if (only.includes('vm')) {
  for (const k of kernels) {
    step(`kernel suites in the VM, kernel ${k}`);
    const rep = path.join(outDir, `vm-${k}.json`);
    // the debug kernel is 2-3x slower under TCG (KASAN, lockdep): 3x the per-test limits
    const files = k === 'debug' ? ['--testTimeout=360000', '--hookTimeout=360000', ...debugSuites]
      : k === 'newest' ? newestSuites
        : k === '6.12' && process.env.XTT_612_SUITES !== 'all' ? suites612 : stockExclude;
    if (k === 'debug') process.stderr.write(`debug kernel: ${debugSuites.join(' ')}\n`);
    if (k === 'newest') process.stderr.write(`newest kernel: ${newestSuites.join(' ')}\n`);
    if (files === suites612) process.stderr.write(`6.12: ${suites612.join(' ')} (XTT_612_SUITES=all: every file)\n`);
    const t0 = Date.now();
    const status = run('bash', ['scripts/vm.sh', 'node', ...vitest('vitest.vm.config.ts', rep), ...files], {
      XTT_KERNEL: k,
      XTT_NO_BUILD: '1',
      XTT_VM_OUTDIR: outDir,
      // debug: the default suites took 2,450 s in one boot under load (1.2-4x the stock kernel)
      XTT_VM_TIMEOUT: process.env.XTT_VM_TIMEOUT ?? (k === 'debug' ? '5400' : '3600'),
    });
    process.stderr.write(`kernel suites on ${k}: ${Math.round((Date.now() - t0) / 1000)} s\n`);
    account(`vm ${k}`, rep, status);
  }
}

process.stderr.write('\n');
if (failures.length) {
  console.log('Failures:');
  for (const f of failures) console.log(`  - ${f}`);
}
console.log(`${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`);
process.exit(totals.failed ? 1 : 0);
