// The real output helpers behind Deps: writeFileAtomic (read --output) and writeAllFd (stdout).
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeAllFd, writeFileAtomic } from '../../src/real-deps.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'xtt-write-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('replaces FILE whole and leaves no FILE.tmp-PID', async () => {
    const p = join(dir, 'out.json');
    writeFileSync(p, 'old\n');
    const data = Buffer.alloc(3 * 1024 * 1024 + 7, 0x61);
    await writeFileAtomic(p, data);
    expect(readFileSync(p).equals(data)).toBe(true);
    expect(readdirSync(dir)).toEqual(['out.json']);
  });

  it('a failure throws the errno error, FILE unchanged, no temp file left', async () => {
    const p = join(dir, 'out.json');
    mkdirSync(p); // renaming a file over a directory fails (EISDIR)
    await expect(writeFileAtomic(p, Buffer.from('x'))).rejects.toMatchObject({ code: 'EISDIR' });
    expect(readdirSync(dir)).toEqual(['out.json']);
    await expect(writeFileAtomic(join(dir, 'nope/out.json'), Buffer.from('x'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('writeAllFd', () => {
  it('says how many bytes got through and why it stopped: ENOSPC on /dev/full', async () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const r = await writeAllFd(fd, Buffer.alloc(100, 1));
      expect(r.written).toBe(0);
      expect(r.error?.code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }
  });

  it('writes every byte of a large buffer to a file', async () => {
    const p = join(dir, 'f');
    const fd = openSync(p, 'w');
    const data = Buffer.alloc(5 * 1024 * 1024, 0x62);
    try {
      expect(await writeAllFd(fd, data)).toEqual({ written: data.length });
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(p).length).toBe(data.length);
  });
});
