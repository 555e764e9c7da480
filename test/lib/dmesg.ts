// The kernel log as /dev/kmsg gives it: one record per read, with a sequence number, so a
// test can take exactly the lines the kernel logged after a point ("mark") and nothing else.
import { constants, openSync, readFileSync, readSync } from 'node:fs';

export interface KmsgRecord {
  seq: number;
  /** syslog priority (facility * 8 + level); level = prio & 7 */
  prio: number;
  /** microseconds since boot */
  tsUsec: number;
  /** the message text, as /dev/kmsg escapes it (non-printable bytes as \xNN) */
  text: string;
}

/** Lines that the VM run treats as a kernel failure (scripts/vm.sh greps the same). */
export const KERNEL_TROUBLE =
  /BUG|WARNING|Oops|general protection|refcount|list_del corruption|soft lockup|hung task|Kernel panic|UBSAN:|KASAN|KFENCE|possible circular locking|inconsistent lock state|suspicious RCU usage|possible recursive locking|sleeping function called from invalid context/;

// One /dev/kmsg reader for the whole process: each read returns the next record, so after
// the first drain only new records are read (cheap under TCG), and every record read is kept.
let kmsgFd: number | undefined;
const seen: KmsgRecord[] = [];
const buf = Buffer.alloc(16384);

/** Reads the records logged since the last drain into `seen`. */
function drain(): void {
  if (kmsgFd === undefined) kmsgFd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  for (;;) {
    let n: number;
    try {
      n = readSync(kmsgFd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') return; // no more records
      if (code === 'EPIPE') continue; // records were overwritten while we read: go on
      throw err;
    }
    if (n === 0) return;
    const rec = buf.toString('latin1', 0, n);
    const semi = rec.indexOf(';');
    const [prio, seq, ts] = rec.slice(0, semi).split(',');
    // the first line is the message; continuation lines (" KEY=value") are metadata
    const text = rec.slice(semi + 1).split('\n')[0]!;
    seen.push({ seq: Number(seq), prio: Number(prio), tsUsec: Number(ts), text });
  }
}

/** Every record read from the kernel's log buffer so far (from the oldest kept), oldest first. */
export function readKmsg(): readonly KmsgRecord[] {
  drain();
  return seen;
}

/** Sequence number of the newest record (-1 when the buffer is empty). */
export function lastKmsgSeq(): number {
  drain();
  return seen.length ? seen[seen.length - 1]!.seq : -1;
}

/** Remembers a point in the kernel log; `since()` returns the lines logged after it. */
export class KernelLog {
  private seq: number;

  constructor() {
    this.seq = lastKmsgSeq();
  }

  /** Moves the mark to now. */
  mark(): void {
    this.seq = lastKmsgSeq();
  }

  /** Texts of the records logged after the mark (the mark does not move). */
  since(): string[] {
    drain();
    const out: string[] = [];
    for (let i = seen.length - 1; i >= 0 && seen[i]!.seq > this.seq; i--) out.unshift(seen[i]!.text);
    return out;
  }

  /** The lines logged after the mark that start with `prefix` (e.g. "xt_traffic: "). */
  linesStarting(prefix: string): string[] {
    return this.since().filter((l) => l.startsWith(prefix));
  }

  /** Lines after the mark that scripts/vm.sh would call a kernel failure. */
  trouble(): string[] {
    return this.since().filter((l) => KERNEL_TROUBLE.test(l));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Seconds since boot, as /proc/uptime gives it. */
function uptimeSeconds(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

interface Window {
  /** the kernel opened the window between lo and hi (Date.now() values) */
  lo: number;
  hi: number;
  printed: number;
}

/**
 * Keeps a test within the kernel's per-callsite printk ratelimit, so that no expected line
 * is suppressed. pr_info_ratelimited() has a ratelimit state of its own per call site
 * (DEFAULT_RATELIMIT_INTERVAL 5 s, DEFAULT_RATELIMIT_BURST 10) that the
 * kernel.printk_ratelimit sysctl does not touch: a window opens at a message and lets 10
 * through until it is 5 s old; the first message after that opens the next one.
 *
 * `paced(site, fn)` runs a call that logs one message at call site `site` (a name the test
 * chooses, one per pr_info_ratelimited in the source). It only starts the call when it
 * surely ends inside the current window with room left (a call may take up to `slackMs`),
 * or else after that window is surely over, so every message is counted in the right one.
 */
export class RatelimitPacer {
  private readonly windows = new Map<string, Window>();

  constructor(
    readonly burst = 10,
    readonly intervalMs = 5000,
    readonly slackMs = 2000,
    readonly marginMs = 300,
  ) {}

  /**
   * Waits until any window that messages starting with `prefix` logged before this test
   * (by another test file in the same VM) may have opened is over.
   */
  async settle(prefix: string): Promise<void> {
    const last = readKmsg()
      .filter((r) => r.text.startsWith(prefix))
      .at(-1);
    if (!last) return;
    const ageMs = uptimeSeconds() * 1000 - last.tsUsec / 1000;
    await sleep(this.intervalMs + this.marginMs + 500 - ageMs);
  }

  private async before(site: string): Promise<number> {
    const w = this.windows.get(site);
    if (w) {
      const now = Date.now();
      if (!(w.printed < this.burst && now + this.slackMs < w.lo + this.intervalMs)) {
        await sleep(w.hi + this.intervalMs + this.marginMs - now);
        this.windows.delete(site);
      }
    }
    return Date.now();
  }

  private after(site: string, start: number): void {
    const now = Date.now();
    const w = this.windows.get(site);
    if (now - start > this.slackMs) {
      // the call may have crossed the end of the window: assume a full one opened during it
      this.windows.set(site, { lo: start, hi: now, printed: this.burst });
    } else if (w) {
      w.printed++;
    } else {
      this.windows.set(site, { lo: start, hi: now, printed: 1 });
    }
  }

  /** Runs `fn`, which logs one message at `site`, within the ratelimit. */
  async paced<T>(site: string, fn: () => T): Promise<T> {
    const start = await this.before(site);
    try {
      return fn();
    } finally {
      this.after(site, start);
    }
  }

  /** Takes the window of `site` as full from now on (after messages sent without pacing). */
  assumeFull(site: string): void {
    const now = Date.now();
    this.windows.set(site, { lo: now, hi: now, printed: this.burst });
  }

  /** Waits until `site` surely has a fresh window (all `burst` messages available). */
  async fresh(site: string): Promise<void> {
    const w = this.windows.get(site);
    if (w) await sleep(w.hi + this.intervalMs + this.marginMs - Date.now());
    this.windows.delete(site);
  }
}
