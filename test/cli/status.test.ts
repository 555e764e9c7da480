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
      '  NAME  NET              OPTIONS                             HASHSIZE  RULES  ENTRIES                                        OVERFLOW\n' +
      '  RSN   193.11.176.0/20  traffic portconn ipconn nointernal      4096      2  traffic 12, ipconn 11, portconn 5  18446744073709551615\n' +
      '  lan   193.11.176.0/20  traffic clearonread                     4096      2  traffic 12                                            0\n',
    );
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
