// The real CLI (dist/cli.js) writing a large table into a pipe whose reader stops early:
// it must end quietly (status 0, nothing on stderr), not die with an EPIPE stack trace.
// A clearing read (--clear) must not: exit 1, say the counters were cleared, keep the data.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRAFFIC_HEADER } from '../../src/proc/parse.js';

const CLI = join(__dirname, '../../dist/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'xtt-epipe-'));
beforeAll(() => {
  // 65,536 rows: far more than a pipe buffer, so the CLI is still writing when the reader leaves
  const rows = [TRAFFIC_HEADER];
  for (let i = 0; i < 65536; i++) rows.push(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}\t${i}\t${i * 2}\t${i}\t${i * 2}\t0\t0\t0\t0`);
  writeFileSync(join(dir, 'BIG'), `${rows.join('\n')}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('xttraffic read into a pipe closed early', () => {
  it.each([[[] as string[]], [['--json']], [['--csv']]])('read BIG %j: exit 0, stderr empty', async (extra) => {
    const child = spawn(process.execPath, [CLI, 'read', 'BIG', ...extra], {
      env: { ...process.env, XTT_PROC_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let first = '';
    child.stdout.once('data', (d: Buffer) => {
      first = d.toString('utf8', 0, 40);
      child.stdout.destroy(); // the reader goes away after its first chunk
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(first.length).toBeGreaterThan(0);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  }, 30_000);
});

/** Runs the CLI with stdout a pipe closed after the first chunk, or a file descriptor. */
async function cli(args: string[], stdout: 'close-early' | number): Promise<{ code: number | null; stderr: string; first: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, XTT_PROC_DIR: dir, TMPDIR: join(dir, 'tmp') },
    stdio: ['ignore', stdout === 'close-early' ? 'pipe' : stdout, 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let first = '';
  child.stdout?.once('data', (d: Buffer) => {
    first = d.toString('utf8', 0, 40);
    child.stdout!.destroy();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, stderr, first };
}

describe('a clearing read whose output cannot be written whole (the real CLI)', () => {
  beforeAll(() => mkdirSync(join(dir, 'tmp'), { recursive: true }));
  const savedFiles = () => readdirSync(join(dir, 'tmp')).map((n) => join(dir, 'tmp', n));

  it('read BIG --clear --json | head: exit 1, "CLEARED", the bytes lost, the whole snapshot saved', async () => {
    rmSync(join(dir, 'tmp'), { recursive: true, force: true });
    mkdirSync(join(dir, 'tmp'));
    const r = await cli(['read', 'BIG', '--clear', '--json'], 'close-early');
    expect(r.code).toBe(1);
    expect(r.first.length).toBeGreaterThan(0);
    const files = savedFiles();
    expect(files).toHaveLength(1);
    const saved = readFileSync(files[0]!, 'utf8');
    const j = JSON.parse(saved) as { cleared: boolean; count: number; rows: unknown[] };
    expect([j.cleared, j.count, j.rows.length]).toEqual([true, 65536, 65536]);
    const e = (JSON.parse(r.stderr) as { error: { code: string; message: string; path: string } }).error;
    expect(e.code).toBe('EOUTPUT');
    expect(e.path).toBe(files[0]);
    const m = /^writing the output failed \(EPIPE: [^)]*\) after (\d+) of (\d+) bytes: (\d+) bytes were lost; read --clear CLEARED the counters of table "BIG" \(65536 IPs, snapshot [0-9T:.-]+Z\); the whole snapshot \((\d+) bytes\) is saved in (.*)$/.exec(e.message);
    expect(m).not.toBeNull();
    const [written, total, lost, size] = [m![1], m![2], m![3], m![4]].map(Number) as [number, number, number, number];
    expect(total).toBe(Buffer.byteLength(saved));
    expect(size).toBe(total);
    expect(written + lost).toBe(total);
    expect(written).toBeLessThan(total);
    expect(m![5]).toBe(files[0]);
  }, 30_000);

  it('read BIG --clear > /dev/full: exit 1, no stack trace, the snapshot saved', async () => {
    rmSync(join(dir, 'tmp'), { recursive: true, force: true });
    mkdirSync(join(dir, 'tmp'));
    const r = await cli(['read', 'BIG', '--clear', '--csv'], openSync('/dev/full', 'w'));
    expect(r.code).toBe(1);
    const files = savedFiles();
    expect(files).toHaveLength(1);
    const saved = readFileSync(files[0]!);
    expect(saved.toString('utf8').split('\n')).toHaveLength(65536 + 2);
    const n = saved.length;
    expect(r.stderr).toMatch(new RegExp(`^xttraffic: writing the output failed \\(ENOSPC: [^)]*\\) after 0 of ${n} bytes: ${n} bytes were lost; read --clear CLEARED the counters of table "BIG" \\(65536 IPs, snapshot [0-9T:.-]+Z\\); the whole snapshot \\(${n} bytes\\) is saved in ${files[0]}\\nhint: `));
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 30_000);

  it('read BIG (not clearing) > /dev/full: exit 1 with a message, no stack trace, nothing saved', async () => {
    rmSync(join(dir, 'tmp'), { recursive: true, force: true });
    mkdirSync(join(dir, 'tmp'));
    const r = await cli(['read', 'BIG', '--csv'], openSync('/dev/full', 'w'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^xttraffic: writing the output failed \(ENOSPC: [^)]*\) after 0 of \d+ bytes: \d+ bytes were lost\n$/);
    expect(savedFiles()).toEqual([]);
    expect(existsSync(join(dir, 'tmp'))).toBe(true);
  }, 30_000);
});

