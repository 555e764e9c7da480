import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelLog } from '../lib/dmesg.js';
import { loadModule, unloadModuleWhenFree } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { REPO, sh } from '../lib/sh.js';

// Issue 12, defect 4: "long loops never reschedule". The walks over a whole table (clear,
// free, index rebuilds) call cond_resched() every 1024 steps (a step: a bucket or an entry).
// Debian's kernels are not preemptible in the kernel (PREEMPT_VOLUNTARY): a loop without a
// rescheduling point keeps its CPU for as long as it runs, and every task waiting there waits
// as long. So this test pins a probe (test/lib/wakeprobe.c: sleeps 1 ms in a loop and records
// how late each wake-up is) and the table's clears and its rule's delete to the SAME CPU
// (0), and asserts the probe's worst wake-up delay stays far below a loop's length.
// A table of 4,194,304 buckets (the most --hashsize allows), with --ipconn, and FILL rows:
// clear walks every bucket and row, the delete frees two such maps.
// Empty, the walks are too short to tell (30 Nov 2026, 6.1.0-57 under TCG beside another VM,
// the scratch module without cond_resched() of scripts/fail-without-fix.sh --run R: worst
// delays 17-25 ms in the clears and 16 ms in the delete; HEAD 7-11 ms and 60 ms; the idle
// probe 11 ms): hence the rows. With 250,000 rows (same conditions, one boot, run of 23:00):
//   scratch module: clears 86, 94, 103 ms, delete 2,270 ms late (its command 5.39 s): FAILS
//   HEAD:           clears 16, 10, 9 ms, delete 15 ms (its command 6.09 s); idle 11-17 ms
// BOUND_MS 200: over 3x the worst HEAD figure seen (60 ms, the empty table's delete) and
// 11x under the scratch module's delete. The clears alone stay under the bound even without
// cond_resched() (a clear of a row is a few stores; a free, with slub_debug, microseconds).
// 1 vCPU (as npm test boots the stock kernels since 8ab9e45; run of 23:15, final version):
//   scratch module: clears 118, 86, 89 ms, delete 2,157 ms late: FAILS; HEAD: clears 5, 8,
//   16 ms, delete 7 ms: passes; idle 6-7 ms; traffic_entries 250,001 both.
// The test takes 25-35 s under TCG (12-15 s of it the fill).

const T = 'rs';
const P = `/proc/net/xt_traffic/${T}`;
const PROBE = '/tmp/xtt-wakeprobe';
const CLEARS = 3;
// rows in the table: the free of each one is a step of xtt_map_free() (with slub_debug's
// checks and poisoning, which the stock VM boots with, a few microseconds each under TCG)
const FILL = 250_000;
// The worst wake-up delay allowed while a walk runs on the probe's CPU.
const BOUND_MS = 200;

interface Probe {
  samples: number;
  maxMs: number;
  over10: number;
  over50: number;
}

/** Runs `fn` while the probe sleeps 1 ms at a time on CPU 0; returns the probe's figures. */
async function probed(fn: () => Promise<unknown>): Promise<Probe> {
  const child = spawn(PROBE, ['0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    child.on('error', reject);
    void exited.then((code) => reject(new Error(`wakeprobe exited ${code} before ready: ${out}`)));
  });
  // a few hundred samples before the walk starts
  await new Promise((r) => setTimeout(r, 300));
  try {
    await fn();
  } finally {
    child.kill('SIGTERM');
  }
  const code = await exited;
  const m = /samples=(\d+) max_us=(\d+) over10ms=(\d+) over50ms=(\d+)/.exec(out);
  if (code !== 0 || !m) throw new Error(`wakeprobe exited ${code}: ${out}`);
  return { samples: Number(m[1]), maxMs: Number(m[2]) / 1000, over10: Number(m[3]), over50: Number(m[4]) };
}

