import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain ES module without type declarations (bench/ is shell + .mjs)
import * as merge from '../../bench/merge.mjs';

const m = (o: Record<string, string>) => new Map(Object.entries(o));
const part1 = {
  date: '2026-11-30T18:40:00Z', started: '2026-11-30T18:40:00Z', host: 'h', commit: 'abc1234',
  seconds_icount_vm: '420', seconds_wall_vm: '100', seconds_native: '4', seconds_ledger: '90', seconds_total: '614',
  vms_beside_wall: '1 at its start, 0 at its end', mode: 'part1', failed: '', skipped: '',
};
const part2 = {
  date: '2026-11-30T18:40:00Z', started: '2026-11-30T18:52:00Z', host: 'h', commit: 'abc1234',
  seconds_icount_vm: '480', seconds_total: '481', mode: 'part2', failed: '', skipped: '',
};

describe('bench/merge.mjs: a split run (two VM holds) as one report', () => {
  it('is full when part 1 and part 2 are complete: both VMs\' seconds, the total of both', () => {
    const h = merge.mergeHostMeta(m(part1), m(part2));
    expect(h.get('mode')).toBe('full');
    expect(h.get('date')).toBe('2026-11-30T18:40:00Z');
    expect(h.get('seconds_icount_vm_part1')).toBe('420');
    expect(h.get('seconds_icount_vm_part2')).toBe('480');
    expect(h.get('seconds_wall_vm')).toBe('100');
    expect(h.get('seconds_total')).toBe('1095');
    expect(h.get('failed')).toBe('');
    expect(h.get('note')).toContain('from 2026-11-30T18:52:00Z; both at abc1234');
  });

  it('is partial when a part failed or skipped something, and says which', () => {
    const h = merge.mergeHostMeta(m(part1), m({ ...part2, mode: 'partial', failed: 'icount VM' }));
    expect(h.get('mode')).toBe('partial');
    expect(h.get('failed')).toBe('icount VM (part 2)');
    const s = merge.mergeHostMeta(m({ ...part1, mode: 'partial', skipped: 'BENCH_BIG=0' }), m(part2));
    expect(s.get('mode')).toBe('partial');
    expect(s.get('skipped')).toBe('BENCH_BIG=0');
    // two part 1s are not a run
    const twice = merge.mergeHostMeta(m(part1), m(part1));
    expect(twice.get('mode')).toBe('partial');
    expect(twice.get('failed')).toBe('parts not 1 and 2 (modes part1, part1)');
  });

  it('refuses parts started more than 3 hours apart (an older run\'s part left in the folder)', () => {
    const h = merge.mergeHostMeta(m(part1), m({ ...part2, started: '2026-11-30T22:00:00Z' }));
    expect(h.get('mode')).toBe('partial');
    expect(h.get('failed')).toBe('parts not of one run (started 2026-11-30T18:40:00Z and 2026-11-30T22:00:00Z)');
    expect(merge.mergeHostMeta(m(part1), m({ ...part2, started: '2026-11-30T21:39:00Z' })).get('mode')).toBe('full');
  });

  it('says when the two parts ran different code or kernels', () => {
    expect(merge.mergeHostMeta(m(part1), m({ ...part2, commit: 'def5678' })).get('note'))
      .toContain('NOT the same code: part 1 at abc1234, part 2 at def5678');
    const i = merge.mergeIcountMeta(m({ kernel: '6.1.0-57-amd64', count: '100000', seconds: '400', seconds_reads: '90' }),
      m({ kernel: '6.1.0-58-amd64', count: '100000', seconds: '470', seconds_packets_ipv6_dst: '460' }));
    expect(i.get('kernel')).toBe('6.1.0-57-amd64 (part 1), 6.1.0-58-amd64 (part 2)');
    expect(i.get('seconds')).toBe('870');
    expect(i.get('seconds_reads')).toBe('90');
    expect(i.get('seconds_packets_ipv6_dst')).toBe('460');
    expect(i.get('count')).toBe('100000');
  });
});
