import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TRAFFIC_HEADER } from '../../src/proc/parse.js';
import { Fake } from './fakes.js';

const row = (...f: (string | number)[]) => `${f.join('\t')}\n`;
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

  it('--json: one line per sample with exact totals', async () => {
    expect(await f.run('watch', 'lan', '--count', '2', '--json', '--top', '1')).toBe(0);
    const lines = f.stdout.trim().split('\n').map((l) => JSON.parse(l) as { table: string; seconds: number; rows: Array<{ ip: string; inRate: number; outRate: number; total: { in: number } }> });
    expect(lines).toHaveLength(2);
    expect(lines[1]!.seconds).toBe(1);
    expect(lines[1]!.rows).toEqual([{ ip: '10.0.0.1', inRate: 2048, outRate: 512, total: { in: 3048, out: 512 } }]);
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
  });
});
