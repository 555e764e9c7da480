// The kernel suites of `npm test` as VM jobs (one boot each) and their order for two lanes
// (scripts/test.mjs runs them; test/unit/vm-jobs.test.ts checks this file).
//
// Why lanes: the machine has 2 cores and a TCG VM is mostly one busy thread, so one VM alone
// leaves a core idle. scripts/test.mjs runs two lanes: lane 1 runs the host steps (host
// suites, operator install, bench smoke, harness self-tests) and then VM jobs; lane 2 runs VM
// jobs from the start. At most two VMs run at once (the harness and bench steps boot one VM at
// a time on lane 1). A lane that is free takes the next job of the list planJobs() returns:
// the pinned jobs first, then the rest longest first.

/**
 * Seconds of vitest time per test/vm file, measured in the CI run of Nov 30 (session 6, /work
 * ci6.log: clean clone of 82ed023, caches, nothing else running; 6.1 all in one boot, mirror
 * beside the debug VM; its alone figure was 228 s in session 5), per kernel. Files that skip
 * themselves there count 1 s. Only the ORDER of jobs and the balance of the 6.1 chunks depend
 * on these; a file missing here gets a guess from UNKNOWN_FILE (and the same file's 6.1 time on
 * other kernels, scaled), so a new file never breaks the plan.
 */
export const FILE_SECONDS = {
  '6.1': {
    mirror: 364, replay: 351, install: 209, ledger: 208, lifecycle: 167, counters: 152,
    ledger6: 104, reclaim: 89, persist: 98, checkentry: 50, accounting6: 47, cli: 43,
    libxt: 42, clear: 35, accounting: 27, gso: 24, memory: 25, defects: 15, edges: 25,
    packets: 10, scale: 9, harness: 6, 'promisc-patch': 1, faults: 1, resched: 40,
    // opt-in (XTT_STOCK_EXCLUDE=""): 294 s of VM in one boot, Nov 30
    stress: 260,
  },
  '6.12': {
    mirror: 236, counters: 142, checkentry: 48, accounting6: 39, gso: 21, memory: 17, packets: 8,
    faults: 1, stress: 280,
  },
  // beside the host steps and harness boots (ci6.log), i.e. ~1.2-1.5x what it takes alone
  debug: {
    gso: 184, memory: 230, 'promisc-patch': 168, packets: 67,
    // case fa alone (XTT_FI_CASES default), 1 Dec, beside another VM
    faults: 120,
    // earlier runs beside another VM (README "Kernel tests in a VM"): opt-in files
    edges: 176, clear: 236, checkentry: 697, lifecycle: 824, counters: 549, stress: 740,
  },
};
/** A file with no measurement: about the mean of the 6.1 files (2,065 s / 23). */
export const UNKNOWN_FILE = 90;
/** Other kernels' times from 6.1's when a file has none of its own there. */
const SCALE = { '6.12': 0.9, newest: 1, debug: 5 };
/**
 * Per boot, beyond the files' own time: boot, vitest's start, transform/collect, and on the
 * debug kernel kmemleak's two scans and the power-off (ci6.log: 6.1 2,217 s in the VM for
 * 2,065 s of files (23): 60 + 4 x 23 = 152; 6.12 563 s for 512 s (7); debug 899 s for 573 s
 * (4); a one-file 6.1 boot on Nov 30 18:25, beside another VM: 211 s for 122 s).
 */
export function bootOverhead(kernel, nfiles) {
  return kernel === 'debug' ? 320 : 60 + 4 * nfiles;
}

