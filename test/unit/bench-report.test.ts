import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain ES module without type declarations (bench/ is shell + .mjs)
import * as rep from '../../bench/report.mjs';

const results = [
  ['no rule', 256, 100000, 437686, 228473, 4376.86],
  ['no rule', 65536, 100000, 437884, 228370, 4378.84],
  ['bare rule -i d0', 256, 100000, 447074, 223676, 4470.74],
  ['xt_traffic --traffic', 256, 100000, 461344, 216757, 4613.44],
  ['xt_traffic --traffic', 65536, 100000, 462884, 216037, 4628.84],
].map((r) => r.join('\t')).join('\n');

// three wall-clock rounds, interleaved
const wall = [
  ['no rule', 4096, 200000, 2000000, 100000, 10000, 1],
  ['xt_traffic --traffic', 4096, 200000, 2100000, 95238, 10500, 1],
  ['no rule', 4096, 200000, 2400000, 83333, 12000, 2],
  ['xt_traffic --traffic', 4096, 200000, 2440000, 81967, 12200, 2],
  ['no rule', 4096, 200000, 2200000, 90909, 11000, 3],
  ['xt_traffic --traffic', 4096, 200000, 2260000, 88496, 11300, 3],
].map((r) => r.join('\t')).join('\n');

const reads = [
  ['read_xtt_65536', 65536, '4.290', '5.1', '61.0', 'ok', 'xttraffic read --json, 65,536 rows'],
  ['read_iptaccount_65536', 65536, '0.280', '0.4', '5.2', 'ok', 'iptaccount -l bench, 65,536 hosts'],
  ['read_xtt_1048576', 1048576, '55.100', '70.2', '360.4', 'timeout', 'xttraffic read --json, 1,048,576 rows'],
].map((r) => r.join('\t')).join('\n');

const icountMeta = 'date\t2026-11-22T13:00:00Z\nkernel\t6.1.0-56-amd64\npass\ticount\nicount\t1\niptables\tiptables v1.8.9 (legacy)\ncount\t100000\nstep_timeout\t360\n';
const wallMeta = 'kernel\t6.1.0-56-amd64\npass\twall\nicount\t0\nwall_rounds\t3\nwall_count\t200000\nwall_sources\t4096\n';
const hostMeta = 'date\t2026-11-22T13:00:00Z\nhost\tx\nseconds_icount_vm\t600\nseconds_wall_vm\t200\nseconds_total\t830\nmode\tfull\nfailed\t\nskipped\t\n';
const native = 'table_rows\t262144\t262144\trows in the table file\nread\t120.5\t80.1\treadRaw\ntotal\t300\t700\treadRaw + rowsOf\n';

const input = () => ({
  meta: rep.parseMeta(hostMeta), icountMeta: rep.parseMeta(icountMeta), results: rep.parseResults(results),
  reads: rep.parseReads(reads), extra: rep.parseExtra('mem_kmalloc64_per_host\t64.2\tbytes\tx\nmem_buckets_per_host\t8\tbytes\ty\n'),
  wallMeta: rep.parseMeta(wallMeta), wall: rep.parseResults(wall), native: rep.parseNative(native),
});

// IPv6 and IPv4 by-destination rows (column 7 empty: no round; column 8 the load), each load
// with its own baseline, beside the by-source rows above
const dst = [
  ['no rule', 256, 100000, 440000, 227272, 4400.0, '', 'ipv4-dst'],
  ['xt_traffic --traffic', 256, 100000, 457500, 218579, 4575.0, '', 'ipv4-dst'],
  ['no rule', 256, 100000, 450000, 222222, 4500.0, '', 'ipv6-dst'],
  ['xt_traffic --traffic', 256, 100000, 472750, 211528, 4727.5, '', 'ipv6-dst'],
  ['xt_traffic --traffic, packets=1', 256, 100000, 475000, 210526, 4750.0, '', 'ipv6-dst'],
  ['no rule', 65536, 100000, 450100, 222172, 4501.0, '', 'ipv6-dst'],
  ['xt_traffic --traffic', 65536, 100000, 473100, 211371, 4731.0, '', 'ipv6-dst'],
  ['xt_traffic --traffic, packets=1', 256, 100000, 463844, 215589, 4638.44],
].map((r) => r.join('\t')).join('\n');
const floors = [
  ['rule with a trivial match (-m mark)', 256, 100000, 452000, 221238, 4520.0, '', 'ipv4-dst'],
  ['rule with a trivial match (-m mark)', 256, 100000, 462500, 216216, 4625.0, '', 'ipv6-dst'],
].map((r) => r.join('\t')).join('\n');

