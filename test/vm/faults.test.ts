import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelLog } from '../lib/dmesg.js';
import { loadModule, modulePath, unloadModuleWhenFree } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { REPO, sh } from '../lib/sh.js';

// Issue 12, defect 4 on the debug kernel (scripts/debug-kernel.config: CONFIG_FAULT_INJECTION,
// FAILSLAB, FAIL_PAGE_ALLOC, FAULT_INJECTION_USERCOPY, SOFTLOCKUP_DETECTOR).
//
// 1. "A failed proc file creation removes files that were never created": every allocation
//    (slab, page, user copy) of the call that makes a rule is failed in turn, N = 1, 2, ...
//    (/proc/thread-self/fail-nth, armed by test/lib/failnth.c right before iptables-legacy's
//    setsockopt(IPT_SO_SET_REPLACE) or iptables-nft's netlink batch, so nothing else of the
//    process fails), until the call passes fewer than N sites. Each attempt either fails
//    cleanly (no rule, none of the table's files, module reference count 0) or succeeds
//    fully (every file, one packet makes one entry, the delete removes every file and the
//    reference); the kernel log of the run (scanned by the harness: WARNING, KASAN, leaks
//    by kmemleak at the end) stays clean. The module before its fix (963ede7^) removed every
//    file of the table when one could not be made: remove_proc_entry() of a name that was
//    never created WARNs ("name '...'").
// 2. "Long loops never reschedule" is test/vm/resched.test.ts (stock 6.1: a wake-up latency
//    probe on the CPU of the walks; the soft-lockup check this file had (watchdog_thresh=1,
//    2 s) was never shown to fail: its walks took under 2 s).
//
// Stock kernels have no fail-nth: this file is skipped there, and on a debug kernel built before
// fault injection was in its config (it says so).

const FAILNTH = '/proc/thread-self/fail-nth';
const DBG = '/sys/kernel/debug';
const PARAMS = '/sys/module/xt_traffic/parameters';
const debugKernel = sh('uname', ['-r']).includes('xttdebug');
const haveFI = existsSync(FAILNTH);
const SHIM = '/tmp/xtt-failnth.so';
const DRIVER = `${REPO}/test/lib/faults.sh`;
// the most attempts per case (a safety stop: every case ends by itself well before)
const MAXN = Number(process.env.XTT_FI_MAXN ?? 3000);

function writeKnob(path: string, value: string): void {
  if (existsSync(path)) writeFileSync(path, value);
}

function param(name: string): string | undefined {
  const p = `${PARAMS}/${name}`;
  return existsSync(p) ? readFileSync(p, 'utf8').trim() : undefined;
}

interface Attempt {
  n: number;
  rc: number;
  call: string;
  left: string;
  rule: number;
  ref: number;
  files: string;
  entries: string;
  after: string;
  refAfter: string;
  line: string;
}

function parse(out: string): Attempt[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('n='))
    .map((line) => {
      const get = (k: string): string => {
        const m = new RegExp(`(?:^| )${k}=(\\[[^\\]]*\\]|\\S*)`).exec(line);
        if (!m) throw new Error(`no ${k}= in: ${line}`);
        return m[1]!.replace(/^\[(.*)\]$/, '$1');
      };
      return {
        n: Number(get('n')),
        rc: Number(get('rc')),
        call: get('call'),
        left: get('left'),
        rule: Number(get('rule')),
        ref: Number(get('ref')),
        files: get('files'),
        entries: get('entries'),
        after: get('after'),
        refAfter: get('ref_after'),
        line,
      };
    });
}

interface Case {
  title: string;
  ipt: string;
  name: string;
  args: string[];
  dest: string;
  files: string[];
  params?: Record<string, string>;
}

