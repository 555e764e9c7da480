/**
 * Finding iptables, its backend and the xtables extension directory.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Deps } from './deps.js';
import { ResourceError, UsageError } from './errors.js';

export type Backend = 'nft' | 'legacy';

export function checkBackend(b: string | undefined): Backend | undefined {
  if (b === undefined) return undefined;
  if (b !== 'nft' && b !== 'legacy') throw new UsageError(`--backend ${b}: must be nft or legacy`);
  return b;
}

export function iptablesCmd(backend?: Backend): string {
  return backend ? `iptables-${backend}` : 'iptables';
}

export function iptablesSaveCmd(backend?: Backend): string {
  return backend ? `iptables-${backend}-save` : 'iptables-save';
}

/** The system's xtables directory: pkg-config's answer, else the first known one that exists. */
export async function systemXtlibdir(deps: Deps): Promise<string | undefined> {
  const r = await deps.run('pkg-config', ['--variable=xtlibdir', 'xtables']);
  const dir = r.code === 0 ? r.stdout.trim() : '';
  if (dir !== '') return dir;
  return deps.paths.xtlibdirs.find((d) => existsSync(d));
}

/** True when running from a source checkout that has built the extension. */
export function checkoutExtension(deps: Deps): string | undefined {
  const so = join(deps.paths.root, 'libxt', 'libxt_traffic.so');
  return existsSync(join(deps.paths.root, '.git')) && existsSync(so) ? so : undefined;
}

/**
 * Environment for running iptables: from a source checkout with a built extension, its
 * libxt/ comes first in XTABLES_LIBDIR (then the system's directory, for the other extensions);
 * otherwise the installed extension is used as is. A XTABLES_LIBDIR already set is kept.
 */
export async function iptablesEnv(deps: Deps): Promise<NodeJS.ProcessEnv> {
  if (deps.env['XTABLES_LIBDIR']) return deps.env;
  const so = checkoutExtension(deps);
  if (!so) return deps.env;
  const sys = await systemXtlibdir(deps);
  return { ...deps.env, XTABLES_LIBDIR: [join(deps.paths.root, 'libxt'), ...(sys ? [sys] : [])].join(':') };
}

/** Runs iptables (or -save) and turns a missing binary into a clear error. */
export async function runIptables(deps: Deps, cmd: string, args: string[]) {
  const r = await deps.run(cmd, args, { env: await iptablesEnv(deps) });
  if (r.notFound) {
    throw new ResourceError('ENOIPTABLES', `${cmd} not found`, { hint: 'install it: apt install iptables' });
  }
  return r;
}

/** "nft" or "legacy" from `iptables -V` ("iptables v1.8.9 (nf_tables)"); undefined if unknown. */
export function parseBackend(versionOutput: string): Backend | undefined {
  if (/\(nf_tables\)/.test(versionOutput)) return 'nft';
  if (/\(legacy\)/.test(versionOutput)) return 'legacy';
  return undefined;
}
