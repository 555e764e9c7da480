/**
 * Building (module, extension, addon) and installing (module with depmod or DKMS, extension
 * into the xtables directory). Every missing tool or header names the Debian package to install.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Deps, Out, RunResult } from '../core/deps.js';
import { ResourceError, RuntimeError } from '../core/errors.js';
import { MODULE_NAME } from '../proc/names.js';
import { installPersist, uninstallPersist, type PersistInstallResult } from './persist.js';
import { systemXtlibdir } from './xtables.js';

export const DKMS_NAME = MODULE_NAME;

/** The kernel release a headers tree is for (include/generated/utsrelease.h). */
export function headersRelease(dir: string): string | undefined {
  try {
    return /UTS_RELEASE\s+"([^"]+)"/.exec(readFileSync(join(dir, 'include', 'generated', 'utsrelease.h'), 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

function tail(r: RunResult, n = 15): string {
  return `${r.stdout}${r.stderr}`.trimEnd().split('\n').slice(-n).join('\n');
}

/** Fails with the Debian package to install when `cmd` is not there. */
async function requireTool(deps: Deps, cmd: string, pkg: string, args = ['--version']): Promise<void> {
  const r = await deps.run(cmd, args);
  if (r.notFound) throw new ResourceError('ENOTOOL', `${cmd} not found`, { hint: `install it: apt install ${pkg}` });
}

export function cacheDir(deps: Deps): string {
  return deps.env['XTT_CACHE'] ?? join(deps.paths.root, '.cache');
}

export interface BuildResult {
  release: string;
  headers: string;
  module: string;
  extension: string;
  addon: string;
}

