/** Helpers of the ledger tests: counters-file text, temporary ledgers, a seeded RNG. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Deps } from '../../src/core/deps.js';
import { openLedgerDb } from '../../src/ledger/db.js';
import { Ledger } from '../../src/ledger/ingest.js';
import { parseCounters, type CountersReading } from '../../src/proc/counters.js';

export type Rows = Map<string, bigint[]>;

export interface Table {
  name: string;
  generation: string;
  traffic?: Rows; // ip -> 8 counters
  ipconn?: Rows; // ip -> 10 counters
  portconn?: Rows; // port -> 10 counters
  overflow?: bigint;
}

/** The text of /proc/net/xt_traffic_counters/NAME for `t` (design.md, revision 1). */
export function countersText(t: Table): string {
  const opts = (['traffic', 'ipconn', 'portconn'] as const).filter((k) => t[k] !== undefined);
  const order = ['traffic', 'portconn', 'ipconn'].filter((k) => opts.includes(k as never));
  let s = `xt_traffic_counters 1\nname: ${t.name}\ngeneration: ${t.generation}\noptions: ${order.join(' ')}\nnetbase: 10.0.0.0\nnetmask: 255.0.0.0\noverflow: ${t.overflow ?? 0n}\n`;
  for (const k of opts) {
    s += `[${k}]\n`;
    for (const [key, v] of t[k]!) s += `${key}\t${v.join('\t')}\n`;
  }
  return `${s}[end]\n`;
}

export function reading(t: Table): CountersReading {
  return parseCounters(countersText(t));
}

/** traffic counters from the six stored ones (totals = sums). */
export function tr(tcpIn: bigint, tcpOut: bigint, udpIn = 0n, udpOut = 0n, otherIn = 0n, otherOut = 0n): bigint[] {
  return [tcpIn + udpIn + otherIn, tcpOut + udpOut + otherOut, tcpIn, tcpOut, udpIn, udpOut, otherIn, otherOut];
}

export function tmpLedger(): { dir: string; path: string; ledger: Ledger; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'xtt-ledger-'));
  const path = join(dir, 'ledger.db');
  const ledger = new Ledger(openLedgerDb(path, { create: true }));
  return { dir, path, ledger, done: () => { ledger.db.close(); rmSync(dir, { recursive: true, force: true }); } };
}

/** mulberry32 */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random bigint in [0, max). */
export function randBig(r: () => number, max: bigint): bigint {
  let v = 0n;
  for (let i = 0; i < 3; i++) v = (v << 32n) | BigInt(Math.floor(r() * 4294967296));
  return v % max;
}

/**
 * The CLI in-process with deps of its own against `dir`'s counters folder (dir/ctr) and ledger
 * (dir/ledger.db); `deps` adds or overrides fields (now, run, onSignal, pid, env...).
 */
export function ledgerCli(dir: () => string, deps: () => Record<string, unknown> = () => ({})) {
  return async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const extra = deps();
    const d = {
      stdout: { write: (s: string | Uint8Array) => { out += String(s); return true; } },
      stderr: { write: (s: string | Uint8Array) => { err += String(s); return true; } },
      sleep: async () => undefined,
      onSignal: () => () => undefined,
      ...extra,
      env: { XTT_COUNTERS_DIR: join(dir(), 'ctr'), XTT_DB: join(dir(), 'ledger.db'), ...(extra['env'] as Record<string, string> | undefined) },
    } as unknown as Deps;
    const { run } = await import('../../src/program.js');
    const code = await run(args, d);
    return { code, out, err };
  };
}
