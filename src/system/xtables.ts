/**
 * Finding iptables, its backend and the xtables extension directory.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Deps, RunResult } from '../core/deps.js';
import { ResourceError, RuntimeError, UsageError, VersionError, type XtError } from '../core/errors.js';
import { moduleState } from './module.js';

export type Backend = 'nft' | 'legacy';

export function checkBackend(b: string | undefined): Backend | undefined {
  if (b === undefined) return undefined;
  if (b !== 'nft' && b !== 'legacy') throw new UsageError(`--backend ${b}: must be nft or legacy`);
  return b;
}

/** iptables (IPv4) or ip6tables (IPv6), of the backend when one is given: ip6tables-legacy. */
export function iptablesCmd(backend?: Backend, family: 'ipv4' | 'ipv6' = 'ipv4'): string {
  const t = family === 'ipv6' ? 'ip6tables' : 'iptables';
  return backend ? `${t}-${backend}` : t;
}

export function iptablesSaveCmd(backend?: Backend, family: 'ipv4' | 'ipv6' = 'ipv4'): string {
  const t = family === 'ipv6' ? 'ip6tables' : 'iptables';
  return backend ? `${t}-${backend}-save` : `${t}-save`;
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

/** iptables' closing advice after a usage error ("Try `iptables -h' or 'iptables --help' ..."). */
const TRY_HELP = /^Try `\S+ -h' or '\S+ --help' for more information\.?$/;

/**
 * What a failed iptables run says: its stderr (else stdout) without blank lines and without the
 * closing "Try `iptables -h' ..." advice, every other line kept (joined with "; "), else "exit N".
 * iptables prints the real error first, e.g. "iptables v1.8.9 (nf_tables): Couldn't load match
 * `traffic':No such file or directory", then a blank line and the advice.
 */
export function iptablesMessage(r: Pick<RunResult, 'code' | 'stdout' | 'stderr'>): string {
  const lines = (text: string) => text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !TRY_HELP.test(l));
  const real = lines(r.stderr);
  const out = real.length > 0 ? real : lines(r.stdout);
  return out.length > 0 ? out.join('; ') : `exit ${r.code}`;
}

/** An iptables failure as a typed error with a hint. */
export function iptablesError(deps: Deps, cmd: string, args: string[], r: RunResult, op: 'add' | 'del' | 'list' | 'chain'): XtError {
  const msg = iptablesMessage(r);
  const what = `${cmd} ${args.join(' ')}: ${msg}`;
  if (/Permission denied|must be root|Operation not permitted/i.test(msg)) {
    return new ResourceError('EPERM', what, { hint: 'run it as root (sudo)' });
  }
  const v6 = /^ip6tables/.test(cmd.replace(/^.*\//, ''));
  // The extension loaded but the kernel has no revision of the match for this family (measured
  // with a revision-0 module: ip6tables warns so, then "Couldn't load match"); iptables with
  // such a module picks revision 0, which has no --hostprefix.
  const noKernelMatch = /Extension traffic is not supported, missing kernel module\?/.test(r.stderr);
  const rev0Only = /unknown option "--hostprefix"/.test(r.stderr);
  if ((noKernelMatch || rev0Only) && op === 'add' && moduleState(deps).loaded) {
    return new ResourceError('ENOMODULE', what, {
      hint: `the loaded xt_traffic predates IPv6 and --hostprefix (match revision 1): load a newer one${rev0Only ? ' (or libxt_traffic.so predates it: `xttraffic install`)' : ''}`,
    });
  }
  if (noKernelMatch && op === 'add') {
    return new ResourceError('ENOMODULE', what, { hint: 'the xt_traffic module is not loaded: `sudo xttraffic load`' });
  }
  if (/Couldn't load match [`']traffic'|unknown option "--(traffic|netbase|name|hostprefix)"/.test(r.stderr)) {
    return new ResourceError('ENOEXTENSION', what, {
      hint: `${v6 ? 'ip6tables' : 'iptables'} cannot find libxt_traffic.so${v6 || /--hostprefix/.test(r.stderr) ? ' (or it predates IPv6 and --hostprefix: match revision 1)' : ''}: \`xttraffic install\` puts it in the xtables directory (or set XTABLES_LIBDIR)`,
    });
  }
  if (/Extension traffic revision \d+ not supported|missing kernel module|No chain\/target\/match by that name/.test(msg)) {
    if (op === 'add' && /revision [1-9]\d* not supported/.test(msg) && moduleState(deps).loaded) {
      return new ResourceError('ENOMODULE', what, { hint: 'the loaded xt_traffic predates IPv6 and --hostprefix (match revision 1): load a newer one' });
    }
    if (op === 'add' && !moduleState(deps).loaded) {
      return new ResourceError('ENOMODULE', what, { hint: 'the xt_traffic module is not loaded: `sudo xttraffic load`' });
    }
    if (op === 'add') return new ResourceError('ENOCHAIN', what, { hint: 'does the chain exist? --create-chain creates it' });
  }
  if (op === 'del' && /Bad rule|does a matching rule exist|No chain\/target\/match/.test(msg)) {
    return new ResourceError('ENORULE', what, { hint: '`xttraffic rule list` shows the rules' });
  }
  if (/Invalid argument/.test(msg)) {
    return new UsageError(what, { hint: 'the kernel rejected the rule: `dmesg | grep xt_traffic` says why' });
  }
  if (r.code === 2) return new UsageError(what);
  if (r.code === 3) return new VersionError('EIPTABLES', what);
  if (r.code === 4) return new ResourceError('EIPTABLES', what);
  return new RuntimeError('EIPTABLES', what);
}
