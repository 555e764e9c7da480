import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain ES module without type declarations (bench/ is shell + one .mjs)
import * as rep from '../../bench/report.mjs';

const results = [
  ['no rule', 256, 100000, 437686, 228473, 4376.86],
  ['no rule', 65536, 100000, 437884, 228370, 4378.84],
  ['bare rule -i d0', 256, 100000, 447074, 223676, 4470.74],
  ['xt_traffic --traffic', 256, 100000, 461344, 216757, 4613.44],
  ['xt_traffic --traffic', 65536, 100000, 462884, 216037, 4628.84],
].map((r) => r.join('\t')).join('\n');

describe('bench/report.mjs', () => {
  it('subtracts the no-rule baseline of the same source count', () => {
    const rows = rep.withAdded(rep.parseResults(results));
    const get = (c: string, n: number) => rows.find((r: { contender: string; sources: number }) => r.contender === c && r.sources === n);
    expect(get('no rule', 256).added).toBe(0);
    expect(get('bare rule -i d0', 256).added).toBe(93.9);
    expect(get('xt_traffic --traffic', 256).added).toBe(236.6);
    expect(get('xt_traffic --traffic', 65536).added).toBe(250);
  });

  it('evaluates the targets, leaving unmeasured ones null', () => {
    const rows = rep.withAdded(rep.parseResults(results));
    const extra = rep.parseExtra('mem_kmalloc64_per_host\t64.2\tbytes\tx\nmem_buckets_per_host\t8\tbytes\ty\n');
    const t = rep.targets(rows, extra);
    const by = (s: string) => t.find((x: { target: string }) => x.target.startsWith(s));
    expect(by('xt_traffic --traffic added').value).toBe(250);
    expect(by('xt_traffic --traffic added').met).toBe(false);
    expect(by('xt_traffic --traffic growth').value).toBe(1.06);
    expect(by('xt_traffic --traffic growth').met).toBe(true);
    expect(by('per-IP chain').met).toBeNull();
    expect(by('memory').value).toBe(72.2);
    expect(by('memory').met).toBe(true);
  });

  it('renders Markdown with date, kernel and method, and JSON with the same figures', () => {
    const meta = rep.parseMeta('date\t2026-11-22T13:00:00Z\nkernel\t6.1.0-56-amd64\nmode\tfull\nicount\t1\niptables\tiptables v1.8.9 (legacy)\ncount\t100000\n');
    const r = rep.report(meta, rep.parseResults(results), []);
    expect(r.kernel).toBe('6.1.0-56-amd64');
    expect(r.method).toContain('-icount shift=0,sleep=off');
    const md = rep.markdown(meta, r.results, r.figures);
    expect(md).toContain('- date: 2026-11-22T13:00:00Z');
    expect(md).toContain('| xt_traffic --traffic | 65,536 | 100,000 | 216,037 | 4,628.84 | 250 |');
    expect(md).toContain('| target | limit | measured | met |');
  });
});