export async function build(deps: Deps, o: { kernelHeaders?: string | undefined }, progress: Out | undefined): Promise<BuildResult> {
  const running = deps.kernelRelease();
  const headers = o.kernelHeaders ?? join(deps.paths.libModules, running, 'build');
  if (!existsSync(join(headers, 'Makefile'))) {
    const rel = o.kernelHeaders ? basename(o.kernelHeaders).replace(/^linux-headers-/, '') : running;
    throw new ResourceError('ENOHEADERS', `no kernel headers in ${headers}`, { hint: `install them: apt install linux-headers-${rel}` });
  }
  const release = headersRelease(headers) ?? running;
  await requireTool(deps, 'make', 'make');
  await requireTool(deps, 'gcc', 'gcc');
  const root = deps.paths.root;
  const step = (n: number, what: string) => progress?.write(`[${n}/3] ${what}\n`);
  const fail = (what: string, r: RunResult) =>
    new RuntimeError('EBUILD', `${what} failed (exit ${r.code})${progress ? '' : `:\n${tail(r)}`}`, { hint: 'the output above says why' });

  // 1. the kernel module
  const buildDir = join(cacheDir(deps), 'build', release);
  step(1, `kernel module for ${release}`);
  let r = await deps.run('make', ['-C', join(root, 'kernel'), `BUILD_DIR=${buildDir}`, `KDIR=${headers}`, 'module'], { tee: progress });
  if (r.code !== 0) throw fail('building the kernel module', r);

  // 2. the iptables extension
  step(2, 'iptables extension libxt_traffic.so');
  const pc = await deps.run('pkg-config', ['--exists', 'xtables']);
  if (pc.notFound) throw new ResourceError('ENOTOOL', 'pkg-config not found', { hint: 'install it: apt install pkg-config' });
  if (pc.code !== 0) throw new ResourceError('ENOXTABLES', 'the xtables development files are missing (pkg-config xtables)', { hint: 'install them: apt install libxtables-dev' });
  r = await deps.run('make', ['-C', join(root, 'libxt')], { tee: progress });
  if (r.code !== 0) throw fail('building the iptables extension', r);

  // 3. the N-API addon
  step(3, 'native addon');
  await requireTool(deps, 'g++', 'g++');
  await requireTool(deps, 'python3', 'python3');
  r = await deps.run(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--strict'], { tee: progress });
  if (r.code !== 0) throw fail('building the native addon', r);

  return {
    release,
    headers,
    module: join(buildDir, `${MODULE_NAME}.ko`),
    extension: join(root, 'libxt', 'libxt_traffic.so'),
    addon: join(root, 'build', 'Release', 'xttraffic.node'),
  };
}

function requireRoot(deps: Deps, what: string): void {
  if (deps.getuid() !== 0) throw new ResourceError('EPERM', `${what} needs root`, { hint: `run it as root: sudo xttraffic ${what}` });
}

async function xtlibdir(deps: Deps): Promise<string> {
  const dir = await systemXtlibdir(deps);
  if (!dir) throw new ResourceError('ENOXTLIBDIR', 'cannot find the xtables extension directory', { hint: 'install iptables (apt install iptables libxtables-dev)' });
  return dir;
}

async function depmod(deps: Deps, release: string): Promise<void> {
  const r = await deps.run('depmod', ['-a', release]);
  if (r.notFound) throw new ResourceError('ENOTOOL', 'depmod not found', { hint: 'install it: apt install kmod' });
  if (r.code !== 0) throw new RuntimeError('EDEPMOD', `depmod -a ${release} failed: ${tail(r, 5)}`);
}

async function dkms(deps: Deps, args: string[]): Promise<RunResult> {
  const r = await deps.run('dkms', args);
  if (r.notFound) throw new ResourceError('ENOTOOL', 'dkms not found', { hint: 'install it: apt install dkms' });
  return r;
}

export interface InstallResult {
  release: string;
  module: { path: string; dkms: boolean; version?: string };
  extension: { path: string };
  /** With --persist: the boot files (modules-load.d, systemd units) written. */
  persist?: PersistInstallResult;
}

/** The DKMS source tree: the module's sources plus dkms.conf with this version. */
export function writeDkmsTree(deps: Deps, version: string): string {
  const src = join(deps.paths.root, 'kernel');
  const dest = join(deps.paths.usrSrc, `${DKMS_NAME}-${version}`);
  rmSync(dest, { recursive: true, force: true });
  cpSync(src, dest, {
    recursive: true,
    filter: (p) => !/(\.o|\.ko|\.mod|\.mod\.c|\.cmd|Module\.symvers|modules\.order)$/.test(p) && !basename(p).startsWith('.'),
  });
  const conf = readFileSync(join(src, 'dkms.conf'), 'utf8').replace(/^PACKAGE_VERSION=.*$/m, `PACKAGE_VERSION="${version}"`);
  writeFileSync(join(dest, 'dkms.conf'), conf);
  return dest;
}

export async function install(deps: Deps, o: { dkms?: boolean | undefined; persist?: boolean | undefined; version: string }): Promise<InstallResult> {
  requireRoot(deps, 'install');
  const release = deps.kernelRelease();
  const so = join(deps.paths.root, 'libxt', 'libxt_traffic.so');
  if (!existsSync(so)) throw new ResourceError('ENOBUILD', `${so} is not built`, { hint: 'build it first: xttraffic build' });
  let module: InstallResult['module'];
  if (o.dkms) {
    const tree = writeDkmsTree(deps, o.version);
    const st = await dkms(deps, ['status', '-m', DKMS_NAME, '-v', o.version]);
    if (st.stdout.trim() === '') {
      const r = await dkms(deps, ['add', '-m', DKMS_NAME, '-v', o.version]);
      if (r.code !== 0) throw new RuntimeError('EDKMS', `dkms add failed: ${tail(r, 8)}`);
    }
    const r = await dkms(deps, ['install', '-m', DKMS_NAME, '-v', o.version, '-k', release]);
    if (r.code !== 0 && !/already installed/i.test(`${r.stdout}${r.stderr}`)) {
      throw new RuntimeError('EDKMS', `dkms install failed: ${tail(r, 12)}`, { hint: `the build log is under /var/lib/dkms/${DKMS_NAME}/${o.version}/` });
    }
    module = { path: tree, dkms: true, version: o.version };
  } else {
    const ko = join(cacheDir(deps), 'build', release, `${MODULE_NAME}.ko`);
    if (!existsSync(ko)) throw new ResourceError('ENOBUILD', `${ko} is not built`, { hint: 'build it first: xttraffic build' });
    const dir = join(deps.paths.libModules, release, 'updates');
    mkdirSync(dir, { recursive: true });
    const dest = join(dir, `${MODULE_NAME}.ko`);
    cpSync(ko, dest);
    await depmod(deps, release);
    module = { path: dest, dkms: false };
  }
  const dest = join(await xtlibdir(deps), 'libxt_traffic.so');
  cpSync(so, dest);
  if (!o.persist) return { release, module, extension: { path: dest } };
  return { release, module, extension: { path: dest }, persist: await installPersist(deps) };
}

export interface UninstallResult {
  removed: string[];
  dkmsVersions: string[];
}

export async function uninstall(deps: Deps): Promise<UninstallResult> {
  requireRoot(deps, 'uninstall');
  const release = deps.kernelRelease();
  const removed: string[] = [];
  const dkmsVersions: string[] = [];
  const st = await deps.run('dkms', ['status', '-m', DKMS_NAME]);
  // A failing `dkms status` must not pass for "nothing registered": uninstall would then
  // report success and leave the DKMS module to be rebuilt and loaded at the next boot.
  if (!st.notFound && st.code !== 0) {
    throw new RuntimeError('EDKMS', `dkms status -m ${DKMS_NAME} failed (exit ${st.code}): ${tail(st, 8)}`, { hint: 'nothing was removed; fix dkms, then run uninstall again' });
  }
  if (!st.notFound) {
    for (const line of st.stdout.split('\n')) {
      const m = new RegExp(`^${DKMS_NAME}[/,]\\s*([^,:\\s]+)`).exec(line.trim());
      if (m && !dkmsVersions.includes(m[1]!)) dkmsVersions.push(m[1]!);
    }
    for (const v of dkmsVersions) {
      const r = await deps.run('dkms', ['remove', '-m', DKMS_NAME, '-v', v, '--all']);
      if (r.code !== 0) throw new RuntimeError('EDKMS', `dkms remove ${DKMS_NAME}/${v} failed: ${tail(r, 8)}`);
      const tree = join(deps.paths.usrSrc, `${DKMS_NAME}-${v}`);
      if (existsSync(tree)) {
        rmSync(tree, { recursive: true, force: true });
        removed.push(tree);
      }
      removed.push(`dkms ${DKMS_NAME}/${v}`);
    }
  }
  const ko = join(deps.paths.libModules, release, 'updates', `${MODULE_NAME}.ko`);
  if (existsSync(ko)) {
    rmSync(ko);
    removed.push(ko);
    await depmod(deps, release);
  }
  const dir = await systemXtlibdir(deps);
  const so = dir ? join(dir, 'libxt_traffic.so') : undefined;
  if (so && existsSync(so)) {
    rmSync(so);
    removed.push(so);
  }
  // boot persistence: only the files xttraffic wrote (their first line says so)
  removed.push(...(await uninstallPersist(deps)));
  return { removed, dkmsVersions };
}
