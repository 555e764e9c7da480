import { execFile, execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run with it as cwd in the VM too). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** iptables finds libxt_traffic.so in the checkout before the system's extensions. */
export const XTABLES_LIBDIR = `${REPO}/libxt:/usr/lib/x86_64-linux-gnu/xtables`;

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with an argument array (never a shell string); throws on a non-zero exit. */
export function sh(cmd: string, args: string[] = [], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      input: opts.input,
      env: { ...process.env, XTABLES_LIBDIR, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 1 << 30,
    });
  } catch (err) {
    const e = err as { status?: number; stderr?: string; stdout?: string };
    throw new Error(`${cmd} ${args.join(' ')} exited ${e.status}: ${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

/** Runs a program and returns its status and output, whatever the status. */
export function run(cmd: string, args: string[] = [], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    env: { ...process.env, XTABLES_LIBDIR, ...opts.env },
    maxBuffer: 1 << 30,
  });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * Like sh(), without blocking the event loop: long VM test set-ups made of many
 * synchronous calls starve vitest's worker RPC ("Timeout calling onTaskUpdate").
 */
export function shAsync(cmd: string, args: string[] = [], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { encoding: 'utf8', env: { ...process.env, XTABLES_LIBDIR, ...opts.env }, maxBuffer: 1 << 30 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${args.join(' ')} exited ${err.code}: ${stderr}${stdout}`));
        else resolve(stdout);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like run(), without blocking the event loop (for long host-side checks under vitest). */
export function runAsync(cmd: string, args: string[] = [], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { encoding: 'utf8', cwd: opts.cwd, env: { ...process.env, XTABLES_LIBDIR, ...opts.env }, maxBuffer: 1 << 30 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ status: code, stdout, stderr });
      },
    );
  });
}
