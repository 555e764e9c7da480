import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Fake } from './fakes.js';

const INFO = (name: string, extra = '') => `name: ${name}
family: ipv4
netbase: 193.11.176.0
netmask: 255.255.240.0
options: traffic portconn ipconn nointernal
hashsize: 4096
flow_slots: 16384
rules: 2
max_entries: 1048576
traffic_entries: 12
ipconn_entries: 11
portconn_entries: 5
overflow: 18446744073709551615
${extra}`;

let f: Fake;
beforeEach(() => {
  f = new Fake();
  f.handlers.set('iptables', (a) => (a[0] === '-V' ? { stdout: 'iptables v1.8.9 (nf_tables)\n' } : {}));
});
afterEach(() => f.cleanup());

describe('xttraffic status', () => {
  it('nothing loaded, no tables: the same output, exit 1 with what failed', async () => {
    expect(await f.run('status')).toBe(1);
    expect(f.stdout).toBe(
      'module:     xt_traffic not loaded\n' +
      'addon:      loaded (/pkg/build/Release/xttraffic.node)\n' +
      'iptables:   iptables v1.8.9 (nf_tables) (backend: nft)\n' +
      'extension:  libxt_traffic found\n' +
      'tables:     none in this network namespace\n',
    );
    expect(f.runsOf('iptables')).toEqual([['-V'], ['-m', 'traffic', '-h']]);
    expect(f.stderr).toBe('xttraffic: status: 1 check failed: module xt_traffic not loaded\n');
  });

  it('healthy (module loaded, extension found, no tables yet, even without the addon): exit 0', async () => {
    f.loaded('xt_traffic', { version: '0.1.0', refcnt: 0 });
    f.bindingMissing = true;
    expect(await f.run('status')).toBe(0);
    expect(f.stderr).toBe('');
    expect(f.stdout).toContain('module:     xt_traffic loaded, version 0.1.0, used by 0\n');
  });

  it('extension missing: the real error line of iptables (nf_tables and legacy), not its "Try" advice; exit 1', async () => {
    f.loaded('xt_traffic', { version: '0.1.0', refcnt: 1 });
    f.handlers.set('iptables', (a) => (a[0] === '-V'
      ? { stdout: 'iptables v1.8.9 (nf_tables)\n' }
      : { code: 2, stderr: "iptables v1.8.9 (nf_tables): Couldn't load match `traffic':No such file or directory\n\nTry `iptables -h' or 'iptables --help' for more information.\n" }));
    expect(await f.run('status')).toBe(1);
    expect(f.stdout).toContain("\nextension:  not found: iptables v1.8.9 (nf_tables): Couldn't load match `traffic':No such file or directory\ntables:");
    expect(f.stderr).toBe('xttraffic: status: 1 check failed: extension libxt_traffic not found\n');
    f.handlers.set('iptables', (a) => (a[0] === '-V'
      ? { stdout: 'iptables v1.8.9 (legacy)\n' }
      : { code: 2, stderr: "iptables v1.8.9 (legacy): Couldn't load match `traffic':No such file or directory\n\nTry `iptables-legacy -h' or 'iptables-legacy --help' for more information.\n" }));
    expect(await f.run('status', '--json')).toBe(1);
    expect((f.json() as { extension: unknown }).extension).toEqual({ found: false, error: "iptables v1.8.9 (legacy): Couldn't load match `traffic':No such file or directory" });
    expect(f.errorJson()).toEqual({ error: { code: 'EUNHEALTHY', exitCode: 1, message: 'status: 1 check failed: extension libxt_traffic not found' } });
  });

  it('--help says what the exit status means', async () => {
    expect(await f.run('status', '--help')).toBe(0);
    expect(f.stdout).toContain('Exit status (a health check): 0 when everything checked is fine; 1 when something is\nbroken');
  });

  it('module, tables with configuration, entries and overflow', async () => {
    f.loaded('xt_traffic', { version: '0.1.0', refcnt: 3 });
    f.table('RSN_info', INFO('RSN'));
    f.table('RSN', 'IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n');
    f.table('lan_info', INFO('lan').replace('options: traffic portconn ipconn nointernal', 'options: traffic clearonread').replace('ipconn_entries: 11\nportconn_entries: 5\n', '').replace('overflow: 18446744073709551615', 'overflow: 0'));
    expect(await f.run('status')).toBe(0);
    expect(f.stdout).toBe(
      'module:     xt_traffic loaded, version 0.1.0, used by 3\n' +
      'addon:      loaded (/pkg/build/Release/xttraffic.node)\n' +
      'iptables:   iptables v1.8.9 (nf_tables) (backend: nft)\n' +
      'extension:  libxt_traffic found\n' +
      'tables:\n' +
      '  NAME  FAMILY  NET              PER  OPTIONS                             HASHSIZE  RULES  ENTRIES                                        OVERFLOW\n' +
      '  RSN   ipv4    193.11.176.0/20  /32  traffic portconn ipconn nointernal      4096      2  traffic 12, ipconn 11, portconn 5  18446744073709551615\n' +
      '  lan   ipv4    193.11.176.0/20  /32  traffic clearonread                     4096      2  traffic 12                                            0\n',
    );
  });

  it('IPv6 and IPv4 per-prefix tables: family and host prefix per table (text and JSON)', async () => {
    f.loaded('xt_traffic', { version: '0.2.0', refcnt: 2 });
    f.table('v6_info', INFO('v6').replace('family: ipv4\nnetbase: 193.11.176.0\nnetmask: 255.255.240.0\n', 'family: ipv6\nnetbase: 2001:db8::\nnetmask: ffff:ffff:ffff::\nhostprefix: 56\n')
      .replace('options: traffic portconn ipconn nointernal', 'options: traffic').replace('ipconn_entries: 11\nportconn_entries: 5\n', '').replace('overflow: 18446744073709551615', 'overflow: 0'));
    f.table('wan_info', INFO('wan').replace('netbase: 193.11.176.0\nnetmask: 255.255.240.0\n', 'netbase: 10.0.0.0\nnetmask: 255.0.0.0\nhostprefix: 24\n')
      .replace('options: traffic portconn ipconn nointernal', 'options: traffic').replace('ipconn_entries: 11\nportconn_entries: 5\n', '').replace('overflow: 18446744073709551615', 'overflow: 7'));
    expect(await f.run('status')).toBe(0);
    expect(f.stdout.split('tables:\n')[1]).toBe(
      '  NAME  FAMILY  NET            PER  OPTIONS  HASHSIZE  RULES  ENTRIES     OVERFLOW\n' +
      '  v6    ipv6    2001:db8::/48  /56  traffic      4096      2  traffic 12         0\n' +
      '  wan   ipv4    10.0.0.0/8     /24  traffic      4096      2  traffic 12         7\n',
    );
    expect(await f.run('status', '--json')).toBe(0);
    const t = (f.json() as { tables: Array<{ name: string; info: Record<string, unknown> }> }).tables;
    expect(t.map((x) => [x.name, x.info['family'], x.info['netbase'], x.info['netmask'], x.info['prefixLength'], x.info['hostPrefix']])).toEqual([
      ['v6', 'ipv6', '2001:db8::', 'ffff:ffff:ffff::', 48, 56],
      ['wan', 'ipv4', '10.0.0.0', '255.0.0.0', 8, 24],
    ]);
  });

  it('--json: legacy backend, extension missing, addon missing, a table that cannot be read', async () => {
    f.handlers.set('iptables', (a) => (a[0] === '-V' ? { stdout: 'iptables v1.8.9 (legacy)\n' } : { code: 2, stderr: "iptables v1.8.9 (legacy): Couldn't load match `traffic':No such file or directory\n" }));
    f.bindingMissing = true;
    f.loaded('xt_traffic', { version: '0.1.0', refcnt: 1 });
    f.table('RSN_info', INFO('RSN'));
    f.table('bad_info', 'name: bad\nhashsize: many\n');
    expect(await f.run('status', '--json')).toBe(1);
    expect(f.errorJson()).toEqual({ error: { code: 'EUNHEALTHY', exitCode: 1, message: 'status: 2 checks failed: extension libxt_traffic not found, table bad unreadable' } });
    expect(f.json()).toEqual({
      module: { loaded: true, version: '0.1.0', refcnt: 1 },
      addon: { loaded: false, tried: [{ path: '/pkg/build/Release/xttraffic.node', error: 'not found' }] },
      iptables: { found: true, version: 'iptables v1.8.9 (legacy)', backend: 'legacy' },
      extension: { found: false, error: "iptables v1.8.9 (legacy): Couldn't load match `traffic':No such file or directory" },
      tables: [
        { name: 'RSN', info: {
          name: 'RSN', family: 'ipv4', netbase: '193.11.176.0', netmask: '255.255.240.0', prefixLength: 20, hostPrefix: 32,
          options: { traffic: true, portconn: true, ipconn: true, nointernal: true, onlyinternal: false, clearonread: false },
          hashsize: 4096, flowSlots: 16384, rules: 2, maxEntries: 1048576, trafficEntries: 12, ipconnEntries: 11, portconnEntries: 5,
          overflow: 18446744073709552000, extra: {},
        } },
        { name: 'bad', error: { code: 'EPARSE', exitCode: 3, line: 2, path: `${f.procNet}/bad_info`, message: `${f.procNet}/bad_info: line 2: hashsize: not a decimal number below 2^53 (the line: "hashsize: many")`, hint: expect.any(String) } },
      ],
    });
    expect(f.stdout).toContain('"overflow": 18446744073709551615');
  });

  it('iptables missing', async () => {
    f.handlers.set('iptables', () => undefined);
    f.loaded('xt_traffic', { version: '0.1.0', refcnt: 0 });
    expect(await f.run('status')).toBe(1);
    expect(f.stdout).toContain('iptables:   not found\nextension:  not found\n');
    expect(f.stderr).toBe('xttraffic: status: 1 check failed: iptables not found\n');
  });
});