const v4 = ['--traffic', '--netbase', '127.0.0.0', '--netmask', '24'];
// a /128 net needs --hostprefix 128 (the default, 64, is longer than the net: refused)
const v6 = ['--traffic', '--netbase', '::1', '--netmask', '128', '--hostprefix', '128'];
const spec = (n: string, extra: string[] = []): string[] =>
  [`xt_traffic/${n}`, ...extra, `xt_traffic/${n}_info`, `xt_traffic_counters/${n}`];

const CASES: Case[] = [
  { title: 'iptables-legacy --traffic', ipt: 'iptables-legacy', name: 'fa', args: v4, dest: '127.0.0.1', files: spec('fa') },
  {
    title: 'iptables-legacy --traffic --ipconn --portconn',
    ipt: 'iptables-legacy',
    name: 'fb',
    args: [...v4, '--ipconn', '--portconn'],
    dest: '127.0.0.1',
    files: spec('fb', ['xt_traffic/fb_ipconn', 'xt_traffic/fb_portconn']),
  },
  {
    title: 'iptables-legacy --traffic, packets=1',
    ipt: 'iptables-legacy',
    name: 'fc',
    args: v4,
    dest: '127.0.0.1',
    files: [...spec('fc'), 'xt_traffic_packets/fc'],
    params: { packets: 'Y' },
  },
  {
    title: 'iptables-legacy --traffic, reclaim_idle=60',
    ipt: 'iptables-legacy',
    name: 'fd',
    args: v4,
    dest: '127.0.0.1',
    files: spec('fd'),
    params: { reclaim_idle: '60' },
  },
  { title: 'ip6tables-legacy --traffic (revision 1)', ipt: 'ip6tables-legacy', name: 'fe', args: v6, dest: '::1', files: spec('fe') },
  { title: 'iptables-nft --traffic', ipt: 'iptables-nft', name: 'ff', args: v4, dest: '127.0.0.1', files: spec('ff') },
  { title: 'ip6tables-nft --traffic (revision 1)', ipt: 'ip6tables-nft', name: 'fg', args: v6, dest: '::1', files: spec('fg') },
];

if (debugKernel && !haveFI)
  console.log(`faults.test.ts: ${FAILNTH} missing: this debug kernel predates CONFIG_FAULT_INJECTION in scripts/debug-kernel.config (rebuild it: npm run setup); the fault-injection tests are SKIPPED`);

// Which cases run: XTT_FI_CASES=all, or names (fa,fb,...); default fa alone (CI's budget: on
// the debug kernel under TCG an attempt took 14 s with the driver's first version, beside
// another VM; each case has tens of attempts).
const FI_CASES = (process.env.XTT_FI_CASES ?? 'fa').split(/[\s,]+/).filter(Boolean);
const runCases = FI_CASES.includes('all') ? CASES : CASES.filter((c) => FI_CASES.includes(c.name));

