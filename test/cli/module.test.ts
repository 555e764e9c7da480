import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Fake, RELEASE, fakeKo } from './fakes.js';

let f: Fake;
let ko: string;
const KO_FIELDS = {
  version: '0.1.0',
  license: 'GPL',
  parmtype: ['proc_gid:uint', 'proc_uid:uint', 'proc_perms:uint', 'flow_timeout:uint', 'max_entries:uint'],
  depends: 'x_tables',
  name: 'xt_traffic',
  vermagic: `${RELEASE} SMP preempt mod_unload modversions `,
};

beforeEach(() => {
  f = new Fake();
  ko = f.write(join(f.root, '.cache/build', RELEASE, 'xt_traffic.ko'), fakeKo(KO_FIELDS));
  const mods = join(f.libModules, RELEASE);
  f.write(join(mods, 'modules.dep'), 'kernel/net/netfilter/x_tables.ko: kernel/net/foo_core.ko\nkernel/net/foo_core.ko:\nkernel/net/ipv4/netfilter/ip_tables.ko: kernel/net/netfilter/x_tables.ko\n');
  f.write(join(mods, 'modules.builtin'), 'kernel/net/foo_core.ko\n');
});
afterEach(() => f.cleanup());

describe('xttraffic load', () => {
  it('loads x_tables first (its own builtin dependency skipped), then the module with the params', async () => {
    expect(await f.run('load', '--param', 'max_entries=65536', '--param', 'flow_timeout=60')).toBe(0);
    expect(f.stderr).toBe('');
    expect(f.stdout).toBe(`loaded xt_traffic 0.1.0 from ${ko} (max_entries=65536 flow_timeout=60), after x_tables\n`);
    expect(f.binding.calls).toEqual([
      { fn: 'loadModule', args: [join(f.libModules, RELEASE, 'kernel/net/netfilter/x_tables.ko'), ''] },
      { fn: 'loadModule', args: [ko, 'max_entries=65536 flow_timeout=60'] },
    ]);
  });

  it('--json shape; a dependency already loaded is not loaded again', async () => {
    f.loaded('x_tables');
    expect(await f.run('load', '--json')).toBe(0);
    expect(f.json()).toEqual({
      loaded: true, path: ko, version: '0.1.0', release: RELEASE, params: '',
      steps: [{ module: 'x_tables', via: 'already loaded' }, { module: 'xt_traffic', via: 'finit_module', path: ko }],
    });
    expect(f.binding.calls.map((c) => c.args[0])).toEqual([ko]);
  });

  it('a compressed dependency goes through modprobe', async () => {
    f.write(join(f.libModules, RELEASE, 'modules.dep'), 'kernel/net/netfilter/x_tables.ko.xz:\n');
    expect(await f.run('load')).toBe(0);
    expect(f.runsOf('modprobe')).toEqual([['x_tables']]);
    expect(f.binding.calls.map((c) => c.args[0])).toEqual([ko]);
  });

  it('already loaded: exit 1 with what to do', async () => {
    f.loaded('xt_traffic', { version: '0.1.0' });
    expect(await f.run('load')).toBe(1);
    expect(f.stderr).toBe('xttraffic: xt_traffic is already loaded (version 0.1.0)\nhint: unload it first with `xttraffic unload` to load another build\n');
    expect(f.binding.calls).toEqual([]);
  });

  it('not root: exit 4, nothing loaded', async () => {
    f.uid = 1000;
    expect(await f.run('load', '--json')).toBe(4);
    expect(f.errorJson()).toEqual({ error: { code: 'EPERM', message: 'loading xt_traffic needs root (CAP_SYS_MODULE)', exitCode: 4, hint: 'run it as root: sudo xttraffic load' } });
    expect(f.binding.calls).toEqual([]);
  });

  it('built for another kernel: exit 3 naming both releases', async () => {
    f.release = '6.12.117+deb12-amd64';
    const other = f.write(join(f.dir, 'old.ko'), fakeKo(KO_FIELDS));
    expect(await f.run('load', '--ko', other)).toBe(3);
    expect(f.stderr).toBe(
      `xttraffic: ${other} was built for kernel ${RELEASE}, but the running kernel is 6.12.117+deb12-amd64\n` +
      'hint: rebuild it for this kernel with `xttraffic build` (needs linux-headers-6.12.117+deb12-amd64)\n',
    );
    expect(f.binding.calls).toEqual([]);
  });

  it('no module file: exit 4 listing every place looked at', async () => {
    f.release = '6.12.117+deb12-amd64';
    expect(await f.run('load')).toBe(4);
    expect(f.stderr).toContain(`no xt_traffic.ko for kernel 6.12.117+deb12-amd64; looked in:\n  ${f.root}/.cache/build/6.12.117+deb12-amd64/xt_traffic.ko\n  ${f.libModules}/6.12.117+deb12-amd64/updates/xt_traffic.ko\n`);
  });

  it('unknown parameter or malformed --param: exit 2 before anything is loaded', async () => {
    expect(await f.run('load', '--param', 'maxentries=5')).toBe(2);
    expect(f.stderr).toBe('xttraffic: --param maxentries=5: xt_traffic has no parameter maxentries\nhint: its parameters: flow_timeout, max_entries, proc_gid, proc_perms, proc_uid\n');
    expect(await f.run('load', '--param', 'max_entries')).toBe(2);
    expect(f.binding.calls).toEqual([]);
  });

  it('kernel errors become typed errors: ENOEXEC -> 3, EPERM as root -> 4 (lockdown), EINVAL -> 2', async () => {
    f.loaded('x_tables');
    f.binding.loadFailures.set('xt_traffic.ko', { code: 'ENOEXEC', errno: 8 });
    expect(await f.run('load', '--json')).toBe(3);
    expect(f.errorJson().error).toMatchObject({ code: 'EVERSION', exitCode: 3, errno: -8, syscall: 'finit_module' });
    f.binding.loadFailures.set('xt_traffic.ko', { code: 'EPERM', errno: 1 });
    expect(await f.run('load')).toBe(4);
    expect(f.stderr).toContain('hint: module loading may be locked down (Secure Boot)');
    f.binding.loadFailures.set('xt_traffic.ko', { code: 'EINVAL', errno: 22 });
    expect(await f.run('load', '--param', 'max_entries=abc')).toBe(2);
    expect(f.stderr).toContain('hint: dmesg shows which parameter');
  });

  it('without the addon: exit 3 naming where it looked, before touching anything', async () => {
    f.bindingMissing = true;
    expect(await f.run('load')).toBe(3);
    expect(f.stderr).toBe(
      'xttraffic: this command needs the xttraffic native addon, which could not be loaded:\n' +
      '  /pkg/build/Release/xttraffic.node: not found\n' +
      'hint: build it with `xttraffic build` or `npm run build:native` (needs g++, make and python3: apt install build-essential python3)\n',
    );
  });
});

