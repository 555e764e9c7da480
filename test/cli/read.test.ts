import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IPCONN_HEADER, PORTCONN_HEADER, TRAFFIC_HEADER } from '../../src/proc/parse.js';
import { Fake } from './fakes.js';

const row = (...f: (string | number | bigint)[]) => `${f.join('\t')}\n`;
const TRAFFIC = `${TRAFFIC_HEADER}\n` +
  row('193.11.177.4', 0, 171721, 0, 4418, 0, 76, 0, 167227) +
  row('193.11.185.17', 17489073, 156686, 17488837, 156686, 0, 0, 236, 0) +
  row('193.11.185.20', '18446744073709551615', 1, '18446744073709551615', 1, 0, 0, 0, 0);

const info = (options: string) =>
  `name: RSN\nfamily: ipv4\nnetbase: 193.11.176.0\nnetmask: 255.255.240.0\noptions: ${options}\nhashsize: 4096\nflow_slots: 16384\nrules: 1\nmax_entries: 1048576\ntraffic_entries: 3\noverflow: 0\n`;
const EMPTY_TOTALS = { total: { in: 0, out: 0 }, tcp: { in: 0, out: 0 }, udp: { in: 0, out: 0 }, other: { in: 0, out: 0 } };
const META = { time: new Date(1_000_000).toISOString(), host: 'router1' };

const CSV = 'ip,total_in,total_out,tcp_in,tcp_out,udp_in,udp_out,other_in,other_out\n' +
  '193.11.177.4,0,171721,0,4418,0,76,0,167227\n193.11.185.17,17489073,156686,17488837,156686,0,0,236,0\n193.11.185.20,18446744073709551615,1,18446744073709551615,1,0,0,0,0\n';

