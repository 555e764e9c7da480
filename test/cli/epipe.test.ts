// The real CLI (dist/cli.js) writing a large table into a pipe whose reader stops early:
// it must end quietly (status 0, nothing on stderr), not die with an EPIPE stack trace.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
