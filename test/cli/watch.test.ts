import { rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TRAFFIC_HEADER } from '../../src/proc/parse.js';
import { Fake } from './fakes.js';

const row = (...f: (string | number | bigint)[]) => `${f.join('\t')}\n`;
const table = (a: number, b: number) => `${TRAFFIC_HEADER}\n` + row('10.0.0.1', a, b, a, b, 0, 0, 0, 0) + row('10.0.0.2', b, 0, b, 0, 0, 0, 0, 0);

let f: Fake;
beforeEach(() => {
  f = new Fake();
  f.table('lan', table(1000, 0));
  f.table('lan_info', 'name: lan\nfamily: ipv4\nnetbase: 10.0.0.0\nnetmask: 255.0.0.0\noptions: traffic\nhashsize: 1\nflow_slots: 1\nrules: 1\nmax_entries: 1\noverflow: 0\n');
  // between samples 10.0.0.1 receives 2048 B and sends 512 B, 10.0.0.2 receives 512 B
  f.onSleep = (n) => f.table('lan', table(1000 + 2048 * n, 512 * n));
});
afterEach(() => f.cleanup());

describe('xttraffic watch', () => {
  it('without a terminal: plain frames with per-second rates, no escape codes', async () => {
    expect(await f.run('watch', 'lan', '--interval', '2', '--count', '2')).toBe(0);
    expect(f.sleeps).toEqual([2000]);
    expect(f.stdout).not.toContain('\x1b');
    const frames = f.stdout.split(/\n\n(?=xttraffic watch)/);
    expect(frames).toHaveLength(2);
    expect(frames[1]).toContain('IP             IN/s    OUT/s  TOTAL IN  TOTAL OUT\n');
    expect(frames[1]).toMatch(/10\.0\.0\.1\s+1\.0 KiB\/s\s+256 B\/s\s+3\.0 KiB\s+512 B\n/);
    expect(frames[1]).toMatch(/10\.0\.0\.2\s+256 B\/s\s+0 B\/s\s+512 B\s+0 B\n/);
    expect(frames[1]).toMatch(/all 2\s+1\.3 KiB\/s\s+256 B\/s/);
    // the first frame has no previous sample: rates are 0
    expect(frames[0]).toMatch(/10\.0\.0\.1\s+0 B\/s\s+0 B\/s\s+1000 B\s+0 B\n/);
    expect(f.binding.calls.filter((c) => c.fn === 'readTable').every((c) => c.args[2] === false)).toBe(true);
  });

  it('--json: one line per sample with exact totals; --top says how many rows it left out', async () => {
    expect(await f.run('watch', 'lan', '--count', '2', '--json', '--top', '1')).toBe(0);
    const lines = f.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toEqual({
      table: 'lan', kind: 'traffic', cleared: false, time: new Date(1_001_000).toISOString(), seconds: 1, unit: 'B/s', count: 2, omitted: 1,
      rows: [{ ip: '10.0.0.1', inRate: 2048, outRate: 512, total: { in: 3048, out: 512 } }],
    });
  });

  it('--json without --top: every row (none omitted), on a terminal too', async () => {
    f.tty = true;
    expect(await f.run('watch', 'lan', '--count', '2', '--json')).toBe(0);
    expect(f.stdout).not.toContain('\x1b');
    const last = JSON.parse(f.stdout.trim().split('\n')[1]!) as { count: number; omitted: number; rows: unknown[] };
    expect(last.count).toBe(2);
    expect(last.omitted).toBe(0);
    expect(last.rows).toEqual([
      { ip: '10.0.0.1', inRate: 2048, outRate: 512, total: { in: 3048, out: 512 } },
      { ip: '10.0.0.2', inRate: 512, outRate: 0, total: { in: 512, out: 0 } },
    ]);
  });

  it('on a terminal: alternate screen and raw keys, restored when q is pressed', async () => {
    f.tty = true;
    f.stdin.isTTY = true;
    f.onSleep = (n) => {
      if (n === 3) for (const l of f.stdin.listeners) l(Buffer.from('q'));
    };
    expect(await f.run('watch', 'lan')).toBe(0);
    expect(f.sleeps).toHaveLength(3);
    expect(f.stdout.startsWith('\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J')).toBe(true);
    expect(f.stdout.endsWith('\x1b[?25h\x1b[?1049l')).toBe(true);
    expect(f.stdout).toContain('q: quit');
    expect(f.stdin.raw).toEqual([true, false]);
    expect(f.stdin.listeners.size).toBe(0);
    expect([...f.signalHandlers.values()].every((s) => s.size === 0)).toBe(true);
  });

  it('Ctrl-C (SIGINT) stops too and restores the terminal', async () => {
    f.tty = true;
    f.stdin.isTTY = true;
    f.onSleep = () => {
      for (const h of f.signalHandlers.get('SIGINT') ?? []) h();
    };
    expect(await f.run('watch', 'lan', '--top', '1')).toBe(0);
    expect(f.sleeps).toHaveLength(1);
    expect(f.stdout.endsWith('\x1b[?25h\x1b[?1049l')).toBe(true);
    expect(f.stdin.raw).toEqual([true, false]);
  });

  it('the terminal is restored when a read fails mid-way', async () => {
    f.tty = true;
    f.stdin.isTTY = true;
    f.onSleep = () => f.table('lan', 'garbage\n');
    expect(await f.run('watch', 'lan')).toBe(3);
    expect(f.stdout.endsWith('\x1b[?25h\x1b[?1049l')).toBe(true);
    expect(f.stdin.raw).toEqual([true, false]);
    expect(f.stderr).toMatch(/^xttraffic: \/.*\/lan: line 1: not the traffic header: expected /);
  });

  it('a --clearonread table: each read is already the delta', async () => {
    f.table('lan_info', 'name: lan\nfamily: ipv4\nnetbase: 10.0.0.0\nnetmask: 255.0.0.0\noptions: traffic clearonread\nhashsize: 1\nflow_slots: 1\nrules: 1\nmax_entries: 1\noverflow: 0\n');
    f.onSleep = () => f.table('lan', table(4096, 1024));
    expect(await f.run('watch', 'lan', '--count', '2', '--json', '--interval', '2')).toBe(0);
    const lines = f.stdout.trim().split('\n').map((l) => JSON.parse(l) as { cleared: boolean; rows: Array<{ inRate: number; outRate: number }> });
    expect(lines[1]!.rows[0]).toMatchObject({ inRate: 2048, outRate: 512 });
    // every sample cleared the table, and says so; one warning, not one per sample
    expect(lines.map((l) => l.cleared)).toEqual([true, true]);
    expect(f.stderr).toBe('xttraffic: warning: table "lan" has --clearonread: every sample of watch reads AND CLEARS its counters (what watch shows is gone from the table)\n');
  });

  it('a table without --clearonread: no warning, cleared: false', async () => {
    expect(await f.run('watch', 'lan', '--count', '2', '--json')).toBe(0);
    expect(f.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { cleared: boolean }).cleared)).toEqual([false, false]);
    expect(f.stderr).toBe('');
  });

  it('usage errors', async () => {
    expect(await f.run('watch', 'lan', '--interval', '0')).toBe(2);
    expect(await f.run('watch', 'lan', '--interval', 'x')).toBe(2);
    expect(await f.run('watch', 'nope', '--count', '1')).toBe(4);
    expect(await f.run('watch', 'lan', '--conn', 'udp')).toBe(2);
    expect(f.stderr).toBe("xttraffic: option '--conn <ip|port>' argument 'udp' is invalid. Allowed choices are ip, port.\nhint: see xttraffic --help\n");
    expect(await f.run('watch', 'lan', '--conn', 'port', '--bits', '--json')).toBe(2);
    expect(f.errorJson().error).toEqual({ code: 'EUSAGE', message: "option '--bits' cannot be used with option '--conn <ip|port>'", exitCode: 2, hint: 'see xttraffic --help' });
    expect(f.sleeps).toEqual([]);
  });

  describe('rates from known samples', () => {
    const big = 18446744073709551615n;
    const sample1 = `${TRAFFIC_HEADER}\n` +
      row('10.0.0.1', 1000, 0, 1000, 0, 0, 0, 0, 0) +
      row('10.0.0.2', 5000, 5000, 5000, 5000, 0, 0, 0, 0) +
      row('10.0.0.3', 100, 100, 100, 100, 0, 0, 0, 0) +
      row('10.0.0.7', big - 615n, 0, big - 615n, 0, 0, 0, 0, 0);
    // 2 s later: .1 grew, .2 vanished (cleared), .3's in went down (cleared, counted again),
    // .4, .5, .6 are new, .7 grew by 615 just below 2^64
    const sample2 = `${TRAFFIC_HEADER}\n` +
      row('10.0.0.1', 3000, 1000, 3000, 1000, 0, 0, 0, 0) +
      row('10.0.0.3', 50, 100, 50, 100, 0, 0, 0, 0) +
      row('10.0.0.4', 400, 0, 400, 0, 0, 0, 0, 0) +
      row('10.0.0.5', 0, 2, 0, 2, 0, 0, 0, 0) +
      row('10.0.0.6', 50, 0, 50, 0, 0, 0, 0, 0) +
      row('10.0.0.7', big, 0, big, 0, 0, 0, 0, 0);

    it('per-row rates against the previous sample, largest first, ties by address; totals exact past 2^53', async () => {
      f.table('lan', sample1);
      f.onSleep = () => f.table('lan', sample2);
      expect(await f.run('watch', 'lan', '--count', '2', '--interval', '2', '--json')).toBe(0);
      const [first, second] = f.stdout.trim().split('\n');
      const j1 = JSON.parse(first!) as { rows: Array<{ ip: string; inRate: number; outRate: number }> };
      // the first sample has no previous one: every rate 0, rows in address order
      expect(j1.rows.map((r) => [r.ip, r.inRate, r.outRate])).toEqual([['10.0.0.1', 0, 0], ['10.0.0.2', 0, 0], ['10.0.0.3', 0, 0], ['10.0.0.7', 0, 0]]);
      const j2 = JSON.parse(second!) as { count: number; omitted: number; seconds: number; rows: Array<{ ip: string; inRate: number; outRate: number }> };
      expect(j2).toMatchObject({ count: 6, omitted: 0, seconds: 2 });
      expect(j2.rows.map((r) => [r.ip, r.inRate, r.outRate])).toEqual([
        ['10.0.0.1', 1000, 500],
        ['10.0.0.7', 307.5, 0],
        ['10.0.0.4', 200, 0],
        ['10.0.0.3', 25, 0],
        ['10.0.0.6', 25, 0],
        ['10.0.0.5', 0, 1],
      ]);
      expect(second).toContain('{"ip":"10.0.0.7","inRate":307.5,"outRate":0,"total":{"in":18446744073709551615,"out":0}}');
      // --top 2: the two fastest, and how many were left out
      f.table('lan', sample1);
      expect(await f.run('watch', 'lan', '--count', '2', '--interval', '2', '--json', '--top', '2')).toBe(0);
      const t2 = JSON.parse(f.stdout.trim().split('\n')[1]!) as { count: number; omitted: number; rows: Array<{ ip: string }> };
      expect(t2.rows.map((r) => r.ip)).toEqual(['10.0.0.1', '10.0.0.7']);
      expect([t2.count, t2.omitted]).toEqual([6, 4]);
    });

    it('the text frame: the same order, summed rates of every row', async () => {
      f.table('lan', sample1);
      f.onSleep = () => f.table('lan', sample2);
      expect(await f.run('watch', 'lan', '--count', '2', '--interval', '2', '--top', '3')).toBe(0);
      const frame = f.stdout.split(/\n\n(?=xttraffic watch)/)[1]!;
      expect(frame.split('\n').slice(2)).toEqual([
        'IP             IN/s    OUT/s  TOTAL IN  TOTAL OUT',
        '10.0.0.1   1000 B/s  500 B/s   2.9 KiB     1000 B',
        '10.0.0.7    308 B/s    0 B/s  16.0 EiB        0 B',
        '10.0.0.4    200 B/s    0 B/s     400 B        0 B',
        '--------  ---------  -------  --------  ---------',
        'all 6     1.5 KiB/s  501 B/s',
        '',
        '',
      ]);
    });

    it('a merge-join over thousands of keys gives what a map of the previous sample gives', async () => {
      // deterministic pseudo-random keys and counters; about a third of the keys change sides
      let seed = 12345;
      const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
      const sample = () => {
        const m = new Map<number, [number, number]>();
        for (let i = 0; i < 6000; i++) m.set(0x0a000000 + rnd(20000), [rnd(1e9), rnd(1e9)]);
        return new Map([...m].sort((a, b) => a[0] - b[0]));
      };
      const text = (m: Map<number, [number, number]>) => `${TRAFFIC_HEADER}\n` + [...m].map(([k, [i, o]]) => row(`${k >>> 24}.${(k >>> 16) & 255}.${(k >>> 8) & 255}.${k & 255}`, i, o, i, o, 0, 0, 0, 0)).join('');
      const s1 = sample();
      const s2 = sample();
      f.table('lan', text(s1));
      f.onSleep = () => f.table('lan', text(s2));
      expect(await f.run('watch', 'lan', '--count', '2', '--interval', '4', '--json')).toBe(0);
      const got = (JSON.parse(f.stdout.trim().split('\n')[1]!) as { rows: Array<{ ip: string; inRate: number; outRate: number }> }).rows;
      const ipOf = (k: number) => `${k >>> 24}.${(k >>> 16) & 255}.${(k >>> 8) & 255}.${k & 255}`;
      const want = [...s2].map(([k, [i, o]]) => {
        const p = s1.get(k);
        const d = (t: number, q: number | undefined) => (q !== undefined && t >= q ? t - q : t);
        return { k, ip: ipOf(k), inRate: d(i, p?.[0]) / 4, outRate: d(o, p?.[1]) / 4 };
      }).sort((a, b) => b.inRate + b.outRate - (a.inRate + a.outRate) || a.k - b.k).map(({ ip, inRate, outRate }) => ({ ip, inRate, outRate }));
      expect(got.map(({ ip, inRate, outRate }) => ({ ip, inRate, outRate }))).toEqual(want);
      expect(got.length).toBe(s2.size);
    });
  });

  it('--bits and --si: bit/s and powers of 1000 beside the IEC default', async () => {
    const frame = async (...opts: string[]) => {
      f.table('lan', table(1000, 0));
      f.sleeps = [];
      expect(await f.run('watch', 'lan', '--interval', '2', '--count', '2', ...opts)).toBe(0);
      const lines = f.stdout.split(/\n\n(?=xttraffic watch)/)[1]!.split('\n');
      return [lines.find((l) => l.startsWith('10.0.0.1 '))!.split(/ {2,}/), lines.find((l) => l.startsWith('all 2'))!.split(/ {2,}/)];
    };
    // between the samples 10.0.0.1: in 2048 B, out 512 B over 2 s; 10.0.0.2: in 512 B
    expect(await frame()).toEqual([['10.0.0.1', '1.0 KiB/s', '256 B/s', '3.0 KiB', '512 B'], ['all 2', '1.3 KiB/s', '256 B/s']]);
    expect(await frame('--bits')).toEqual([['10.0.0.1', '8.0 Kibit/s', '2.0 Kibit/s', '3.0 KiB', '512 B'], ['all 2', '10.0 Kibit/s', '2.0 Kibit/s']]);
    expect(await frame('--si')).toEqual([['10.0.0.1', '1.0 kB/s', '256 B/s', '3.0 kB', '512 B'], ['all 2', '1.3 kB/s', '256 B/s']]);
    expect(await frame('--bits', '--si')).toEqual([['10.0.0.1', '8.2 kbit/s', '2.0 kbit/s', '3.0 kB', '512 B'], ['all 2', '10.2 kbit/s', '2.0 kbit/s']]);
    // --json --bits: the rates in bit/s, and the unit says so (totals stay in bytes)
    f.table('lan', table(1000, 0));
    f.sleeps = [];
    expect(await f.run('watch', 'lan', '--interval', '2', '--count', '2', '--json', '--bits', '--top', '1')).toBe(0);
    expect(JSON.parse(f.stdout.trim().split('\n')[1]!)).toMatchObject({ unit: 'bit/s', rows: [{ ip: '10.0.0.1', inRate: 8192, outRate: 2048, total: { in: 3048, out: 512 } }] });
  });

  describe('a table missing between samples (a rule being replaced)', () => {
    it('is tried again with a note; when it comes back, its counters count from zero', async () => {
      f.onSleep = (n) => {
        if (n === 1) rmSync(`${f.procNet}/lan`);
        if (n === 3) f.table('lan', table(1200, 100));
      };
      expect(await f.run('watch', 'lan', '--count', '2', '--json')).toBe(0);
      const note = (k: number) => `xttraffic: note: table "lan" is missing (no table "lan" in this network namespace (${f.procNet}/lan does not exist)): trying again in 1s (${k} of 5)\n`;
      expect(f.stderr).toBe(note(1) + note(2));
      expect(f.sleeps).toEqual([1000, 1000, 1000]);
      const lines = f.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seconds: number; rows: Array<{ ip: string; inRate: number; outRate: number }> });
      expect(lines).toHaveLength(2);
      // 3 s since the last sample; a new table: 1200 B (not 1200 - 1000) since then; rates to 0.001
      expect(lines[1]!.seconds).toBe(3);
      expect(lines[1]!.rows).toEqual([
        { ip: '10.0.0.1', inRate: 400, outRate: 33.333, total: { in: 1200, out: 100 } },
        { ip: '10.0.0.2', inRate: 33.333, outRate: 0, total: { in: 100, out: 0 } },
      ]);
    });

    it('gives up after 5 intervals with the error (exit 4); missing from the start is an error at once', async () => {
      f.onSleep = (n) => n === 1 && rmSync(`${f.procNet}/lan`);
      expect(await f.run('watch', 'lan', '--count', '2')).toBe(4);
      expect(f.sleeps).toEqual([1000, 1000, 1000, 1000, 1000, 1000]);
      expect(f.stderr.match(/note: table "lan" is missing/g)).toHaveLength(5);
      expect(f.stderr.endsWith(`xttraffic: no table "lan" in this network namespace (${f.procNet}/lan does not exist)\nhint: \`xttraffic status\` lists the tables; a table exists while a rule with --name NAME exists\n`)).toBe(true);
      f.sleeps = [];
      expect(await f.run('watch', 'lan', '--count', '2')).toBe(4);
      expect(f.sleeps).toEqual([]);
    });

    it('on a terminal the note is the frame (nothing on stderr under the full-screen view)', async () => {
      f.tty = true;
      f.onSleep = (n) => {
        if (n === 1) rmSync(`${f.procNet}/lan`);
        if (n === 2) f.table('lan', table(1000, 0));
      };
      expect(await f.run('watch', 'lan', '--count', '2')).toBe(0);
      expect(f.stderr).toBe('');
      const frames = f.stdout.split('\x1b[H\x1b[2J');
      expect(frames).toHaveLength(4);
      expect(frames[2]).toMatch(/^xttraffic watch lan .*\r\n\r\nnote: table "lan" is missing \(no table "lan"/);
    });
  });

  it('follows terminal resizes: fits the rows and the width, redraws at once', async () => {
    f.tty = true;
    f.stdin.isTTY = true;
    f.table('lan', `${TRAFFIC_HEADER}\n` + Array.from({ length: 40 }, (_, i) => row(`10.0.1.${i + 1}`, 1000 + i, 0, 1000 + i, 0, 0, 0, 0, 0)).join(''));
    f.onSleep = (n) => {
      if (n === 1) f.resize(60, 10);
      if (n === 2) for (const l of f.stdin.listeners) l(Buffer.from('q'));
    };
    expect(await f.run('watch', 'lan')).toBe(0);
    const frames = f.stdout.split('\x1b[H\x1b[2J').slice(1).map((s) => s.replace('\x1b[?25h\x1b[?1049l', '').split('\r\n').filter((l) => l !== ''));
    const dataRows = (fr: string[]) => fr.filter((l) => l.startsWith('10.0.1.')).length;
    // 30 lines: 24 rows + title, blank, header, rule, totals (and the cursor's last line)
    expect(frames.map(dataRows)).toEqual([24, 4, 4]);
    // the redraw is the same sample (same title) at the new size, before the next sample
    expect(frames[1]![0]).toBe(frames[0]![0]!.slice(0, 60));
    expect(frames[2]![0]).not.toBe(frames[1]![0]);
    for (const fr of frames.slice(1)) expect(Math.max(...fr.map((l) => l.length))).toBeLessThanOrEqual(60);
    expect(Math.max(...frames[0]!.map((l) => l.length))).toBeGreaterThan(60);
    expect(f.resizeListeners.size).toBe(0);
  });
});

