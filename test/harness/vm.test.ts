import { spawn, spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { testKernels } from '../lib/kernels.js';
import { REPO } from '../lib/sh.js';

interface VmRun {
  status: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `npm run vm` asynchronously (a blocked worker would starve vitest's RPC). */
function vm(kernel: string, args: string[], env: Record<string, string> = {}): Promise<VmRun> {
  const t0 = Date.now();
  const child = spawn('bash', ['scripts/vm.sh', ...args], {
    cwd: REPO,
    env: { ...process.env, XTT_KERNEL: kernel, XTT_NO_BUILD: '1', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr, ms: Date.now() - t0 }));
  });
}

describe.each(testKernels())('npm run vm on kernel %s', (kernel) => {
  beforeAll(() => {
    // the runs below skip the build; make sure the module and the WARN fixture exist
    const r = spawnSync('bash', ['-c', `. scripts/lib/kernels.sh; rel=$(kernel_cached_release ${kernel}); bash scripts/build.sh --no-node --kernel "$rel"`], {
      cwd: REPO,
      encoding: 'utf8',
      env: { ...process.env, ROOT: REPO },
    });
    expect(r.stderr + r.stdout).not.toMatch(/error/i);
    expect(r.status).toBe(0);
  });

  it('`true` exits 0 in under 60 s, in the asked-for kernel', async () => {
    const r = await vm(kernel, ['bash', '-c', 'uname -r; true']);
    expect(r.stderr).toContain('vm: guest exited 0');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().startsWith(`${kernel}.`)).toBe(true);
    expect(r.ms).toBeLessThan(60_000);
  });

  it('`false` exits non-zero', async () => {
    const r = await vm(kernel, ['false']);
    expect(r.status).toBe(1);
  });

  it("streams the command's output and keeps its exit status", async () => {
    const r = await vm(kernel, ['bash', '-c', 'echo out-line; echo err-line >&2; exit 7']);
    expect(r.stdout).toContain('out-line');
    expect(r.stdout).toContain('err-line');
    expect(r.status).toBe(7);
  });

  it('fails the run when the guest kernel logs a WARNING, even though the command succeeded', async () => {
    const r = await vm(kernel, ['bash', '-c', 'insmod .cache/build/$XTT_KERNEL_RELEASE/warn/xtt_warn.ko && echo inserted']);
    expect(r.stdout).toContain('inserted');
    expect(r.stderr).toContain('vm: FAIL: the guest kernel logged:');
    expect(r.stderr).toMatch(/WARNING: .*xtt_warn/);
    expect(r.status).not.toBe(0);
  });
});

describe('npm run vm limits', () => {
  const kernel = testKernels()[0] ?? '6.1';

  it('fails a guest that does not finish within XTT_VM_TIMEOUT', async () => {
    const r = await vm(kernel, ['sleep', '600'], { XTT_VM_TIMEOUT: '40' });
    expect(r.stderr).toContain('vm: FAIL: the guest did not finish within 40s');
    expect(r.status).not.toBe(0);
    expect(r.ms).toBeLessThan(60_000);
  });

  it('names the fix when the asked-for kernel is not cached', async () => {
    const r = await vm('9.99', ['true']);
    expect(r.stderr).toContain("no cached 9.99 kernel");
    expect(r.stderr).toContain("npm run setup");
    expect(r.status).toBe(4);
  });

  it('refuses to run without a command', async () => {
    const r = await vm(kernel, []);
    expect(r.stderr).toContain('usage: npm run vm -- CMD [ARGS...]');
    expect(r.status).toBe(2);
  });
});
