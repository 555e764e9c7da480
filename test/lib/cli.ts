import { spawn } from 'node:child_process';
import { REPO } from './sh.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI (node dist/cli.js) as its own process, inside network namespace `ns`
 * when given, without XTABLES_LIBDIR in its environment: it has to find the checkout's
 * libxt itself, as it would for an operator.
 */
export function runCli(args: string[], ns?: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const env = { ...process.env, ...extraEnv };
  delete env['XTABLES_LIBDIR'];
  const argv = [process.execPath, `${REPO}/dist/cli.js`, ...args];
  const [cmd, ...rest] = ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv;
  return new Promise((resolve, reject) => {
    const p = spawn(cmd!, rest, { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** The result of a run that must have exited 0 (else an error with its output). */
export function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}