describe.skipIf(!haveFI)('fault injection: every allocation of a rule insert failed in turn', () => {
  let ns: Netns;
  let haveCounters = true;
  let haveV6 = true;
  const log = new KernelLog();

  beforeAll(() => {
    if (!existsSync(`${DBG}/failslab`)) sh('mount', ['-t', 'debugfs', 'none', DBG]);
    // GFP_KERNEL allocations are skipped by default ("ignore-gfp-wait"); no stack per fault
    for (const d of ['failslab', 'fail_page_alloc']) writeKnob(`${DBG}/${d}/ignore-gfp-wait`, 'N');
    writeKnob(`${DBG}/fail_page_alloc/ignore-gfp-highmem`, 'N');
    for (const d of ['failslab', 'fail_page_alloc', 'fail_usercopy']) writeKnob(`${DBG}/${d}/verbose`, '0');
    sh('gcc', ['-shared', '-fPIC', '-O2', '-o', SHIM, `${REPO}/test/lib/failnth.c`, '-ldl']);
    loadModule();
    haveCounters = existsSync('/proc/net/xt_traffic_counters');
    // the module before 963ede7 registered an IPv4 match only (alias ipt_traffic)
    haveV6 = sh('modinfo', ['-F', 'alias', modulePath()]).split('\n').includes('ip6t_traffic');
    ns = new Netns('fi');
    // iptables-nft makes the raw table and its chains once, outside the measured calls
    ns.exec('iptables-nft', ['-t', 'raw', '-L', '-n']);
    ns.exec('ip6tables-nft', ['-t', 'raw', '-L', '-n']);
  }, 300_000);

  afterAll(async () => {
    for (const d of ['failslab', 'fail_page_alloc']) writeKnob(`${DBG}/${d}/ignore-gfp-wait`, 'Y');
    ns?.delete();
    await unloadModuleWhenFree();
  }, 120_000);

  for (const c of runCases) {
    it(`${c.title}: each attempt fails cleanly or succeeds fully; the last passes every site`, async (ctx) => {
      if (c.ipt.startsWith('ip6') && !haveV6) {
        console.log(`${c.title}: this module has no IPv6 match (no ip6t_traffic alias): skipped`);
        ctx.skip();
        return;
      }
      const restore: Record<string, string> = {};
      for (const [k, v] of Object.entries(c.params ?? {})) {
        const old = param(k);
        if (old === undefined) {
          console.log(`${c.title}: this module has no ${k} parameter: skipped`);
          ctx.skip();
          return;
        }
        restore[k] = old;
        writeFileSync(`${PARAMS}/${k}`, v);
      }
      log.mark();
      const t0 = Date.now();
      let out: string;
      try {
        out = await ns.run('bash', [DRIVER, c.ipt, c.name, SHIM, String(MAXN), c.dest, '--', ...c.args]);
      } finally {
        for (const [k, v] of Object.entries(restore)) writeFileSync(`${PARAMS}/${k}`, v);
      }
      const attempts = parse(out);
      // every attempt's line, so a failing run names the attempt (N) of each kernel line
      console.log(attempts.map((a) => a.line).join('\n'));
      const failed = attempts.filter((a) => a.rule === 0);
      const faultedOk = attempts.filter((a) => a.rule === 1 && a.left === '0');
      const created = log.since().filter((l) => l.includes('cannot create /proc/net/'));
      console.log(
        `${c.title}: ${attempts.length} attempts in ${((Date.now() - t0) / 1000).toFixed(0)} s: ` +
          `${failed.length} failed cleanly, ${faultedOk.length} succeeded despite their fault, ` +
          `${created.length} "cannot create" proc-file failures logged`,
      );
      const bad: string[] = [];
      // the module before the fix (963ede7^) had no counters file yet
      const files = haveCounters ? c.files : c.files.filter((f) => !f.startsWith('xt_traffic_counters/'));
      const want = [...files].sort().join(' ');
      for (const a of attempts) {
        if (a.call === 'none') bad.push(`the shim never armed: ${a.line}`);
        else if ((a.rc === 0) !== (a.rule === 1)) bad.push(`exit status and rule disagree: ${a.line}`);
        else if (a.rule === 0 && (a.files !== '' || a.ref !== 0)) bad.push(`failed insert left files or a module reference: ${a.line}`);
        else if (a.rule === 1 && (a.files.split(' ').sort().join(' ') !== want || a.ref < 1 || a.entries !== '1' || a.after !== '' || a.refAfter !== '0'))
          bad.push(`inserted rule incomplete (want files ${want}, 1 entry, nothing after the delete): ${a.line}`);
      }
      expect(bad.slice(0, 10)).toEqual([]);
      const last = attempts[attempts.length - 1]!;
      // the loop ended because the call passed fewer sites than N: every site was failed once
      expect(Number(last.left)).toBeGreaterThan(0);
      expect(last.rule).toBe(1);
      expect(failed.length).toBeGreaterThan(0);
      // the module's own proc-file error path ran (some of its proc_create_data() failed)
      expect(created.length).toBeGreaterThan(0);
      expect(log.since().filter((l) => /WARNING|BUG|KASAN|name '/.test(l))).toEqual([]);
    }, 1_500_000);
  }
});
