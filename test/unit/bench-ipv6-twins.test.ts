import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain ES module without type declarations (bench/ is shell + .mjs)
import * as rep from '../../bench/report.mjs';
// @ts-expect-error: plain ES module without type declarations
import * as rr from '../../bench/readme-rows.mjs';

// by-destination rows as bench/run.sh writes them (column 7 empty: no round; column 8 the load)
const rows = [
  ['no rule', 256, 100000, 440000, 227272, 4400.0, '', 'ipv4-dst'],
  ['xt_traffic --traffic', 256, 100000, 458000, 218340, 4580.0, '', 'ipv4-dst'],
  ['ipset hash:ip counters', 256, 100000, 485000, 206185, 4850.0, '', 'ipv4-dst'],
  ['nft dynamic set (counter)', 256, 100000, 500000, 200000, 5000.0, '', 'ipv4-dst'],
  ['no rule', 65536, 100000, 440100, 227221, 4401.0, '', 'ipv4-dst'],
  ['xt_traffic --traffic', 65536, 100000, 458200, 218245, 4582.0, '', 'ipv4-dst'],
  ['no rule', 256, 100000, 485000, 206185, 4850.0, '', 'ipv6-dst'],
  ['bare rule -i d0', 256, 100000, 494000, 202429, 4940.0, '', 'ipv6-dst'],
  ['xt_traffic --traffic', 256, 100000, 520000, 192307, 5200.0, '', 'ipv6-dst'],
  ['ipset hash:net inet6 counters', 256, 100000, 543000, 184162, 5430.0, '', 'ipv6-dst'],
  ['nft dynamic set (counter)', 256, 100000, 560000, 178571, 5600.0, '', 'ipv6-dst'],
  ['no rule', 65536, 100000, 485200, 206100, 4852.0, '', 'ipv6-dst'],
  ['xt_traffic --traffic', 65536, 100000, 522000, 191570, 5220.0, '', 'ipv6-dst'],
  ['nft dynamic set (counter)', 65536, 100000, 561000, 178253, 5610.0, '', 'ipv6-dst'],
].map((r) => r.join('\t')).join('\n');

describe('bench report: IPv6 against its IPv4 by-destination twins', () => {
  const added = rep.withAdded(rep.parseResults(rows));

  it('pairs every IPv6 contender with the same contender by destination (ipset: hash:ip), same size', () => {
    expect(rep.ipv6Twins(added)).toEqual([
      // no bare rule by destination in this input: no ratio, not a wrong one
      { contender: 'bare rule -i d0', ipv4Contender: 'bare rule -i d0', sources: 256, ipv6: 90, ipv4: null, ratio: null },
      // 5200 - 4850 = 350 over 4580 - 4400 = 180
      { contender: 'xt_traffic --traffic', ipv4Contender: 'xt_traffic --traffic', sources: 256, ipv6: 350, ipv4: 180, ratio: 1.94 },
      { contender: 'ipset hash:net inet6 counters', ipv4Contender: 'ipset hash:ip counters', sources: 256, ipv6: 580, ipv4: 450, ratio: 1.29 },
      { contender: 'nft dynamic set (counter)', ipv4Contender: 'nft dynamic set (counter)', sources: 256, ipv6: 750, ipv4: 600, ratio: 1.25 },
      // 5220 - 4852 = 368 over 4582 - 4401 = 181
      { contender: 'xt_traffic --traffic', ipv4Contender: 'xt_traffic --traffic', sources: 65536, ipv6: 368, ipv4: 181, ratio: 2.03 },
      // the IPv4 nft row at 65,536 is missing: n/a, never the 256 row's figure
      { contender: 'nft dynamic set (counter)', ipv4Contender: 'nft dynamic set (counter)', sources: 65536, ipv6: 758, ipv4: null, ratio: null },
    ]);
  });

  it('prints the ratio column and says why the rows are by destination', () => {
    const md = rep.markdown(rep.report({ results: rep.parseResults(rows), icountMeta: { icount: '1', count: '100000' } }));
    expect(md).toContain('| contender | /64s (IPv6) = hosts (IPv4) | IPv6 | IPv4 by destination | IPv6 / IPv4 |');
    expect(md).toContain('| ipset hash:net inet6 counters (IPv4: ipset hash:ip counters) | 256 | 580 | 450 | 1.29x |');
    expect(md).toContain('| xt_traffic --traffic | 65,536 | 368 | 181 | 2.03x |');
    expect(md).toContain('| nft dynamic set (counter) | 65,536 | 758 | n/a | n/a |');
    expect(md).toContain('Only random destinations yet');
    expect(md).toContain('keyed on ip6 daddr');
    // the by-source main table holds no by-destination row
    expect(md.split('## Packet cost, IPv6')[0]).not.toContain('ipset hash:ip counters');
  });

  it('README rows: the ratio column, old figures in brackets, and what got worse named', () => {
    const now = rep.report({ results: rep.parseResults(rows), icountMeta: { icount: '1', count: '100000' },
      reads: rep.parseReads('read_xtt_65536\t65536\t1.243\t1.29\t5.3\tok\txttraffic read --json, 65,536 rows') });
    // the old run: IPv4 twin of xt_traffic at 256 was 186.1 (now 180: better), IPv6 at 256 was 340 (now 350: +10, +2.9%: not
    // worse), nft IPv6 at 256 was 700 (now 750: worse), the read was 5.787 s (now 1.243 s)
    const old = { date: 'OLD', results: rep.withAdded(rep.parseResults([
      ['no rule', 256, 1, 1, 1, 1000, '', 'ipv4-dst'], ['xt_traffic --traffic', 256, 1, 1, 1, 1186.1, '', 'ipv4-dst'],
      ['no rule', 256, 1, 1, 1, 1000, '', 'ipv6-dst'], ['xt_traffic --traffic', 256, 1, 1, 1, 1340, '', 'ipv6-dst'],
      ['nft dynamic set (counter)', 256, 1, 1, 1, 1700, '', 'ipv6-dst'],
    ].map((r) => r.join('\t')).join('\n'))), reads: [{ key: 'read_xtt_65536', cpu: 5.787 }] };
    const { markdown, worse } = rr.rows(now, old);
    expect(markdown).toContain('| xt_traffic --traffic | 256 | 350 (340) | 180 (186.1) | 1.94x |');
    expect(markdown).toContain('| ipset hash:net inet6 counters (IPv4: ipset hash:ip counters) | 256 | 580 (new) | 450 (new) | 1.29x |');
    expect(markdown).toContain('| xttraffic read --json, 65,536 rows | 65,536 | 1.243 (5.787) |');
    expect(worse).toEqual(['IPv6 nft dynamic set (counter), 256 /64s: 700 -> 750']);
  });
});
