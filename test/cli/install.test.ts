import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Fake, RELEASE } from './fakes.js';

let f: Fake;
let headers: string;
beforeEach(() => {
  f = new Fake();
  headers = join(f.libModules, RELEASE, 'build');
  f.write(join(headers, 'Makefile'), '');
  f.write(join(headers, 'include/generated/utsrelease.h'), `#define UTS_RELEASE "${RELEASE}"\n`);
  for (const t of ['make', 'gcc', 'g++', 'python3', 'node', 'depmod', 'dkms', 'modprobe']) f.handlers.set(t, () => ({}));
  f.handlers.set('pkg-config', (a) => (a[0] === '--variable=xtlibdir' ? { stdout: `${f.xtlibdir}\n` } : {}));
});
afterEach(() => f.cleanup());

describe('xttraffic build', () => {
  it('builds module, extension and addon with make and node-gyp; --json summary', async () => {
    expect(await f.run('build', '--json')).toBe(0);
    expect(f.runsOf('make')).toEqual([
      ['--version'],
      ['-C', join(f.root, 'kernel'), `BUILD_DIR=${f.root}/.cache/build/${RELEASE}`, `KDIR=${headers}`, 'module'],
      ['-C', join(f.root, 'libxt')],
    ]);
    expect(f.calls.find((c) => c.cmd === process.execPath)!.args).toEqual([join(f.root, 'scripts/build-native.mjs'), '--strict']);
    expect(f.json()).toEqual({
      release: RELEASE, headers,
      module: `${f.root}/.cache/build/${RELEASE}/xt_traffic.ko`,
      extension: `${f.root}/libxt/libxt_traffic.so`,
      addon: `${f.root}/build/Release/xttraffic.node`,
    });
    expect(f.stderr).toBe('');
  });

  it('shows progress on a terminal only', async () => {
    f.tty = true;
    f.handlers.set('make', (a, o) => {
      o.tee?.write(`make ${a[0]}\n`);
      return {};
    });
    expect(await f.run('build', '--kernel-headers', headers)).toBe(0);
    expect(f.stderr).toBe(`[1/3] kernel module for ${RELEASE}\nmake -C\n[2/3] iptables extension libxt_traffic.so\nmake -C\n[3/3] native addon\n`);
    expect(f.stdout).toBe(`built for ${RELEASE}:\n  ${f.root}/.cache/build/${RELEASE}/xt_traffic.ko\n  ${f.root}/libxt/libxt_traffic.so\n  ${f.root}/build/Release/xttraffic.node\n`);
  });

  it('missing headers or tools: one error naming the Debian package (exit 4)', async () => {
    expect(await f.run('build', '--kernel-headers', '/usr/src/linux-headers-6.12.117+deb12-amd64-nope')).toBe(4);
    expect(f.stderr).toBe('xttraffic: no kernel headers in /usr/src/linux-headers-6.12.117+deb12-amd64-nope\nhint: install them: apt install linux-headers-6.12.117+deb12-amd64-nope\n');
    f.release = '6.12.117+deb12-amd64';
    expect(await f.run('build', '--json')).toBe(4);
    expect(f.errorJson().error).toMatchObject({ code: 'ENOHEADERS', hint: 'install them: apt install linux-headers-6.12.117+deb12-amd64' });
    f.release = RELEASE;
    f.handlers.set('make', () => undefined);
    expect(await f.run('build')).toBe(4);
    expect(f.stderr).toBe('xttraffic: make not found\nhint: install it: apt install make\n');
    f.handlers.set('make', () => ({}));
    f.handlers.set('pkg-config', () => ({ code: 1 }));
    expect(await f.run('build')).toBe(4);
    expect(f.stderr).toBe('xttraffic: the xtables development files are missing (pkg-config xtables)\nhint: install them: apt install libxtables-dev\n');
    f.handlers.set('pkg-config', () => ({}));
    f.handlers.set('g++', () => undefined);
    expect(await f.run('build')).toBe(4);
    expect(f.stderr).toBe('xttraffic: g++ not found\nhint: install it: apt install g++\n');
  });

  it('a failing compile is exit 1 with the end of its output', async () => {
    f.handlers.set('make', (a) => (a.includes('module') ? { code: 2, stderr: 'xt_traffic.c:1:1: error: boom\nmake: *** [Makefile] Error 1\n' } : {}));
    expect(await f.run('build')).toBe(1);
    expect(f.stderr).toBe('xttraffic: building the kernel module failed (exit 2):\nxt_traffic.c:1:1: error: boom\nmake: *** [Makefile] Error 1\nhint: the output above says why\n');
  });
});

