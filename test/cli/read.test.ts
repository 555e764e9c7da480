import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IPCONN_HEADER, PORTCONN_HEADER, TRAFFIC_HEADER } from '../../src/proc/parse.js';
import { Fake } from './fakes.js';

const row = (...f: (string | number | bigint)[]) => `${f.join('\t')}\n`;
const TRAFFIC = `${TRAFFIC_HEADER}\n` +
  row('193.11.177.4', 0, 171721, 0, 4418, 0, 76, 0, 167227) +
  row('193.11.185.17', 17489073, 156686, 17488837, 156686, 0, 0, 236, 0) +
  row('193.11.185.20', '18446744073709551615', 1, '18446744073709551615', 1, 0, 0, 0, 0);

let f: Fake;
beforeEach(() => {
  f = new Fake();
  f.table('RSN', TRAFFIC);
  f.table('RSN_info', 'name: RSN\n');
});
afterEach(() => f.cleanup());

describe('xttraffic read', () => {
  it('prints an aligned table with exact 64-bit totals', async () => {
    expect(await f.run('read', 'RSN')).toBe(0);
    expect(f.stderr).toBe('');
    expect(f.stdout).toBe(
      'IP                         TOTAL IN  TOTAL OUT                TCP IN  TCP OUT  UDP IN  UDP OUT  OTHER IN  OTHER OUT\n' +
      '193.11.177.4                      0     171721                     0     4418       0       76         0     167227\n' +
      '193.11.185.17              17489073     156686              17488837   156686       0        0       236          0\n' +
      '193.11.185.20  18446744073709551615          1  18446744073709551615        1       0        0         0          0\n' +
      '-------------  --------------------  ---------  --------------------  -------  ------  -------  --------  ---------\n' +
      'all 3 IPs      18446744073727040688     328408  18446744073727040452   161105       0       76       236     167227\n',
    );
    // one native read of the traffic file, not clearing
    expect(f.reads).toEqual([[`${f.procNet}/RSN`, false]]);
  });

  it('--json: exact integers beyond 2^53, totals over every row, count before --top', async () => {
    expect(await f.run('read', 'RSN', '--json', '--sort', 'total', '--top', '2')).toBe(0);
    expect(f.stdout).toContain('"in": 18446744073709551615');
    const j = f.json() as { table: string; kind: string; cleared: boolean; count: number; rows: Array<{ ip: string; total: { in: number } }>; totals: Record<string, { in: number; out: number }> };
    expect(j.table).toBe('RSN');
    expect(j.kind).toBe('traffic');
    expect(j.cleared).toBe(false);
    expect(j.count).toBe(3);
    expect(j.rows.map((r) => r.ip)).toEqual(['193.11.185.20', '193.11.185.17']);
    expect(Object.keys(j.totals)).toEqual(['total', 'tcp', 'udp', 'other']);
    expect(j.totals['udp']).toEqual({ in: 0, out: 76 });
    expect(j.totals['other']).toEqual({ in: 236, out: 167227 });
    // the exact text of a 2^64-ish total, which a double would round
    expect(f.stdout).toContain('"in": 18446744073727040688');
  });

  it('--csv prints every row without totals', async () => {
    expect(await f.run('read', 'RSN', '--csv', '--sort', 'ip')).toBe(0);
    expect(f.stdout).toBe(
      'ip,total_in,total_out,tcp_in,tcp_out,udp_in,udp_out,other_in,other_out\n' +
      '193.11.177.4,0,171721,0,4418,0,76,0,167227\n' +
      '193.11.185.17,17489073,156686,17488837,156686,0,0,236,0\n' +
      '193.11.185.20,18446744073709551615,1,18446744073709551615,1,0,0,0,0\n',
    );
  });

  it('--sort out, --sort other_in, --top', async () => {
    await f.run('read', 'RSN', '--csv', '--sort', 'out');
    expect(f.stdout.split('\n').slice(1, 4).map((l) => l.split(',')[0])).toEqual(['193.11.177.4', '193.11.185.17', '193.11.185.20']);
    await f.run('read', 'RSN', '--csv', '--sort', 'other_in', '--top', '1');
    expect(f.stdout).toBe('ip,total_in,total_out,tcp_in,tcp_out,udp_in,udp_out,other_in,other_out\n193.11.185.17,17489073,156686,17488837,156686,0,0,236,0\n');
  });

  it('--human', async () => {
    expect(await f.run('read', 'RSN', '--human', '--top', '2')).toBe(0);
    const lines = f.stdout.split('\n');
    expect(lines[1]).toMatch(/^193\.11\.185\.20\s+16\.0 EiB\s+1 B\s+16\.0 EiB\s+1 B\s+0 B\s+0 B\s+0 B\s+0 B$/);
    expect(lines[2]).toMatch(/^193\.11\.185\.17\s+16\.7 MiB\s+153\.0 KiB\s+16\.7 MiB\s+153\.0 KiB\s+0 B\s+0 B\s+236 B\s+0 B$/);
    expect(lines[4]).toMatch(/^all 3 IPs\s+16\.0 EiB\s+320\.7 KiB/);
  });

  it('--clear opens read-write once; the next read is empty', async () => {
    expect(await f.run('read', 'RSN', '--clear', '--json')).toBe(0);
    const j = f.json() as { cleared: boolean; count: number };
    expect(j.cleared).toBe(true);
    expect(j.count).toBe(3);
    expect(f.reads).toEqual([[`${f.procNet}/RSN`, true]]);
    expect(await f.run('read', 'RSN', '--json')).toBe(0);
    expect(f.json()).toEqual({
      table: 'RSN', kind: 'traffic', cleared: false, count: 0, rows: [],
      totals: { total: { in: 0, out: 0 }, tcp: { in: 0, out: 0 }, udp: { in: 0, out: 0 }, other: { in: 0, out: 0 } },
    });
  });

  it('--conn ip and --conn port read the connection files', async () => {
    f.table('RSN_ipconn', `${IPCONN_HEADER}\n` + row('172.20.0.2', 615, 3, 1, 1, 0, 2, 614, 0, 0, 0));
    f.table('RSN_portconn', `${PORTCONN_HEADER}\n` + row(22, 1, 2, 1, 2, 0, 0, 0, 0, 0, 0) + row(53, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0));
    expect(await f.run('read', 'RSN', '--conn', 'ip', '--csv')).toBe(0);
    expect(f.stdout).toBe('ip,total_in,total_out,tcp_in,tcp_out,udp_in,udp_out,icmp_in,icmp_out,other_in,other_out\n172.20.0.2,615,3,1,1,0,2,614,0,0,0\n');
    expect(await f.run('read', 'RSN', '--conn', 'port')).toBe(0);
    expect(f.stdout).toBe(
      'PORT         TOTAL IN  TOTAL OUT  TCP IN  TCP OUT  UDP IN  UDP OUT  ICMP IN  ICMP OUT  OTHER IN  OTHER OUT\n' +
      '22                  1          2       1        2       0        0        0         0         0          0\n' +
      '53                  0          2       0        0       0        2        0         0         0          0\n' +
      '-----------  --------  ---------  ------  -------  ------  -------  -------  --------  --------  ---------\n' +
      'all 2 ports         1          4       1        2       0        2        0         0         0          0\n',
    );
    expect(await f.run('read', 'RSN', '--conn', 'port', '--json')).toBe(0);
    expect((f.json() as { rows: Array<{ port: number }> }).rows.map((r) => r.port)).toEqual([22, 53]);
  });

  it('errors: no table (4), kind not counted (4), module not loaded (4), with JSON shapes', async () => {
    expect(await f.run('read', 'LAN')).toBe(4);
    expect(f.stdout).toBe('');
    expect(f.stderr).toBe(
      `xttraffic: no table "LAN" in this network namespace (${f.procNet}/LAN does not exist)\n` +
      'hint: `xttraffic status` lists the tables; a table exists while a rule with --name NAME exists\n',
    );
    expect(await f.run('read', 'RSN', '--conn', 'ip', '--json')).toBe(4);
    expect(f.errorJson()).toEqual({
      error: {
        code: 'ENOTABLE',
        message: `table "RSN" does not count ipconn (${f.procNet}/RSN_ipconn does not exist)`,
        exitCode: 4,
        hint: 'its rule needs --ipconn; `xttraffic status` shows each table\'s options',
        errno: -2,
        syscall: 'open',
        path: `${f.procNet}/RSN_ipconn`,
      },
    });
    f.cleanup();
    expect(await f.run('read', 'RSN', '--json')).toBe(4);
    expect(f.errorJson().error['code']).toBe('ENOMODULE');
  });

  it('errors: usage (2) for bad names, options and combinations', async () => {
    expect(await f.run('read', 'a/b')).toBe(2);
    expect(f.stderr).toContain('may only contain letters, digits');
    expect(await f.run('read', 'RSN_info')).toBe(2);
    expect(await f.run('read', 'RSN', '--conn', 'udp')).toBe(2);
    expect(f.stderr).toBe('xttraffic: --conn udp: must be ip or port\n');
    expect(await f.run('read', 'RSN', '--sort', 'icmp')).toBe(2);
    expect(f.stderr).toContain('hint: use one of: ip, in, out, total, total_in, total_out, tcp,');
    expect(await f.run('read', 'RSN', '--top', '0')).toBe(2);
    expect(await f.run('read', 'RSN', '--json', '--csv')).toBe(2);
    expect(f.errorJson().error).toEqual({ code: 'EUSAGE', message: '--json and --csv exclude each other', exitCode: 2 });
    expect(f.reads).toEqual([]);
  });

  it('a malformed table is a version error (3) naming the line, never a wrong number', async () => {
    f.table('BAD', `${TRAFFIC_HEADER}\n` + row('10.0.0.1', 1, 2, 1, 2, 0, 0, 0, 0) + row('10.0.0.2', 1, 2, 1, 'x', 0, 0, 0, 0));
    expect(await f.run('read', 'BAD')).toBe(3);
    expect(f.stdout).toBe('');
    expect(f.stderr).toBe(`xttraffic: ${f.procNet}/BAD: line 3: counter 4: not an unsigned decimal number (the line: "10.0.0.2\\t1\\t2\\t1\\tx\\t0\\t0\\t0\\t0")\nhint: the file does not have the format of this xttraffic version's xt_traffic module: is the loaded module (cat /sys/module/xt_traffic/version) the same version as xttraffic --version?\n`);
    expect(await f.run('read', 'BAD', '--json')).toBe(3);
    expect(f.errorJson().error).toMatchObject({ code: 'EPARSE', exitCode: 3, line: 3, path: `${f.procNet}/BAD` });
  });

  it('needs no addon', async () => {
    f.bindingMissing = true;
    expect(await f.run('read', 'RSN', '--csv', '--top', '1')).toBe(0);
    expect(f.stdout).toBe('ip,total_in,total_out,tcp_in,tcp_out,udp_in,udp_out,other_in,other_out\n193.11.185.20,18446744073709551615,1,18446744073709551615,1,0,0,0,0\n');
  });
});
