/**
 * Loading and unloading xt_traffic through the addon (finit_module, delete_module), with its
 * dependencies first, and errors that say what to do.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NativeSysError } from './binding.js';
import type { Deps } from '../core/deps.js';
import { ResourceError, RuntimeError, UsageError, VersionError, XtError } from '../core/errors.js';
import { readModinfo, type ModInfo } from './modinfo.js';
import { MODULE_NAME } from '../proc/names.js';

export interface ModuleState {
  loaded: boolean;
  version?: string | undefined;
  /** Users of the module: one per rule using the match (plus other holders). */
  refcnt?: number | undefined;
}

function readTrim(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function moduleState(deps: Deps, name = MODULE_NAME): ModuleState {
  const dir = join(deps.paths.sysModule, name);
  if (!existsSync(dir)) return { loaded: false };
  const refcnt = readTrim(join(dir, 'refcnt'));
  return { loaded: true, version: readTrim(join(dir, 'version')), refcnt: refcnt === undefined ? undefined : Number(refcnt) };
}

/** Lines of modules.dep of a release: module path -> its dependencies' paths (relative). */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const m = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const path = line.slice(0, colon);
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter((d) => d !== '');
    m.set(moduleNameOf(path), { path, deps });
  }
  return m;
}

/** "kernel/net/netfilter/x_tables.ko.xz" -> "x_tables" (dashes as underscores, as the kernel does). */
export function moduleNameOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, '').replaceAll('-', '_');
}

export interface ModuleFile {
  path: string;
  tried: string[];
}

/**
 * The xt_traffic.ko to load for `release`: --ko if given; in a source checkout the one
 * `xttraffic build` made (.cache/build/RELEASE/); else the installed one (modules.dep).
 */
export function findModuleFile(deps: Deps, release: string, explicit?: string): ModuleFile {
  const tried: string[] = [];
  const cands: string[] = [];
  if (explicit) cands.push(explicit);
  else {
    cands.push(join(deps.env['XTT_CACHE'] ?? join(deps.paths.root, '.cache'), 'build', release, `${MODULE_NAME}.ko`));
    const dep = readTrim(join(deps.paths.libModules, release, 'modules.dep'));
    const entry = dep ? parseModulesDep(dep).get(MODULE_NAME) : undefined;
    if (entry) cands.push(join(deps.paths.libModules, release, entry.path));
    for (const sub of ['updates', 'extra', 'updates/dkms']) cands.push(join(deps.paths.libModules, release, sub, `${MODULE_NAME}.ko`));
  }
  for (const p of cands) {
    if (tried.includes(p)) continue;
    tried.push(p);
    if (existsSync(p)) return { path: p, tried };
  }
  throw new ResourceError('ENOMODULEFILE', `no ${MODULE_NAME}.ko for kernel ${release}; looked in:\n${tried.map((t) => `  ${t}`).join('\n')}`, {
    hint: explicit ? 'check the --ko path' : 'build it with `xttraffic build` (or install it with `xttraffic install`)',
  });
}

/** KEY=VALUE parameters, checked against the module's declared parameters. */
export function moduleParams(params: string[], info: ModInfo): string {
  const known = new Set((info.fields.get('parmtype') ?? []).map((p) => p.slice(0, p.indexOf(':'))));
  const out: string[] = [];
  for (const p of params) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/.exec(p);
    if (!m) throw new UsageError(`--param ${p}: expected KEY=VALUE without spaces`);
    if (known.size > 0 && !known.has(m[1]!)) {
      throw new UsageError(`--param ${p}: ${MODULE_NAME} has no parameter ${m[1]}`, { hint: `its parameters: ${[...known].sort().join(', ')}` });
    }
    out.push(p);
  }
  return out.join(' ');
}

function sysErr(e: unknown): NativeSysError | undefined {
  return e instanceof Error && typeof (e as NativeSysError).code === 'string' ? (e as NativeSysError) : undefined;
}