let f: Fake;
beforeEach(() => {
  f = new Fake();
  f.table('RSN', TRAFFIC);
  f.table('RSN_info', info('traffic'));
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
    // NAME_info (is it --clearonread?), then one read of the traffic file, not clearing
    expect(f.reads).toEqual([[`${f.procNet}/RSN_info`, false], [`${f.procNet}/RSN`, false]]);
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
    expect(f.reads).toEqual([[`${f.procNet}/RSN_info`, false], [`${f.procNet}/RSN`, true]]);
    expect(await f.run('read', 'RSN', '--json')).toBe(0);
    expect(f.json()).toEqual({
      table: 'RSN', kind: 'traffic', ...META,
      config: { netbase: '193.11.176.0', netmask: '255.255.240.0', options: ['traffic'] },
      cleared: false, count: 0, rows: [], totals: EMPTY_TOTALS,
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
    expect(f.stderr).toBe("xttraffic: option '--conn <ip|port>' argument 'udp' is invalid. Allowed choices are ip, port.\nhint: see xttraffic --help\n");
    expect(await f.run('read', 'RSN', '--sort', 'icmp')).toBe(2);
    expect(f.stderr).toContain('hint: use one of: ip, in, out, total, total_in, total_out, tcp,');
    expect(await f.run('read', 'RSN', '--top', '0')).toBe(2);
    expect(await f.run('read', 'RSN', '--json', '--csv')).toBe(2);
    expect(f.errorJson().error).toEqual({ code: 'EUSAGE', message: "option '--csv' cannot be used with option '--json'", exitCode: 2, hint: 'see xttraffic --help' });
    expect(f.reads).toEqual([]);
  });

  it('commander checks the choices and the conflicts, wherever the global --json stands', async () => {
    // --json before the command, after it, or between its options: the same conflict
    for (const argv of [['--json', 'read', 'RSN', '--csv'], ['read', '--csv', 'RSN', '--json'], ['read', 'RSN', '--csv', '--top', '1', '--json']]) {
      expect(await f.run(...argv)).toBe(2);
      expect(f.stdout).toBe('');
      expect(f.errorJson()).toEqual({ error: { code: 'EUSAGE', message: "option '--csv' cannot be used with option '--json'", exitCode: 2, hint: 'see xttraffic --help' } });
    }
    expect(await f.run('read', 'RSN', '--human', '--csv')).toBe(2);
    expect(f.stderr).toBe("xttraffic: option '--human' cannot be used with option '--csv'\nhint: see xttraffic --help\n");
    expect(await f.run('read', 'RSN', '--human', '--json')).toBe(2);
    expect(f.errorJson().error['message']).toBe("option '--human' cannot be used with option '--json'");
    expect(await f.run('read', 'RSN', '--conn', 'IP', '--json')).toBe(2);
    expect(f.errorJson().error['message']).toBe("option '--conn <ip|port>' argument 'IP' is invalid. Allowed choices are ip, port.");
    expect(f.reads).toEqual([]);
    // each alone still works: --json alone, --csv alone, and the hidden twin stays out of help
    expect(await f.run('read', 'RSN', '--json', '--top', '1')).toBe(0);
    expect((f.json() as { count: number }).count).toBe(3);
    expect(await f.run('read', 'RSN', '--csv', '--top', '1')).toBe(0);
    expect(f.stdout).toBe('ip,total_in,total_out,tcp_in,tcp_out,udp_in,udp_out,other_in,other_out\n193.11.185.20,18446744073709551615,1,18446744073709551615,1,0,0,0,0\n');
    expect(await f.run('read', '--help')).toBe(0);
    expect(f.stdout.match(/^ {2}--json /gm)).toHaveLength(1);
    expect(f.stdout.indexOf('\n  --json ')).toBeGreaterThan(f.stdout.indexOf('Global Options:'));
    expect(f.stdout).toContain('--conn <ip|port>');
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

  it('--json carries the snapshot time, host, configuration; a --clearonread table says cleared: true', async () => {
    f.table('RSN_info', info('traffic portconn nointernal clearonread'));
    f.clock = Date.UTC(2026, 10, 30, 6, 45, 1, 250);
    expect(await f.run('read', 'RSN', '--json', '--top', '1')).toBe(0);
    expect(f.json()).toMatchObject({
      table: 'RSN', kind: 'traffic', time: '2026-11-30T06:45:01.250Z', host: 'router1',
      config: { netbase: '193.11.176.0', netmask: '255.255.240.0', options: ['traffic', 'portconn', 'nointernal', 'clearonread'] },
      cleared: true, count: 3,
    });
    // a plain read of it cleared (O_RDONLY on a clearonread table): the next one is empty
    expect(await f.run('read', 'RSN', '--json')).toBe(0);
    expect(f.json()).toMatchObject({ cleared: true, count: 0, rows: [] });
    // no info file: config null, cleared as --clear says
    f.cleanup();
    f.table('RSN', TRAFFIC);
    expect(await f.run('read', 'RSN', '--json', '--top', '1')).toBe(0);
    expect(f.json()).toMatchObject({ config: null, cleared: false, count: 3 });
  });

  describe('a cleared read whose output cannot be written whole', () => {
    const saved = () => `${f.dir}/tmp/xttraffic-RSN-19700101T001640Z-4242.json`;
    beforeEach(() => mkdirSync(`${f.dir}/tmp`));

    it('read --clear --json | head -c 10 (EPIPE): exit 1, says the counters WERE cleared, bytes lost, where the data is', async () => {
      f.stdoutFailure = { after: 10, code: 'EPIPE' };
      expect(await f.run('read', 'RSN', '--clear', '--json')).toBe(1);
      expect(f.stdout).toBe('{\n  "table');
      const j = f.errorJson().error;
      const full = readFileSync(saved(), 'utf8');
      expect(j['code']).toBe('EOUTPUT');
      expect(j['exitCode']).toBe(1);
      expect(j['path']).toBe(saved());
      expect(j['message']).toBe(
        `writing the output failed (EPIPE: write failed) after 10 of ${full.length} bytes: ${full.length - 10} bytes were lost; ` +
        `read --clear CLEARED the counters of table "RSN" (3 IPs, snapshot 1970-01-01T00:16:40.000Z); the whole snapshot (${full.length} bytes) is saved in ${saved()}`,
      );
      // the saved file is the whole snapshot: every row, the exact totals, cleared: true
      const d = JSON.parse(full) as { cleared: boolean; count: number; rows: Array<{ ip: string }>; totals: { total: { in: number } } };
      expect(d.cleared).toBe(true);
      expect(d.rows.map((r) => r.ip)).toEqual(['193.11.177.4', '193.11.185.17', '193.11.185.20']);
      expect(full).toContain('"in": 18446744073727040688');
      // and the counters are indeed zero now
      f.stdoutFailure = undefined;
      expect(await f.run('read', 'RSN', '--csv')).toBe(0);
      expect(f.stdout).toBe('ip,total_in,total_out,tcp_in,tcp_out,udp_in,udp_out,other_in,other_out\n');
    });

    it('> /dev/full (ENOSPC), as text: exit 1 and a message, no stack trace', async () => {
      f.stdoutFailure = { after: 0, code: 'ENOSPC' };
      expect(await f.run('read', 'RSN', '--clear')).toBe(1);
      const file = `${f.dir}/tmp/xttraffic-RSN-19700101T001640Z-4242.txt`;
      const n = readFileSync(file).length;
      expect(readFileSync(file, 'utf8').split('\n')[1]).toMatch(/^193\.11\.177\.4 +0 +171721 /);
      expect(f.stderr).toBe(
        `xttraffic: writing the output failed (ENOSPC: write failed) after 0 of ${n} bytes: ${n} bytes were lost; read --clear CLEARED the counters of table "RSN" (3 IPs, snapshot 1970-01-01T00:16:40.000Z); the whole snapshot (${n} bytes) is saved in ${file}\n` +
        `hint: take the data from ${file}; the counters now count from zero\n`,
      );
    });

    it('a plain read of a --clearonread table is as precious: exit 1, says so', async () => {
      f.table('RSN_info', info('traffic clearonread'));
      f.stdoutFailure = { after: 5, code: 'EPIPE' };
      expect(await f.run('read', 'RSN', '--csv')).toBe(1);
      const file = `${f.dir}/tmp/xttraffic-RSN-19700101T001640Z-4242.csv`;
      expect(readFileSync(file, 'utf8')).toBe(CSV);
      expect(f.stderr).toContain(`after 5 of ${CSV.length} bytes: ${CSV.length - 5} bytes were lost; the table has --clearonread, so this read CLEARED the counters of table "RSN" (3 IPs,`);
    });

    it('saving the snapshot fails too: the data goes to stderr, the message says so', async () => {
      f.stdoutFailure = { after: 0, code: 'ENOSPC' };
      f.fileFailures.set('.csv', 'ENOSPC');
      expect(await f.run('read', 'RSN', '--clear', '--csv')).toBe(1);
      const csv = CSV;
      expect(f.stderr.startsWith(csv)).toBe(true);
      expect(f.stderr.slice(csv.length)).toBe(
        `xttraffic: writing the output failed (ENOSPC: write failed) after 0 of ${CSV.length} bytes: ${CSV.length} bytes were lost; read --clear CLEARED the counters of table "RSN" (3 IPs, snapshot 1970-01-01T00:16:40.000Z); ` +
        `saving the snapshot to ${f.dir}/tmp/xttraffic-RSN-19700101T001640Z-4242.csv failed too (ENOSPC: failed, open '${f.dir}/tmp/xttraffic-RSN-19700101T001640Z-4242.csv.tmp-4242'): the whole snapshot (${CSV.length} bytes) was written to stderr above\n`,
      );
    });

    it('a non-clearing read: EPIPE ends quietly (exit 0), ENOSPC is an error (1) that says nothing was cleared', async () => {
      f.stdoutFailure = { after: 10, code: 'EPIPE' };
      expect(await f.run('read', 'RSN', '--json')).toBe(0);
      expect(f.stderr).toBe('');
      f.stdoutFailure = { after: 10, code: 'ENOSPC' };
      expect(await f.run('read', 'RSN', '--csv')).toBe(1);
      expect(f.stderr).toBe(`xttraffic: writing the output failed (ENOSPC: write failed) after 10 of ${CSV.length} bytes: ${CSV.length - 10} bytes were lost\n`);
      expect(existsSync(`${f.dir}/tmp/xttraffic-RSN-19700101T001640Z-4242.csv`)).toBe(false);
    });
  });

  describe('read --output FILE', () => {
    it('writes FILE atomically (no temp file left), prints nothing', async () => {
      const out = `${f.dir}/out.csv`;
      writeFileSync(out, 'old\n');
      expect(await f.run('read', 'RSN', '--clear', '--csv', '--output', out)).toBe(0);
      expect(f.stdout).toBe('');
      expect(f.stderr).toBe('');
      expect(readFileSync(out, 'utf8').split('\n')).toHaveLength(5);
      expect(readdirSync(f.dir).filter((n) => n.startsWith('out.csv'))).toEqual(['out.csv']);
    });

    it.each(['ENOSPC', 'EACCES'])('--clear and FILE fails (%s): FILE unchanged, the data saved in $TMPDIR, exit 1', async (code) => {
      mkdirSync(`${f.dir}/tmp`);
      const out = `${f.dir}/out.json`;
      writeFileSync(out, 'old\n');
      f.fileFailures.set('/out.json', code);
      expect(await f.run('read', 'RSN', '--clear', '--json', '--output', out)).toBe(1);
      expect(readFileSync(out, 'utf8')).toBe('old\n');
      const file = `${f.dir}/tmp/xttraffic-RSN-19700101T001640Z-4242.json`;
      const n = readFileSync(file).length;
      expect((JSON.parse(readFileSync(file, 'utf8')) as { count: number }).count).toBe(3);
      expect(f.errorJson().error).toEqual({
        code: 'EOUTPUT', exitCode: 1, path: file,
        message: `writing ${out} failed (${code}: failed, open '${out}.tmp-4242'): ${out} is unchanged; read --clear CLEARED the counters of table "RSN" (3 IPs, snapshot 1970-01-01T00:16:40.000Z); the whole snapshot (${n} bytes) is saved in ${file}`,
        hint: `take the data from ${file}; the counters now count from zero`,
      });
    });

    it('without --clear, a failing FILE is an error (1) and nothing is saved elsewhere', async () => {
      f.fileFailures.set('/out.csv', 'EACCES');
      expect(await f.run('read', 'RSN', '--csv', '--output', `${f.dir}/out.csv`)).toBe(1);
      expect(f.stderr).toBe(`xttraffic: writing ${f.dir}/out.csv failed (EACCES: failed, open '${f.dir}/out.csv.tmp-4242'): ${f.dir}/out.csv is unchanged\n`);
      expect(existsSync(`${f.dir}/tmp`)).toBe(false);
    });
  });
});

describe('xttraffic read: IPv6 and host-prefix tables', () => {
  const V6INFO = 'name: V6\nfamily: ipv6\nnetbase: 2001:db8::\nnetmask: ffff:ffff:ffff::\nhostprefix: 64\noptions: traffic ipconn\nhashsize: 4096\nflow_slots: 16384\nrules: 1\nmax_entries: 1048576\ntraffic_entries: 3\nipconn_entries: 1\noverflow: 0\n';
  // numeric order: :9:: before :10:: (text order would not)
  const V6 = `${TRAFFIC_HEADER}\n` +
    row('2001:db8::/64', 1500, 300, 1000, 300, 500, 0, 0, 0) +
    row('2001:db8:0:9::/64', 80, 0, 0, 0, 0, 0, 80, 0) +
    row('2001:db8:0:10::/64', 0, 4294967296, 0, 4294967296, 0, 0, 0, 0);
  beforeEach(() => {
    f.table('V6', V6);
    f.table('V6_info', V6INFO);
    f.table('V6_ipconn', `${IPCONN_HEADER}\n` + row('2001:db8:0:ffff::/64', 2, 1, 1, 1, 1, 0, 0, 0, 0, 0));
  });

  it('the aligned table: keys as the file has them, the IP column as wide as the longest', async () => {
    expect(await f.run('read', 'V6')).toBe(0);
    expect(f.stdout).toBe(
      'IP                  TOTAL IN   TOTAL OUT  TCP IN     TCP OUT  UDP IN  UDP OUT  OTHER IN  OTHER OUT\n' +
      '2001:db8::/64           1500         300    1000         300     500        0         0          0\n' +
      '2001:db8:0:9::/64         80           0       0           0       0        0        80          0\n' +
      '2001:db8:0:10::/64         0  4294967296       0  4294967296       0        0         0          0\n' +
      '------------------  --------  ----------  ------  ----------  ------  -------  --------  ---------\n' +
      'all 3 IPs               1580  4294967596    1000  4294967596     500        0        80          0\n',
    );
    expect(await f.run('read', 'V6', '--sort', 'total', '--human')).toBe(0);
    expect(f.stdout.split('\n').slice(1, 4).map((l) => l.split(/\s+/)[0])).toEqual(['2001:db8:0:10::/64', '2001:db8::/64', '2001:db8:0:9::/64']);
  });

  it('--json: one key field "ip" with the prefix; config says family and hostprefix; exact totals', async () => {
    expect(await f.run('read', 'V6', '--json', '--sort', 'ip', '--top', '2')).toBe(0);
    expect(f.json()).toEqual({
      table: 'V6', kind: 'traffic', ...META,
      config: { family: 'ipv6', netbase: '2001:db8::', netmask: 'ffff:ffff:ffff::', hostprefix: 64, options: ['traffic', 'ipconn'] },
      cleared: false, count: 3,
      rows: [
        { ip: '2001:db8::/64', total: { in: 1500, out: 300 }, tcp: { in: 1000, out: 300 }, udp: { in: 500, out: 0 }, other: { in: 0, out: 0 } },
        { ip: '2001:db8:0:9::/64', total: { in: 80, out: 0 }, tcp: { in: 0, out: 0 }, udp: { in: 0, out: 0 }, other: { in: 80, out: 0 } },
      ],
      totals: { total: { in: 1580, out: 4294967596 }, tcp: { in: 1000, out: 4294967596 }, udp: { in: 500, out: 0 }, other: { in: 80, out: 0 } },
    });
    expect(f.stdout).toContain('  "config": {\n    "family": "ipv6",\n    "netbase": "2001:db8::",\n    "netmask": "ffff:ffff:ffff::",\n    "hostprefix": 64,\n    "options": [');
    expect(await f.run('read', 'V6', '--conn', 'ip', '--csv')).toBe(0);
    expect(f.stdout).toBe('ip,total_in,total_out,tcp_in,tcp_out,udp_in,udp_out,icmp_in,icmp_out,other_in,other_out\n2001:db8:0:ffff::/64,2,1,1,1,1,0,0,0,0,0\n');
  });

  it('an IPv4 table per /24; a revision-0 table keeps its JSON config as before', async () => {
    f.table('W', `${TRAFFIC_HEADER}\n` + row('10.20.1.0/24', 5, 6, 5, 6, 0, 0, 0, 0) + row('10.20.10.0/24', 0, 7, 0, 0, 0, 0, 0, 7));
    f.table('W_info', info('traffic').replace('name: RSN', 'name: W').replace('netbase: 193.11.176.0\nnetmask: 255.255.240.0\n', 'netbase: 10.0.0.0\nnetmask: 255.0.0.0\nhostprefix: 24\n'));
    expect(await f.run('read', 'W', '--json')).toBe(0);
    const j = f.json() as { config: unknown; rows: Array<{ ip: string }> };
    expect(j.config).toEqual({ family: 'ipv4', netbase: '10.0.0.0', netmask: '255.0.0.0', hostprefix: 24, options: ['traffic'] });
    expect(j.rows.map((r) => r.ip)).toEqual(['10.20.1.0/24', '10.20.10.0/24']);
    expect(await f.run('read', 'RSN', '--json')).toBe(0);
    expect((f.json() as { config: unknown }).config).toEqual({ netbase: '193.11.176.0', netmask: '255.255.240.0', options: ['traffic'] });
  });

  it('keys that do not match NAME_info (family or length) are a parse error naming the file and line (exit 3)', async () => {
    f.table('V6_info', V6INFO.replace('hostprefix: 64', 'hostprefix: 56'));
    expect(await f.run('read', 'V6')).toBe(3);
    expect(f.stderr).toBe(`xttraffic: ${f.procNet}/V6: line 2: IP 2001:db8::/64: /64, but the table's keys are /56 (one host prefix per table) (the line: "2001:db8::/64\\t1500\\t300\\t1000\\t300\\t500\\t0\\t0\\t0")\n` +
      "hint: the file does not have the format of this xttraffic version's xt_traffic module: is the loaded module (cat /sys/module/xt_traffic/version) the same version as xttraffic --version?\n");
    f.table('V6_info', V6INFO);
    f.table('V6', `${TRAFFIC_HEADER}\n` + row('2001:db8:0:10::/64', 1, 0, 1, 0, 0, 0, 0, 0) + row('2001:db8:0:9::/64', 1, 0, 1, 0, 0, 0, 0, 0));
    expect(await f.run('read', 'V6', '--json')).toBe(3);
    expect((f.errorJson().error as { message: string }).message).toBe(`${f.procNet}/V6: line 3: IP 2001:db8:0:9::/64: rows must be in ascending order, each key once (after 2001:db8:0:10::/64) (the line: "2001:db8:0:9::/64\\t1\\t0\\t1\\t0\\t0\\t0\\t0\\t0")`);
  });
});
