/**
 * Everything the commands touch outside the process, injected through makeProgram(deps) so the
 * CLI tests run in-process with a fake binding, fake runners and temporary directories.
 */
import { spawn } from 'node:child_process';
import { release } from 'node:os';
import type { BindingAttempt, NativeBinding } from './binding.js';
import type { TableReader } from './tables.js';

export interface Out {
  /** Text, or bytes (`read` writes its whole output as one buffer). */
  write(s: string | Uint8Array): unknown;
  isTTY?: boolean | undefined;
  columns?: number | undefined;
  rows?: number | undefined;
}

/** What `watch` needs of stdin (a tty.ReadStream on a terminal). */
export interface KeyInput {
  isTTY?: boolean | undefined;
  setRawMode?(raw: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  removeListener(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Copy the command's output to this stream as it comes (progress on a TTY). */
  tee?: Out;
}

export interface RunResult {
  /** Exit status; 127 when the command was not found (then `notFound` is set). */
  code: number;
  stdout: string;
  stderr: string;
  notFound?: boolean;
}

/** Runs a program with an argument array (never through a shell). */
export type Runner = (cmd: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>;

export interface Paths {
  /** /proc/net/xt_traffic, or $XTT_PROC_DIR (procDirFromEnv()) */
  procNet: string;
  /** /sys/module */
  sysModule: string;
  /** /lib/modules */
  libModules: string;
  /** /usr/src (DKMS sources) */
  usrSrc: string;
  /** The xttraffic package (or checkout) root. */
  root: string;
  /** Where to look for the xtables directory when pkg-config cannot say. */
  xtlibdirs: string[];
}

export interface Deps {
  stdout: Out;
  stderr: Out;
  stdin: KeyInput;
  env: NodeJS.ProcessEnv;
  run: Runner;
  /** The addon; throws BindingUnavailableError (listing every path tried) when it is missing. */
  binding(): NativeBinding;
  /** Where the addon was loaded from, or every path tried and why it failed. */
  bindingStatus(): { path?: string | undefined; tried: BindingAttempt[] };
  /** How tables are read: the addon if it loads, else node's fs. */
  reader(): Promise<TableReader>;
  getuid(): number;
  /** `uname -r` */
  kernelRelease(): string;
  paths: Paths;
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Subscribes to a signal; returns the unsubscribe function. */
  onSignal(sig: 'SIGINT' | 'SIGTERM', f: () => void): () => void;
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
  const { bindingStatus, loadBinding, PACKAGE_ROOT } = await import('./binding.js');
  const { procDirFromEnv } = await import('./names.js');
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
    // tables.js (parsers, formatters) loads with the first command that reads a table
    reader: async () => (await import('./tables.js')).defaultReader(),
    getuid: () => process.getuid?.() ?? -1,
    kernelRelease: () => release(),
    paths: {
      procNet: procDirFromEnv(),
      sysModule: '/sys/module',
      libModules: '/lib/modules',
      usrSrc: '/usr/src',
      root: PACKAGE_ROOT,
      xtlibdirs: ['/usr/lib/x86_64-linux-gnu/xtables', '/usr/lib64/xtables', '/usr/lib/xtables', '/usr/libexec/xtables', '/lib/xtables'],
    },
    now: () => performance.timeOrigin + performance.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    onSignal: (sig, f) => {
      process.on(sig, f);
      return () => process.removeListener(sig, f);
    },
  };
}
