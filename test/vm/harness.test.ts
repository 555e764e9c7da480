import { afterEach, describe, expect, it } from 'vitest';
import { Netns, veth } from '../lib/netns.js';

// The harness's own proof: real packets between two namespaces, counted exactly by a
// plain iptables rule, with both iptables backends. Everything else builds on this.
const BACKENDS = ['iptables', 'iptables-legacy'] as const;

describe.each(BACKENDS)('packets between namespaces, counted by %s', (ipt) => {
  let spaces: Netns[] = [];
  afterEach(() => {
    for (const ns of spaces) ns.delete();
    spaces = [];
  });

  it('counts 3 pings of 100-byte payload as exactly 3 packets of 128 bytes', () => {
    const a = new Netns('ha');
    const b = new Netns('hb');
    spaces = [a, b];
    veth(a, '10.9.0.1', b, '10.9.0.2');
    b.exec(ipt, ['-t', 'raw', '-A', 'PREROUTING', '-s', '10.9.0.1', '-p', 'icmp', '--icmp-type', 'echo-request']);
    a.exec('ping', ['-c', '3', '-s', '100', '-i', '0.2', '-W', '2', '10.9.0.2']);
    const out = b.exec(ipt, ['-t', 'raw', '-L', 'PREROUTING', '-n', '-v', '-x']);
    const row = out.split('\n').find((l) => l.includes('10.9.0.1'));
    expect(row).toBeDefined();
    const [pkts, bytes] = row!.trim().split(/\s+/).map(Number);
    // 100 payload + 8 ICMP + 20 IPv4 header
    expect(pkts).toBe(3);
    expect(bytes).toBe(3 * (100 + 8 + 20));
  });

  it('sees the rule in the backend it was added with', () => {
    const a = new Netns('hc');
    spaces = [a];
    a.exec(ipt, ['-t', 'raw', '-A', 'PREROUTING', '-s', '10.9.9.9', '-j', 'DROP']);
    const saved = a.exec(`${ipt}-save`, ['-t', 'raw']);
    expect(saved).toContain('-A PREROUTING -s 10.9.9.9/32 -j DROP');
    const version = a.exec(ipt, ['-V']);
    expect(version).toContain(ipt === 'iptables' ? '(nf_tables)' : '(legacy)');
  });
});