describe('bench/report.mjs', () => {
  it('keeps each load apart: baselines, IPv6/IPv4 ratios, packet counters\' cost', () => {
    const rows = rep.withAdded(rep.parseResults(`${results}\n${dst}`));
    const get = (c: string, n: number, load?: string) =>
      rows.find((r: { contender: string; sources: number; load?: string }) => r.contender === c && r.sources === n && r.load === load);
    expect(get('xt_traffic --traffic', 256).added).toBe(236.6);
    expect(get('xt_traffic --traffic', 256).round).toBeUndefined();
    expect(get('xt_traffic --traffic', 256, 'ipv4-dst').added).toBe(175);
    expect(get('xt_traffic --traffic', 256, 'ipv6-dst').added).toBe(227.5);
    expect(get('xt_traffic --traffic', 65536, 'ipv6-dst').added).toBe(230);
    expect(rep.ipv6Ratios(rows)).toEqual([
      { sources: 256, ipv6: 227.5, ipv4Dst: 175, ipv4Src: 236.6, ratioDst: 1.3, ratioSrc: 0.96 },
      { sources: 65536, ipv6: 230, ipv4Dst: null, ipv4Src: 250, ratioDst: null, ratioSrc: 0.92 },
    ]);
    expect(rep.packetsCost(rows)).toEqual([
      { load: 'ipv6-dst', sources: 256, packets0: 227.5, packets1: 250, cost: 22.5 },
      { load: 'ipv4-src', sources: 256, packets0: 236.6, packets1: 261.6, cost: 25 },
    ]);
    const t = rep.targets(rows, [], [], 360).find((x: { target: string }) => x.target.startsWith('IPv6 / IPv4'));
    expect(t).toMatchObject({ value: 1.3, met: true });
    const md = rep.markdown(rep.report({ results: rep.parseResults(`${results}\n${dst}`), icountMeta: { count: '100000', icount: '1' } }));
    expect(md).toContain('## Packet cost, IPv6 (icount)');
    expect(md).toContain('| IPv6 by destination | xt_traffic --traffic | 65,536 | 100,000 | 211,371 | 4,731 | 230 |');
    expect(md).toContain('| 256 | 227.5 | 175 | 1.3x | 236.6 | 0.96x |');
    expect(md).toContain('| IPv6 by destination | 256 | 227.5 | 250 | 22.5 |');
    // with the floors of a trivial match: the match's own cost, 55 and 102.5
    const own = rep.ipv6Ratios(rep.withAdded(rep.parseResults(`${results}\n${dst}\n${floors}`)));
    expect(own[0]).toMatchObject({ ipv6Own: 102.5, ipv4Own: 55, ratioOwn: 1.86 });
    expect(own[1].ratioOwn).toBeUndefined();
    // the by-source table holds no by-destination row
    const main = md.split('## Packet cost, IPv6')[0];
    expect(main).not.toContain('4,727.5');
  });

  it('subtracts the no-rule baseline of the same source count', () => {
    const rows = rep.withAdded(rep.parseResults(results));
    const get = (c: string, n: number) => rows.find((r: { contender: string; sources: number }) => r.contender === c && r.sources === n);
    expect(get('no rule', 256).added).toBe(0);
    expect(get('bare rule -i d0', 256).added).toBe(93.9);
    expect(get('xt_traffic --traffic', 256).added).toBe(236.6);
    expect(get('xt_traffic --traffic', 65536).added).toBe(250);
  });

  it('evaluates the targets, leaving unmeasured ones null', () => {
    const i = input();
    const t = rep.targets(rep.withAdded(i.results), i.extra, i.reads, 360);
    const by = (s: string) => t.find((x: { target: string }) => x.target.startsWith(s));
    expect(by('xt_traffic --traffic added').value).toBe(250);
    expect(by('xt_traffic --traffic added').met).toBe(false);
    expect(by('xt_traffic --traffic growth').value).toBe(1.06);
    expect(by('xt_traffic --traffic growth').met).toBe(true);
    expect(by('per-IP chain').met).toBeNull();
    expect(by('xttraffic read --json 65,536').value).toBe('4.29 vs 0.28');
    expect(by('xttraffic read --json 65,536').met).toBe(false);
    expect(by('xttraffic read --json 1,048,576').limit).toBe('completes within 360 s');
    expect(by('xttraffic read --json 1,048,576').value).toBe('timeout after 360.4 s wall');
    expect(by('xttraffic read --json 1,048,576').met).toBe(false);
    expect(by('memory').value).toBe(72.2); // mem_kmalloc64_per_host of a run before the entry cache
    expect(by('memory').met).toBe(true);
  });

  it('takes the entry cache\'s figure for memory when the run has it', () => {
    const extra = rep.parseExtra('mem_entry_per_host\t112.5\tbytes\tx\nmem_buckets_per_host\t8\tbytes\ty\n');
    const m = rep.targets([], extra, [], 360).find((x: { target: string }) => x.target.startsWith('memory'));
    expect(m).toMatchObject({ value: 120.5, met: true });
  });

  it('reports the 1M read when it completes, and not at all when it did not run', () => {
    const ok = rep.parseReads('read_xtt_1048576\t1048576\t9.5\t10.1\t120.3\tok\tx\n');
    const by = (r: unknown[]) => rep.targets([], [], r, 360).find((x: { target: string }) => x.target.includes('1,048,576'));
    expect(by(ok).value).toBe('9.5 CPU; 120.3 wall');
    expect(by(ok).met).toBe(true);
    expect(by([]).met).toBeNull();
  });

  it('summarises interleaved wall-clock rounds: median, spread, added vs no rule of the same round', () => {
    const w = rep.wallSummary(rep.parseResults(wall));
    const x = w.find((r: { contender: string }) => r.contender === 'xt_traffic --traffic');
    const b = w.find((r: { contender: string }) => r.contender === 'no rule');
    expect(b).toMatchObject({ rounds: 3, medianPps: 90909, minPps: 83333, maxPps: 100000, medianNs: 11000, addedNs: 0 });
    expect(b.spreadPct).toBe(18.3); // (100000 - 83333) / 90909
    // per round: 500, 200, 300 -> median 300 (not 11300 - 11000 by chance: same here)
    expect(x).toMatchObject({ rounds: 3, medianPps: 88496, medianNs: 11300, addedNs: 300 });
    expect(rep.median([3, 1, 2, 10])).toBe(2.5);
  });

  it('renders Markdown with date, kernel, method and every section; JSON with the same figures', () => {
    const r = rep.report(input());
    expect(r.kernel).toBe('6.1.0-56-amd64');
    expect(r.mode).toBe('full');
    expect(r.method).toContain('-icount shift=0,sleep=off');
    expect(r.wall.method).toContain('wall clock under qemu TCG');
    expect(r.seconds).toEqual({ icount_vm: 600, wall_vm: 200, total: 830 });
    expect(rep.baseName(r.mode)).toBe('latest');
    const md = rep.markdown(r);
    expect(md).toContain('- date: 2026-11-22T13:00:00Z');
    expect(md).toContain('- took: icount vm 600 s, wall vm 200 s, total 830 s');
    expect(md).toContain('| xt_traffic --traffic | 65,536 | 100,000 | 216,037 | 4,628.84 | 250 |');
    expect(md).toContain('## Packet cost: wall clock under TCG (second view; noisy)');
    expect(md).toContain('| xt_traffic --traffic | 4,096 | 3 | 88,496 | 81,967 - 95,238 | 15 | 11,300 | 300 |');
    expect(md).toContain('| xttraffic read --json, 1,048,576 rows | 1,048,576 | 55.1 | 360.4 | timeout | read_xtt_1048576 |');
    expect(md).toContain('## Native read on the host (262,144 rows)');
    expect(md).toContain('| readRaw + rowsOf | 300 | 700 |');
    expect(md).toContain('| target | limit | measured | met |');
  });

  it('names the output after the mode: partial runs never overwrite latest', () => {
    expect(rep.baseName('quick')).toBe('quick');
    expect(rep.baseName('partial')).toBe('partial');
    const i = input();
    i.meta = rep.parseMeta(hostMeta.replace('mode\tfull', 'mode\tpartial').replace('skipped\t', 'skipped\tBENCH_WALL=0'));
    const r = rep.report(i);
    expect(rep.baseName(r.mode)).toBe('partial');
    expect(r.targets).toEqual([]);
    expect(rep.markdown(r)).toContain('- skipped: BENCH_WALL=0');
  });
});