/** test/vm/NAME.test.ts -> NAME */
export const nameOf = (file) => file.replace(/^.*\//, '').replace(/\.test\.ts$/, '');

export function fileSeconds(kernel, file) {
  const n = nameOf(file);
  const own = FILE_SECONDS[kernel]?.[n];
  if (own !== undefined) return own;
  return Math.round((FILE_SECONDS['6.1'][n] ?? UNKNOWN_FILE) * (SCALE[kernel] ?? 1));
}

/**
 * Timing-sensitive 6.1 files (wall-clock waits against the collector's interval, idle
 * timeouts, pcap rates, races that once failed on a slower kernel: ledger's quota races failed
 * on 6.12 in a clean-clone run, e7a81dc). None of them ever ran beside another VM in a CI run
 * (only mirror did, beside the debug VM, and passed). They run together in ONE boot that is
 * pinned to start first on lane 2, beside the host steps (host suites, operator install,
 * bench smoke, harness boots), the lightest neighbour there is; never beside the debug VM,
 * which is the heaviest. mirror (its silence window is timed too) passed beside the debug VM
 * in ci6.log and goes wherever the balance puts it. resched (a wake-up latency probe, bound
 * 200 ms against 16 ms measured) joined them: never measured beside the debug VM.
 */
export const TIMING_SENSITIVE = ['replay', 'ledger', 'ledger6', 'reclaim', 'resched'];

/**
 * Files that get a boot of their own when lanes > 1: the stress suite needs 2 vCPUs (pktgen on
 * both CPUs), while the other stock boots run with 1 (scripts/test.mjs vmSmp: two 2-vCPU VMs at
 * once on 2 cores each ran ~1.7x slower).
 */
export const OWN_BOOT = ['stress'];

/** Splits files into n chunks of balanced estimated time (longest file first, to the lightest chunk). */
export function balance(kernel, files, n) {
  const chunks = Array.from({ length: Math.max(1, Math.min(n, files.length)) }, () => ({ files: [], secs: 0 }));
  const sorted = [...files].sort((a, b) => fileSeconds(kernel, b) - fileSeconds(kernel, a) || a.localeCompare(b));
  for (const f of sorted) {
    const c = chunks.reduce((m, x) => (x.secs < m.secs ? x : m));
    c.files.push(f);
    c.secs += fileSeconds(kernel, f);
  }
  return chunks.filter((c) => c.files.length).map((c) => c.files);
}

/**
 * The jobs: per kernel in `kernels`, its files (filesOf(kernel)) in one or more boots. 6.1 with
 * lanes > 1: the TIMING_SENSITIVE files in one pinned boot, the rest in chunks61 balanced
 * boots; every other kernel one boot. Returns jobs in the order lanes take them: pinned
 * first, then by estimate, longest first. A job: { kernel, id, files, estimate, pinned }.
 */
export function planJobs({ kernels, filesOf, lanes = 2, chunks61 = 2 }) {
  const jobs = [];
  const add = (kernel, id, files, pinned = false) => {
    const estimate = bootOverhead(kernel, files.length) + files.reduce((s, f) => s + fileSeconds(kernel, f), 0);
    jobs.push({ kernel, id, files, estimate, pinned });
  };
  for (const k of kernels) {
    let files = filesOf(k);
    if (!files.length) continue;
    // OWN_BOOT files (the 2-CPU stress suite) boot alone, so only that boot needs 2 vCPUs
    const own = lanes > 1 ? files.filter((f) => OWN_BOOT.includes(nameOf(f))) : [];
    if (own.length && own.length < files.length) {
      add(k, `${k}-${nameOf(own[0])}`, own);
      files = files.filter((f) => !own.includes(f));
    }
    if (k === '6.1' && lanes > 1) {
      const timed = files.filter((f) => TIMING_SENSITIVE.includes(nameOf(f)));
      const rest = files.filter((f) => !timed.includes(f));
      if (timed.length && rest.length) add(k, `${k}-timed`, timed, true);
      const parts = balance(k, timed.length && rest.length ? rest : files, chunks61);
      parts.forEach((p, i) => add(k, parts.length > 1 ? `${k}-${i + 1}` : k, p));
    } else {
      add(k, k, files);
    }
  }
  return jobs.sort((a, b) => Number(b.pinned) - Number(a.pinned) || b.estimate - a.estimate);
}

/**
 * Whether job a may not run while job b runs: the pinned (timing-sensitive) boot and the debug
 * kernel's boot (the heaviest neighbour) never overlap.
 */
export function conflicts(a, b) {
  return (a.pinned && b.kernel === 'debug') || (b.pinned && a.kernel === 'debug');
}

/** The next job a free lane takes: the first of `pending` that conflicts with no running job (or -1). */
export function pickNext(pending, running) {
  return pending.findIndex((j) => !running.some((r) => conflicts(j, r)));
}

/**
 * What the lanes would do with these jobs, by the estimates: lane 1 is busy for hostSeconds
 * first (the host steps). Returns { end, lanes: [[{ id, start, end }]] }. For the printed
 * plan and the tests; the real run (scripts/test.mjs) takes jobs the same way as lanes free up.
 */
export function simulate(jobs, lanes = 2, hostSeconds = 0) {
  const free = Array.from({ length: lanes }, (_, i) => (i === 0 ? hostSeconds : 0));
  const plan = free.map(() => []);
  const pending = [...jobs];
  const running = []; // { job, end }
  let now = 0;
  while (pending.length) {
    // the lane that is free first (on a tie the later lane: lane 1 has the host steps)
    let li = 0;
    for (let i = 1; i < lanes; i++) if (free[i] <= free[li]) li = i;
    now = Math.max(now, free[li]);
    const live = running.filter((r) => r.end > now).map((r) => r.job);
    const k = pickNext(pending, live);
    if (k < 0) {
      // wait for the next running job to end
      free[li] = Math.min(...running.filter((r) => r.end > now).map((r) => r.end));
      continue;
    }
    const [job] = pending.splice(k, 1);
    plan[li].push({ id: job.id, start: now, end: now + job.estimate });
    running.push({ job, end: now + job.estimate });
    free[li] = now + job.estimate;
  }
  return { end: Math.max(...free), lanes: plan };
}
