import { describe, expect, it } from 'vitest';
import { toJson } from '../../src/output/format.js';
import { reportJson } from '../../src/output/ledger.js';
import { totalsOf } from '../../src/ledger/query.js';
import { randBig, rng } from './helpers.js';

describe('reportJson', () => {
  it('writes exactly what toJson writes, for hosts with and without a group, with p95, and none', () => {
    const r = rng(5);
    const vec = () => Array.from({ length: 14 }, (_, i) => (i % 3 === 0 ? randBig(r, 1n << 64n) : randBig(r, 1000n)));
    const hosts: Array<Record<string, unknown>> = [
      { host: '10.0.0.1', group: 'cust "a"', totals: totalsOf(vec()) },
      { host: '10.0.0.2', group: undefined, totals: totalsOf(vec()) },
      { host: '10.0.0.3', totals: totalsOf(vec()) },
      { host: '10.0.0.4', totals: totalsOf(vec()), p95: { buckets: 3, samples: 2, rank: 2, inBps: 1.5, outBps: null, maxBps: 2, excluded: [{ from: 'x', to: 'y', why: 'gap' }] } },
    ];
    const doc = { kind: 'period', label: '2026-02', from: 'a', to: 'b', coverage: { first: null, last: null, events: [] }, hosts, hostCount: 4, groups: [{ group: 'g', totals: totalsOf(vec()) }], totals: totalsOf(vec()) };
    expect(reportJson(doc)).toBe(toJson(doc));
    expect(JSON.parse(reportJson(doc)).hosts).toHaveLength(4);
    const empty = { ...doc, hosts: [] };
    expect(reportJson(empty)).toBe(toJson(empty));
  });

  it('IPv6 host keys (prefixes and addresses) are written as the /proc keys, the same text as toJson', () => {
    const r = rng(6);
    const vec = () => Array.from({ length: 14 }, () => randBig(r, 1n << 64n));
    const hosts = ['10.0.0.9', '10.1.2.0/24', '::ffff:10.0.0.1', '2001:db8:0:1::/64', '2001:db8::1'].map((host) => ({ host, group: 'c', totals: totalsOf(vec()) }));
    const doc = { kind: 'period', hosts, hostCount: hosts.length, totals: totalsOf(vec()) };
    const text = reportJson(doc);
    expect(text).toBe(toJson(doc));
    expect(JSON.parse(text).hosts.map((h: { host: string }) => h.host)).toEqual(['10.0.0.9', '10.1.2.0/24', '::ffff:10.0.0.1', '2001:db8:0:1::/64', '2001:db8::1']);
    expect(text).toContain('"host": "2001:db8:0:1::/64"');
  });
});