describe('bench/compare.mjs', () => {
  it('pairs rows by contender, sources and load, and flags what moved', async () => {
    // @ts-expect-error: plain ES module without type declarations
    const cmp = await import('../../bench/compare.mjs');
    const old = { date: 'a', kernel: 'k', results: rep.withAdded(rep.parseResults(results)), reads: [] };
    const moved = rep.parseResults(results.replace('4613.44', '4640.00').replace('4470.74', '4472.00'));
    const neu = { date: 'b', kernel: 'k', results: rep.withAdded([...moved, ...rep.parseResults(dst)]), reads: [] };
    const c = cmp.compareIcount(old, neu);
    const get = (x: string, n: number, load?: string) =>
      c.find((r: { contender: string; sources: number; load?: string }) => r.contender === x && r.sources === n && r.load === load);
    expect(get('xt_traffic --traffic', 256)).toMatchObject({ old: 236.6, new: 263.1, delta: 26.5, pct: 11.2, moved: true });
    expect(get('bare rule -i d0', 256)).toMatchObject({ old: 93.9, new: 95.1, delta: 1.2, moved: false });
    expect(get('xt_traffic --traffic', 256, 'ipv6-dst')).toMatchObject({ old: null, new: 227.5, delta: null, moved: false });
    expect(cmp.markdown(old, neu)).toContain('| IPv4 by source | xt_traffic --traffic | 256 | 236.6 | 263.1 | +26.5 | +11.2 | yes |');
  });
});

describe('bench/report.mjs ledger targets', () => {
  it('measures a run of 65,536 hosts (notes as bench/ledger.mjs writes them), not a smaller one', () => {
    const led = (n: number) => rep.parseLedger([
      `ledger_ingest_wall\t339\tms\t${n} active hosts (traffic+ipconn): read, parse, deltas, 5-minute rollup, commit; median of 10, load 2.66`,
      `ledger_ingest_cpu\t320\tms\t${n} active hosts (traffic+ipconn): read, parse; load 2.66`,
      `ledger_report_month\t1482\tms\treport --period --json, ${n} hosts, new process, median of 3, load 2.69`,
    ].join('\n'));
    expect(rep.ledgerTargets(led(65536)).map((t: { value: number | null; met: boolean | null }) => [t.value, t.met]))
      .toEqual([[339, true], [320, true], [1482, true]]);
    expect(rep.ledgerTargets(led(4096)).map((t: { value: number | null }) => t.value)).toEqual([null, null, null]);
  });
});
