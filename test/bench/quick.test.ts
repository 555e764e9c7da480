// The bench smoke test (`npm test`, step "bench"): `BENCH_QUICK=1 bash bench/bench.sh` wrote
// quick.json/quick.md into XTT_BENCH_QUICK_DIR; check that every part of the pipeline produced
// its rows with positive numbers. Nothing here is about speed.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = process.env['XTT_BENCH_QUICK_DIR'] ?? '.cache/test-results/bench';
const file = join(dir, 'quick.json');

interface Row { contender: string; sources: number; sent: number; pps: number; nsPerPacket: number; added: number | null; load?: string }
interface WallRow { contender: string; sources: number; rounds: number; medianPps: number; minPps: number; maxPps: number; spreadPct: number | null; medianNs: number; addedNs: number | null }
interface Read { key: string; rows: number; cpu: number | null; wall: number | null; status: string }
interface Report {
  date: string; kernel: string; mode: string; method: string; results: Row[];
  wall: { method: string; results: WallRow[] } | null; reads: Read[];
  figures: { key: string; value: number }[]; native: { steps: { step: string; addonMs: number | null; fsMs: number | null }[] } | null;
  ledger: { method: string; figures: { key: string; value: number; unit: string; note: string }[] } | null;
}

const load = (): Report => {
  if (!existsSync(file)) throw new Error(`${file} not found: run BENCH_QUICK=1 XTT_VM_OUTDIR=${dir} bash bench/bench.sh first`);
  return JSON.parse(readFileSync(file, 'utf8')) as Report;
};
const contenders = ['no rule', 'bare rule -i d0', 'xt_traffic --traffic'];
// the main table's rows: IPv4 by source (no load)
const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;

describe('bench smoke run (BENCH_QUICK=1)', () => {
  it('has date, kernel and method', () => {
    const r = load();
    expect(r.mode).toBe('quick');
    expect(r.date).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(r.kernel).toMatch(/^\d+\.\d+/);
    expect(r.method).toContain('icount');
  });

  it('has a packet-cost row with positive figures for each contender', () => {
    const r = load();
    for (const c of contenders) {
      const row = r.results.find((x) => x.contender === c && x.sources === 256 && !x.load);
      expect(row, c).toBeDefined();
      expect([row!.sent, row!.pps, row!.nsPerPacket].every(positive), c).toBe(true);
      if (c !== 'no rule') expect(positive(row!.added), `${c} added`).toBe(true);
    }
  });

  it('has the IPv6 rows and their IPv4 by-destination twins, each load with its baseline', () => {
    const r = load();
    for (const l of ['ipv4-dst', 'ipv6-dst']) {
      for (const c of ['no rule', 'xt_traffic --traffic']) {
        const row = r.results.find((x) => x.contender === c && x.sources === 256 && x.load === l);
        expect(row, `${l} ${c}`).toBeDefined();
        expect([row!.sent, row!.pps, row!.nsPerPacket].every(positive), `${l} ${c}`).toBe(true);
        if (c !== 'no rule') expect(positive(row!.added), `${l} ${c} added`).toBe(true);
      }
    }
    const md = readFileSync(join(dir, 'quick.md'), 'utf8');
    expect(md).toContain('## Packet cost, IPv6 (icount)');
  });

  it('has a wall-clock row (median, spread, added) for each contender', () => {
    const r = load();
    expect(r.wall?.method).toContain('rounds');
    for (const c of contenders) {
      const w = r.wall!.results.find((x) => x.contender === c);
      expect(w, c).toBeDefined();
      expect(w!.rounds, c).toBeGreaterThanOrEqual(2);
      expect([w!.medianPps, w!.minPps, w!.maxPps, w!.medianNs].every(positive), c).toBe(true);
      expect(w!.spreadPct, c).toBeGreaterThanOrEqual(0);
      expect(typeof w!.addedNs, c).toBe('number');
    }
  });

  it('has every reading step, finished', () => {
    const r = load();
    const node = ['read_xtt_1024', 'read_xtt_4096'];
    for (const k of [...node, 'read_proc_1024', 'read_ipt_1024', 'read_ipset_1024', 'read_proc_4096']) {
      const x = r.reads.find((a) => a.key === k);
      expect(x, k).toBeDefined();
      expect(x!.status, k).toBe('ok');
      expect(x!.cpu, k).toBeGreaterThanOrEqual(0);
      expect(x!.wall, k).toBeGreaterThanOrEqual(0);
      if (node.includes(k)) expect(positive(x!.cpu), k).toBe(true);
    }
  });

  it('has the memory figures', () => {
    const r = load();
    for (const k of ['mem_entry_per_host', 'mem_buckets_per_host']) {
      expect(positive(r.figures.find((f) => f.key === k)?.value), k).toBe(true);
    }
  });

  it('has the host read figures (the one reader: fs + the TypeScript parser)', () => {
    const r = load();
    for (const s of ['read', 'rows', 'total', 'top', 'json']) {
      const x = r.native?.steps.find((a) => a.step === s);
      expect(x, s).toBeDefined();
      expect(positive(x!.fsMs), `${s} fs`).toBe(true);
      expect(x!.addonMs, `${s} addon`).toBeNull();
    }
  });

  it('has the ledger figures (bench/ledger.mjs, 4,096 hosts in quick mode)', () => {
    const r = load();
    expect(r.ledger?.method).toContain('bench/ledger.mjs');
    for (const k of ['ledger_ingest_wall', 'ledger_ingest_cpu', 'ledger_read_parse', 'ledger_fold_wall', 'ledger_fold_cpu', 'ledger_report_month', 'ledger_bytes_host_day']) {
      const f = r.ledger!.figures.find((a) => a.key === k);
      expect(f, k).toBeDefined();
      expect(positive(f!.value), k).toBe(true);
    }
    expect(r.ledger!.figures.find((a) => a.key === 'ledger_ingest_wall')!.note).toMatch(/^4096 active hosts .*load \d/);
  });

  it('wrote the Markdown with every section', () => {
    load();
    const md = readFileSync(join(dir, 'quick.md'), 'utf8');
    for (const h of ['## Packet cost: added guest instructions', '## Packet cost: wall clock under TCG', '## Reading', '## Memory', '## Native read on the host', '## Ledger on the host']) {
      expect(md).toContain(h);
    }
  });
});
