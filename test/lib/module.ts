import { existsSync, readFileSync } from 'node:fs';
import { REPO, run, sh } from './sh.js';

/**
 * The xt_traffic.ko built for the running kernel by scripts/build.sh, or the one named by
 * XTT_MODULE_KO (scripts/fail-without-fix.sh: a pre-fix module built from git history).
 */
export function modulePath(): string {
  if (process.env.XTT_MODULE_KO) return process.env.XTT_MODULE_KO;
  const rel = process.env.XTT_KERNEL_RELEASE ?? sh('uname', ['-r']).trim();
  return `${REPO}/.cache/build/${rel}/xt_traffic.ko`;
}

export function moduleLoaded(): boolean {
  return existsSync('/sys/module/xt_traffic');
}

/** Loads the module (and its dependencies) unless it is loaded already. */
export function loadModule(params: string[] = []): void {
  if (moduleLoaded()) return;
  const ko = modulePath();
  const depends = sh('modinfo', ['-F', 'depends', ko]).trim();
  for (const dep of depends.split(',').filter(Boolean)) sh('modprobe', [dep]);
  sh('insmod', [ko, ...params]);
}

/** Unloads the module; returns false (with rmmod's message) when it is in use. */
export function unloadModule(): { ok: boolean; message: string } {
  if (!moduleLoaded()) return { ok: true, message: '' };
  const r = run('rmmod', ['xt_traffic']);
  return { ok: r.status === 0, message: r.stderr.trim() };
}

/** Reference count of the module (one per rule using it). */
export function moduleRefcnt(): number {
  return Number(readFileSync('/sys/module/xt_traffic/refcnt', 'utf8').trim());
}

/**
 * Unloads the module once no rule uses it. A deleted network namespace is torn down
 * asynchronously (its rules, and their module references, go a little later), so
 * this waits up to `timeoutMs` for the reference count to drop to 0.
 */
export async function unloadModuleWhenFree(timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (moduleLoaded()) {
    const r = unloadModule();
    if (r.ok) return;
    if (Date.now() > end) throw new Error(`xt_traffic still in use after ${timeoutMs} ms: ${r.message}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