/** A failed finit_module of `path` as a typed error. */
export function loadError(e: unknown, deps: Deps, name: string, path: string, info?: ModInfo): XtError {
  if (e instanceof XtError) return e;
  const s = sysErr(e);
  if (!s) return new RuntimeError('EUNKNOWN', String(e), { cause: e });
  const o = { cause: e, errno: s.errno, syscall: s.syscall, path } as const;
  const running = deps.kernelRelease();
  switch (s.code) {
    case 'EPERM':
    case 'EACCES':
      if (deps.getuid() !== 0) return new ResourceError('EPERM', `loading ${name} needs root (CAP_SYS_MODULE)`, { ...o, hint: 'run it as root: sudo xttraffic load' });
      return new ResourceError('EPERM', `the kernel refused to load ${name} (${s.message})`, { ...o, hint: 'module loading may be locked down (Secure Boot): sign the module or disable the lockdown' });
    case 'EEXIST':
      return new RuntimeError('EEXIST', `${name} is already loaded`, { ...o, hint: 'unload it first with `xttraffic unload` to load another build' });
    case 'ENOEXEC':
      return new VersionError('EVERSION', `${path} is not valid for the running kernel ${running}${info?.release ? ` (it was built for ${info.release})` : ''}`, { ...o, hint: 'rebuild it for this kernel with `xttraffic build`' });
    case 'ENOENT':
      if (s.syscall === 'open') return new ResourceError('ENOENT', `${path} does not exist`, o);
      return new VersionError('ESYMBOL', `${name} needs symbols the running kernel does not export (unknown symbol)`, { ...o, hint: 'its dependencies are missing, or it was built for another kernel: see dmesg, rebuild with `xttraffic build`' });
    case 'EINVAL':
      return new UsageError(`the kernel rejected ${name} or one of its parameters (${s.message})`, { ...o, hint: 'dmesg shows which parameter' });
    case 'EKEYREJECTED':
    case 'EBADMSG':
    case 'ENOKEY':
      return new ResourceError(s.code, `the kernel rejected the signature of ${path}`, { ...o, hint: 'sign the module with a key the kernel trusts, or use `xttraffic install --dkms` (DKMS signs with its MOK)' });
    case 'ENOSYS':
      return new ResourceError('ENOSYS', 'this kernel cannot load modules (finit_module is not available)', o);
    default:
      return new RuntimeError(s.code, `loading ${path} failed: ${s.message}`, o);
  }
}

function builtin(deps: Deps, release: string, name: string): boolean {
  const text = readTrim(join(deps.paths.libModules, release, 'modules.builtin'));
  return !!text && text.split('\n').some((l) => moduleNameOf(l) === name);
}

export interface LoadStep {
  module: string;
  via: 'finit_module' | 'modprobe' | 'already loaded' | 'built in';
  path?: string;
}

/** Loads a dependency (and its own, first) from the running kernel's modules.dep. */
async function loadDependency(deps: Deps, release: string, name: string, steps: LoadStep[], depth = 0): Promise<void> {
  if (depth > 16) throw new RuntimeError('ELOOP', `dependency loop at ${name}`);
  if (moduleState(deps, name).loaded) {
    steps.push({ module: name, via: 'already loaded' });
    return;
  }
  if (builtin(deps, release, name)) {
    steps.push({ module: name, via: 'built in' });
    return;
  }
  const dir = join(deps.paths.libModules, release);
  const text = readTrim(join(dir, 'modules.dep'));
  const entry = text ? parseModulesDep(text).get(name) : undefined;
  if (!entry) {
    throw new ResourceError('ENODEP', `${MODULE_NAME} needs ${name}, which is neither loaded nor in ${join(dir, 'modules.dep')}`, {
      hint: `install the kernel's modules (linux-image-${release}) or load ${name} first`,
    });
  }
  for (const d of entry.deps) await loadDependency(deps, release, moduleNameOf(d), steps, depth + 1);
  const path = join(dir, entry.path);
  if (/\.ko$/.test(path)) {
    try {
      await deps.binding().loadModule(path, '');
      steps.push({ module: name, via: 'finit_module', path });
      return;
    } catch (e) {
      if (sysErr(e)?.code === 'EEXIST') {
        steps.push({ module: name, via: 'already loaded' });
        return;
      }
      throw loadError(e, deps, name, path);
    }
  }
  // Compressed (.ko.xz, .ko.zst): kmod decompresses.
  const r = await deps.run('modprobe', [name]);
  if (r.code !== 0) {
    throw new ResourceError('EMODPROBE', `modprobe ${name} failed: ${r.stderr.trim() || `exit ${r.code}`}`, {
      hint: r.notFound ? 'install kmod (apt install kmod)' : `load ${name} by hand, then retry`,
    });
  }
  steps.push({ module: name, via: 'modprobe', path });
}