describe('xttraffic unload', () => {
  it('refuses while rules use the module: exit 4, "in use by N rules"', async () => {
    f.loaded('xt_traffic', { version: '0.1.0', refcnt: 2 });
    expect(await f.run('unload')).toBe(4);
    expect(f.stderr).toBe(
      'xttraffic: xt_traffic is in use by 2 rules\n' +
      'hint: delete them first: `xttraffic rule list` shows them, `xttraffic rule del --name NAME` removes them (in every network namespace)\n',
    );
    expect(f.binding.calls).toEqual([]);
  });

  it('EAGAIN from delete_module (a rule added meanwhile) is the same error', async () => {
    f.loaded('xt_traffic', { refcnt: 0 });
    f.binding.unloadFailure = { code: 'EAGAIN', errno: 11 };
    expect(await f.run('unload', '--json')).toBe(4);
    expect(f.errorJson().error).toMatchObject({ code: 'EBUSY', message: 'xt_traffic is in use', errno: -11, syscall: 'delete_module' });
  });

  it('unloads; then "not loaded" is exit 1', async () => {
    f.loaded('xt_traffic', { refcnt: 0 });
    expect(await f.run('unload', '--json')).toBe(0);
    expect(f.json()).toEqual({ unloaded: true });
    expect(f.binding.calls).toEqual([{ fn: 'unloadModule', args: ['xt_traffic'] }]);
    expect(await f.run('unload')).toBe(1);
    expect(f.stderr).toBe('xttraffic: xt_traffic is not loaded\n');
  });

  it('not root: exit 4', async () => {
    f.loaded('xt_traffic', { refcnt: 0 });
    f.uid = 1000;
    expect(await f.run('unload')).toBe(4);
    expect(f.stderr).toBe('xttraffic: unloading xt_traffic needs root (CAP_SYS_MODULE)\nhint: run it as root: sudo xttraffic unload\n');
  });
});