describe('long loops reschedule: a task on the same CPU waits milliseconds, not a walk', () => {
  let ns: Netns;
  const log = new KernelLog();
  const rule = ['-t', 'raw', '-A', 'OUTPUT', '-m', 'traffic', '--traffic', '--ipconn', '--netbase', '10.0.0.0', '--netmask', '8', '--hashsize', '4194304', '--name', T];

  beforeAll(() => {
    sh('gcc', ['-O2', '-o', PROBE, `${REPO}/test/lib/wakeprobe.c`]);
    loadModule();
    ns = new Netns('rs');
    ns.exec('ip', ['addr', 'add', '10.0.0.1/8', 'dev', 'lo']);
  }, 120_000);

  afterAll(async () => {
    ns?.delete();
    await unloadModuleWhenFree();
  }, 120_000);

  it('clear and delete of a 4,194,304-bucket table: the probe on the same CPU is never late by more than BOUND_MS', async () => {
    const onCpu0 = (cmd: string) => ns.run('taskset', ['-c', '0', 'sh', '-c', cmd]);
    const timed = async (what: string, cmd: string): Promise<{ s: number; probe: Probe }> => {
      let s = 0;
      const probe = await probed(async () => {
        const t0 = process.hrtime.bigint();
        await onCpu0(cmd);
        s = Number(process.hrtime.bigint() - t0) / 1e9;
      });
      console.log(
        `${what}: ${s.toFixed(2)} s; probe on CPU 0: ${probe.samples} wake-ups, worst ${probe.maxMs.toFixed(1)} ms late, ` +
          `${probe.over10} over 10 ms, ${probe.over50} over 50 ms`,
      );
      return { s, probe };
    };
    log.mark();
    // the noise floor: the probe beside a shell that only sleeps
    const idle = await timed('idle (sleep 1)', 'sleep 1');
    await timed('insert the rule (two 4M-bucket maps, flow sets; not asserted)', `iptables-legacy ${rule.join(' ')}`);
    // rows for the walks to visit: one datagram to each of FILL addresses (10.1.0.0 up), each
    // dropped right after the rule counted it (no trip through lo)
    ns.exec('iptables-legacy', ['-t', 'raw', '-A', 'OUTPUT', '!', '-d', '10.0.0.0/16', '-j', 'DROP']);
    const f0 = Date.now();
    // on the other CPU if there is one (npm test boots the stock kernels with 1 vCPU)
    const sent = await ns.run('taskset', ['-c', cpus().length > 1 ? '1' : '0', PROBE, 'send', String(FILL)]);
    const entries = Number(/traffic_entries:\s*(\d+)/.exec(ns.cat(`${P}_info`))?.[1]);
    console.log(`filled: ${sent.trim()} in ${((Date.now() - f0) / 1000).toFixed(1)} s; traffic_entries ${entries}`);
    // one row per destination and one for the source, 10.0.0.1 (the DROP makes every sendto
    // fail with EPERM: "sent=0", after the rule counted it)
    expect(entries).toBe(FILL + 1);
    const walks: { what: string; s: number; probe: Probe }[] = [];
    for (let i = 1; i <= CLEARS; i++) {
      const what = `clear ${i} (xtt_map_clear, 4,194,304 buckets)`;
      walks.push({ what, ...(await timed(what, `echo clear > ${P}`)) });
    }
    const del = [...rule];
    del[2] = '-D';
    walks.push({ what: 'delete (xtt_map_free x2)', ...(await timed('delete the rule (xtt_map_free x2)', `iptables-legacy ${del.join(' ')}`)) });
    const worst = Math.max(...walks.map((w) => w.probe.maxMs));
    console.log(
      `worst wake-up delay during the walks: ${worst.toFixed(1)} ms (bound ${BOUND_MS} ms; idle ${idle.probe.maxMs.toFixed(1)} ms; ` +
        `longest command ${Math.max(...walks.map((w) => w.s)).toFixed(2)} s)`,
    );
    // every walk sampled: the probe woke during each one
    for (const w of walks) expect(w.probe.samples, w.what).toBeGreaterThan(0);
    expect(
      walks.filter((w) => w.probe.maxMs >= BOUND_MS).map((w) => `${w.what}: ${w.probe.maxMs.toFixed(1)} ms`),
    ).toEqual([]);
    expect(log.trouble()).toEqual([]);
  }, 300_000);
});