describe('xttraffic install / uninstall', () => {
  beforeEach(() => {
    f.write(join(f.root, '.cache/build', RELEASE, 'xt_traffic.ko'), 'KO');
    f.write(join(f.root, 'libxt/libxt_traffic.so'), 'SO');
    f.write(join(f.root, 'kernel/xt_traffic.c'), 'C');
    f.write(join(f.root, 'kernel/xt_traffic.o'), 'O');
    f.write(join(f.root, 'kernel/include/uapi/linux/netfilter/xt_traffic.h'), 'H');
    f.write(join(f.root, 'kernel/dkms.conf'), 'PACKAGE_NAME="xt_traffic"\nPACKAGE_VERSION="9.9.9"\nAUTOINSTALL="yes"\n');
  });

  it('installs the module under updates/ with depmod, and the extension into xtlibdir', async () => {
    expect(await f.run('install', '--json')).toBe(0);
    const ko = join(f.libModules, RELEASE, 'updates/xt_traffic.ko');
    expect(readFileSync(ko, 'utf8')).toBe('KO');
    expect(readFileSync(join(f.xtlibdir, 'libxt_traffic.so'), 'utf8')).toBe('SO');
    expect(f.runsOf('depmod')).toEqual([['-a', RELEASE]]);
    expect(f.json()).toEqual({ release: RELEASE, module: { path: ko, dkms: false }, extension: { path: join(f.xtlibdir, 'libxt_traffic.so') } });

    expect(await f.run('uninstall')).toBe(0);
    expect(existsSync(ko)).toBe(false);
    expect(existsSync(join(f.xtlibdir, 'libxt_traffic.so'))).toBe(false);
    expect(f.runsOf('depmod')).toEqual([['-a', RELEASE], ['-a', RELEASE]]);
    expect(f.stdout).toBe(`removed:\n  ${ko}\n  ${join(f.xtlibdir, 'libxt_traffic.so')}\n`);
    expect(await f.run('uninstall')).toBe(0);
    expect(f.stdout).toBe('nothing was installed\n');
  });

  it('--dkms: source tree with dkms.conf of this version, dkms add + install; uninstall removes it', async () => {
    let added = false;
    f.handlers.set('dkms', (a) => {
      if (a[0] === 'add') added = true;
      if (a[0] === 'status') return { stdout: added ? 'xt_traffic/0.1.0, 6.1.0-56-amd64, x86_64: installed\n' : '' };
      return {};
    });
    expect(await f.run('install', '--dkms')).toBe(0);
    const tree = join(f.usrSrc, 'xt_traffic-0.1.0');
    expect(readFileSync(join(tree, 'dkms.conf'), 'utf8')).toBe('PACKAGE_NAME="xt_traffic"\nPACKAGE_VERSION="0.1.0"\nAUTOINSTALL="yes"\n');
    expect(existsSync(join(tree, 'xt_traffic.c'))).toBe(true);
    expect(existsSync(join(tree, 'include/uapi/linux/netfilter/xt_traffic.h'))).toBe(true);
    expect(existsSync(join(tree, 'xt_traffic.o'))).toBe(false);
    expect(f.runsOf('dkms')).toEqual([
      ['status', '-m', 'xt_traffic', '-v', '0.1.0'],
      ['add', '-m', 'xt_traffic', '-v', '0.1.0'],
      ['install', '-m', 'xt_traffic', '-v', '0.1.0', '-k', RELEASE],
    ]);
    expect(f.stdout).toBe(`installed for ${RELEASE}:\n  module: DKMS 0.1.0 (${tree})\n  extension: ${join(f.xtlibdir, 'libxt_traffic.so')}\n`);
    expect(f.runsOf('depmod')).toEqual([]);

    expect(await f.run('uninstall', '--json')).toBe(0);
    expect(f.runsOf('dkms').slice(3)).toEqual([['status', '-m', 'xt_traffic'], ['remove', '-m', 'xt_traffic', '-v', '0.1.0', '--all']]);
    expect(existsSync(tree)).toBe(false);
    expect(f.json()).toEqual({ removed: [tree, 'dkms xt_traffic/0.1.0', join(f.xtlibdir, 'libxt_traffic.so')], dkmsVersions: ['0.1.0'], stillLoaded: false });
  });

  it('errors: not root (4), nothing built (4), dkms missing names the package (4)', async () => {
    f.uid = 1000;
    expect(await f.run('install')).toBe(4);
    expect(f.stderr).toBe('xttraffic: install needs root\nhint: run it as root: sudo xttraffic install\n');
    expect(await f.run('uninstall')).toBe(4);
    f.uid = 0;
    f.handlers.set('dkms', () => undefined);
    expect(await f.run('install', '--dkms')).toBe(4);
    expect(f.stderr).toBe('xttraffic: dkms not found\nhint: install it: apt install dkms\n');
    f.cleanup();
    mkdirSync(f.root, { recursive: true });
    expect(await f.run('install', '--json')).toBe(4);
    expect(f.errorJson().error).toMatchObject({ code: 'ENOBUILD', hint: 'build it first: xttraffic build' });
  });

  it('uninstall fails (exit 1, nothing removed) when `dkms status` fails, instead of leaving the DKMS module behind', async () => {
    f.write(join(f.libModules, RELEASE, 'updates/xt_traffic.ko'), 'KO');
    f.write(join(f.xtlibdir, 'libxt_traffic.so'), 'SO');
    f.handlers.set('dkms', (a) =>
      a[0] === 'status' ? { code: 1, stdout: 'xt_traffic/0.1.0, 6.1.0-56-amd64, x86_64: installed\n', stderr: '/usr/sbin/dkms: line 1724: /dev/fd/63: No such file or directory\n' } : {},
    );
    expect(await f.run('uninstall', '--json')).toBe(1);
    expect(f.errorJson().error).toMatchObject({ code: 'EDKMS', hint: 'nothing was removed; fix dkms, then run uninstall again' });
    expect(f.errorJson().error.message).toContain('/dev/fd/63: No such file or directory');
    expect(f.runsOf('dkms')).toEqual([['status', '-m', 'xt_traffic']]);
    expect(existsSync(join(f.libModules, RELEASE, 'updates/xt_traffic.ko'))).toBe(true);
    expect(existsSync(join(f.xtlibdir, 'libxt_traffic.so'))).toBe(true);
  });

  it('uninstall mentions a module that is still loaded', async () => {
    f.loaded('xt_traffic');
    expect(await f.run('uninstall')).toBe(0);
    expect(f.stdout).toBe('nothing was installed\nnote: xt_traffic is still loaded; `xttraffic unload` removes it from the running kernel\n');
  });
});