describe('xttraffic watch: IPv6 tables', () => {
  const v6 = (a: number, b: number) => `${TRAFFIC_HEADER}\n` + row('2001:db8:0:9::/64', a, b, a, b, 0, 0, 0, 0) + row('2001:db8:0:10::/64', b, 0, b, 0, 0, 0, 0, 0);
  beforeEach(() => {
    f.table('v6', v6(1000, 0));
    f.table('v6_info', 'name: v6\nfamily: ipv6\nnetbase: 2001:db8::\nnetmask: ffff:ffff:ffff::\nhostprefix: 64\noptions: traffic\nhashsize: 1\nflow_slots: 1\nrules: 1\nmax_entries: 1\noverflow: 0\n');
    // between samples :9:: receives 2048 B and sends 512 B, :10:: receives 512 B
    f.onSleep = (n) => f.table('v6', v6(1000 + 2048 * n, 512 * n));
  });

  it('text frames: rates per /64 from a merge-join of 4-word keys, the key column as wide as the keys', async () => {
    expect(await f.run('watch', 'v6', '--interval', '2', '--count', '2')).toBe(0);
    const frames = f.stdout.split(/\n\n(?=xttraffic watch)/);
    expect(frames[1]!.split('\n').slice(2).join('\n')).toBe(
      'IP                       IN/s    OUT/s  TOTAL IN  TOTAL OUT\n' +
      '2001:db8:0:9::/64   1.0 KiB/s  256 B/s   3.0 KiB      512 B\n' +
      '2001:db8:0:10::/64    256 B/s    0 B/s     512 B        0 B\n' +
      '------------------  ---------  -------  --------  ---------\n' +
      'all 2               1.3 KiB/s  256 B/s\n\n',
    );
  });

  it('--json: "ip" is the prefix, totals exact', async () => {
    expect(await f.run('watch', 'v6', '--count', '2', '--json')).toBe(0);
    const lines = f.stdout.trim().split('\n').map((l) => JSON.parse(l) as { rows: unknown[] });
    expect(lines[1]!.rows).toEqual([
      { ip: '2001:db8:0:9::/64', inRate: 2048, outRate: 512, total: { in: 3048, out: 512 } },
      { ip: '2001:db8:0:10::/64', inRate: 512, outRate: 0, total: { in: 512, out: 0 } },
    ]);
  });
});