export interface LoadResult {
  path: string;
  info: ModInfo;
  params: string;
  steps: LoadStep[];
}

export async function loadModule(deps: Deps, opts: { params: string[]; ko?: string | undefined }): Promise<LoadResult> {
  const binding = deps.binding(); // fail early and clearly without the addon
  const release = deps.kernelRelease();
  const st = moduleState(deps);
  if (st.loaded) {
    throw new RuntimeError('EEXIST', `${MODULE_NAME} is already loaded${st.version ? ` (version ${st.version})` : ''}`, {
      hint: 'unload it first with `xttraffic unload` to load another build',
    });
  }
  const { path } = findModuleFile(deps, release, opts.ko);
  let info: ModInfo;
  try {
    info = readModinfo(await readFile(path));
  } catch (e) {
    if (e instanceof XtError) throw e;
    throw new ResourceError((e as NodeJS.ErrnoException).code ?? 'EIO', `cannot read ${path}: ${(e as Error).message}`);
  }
  if (info.release !== undefined && info.release !== release) {
    throw new VersionError('EVERSION', `${path} was built for kernel ${info.release}, but the running kernel is ${release}`, {
      hint: 'rebuild it for this kernel with `xttraffic build` (needs linux-headers-' + release + ')',
      path,
    });
  }
  const params = moduleParams(opts.params, info);
  if (deps.getuid() !== 0) {
    throw new ResourceError('EPERM', `loading ${MODULE_NAME} needs root (CAP_SYS_MODULE)`, { hint: 'run it as root: sudo xttraffic load' });
  }
  const steps: LoadStep[] = [];
  for (const d of info.depends) await loadDependency(deps, release, d, steps);
  try {
    await binding.loadModule(path, params);
  } catch (e) {
    throw loadError(e, deps, MODULE_NAME, path, info);
  }
  steps.push({ module: MODULE_NAME, via: 'finit_module', path });
  return { path, info, params, steps };
}

function inUse(n: number | undefined, o: { cause?: unknown; errno?: number; syscall?: string } = {}): ResourceError {
  const what = !n ? 'in use' : `in use by ${n} rule${n === 1 ? '' : 's'}`;
  return new ResourceError('EBUSY', `${MODULE_NAME} is ${what}`, {
    ...o,
    hint: 'delete them first: `xttraffic rule list` shows them, `xttraffic rule del --name NAME` removes them (in every network namespace)',
  });
}

export async function unloadModule(deps: Deps): Promise<void> {
  const binding = deps.binding();
  const st = moduleState(deps);
  if (!st.loaded) throw new RuntimeError('ENOTLOADED', `${MODULE_NAME} is not loaded`);
  if (st.refcnt !== undefined && st.refcnt > 0) throw inUse(st.refcnt);
  if (deps.getuid() !== 0) throw new ResourceError('EPERM', `unloading ${MODULE_NAME} needs root (CAP_SYS_MODULE)`, { hint: 'run it as root: sudo xttraffic unload' });
  try {
    await binding.unloadModule(MODULE_NAME);
  } catch (e) {
    const s = sysErr(e);
    const o = s ? { cause: e, errno: s.errno, syscall: s.syscall } : { cause: e };
    switch (s?.code) {
      case 'EAGAIN':
      case 'EWOULDBLOCK':
      case 'EBUSY':
        throw inUse(moduleState(deps).refcnt, o);
      case 'ENOENT':
        throw new RuntimeError('ENOTLOADED', `${MODULE_NAME} is not loaded`, o);
      case 'EPERM':
      case 'EACCES':
        throw new ResourceError('EPERM', `unloading ${MODULE_NAME} needs root (CAP_SYS_MODULE)`, { ...o, hint: 'run it as root: sudo xttraffic unload' });
      default:
        throw new RuntimeError(s?.code ?? 'EUNKNOWN', `unloading ${MODULE_NAME} failed: ${String((e as Error).message)}`, o);
    }
  }
}
