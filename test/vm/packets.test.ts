import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModule } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { parseIpConn, parseTraffic } from '../lib/proc-oracle.js';
import { REPO } from '../lib/sh.js';

// Issue 12, defect 5: packet counts per IP in a file of their own
// (/proc/net/xt_traffic_packets/NAME, the traffic file's format), for tables created while
// the module parameter `packets` is 1 (no new match option: that would be an ABI change,
// a new revision); flow-cache evictions counted in NAME_info.

const VNET = `${REPO}/test/lib/vnet.py`;
const PARAM = '/sys/module/xt_traffic/parameters/packets';

function info(text: string): Map<string, string> {
  return new Map(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
}

describe('packet counters', () => {
  let ns: Netns;

  beforeAll(async () => {
    loadModule();
    ns = new Netns('pk');
    writeFileSync(PARAM, '1');
    await ns.run('iptables-restore', [], {
      input: [
        '*raw',
        '-A PREROUTING -m traffic --traffic --netbase 10.9.0.0 --netmask 255.255.0.0 --name P',
        'COMMIT',
        '',
      ].join('\n'),
    });
    writeFileSync(PARAM, '0');
    // a table made while the parameter is 0 has none
    await ns.run('iptables', ['-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--traffic', '--netbase', '10.9.0.0', '--netmask', '255.255.0.0', '--name', 'N']);
    await ns.run('iptables', ['-t', 'raw', '-A', 'PREROUTING', '-s', '10.9.0.0/16', '-j', 'DROP']);
  }, 300_000);

  afterAll(() => {
    ns?.delete();
    writeFileSync(PARAM, '0');
  });

  it('count the wire packets of forged and plain GSO frames: the rule\'s segments', async () => {
    const out = JSON.parse(await ns.run('python3', [VNET, 'tap', 'vp0', '1500', '7'])) as { sent: number; rows: Record<string, [number, number]> };
    const bytes = parseTraffic(ns.cat('/proc/net/xt_traffic/P'));
    const pkts = parseTraffic(ns.cat('/proc/net/xt_traffic_packets/P'));
    expect(pkts.length).toBeGreaterThan(300);
    expect(pkts.map((r) => r.ip)).toEqual(bytes.map((r) => r.ip));
    let multi = 0;
    for (const r of pkts) {
      const want = out.rows[r.ip]!;
      expect(r.total.out, r.ip).toBe(BigInt(want[1]));
      expect(r.total.in).toBe(0n);
      if (want[1] > 1) multi++;
    }
    expect(multi).toBeGreaterThan(20);
    expect(info(ns.cat('/proc/net/xt_traffic/P_info')).get('packets')).toBe('yes');
    expect(info(ns.cat('/proc/net/xt_traffic/N_info')).get('packets')).toBe('no');
    expect(() => ns.cat('/proc/net/xt_traffic_packets/N')).toThrow();
    // the spec's file of N is byte for byte that of P
    expect(ns.cat('/proc/net/xt_traffic/N')).toBe(ns.cat('/proc/net/xt_traffic/P'));
  }, 300_000);

  it('a clearing read of the packets file clears packets only', () => {
    const before = ns.cat('/proc/net/xt_traffic/P');
    const cleared = ns.exec('python3', ['-c', "import os\nfd=os.open('/proc/net/xt_traffic_packets/P', os.O_RDWR)\nwhile True:\n  b=os.read(fd, 65536)\n  if not b: break\n  os.write(1, b)"]);
    expect(parseTraffic(cleared).length).toBeGreaterThan(300);
    expect(ns.cat('/proc/net/xt_traffic_packets/P')).toBe('IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n');
    expect(ns.cat('/proc/net/xt_traffic/P')).toBe(before);
  });
});

describe('flow cache evictions', () => {
  let ns: Netns;

  beforeAll(async () => {
    loadModule();
    ns = new Netns('ev');
    // 16 buckets: a flow cache of 4,096 slots (the minimum) for 6,000 flows
    await ns.run('iptables', ['-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--ipconn', '--hashsize', '16', '--netbase', '10.9.0.0', '--netmask', '255.255.0.0', '--name', 'E']);
    await ns.run('iptables', ['-t', 'raw', '-A', 'PREROUTING', '-s', '10.9.0.0/16', '-j', 'DROP']);
  }, 300_000);

  afterAll(() => ns?.delete());

  it('6,000 live UDP flows twice through 4,096 slots: evictions counted, each one a connection counted again', async () => {
    expect((await ns.run('python3', [VNET, 'plain', 've0', '6000', '1', '2'])).trim()).toBe('12000');
    const i = info(ns.cat('/proc/net/xt_traffic/E_info'));
    expect(i.get('flow_slots')).toBe('4096');
    const evictions = Number(i.get('flow_evictions'));
    const conns = parseIpConn(ns.cat('/proc/net/xt_traffic/E_ipconn')).reduce((a, r) => a + Number(r.udp.out), 0);
    console.log(`${conns} connections counted for 6,000 flows sent twice, ${evictions} evictions`);
    // every flow is new once; a second packet counts again only if its flow was evicted
    expect(conns).toBeGreaterThan(6000);
    expect(evictions).toBeGreaterThan(0);
    // each counted connection took a slot, and only an eviction gives one back
    expect(conns - evictions).toBeGreaterThan(0);
    expect(conns - evictions).toBeLessThanOrEqual(4096);
  }, 300_000);
});
