// Library reading without /proc: $XTT_PROC_DIR points every default at a directory of files in
// the kernel's formats (tests, benchmarks, tables copied from another machine).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { realDeps } from '../../src/lib/deps.js';
import { DEFAULT_PROC_DIR } from '../../src/lib/names.js';
import { TRAFFIC_HEADER } from '../../src/lib/parse.js';
import { fsReader, listTables, procDirFromEnv, readTable } from '../../src/lib/tables.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xtt-procdir-'));
  writeFileSync(join(dir, 'T'), `${TRAFFIC_HEADER}\n10.0.0.1\t3\t4\t3\t4\t0\t0\t0\t0\n`);
  writeFileSync(join(dir, 'T_info'), 'name: T\n');
});
afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

describe('XTT_PROC_DIR', () => {
  it('procDirFromEnv: the variable (made absolute) when set and not empty, else /proc/net/xt_traffic', () => {
    expect(procDirFromEnv({})).toBe(DEFAULT_PROC_DIR);
    expect(procDirFromEnv({ XTT_PROC_DIR: '' })).toBe(DEFAULT_PROC_DIR);
    expect(procDirFromEnv({ XTT_PROC_DIR: '/tmp/x' })).toBe('/tmp/x');
    expect(procDirFromEnv({ XTT_PROC_DIR: 'rel/dir' })).toBe(resolve('rel/dir'));
  });

  it('is the default directory of readTable, listTables and the CLI (realDeps)', async () => {
    vi.stubEnv('XTT_PROC_DIR', dir);
    expect(await readTable('T', { reader: fsReader })).toEqual([
      { ip: '10.0.0.1', total: { in: 3n, out: 4n }, tcp: { in: 3n, out: 4n }, udp: { in: 0n, out: 0n }, other: { in: 0n, out: 0n } },
    ]);
    expect(await listTables()).toEqual(['T']);
    expect((await realDeps()).paths.procNet).toBe(dir);
    vi.stubEnv('XTT_PROC_DIR', '');
    expect((await realDeps()).paths.procNet).toBe(DEFAULT_PROC_DIR);
  });
});
