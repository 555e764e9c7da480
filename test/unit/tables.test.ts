// Library reading without /proc: $XTT_PROC_DIR points every default at a directory of files in
// the kernel's formats (tests, benchmarks, tables copied from another machine); the file reader
// refuses what is not a table file instead of hanging or exhausting memory.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ParseError, ResourceError } from '../../src/core/errors.js';
import { realDeps } from '../../src/real-deps.js';
import { DEFAULT_PROC_DIR } from '../../src/proc/names.js';
import { TRAFFIC_HEADER } from '../../src/proc/parse.js';
import { MAX_TABLE_BYTES, listTables, procDirFromEnv, procLocation, readInfo, readTable, readTableFile } from '../../src/proc/tables.js';

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
    expect(procLocation({ XTT_PROC_DIR: '/tmp/x' })).toEqual({ dir: '/tmp/x', fromEnv: true });
    expect(procLocation({})).toEqual({ dir: DEFAULT_PROC_DIR, fromEnv: false });
  });

  it('is the default directory of readTable, listTables and the CLI (realDeps)', async () => {
    vi.stubEnv('XTT_PROC_DIR', dir);
    expect(await readTable('T')).toEqual([
      { ip: '10.0.0.1', total: { in: 3n, out: 4n }, tcp: { in: 3n, out: 4n }, udp: { in: 0n, out: 0n }, other: { in: 0n, out: 0n } },
    ]);
    expect(await listTables()).toEqual(['T']);
    expect((await realDeps()).paths.proc).toEqual({ dir, fromEnv: true });
    vi.stubEnv('XTT_PROC_DIR', '');
    expect((await realDeps()).paths.proc).toEqual({ dir: DEFAULT_PROC_DIR, fromEnv: false });
  });

  it('a missing XTT_PROC_DIR is named as the cause, not the module', async () => {
    const gone = join(dir, 'gone');
    const loc = { dir: gone, fromEnv: true };
    const e = await readTable('T', { proc: loc }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ResourceError);
    expect(e).toMatchObject({ code: 'ENOPROCDIR', message: `XTT_PROC_DIR=${gone}: no such directory` });
    await expect(listTables({ proc: loc })).rejects.toMatchObject({ code: 'ENOPROCDIR' });
    // the kernel's directory missing is the module not loaded, and lists no tables
    expect(await listTables({ proc: { dir: gone, fromEnv: false } })).toEqual([]);
    await expect(readTable('T', { proc: { dir: gone, fromEnv: false } })).rejects.toMatchObject({ code: 'ENOMODULE' });
    // a table missing from XTT_PROC_DIR says where it looked
    await expect(readTable('U', { proc: { dir, fromEnv: true } })).rejects.toMatchObject({ code: 'ENOTABLE', message: `no table "U" in XTT_PROC_DIR=${dir} (${join(dir, 'U')} does not exist)` });
  });

  it('parse errors name the file, the line and show it escaped, with a hint naming XTT_PROC_DIR', async () => {
    writeFileSync(join(dir, 'C'), `${TRAFFIC_HEADER}\r\n10.0.0.1\t3\t4\t3\t4\t0\t0\t0\t0\r\n`);
    const e = (await readTable('C', { proc: { dir, fromEnv: true } }).catch((x: unknown) => x)) as ParseError;
    expect(e).toBeInstanceOf(ParseError);
    expect(e.message).toBe(`${join(dir, 'C')}: line 1: not the traffic header: expected "IP\\t\\tTOTAL\\t\\tTCP\\t\\tUDP\\t\\tOTHER" (the line: "IP\\t\\tTOTAL\\t\\tTCP\\t\\tUDP\\t\\tOTHER\\r")`);
    expect(e.hint).toBe(`the file comes from XTT_PROC_DIR=${dir}: it must be an exact copy of a /proc/net/xt_traffic file (unset XTT_PROC_DIR to read the kernel's)`);
    expect(e.toJSON()).toMatchObject({ code: 'EPARSE', exitCode: 3, line: 1, path: join(dir, 'C') });
    writeFileSync(join(dir, 'D_info'), Buffer.from('name: D\nfamily: ipv4\nnetbase: 10.0.0.0\xff\n', 'latin1'));
    await expect(readInfo('D', { proc: { dir, fromEnv: true } })).rejects.toMatchObject({
      message: `${join(dir, 'D_info')}: line 3: netbase: not a dotted-quad IPv4 address (the line: "netbase: 10.0.0.0\\xff")`,
    });
  });
});

describe('readTableFile', () => {
  it('reads small, empty and multi-chunk files whole', async () => {
    writeFileSync(join(dir, 'small'), 'abc');
    expect(await readTableFile(join(dir, 'small'), false)).toBe('abc');
    writeFileSync(join(dir, 'empty'), '');
    expect(await readTableFile(join(dir, 'empty'), false)).toBe('');
    const big = Buffer.alloc(5 * 1024 * 1024 + 123);
    for (let i = 0; i < big.length; i++) big[i] = 32 + ((i * 7) % 90);
    writeFileSync(join(dir, 'big'), big);
    expect(await readTableFile(join(dir, 'big'), false)).toBe(big.toString('latin1'));
    expect(await readTableFile(join(dir, 'big'), false, big.length)).toHaveLength(big.length);
    await expect(readTableFile(join(dir, 'big'), false, big.length - 1)).rejects.toMatchObject({ code: 'EFBIG' });
    // /proc files report size 0: read until EOF
    expect(await readTableFile('/proc/self/status', false)).toMatch(/^Name:/);
    expect(MAX_TABLE_BYTES).toBe(512 * 1024 * 1024);
  });

  it("reads a seq_file of megabytes whole (a page per read(), as the module's files give it)", async () => {
    // /proc/kallsyms is a seq_file like /proc/net/xt_traffic/NAME: size 0, ~4 KiB per read(),
    // so the buffer is filled in place and grown several times
    const want = readFileSync('/proc/kallsyms', 'latin1');
    expect(want.length).toBeGreaterThan(1024 * 1024);
    expect(await readTableFile('/proc/kallsyms', false)).toBe(want);
  });

  it('opens read-write to clear (a read-only file refuses it)', async () => {
    await expect(readTableFile('/proc/sys/kernel/osrelease', true)).rejects.toMatchObject({ code: 'EACCES' });
    writeFileSync(join(dir, 'rw'), 'x');
    expect(await readTableFile(join(dir, 'rw'), true)).toBe('x');
    expect(readFileSync(join(dir, 'rw'), 'utf8')).toBe('x');
  });

  it('refuses a FIFO, /dev/zero and a directory at once, with a message (no hang, no memory blow-up)', async () => {
    const fifo = join(dir, 'F');
    execFileSync('mkfifo', [fifo]);
    symlinkSync('/dev/zero', join(dir, 'Z'));
    const loc = { dir, fromEnv: true };
    const t0 = Date.now();
    await expect(readTable('F', { proc: loc })).rejects.toMatchObject({ code: 'ENOTREG', exitCode: 4, message: `${fifo} is a FIFO: a table file must be a regular file` });
    await expect(readTable('Z', { proc: loc })).rejects.toMatchObject({ code: 'ENOTREG', message: `${join(dir, 'Z')} is a character device: a table file must be a regular file` });
    await expect(readInfo('F', { proc: loc }).catch((e: unknown) => e)).resolves.toMatchObject({ code: 'ENOTABLE' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
