import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTraffic } from '../lib/proc-oracle.js';
import { parseInfo } from '../../src/proc/parse.js';
import { loadModule } from '../lib/module.js';
import { Netns } from '../lib/netns.js';
import { link } from '../lib/topo.js';

// Net sizes from /32 to /8 (direct-indexed and hashed buckets), and the hard cap on
// entries: past max_entries new hosts are not counted, the overflow count says how
// many packets were not, and no packet is dropped because of it.

const PARAM = '/sys/module/xt_traffic/parameters/max_entries';

describe('net sizes and the entry cap', () => {
  let a: Netns;
  let b: Netns;
  const srcs = Array.from({ length: 6 }, (_, i) => `10.${i * 40}.${i * 7}.${i + 1}`);
  const B = '10.250.0.2';

  beforeAll(async () => {
    loadModule();
    a = new Netns('sa');
    b = new Netns('sb');
    // a has six addresses spread over 10.0.0.0/8; b is 10.250.0.2
    await link(
      a,
      (d) => [...srcs.map((s) => `addr add ${s}/32 dev ${d}`), `route add ${B}/32 dev ${d}`],
      b,
      (d) => [`addr add ${B}/32 dev ${d}`, `route add 10.0.0.0/8 dev ${d}`],
    );
    await b.run('sysctl', ['-qw', 'net.ipv4.conf.all.rp_filter=0']);
    await b.run('iptables-restore', [], {
      input: [
        '*raw',
        // /8: 16M addresses over 65536 hashed buckets
        '-A PREROUTING -m traffic --traffic --netbase 10.0.0.0 --netmask 8 --name N8',
        // /8 with a tiny hash: long chains, still exact
        '-A PREROUTING -m traffic --traffic --netbase 10.0.0.0 --netmask 8 --hashsize 2 --name N8H2',
        // --hashsize 1 gets 2 buckets (a 1-bucket hash once indexed out of range: an oops)
        '-A PREROUTING -m traffic --traffic --netbase 10.0.0.0 --netmask 8 --hashsize 1 --name N8H1',
        // /32: one host
        `-A PREROUTING -m traffic --traffic --netbase ${srcs[2]} --netmask 32 --name N32`,
        '-A PREROUTING -s 10.0.0.0/8 -d 10.250.0.2',
        'COMMIT',
        '*filter',
        '-A INPUT -p udp -j DROP',
        'COMMIT',
        '',
      ].join('\n'),
    });
  }, 300_000);

  afterAll(() => {
    writeFileSync(PARAM, '1048576');
    a?.delete();
    b?.delete();
  });

  async function sendFromEach(bytes: number): Promise<void> {
    for (const s of srcs) {
      // one datagram of `bytes` payload from each source address
      await a.run('python3', ['-c', `import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('${s}',0));s.sendto(b'x'*${bytes},('${B}',9))`]);
    }
  }

  it('counts every host of a /8 exactly, with derived and tiny hash sizes, and a /32', async () => {
    await sendFromEach(72); // 72 + 8 + 20 = 100 bytes each
    for (const name of ['N8', 'N8H2', 'N8H1']) {
      const rows = parseTraffic(b.cat(`/proc/net/xt_traffic/${name}`));
      // sorted by address; B receives 6 x 100 bytes in total
      const expected = [...srcs, B].sort((x, y) => ipNum(x) - ipNum(y));
      expect(rows.map((r) => r.ip)).toEqual(expected);
      for (const r of rows) {
        if (r.ip === B) expect([r.udp.in, r.udp.out]).toEqual([600n, 0n]);
        else expect([r.udp.in, r.udp.out]).toEqual([0n, 100n]);
      }
    }
    const info = parseInfo(b.cat('/proc/net/xt_traffic/N8H2_info'));
    expect(info.hashsize).toBe(2);
    expect(parseInfo(b.cat('/proc/net/xt_traffic/N8H1_info')).hashsize).toBe(2);
    expect(parseInfo(b.cat('/proc/net/xt_traffic/N8_info')).hashsize).toBe(65536);
    const one = parseTraffic(b.cat('/proc/net/xt_traffic/N32'));
    expect(one.map((r) => [r.ip, r.udp.out])).toEqual([[srcs[2], 100n]]);
  });

  it('stops adding hosts at max_entries, counts the overflow, drops nothing', async () => {
    writeFileSync(PARAM, '3');
    await b.run('iptables', ['-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--traffic', '--netbase', '10.0.0.0', '--netmask', '8', '--name', 'CAP']);
    await sendFromEach(72);
    const rows = parseTraffic(b.cat('/proc/net/xt_traffic/CAP'));
    // B plus the first two senders get entries; the other four senders' packets overflow
    expect(rows.map((r) => r.ip)).toEqual([srcs[0], srcs[1], B]);
    expect(rows.find((r) => r.ip === B)!.udp.in).toBe(600n);
    const info = parseInfo(b.cat('/proc/net/xt_traffic/CAP_info'));
    expect(info.trafficEntries).toBe(3);
    expect(info.maxEntries).toBe(3);
    expect(info.overflow).toBe(4n);
    // every datagram still arrived: the oracle rule saw all 12
    const oracle = await b.run('iptables', ['-t', 'raw', '-L', 'PREROUTING', '-n', '-v', '-x']);
    const row = oracle.split('\n').find((l) => l.includes('10.250.0.2') && !l.includes('traffic'));
    expect(row!.trim().split(/\s+/)[0]).toBe('12');
  });
});

function ipNum(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}
