/**
 * The real world behind Deps (src/core/deps.ts): processes, the addon, /proc and the clock.
 * Only the entry point (cli.ts) and the library's makeProgram users call realDeps().
 */
import { spawn } from 'node:child_process';
import { write } from 'node:fs';
import { open as openP, rename, unlink } from 'node:fs/promises';
import { hostname, release } from 'node:os';
import { dirname } from 'node:path';
import type { Deps, Runner, WriteResult } from './core/deps.js';
import { UsageError } from './core/errors.js';

/**
 * Writes all of `data` to file descriptor `fd` (1: stdout) with write(2), byte-exact about
 * what got through. Not through process.stdout: a stream reports a failure (EPIPE, ENOSPC) as
 * an 'error' event that cli.ts turns into exit 0, and never says how much was written. A pipe
 * Node made non-blocking answers EAGAIN when full: wait a little and go on.
 */
export function writeAllFd(fd: number, data: Uint8Array): Promise<WriteResult> {
  return new Promise((resolve) => {
    let off = 0;
    const step = () => {
      if (off >= data.length) return resolve({ written: off });
      write(fd, data, off, data.length - off, null, (err, n) => {
        if (err) {
          if (err.code === 'EAGAIN') return void setTimeout(step, 2);
          return resolve({ written: off, error: err });
        }
        off += n;
        step();
      });
    };
    step();
  });
}

/**
 * Test hook: `XTT_CLOCK_OFFSET_MS=N` (a whole number, may be negative) adds N ms to the wall
 * clock of every command (deps.now: the collector's ticks, the ledger's instants, quotas,
 * the default report period). test/vm/ledger.test.ts puts a real collector a few seconds
 * before a billing period's end with it. Unset or empty: the real clock. Anything else: a
 * usage error naming the value (thrown where the clock is first read).
 */
export function clockOffsetMs(env: NodeJS.ProcessEnv): number {
  const v = env['XTT_CLOCK_OFFSET_MS'];
  if (v === undefined || v === '') return 0;
  if (!/^-?\d{1,15}$/.test(v)) throw new UsageError(`XTT_CLOCK_OFFSET_MS ${JSON.stringify(v)}: must be a whole number of milliseconds (a test hook; unset it)`);
  return Number(v);
}

/** PATH.tmp-PID written, fsynced, renamed over PATH, the directory fsynced; the temp file removed on failure. */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  let renamed = false;
  try {
    const fh = await openP(tmp, 'w', 0o644);
    try {
      const r = await writeAllFd(fh.fd, data);
      if (r.error) throw r.error;
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    renamed = true;
    const dir = await openP(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (e) {
    if (!renamed) await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

export const realRunner: Runner = (cmd, args, opts = {}) =>
  new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      opts.tee?.write(d);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      opts.tee?.write(d);
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      resolve({ code: 127, stdout, stderr: stderr + e.message, notFound: e.code === 'ENOENT' });
    });
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });

export async function realDeps(): Promise<Deps> {
  const { bindingStatus, loadBinding, PACKAGE_ROOT } = await import('./system/binding.js');
  const { procLocation, readTableFile } = await import('./proc/tables.js');
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    run: realRunner,
    binding: loadBinding,
    bindingStatus: () => {
      const s = bindingStatus();
      return { path: s.path, tried: s.tried };
    },
    readProcFile: (path, clear) => readTableFile(path, clear),
    getuid: () => process.getuid?.() ?? -1,
    writeAll: (data) => writeAllFd(1, data),
    writeFileAtomic,
    hostname: () => hostname(),
    pid: process.pid,
    kernelRelease: () => release(),
    paths: {
      proc: procLocation(),
      sysModule: '/sys/module',
      libModules: '/lib/modules',
      usrSrc: '/usr/src',
      root: PACKAGE_ROOT,
      xtlibdirs: ['/usr/lib/x86_64-linux-gnu/xtables', '/usr/lib64/xtables', '/usr/lib/xtables', '/usr/libexec/xtables', '/lib/xtables'],
      etc: process.env['XTT_ETC'] ?? '/etc',
      systemdUnits: process.env['XTT_SYSTEMD_UNITS'] ?? '/etc/systemd/system',
    },
    now: () => performance.timeOrigin + performance.now() + clockOffsetMs(process.env),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    onSignal: (sig, f) => {
      process.on(sig, f);
      return () => process.removeListener(sig, f);
    },
  };
}
