/**
 * The real world behind Deps (src/core/deps.ts): processes, the addon, /proc and the clock.
 * Only the entry point (cli.ts) and the library's makeProgram users call realDeps().
 */
import { spawn } from 'node:child_process';
import { release } from 'node:os';
import type { Deps, Runner } from './core/deps.js';

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
    now: () => performance.timeOrigin + performance.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    onSignal: (sig, f) => {
      process.on(sig, f);
      return () => process.removeListener(sig, f);
    },
  };
}
