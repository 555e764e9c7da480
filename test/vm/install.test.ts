import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, runCli, type CliResult } from '../lib/cli.js';
import { unloadModuleWhenFree } from '../lib/module.js';
import { REPO, shAsync } from '../lib/sh.js';
import { RoutedTopo } from '../lib/topo.js';

// `xttraffic install [--dkms]` and `uninstall` as an operator runs them, as root in the VM:
// the depmod way (modprobe finds the module, iptables the extension, with no XTABLES_LIBDIR)
// and the DKMS way (DKMS builds the module from /usr/src/xt_traffic-VERSION for the running
// kernel, modprobe loads that build, a rule with it counts a ping exactly), each undone by
// `uninstall`. The guest is a throwaway system (the host's root read-only, a tmpfs overlay).
//
// Cost under TCG (measured on this 2-core host, shared with other VMs): `depmod -a` over the
// kernel's full module tree as the guest sees it (9p, 4,023 uncompressed modules of 6.1,
// 396 MB) takes 165 s cold and 94 s warm, mostly 9p round trips and reads; 30 s once the tree
// is in tmpfs, but copying it there takes 214 s. On 6.12 (xz modules) it is 178 s / 146 s
// over 9p and 106-140 s in tmpfs (xz decompression). The suite runs depmod four times
// (install, uninstall, and inside `dkms install` and `dkms remove`), so with the full tree it
// would add 10+ minutes per kernel, on top of `dkms install` itself (1-2 minutes: dkms
// compiles the module under TCG; 6.1 123 s, 6.12 64 s). Hence two things, neither of which
// changes what `xttraffic install` does:
//  - the set-up hides the kernel/ subtrees nothing here loads from (drivers, sound, fs, ...:
//    overlay whiteouts, after the topology has loaded veth), so depmod reads net, lib and
//    crypto, ~600 modules including x_tables, xt_traffic's dependency: its work per module is
//    the same, there are fewer (`xttraffic install` then takes 5-30 s, node start included);
//  - the suite (3-4 minutes on 6.1, 2.5 on 6.12) runs on one kernel, 6.1 (Debian 12's own),
//    unless XTT_VM_INSTALL=1 (it passes on 6.12 too): the install code does not depend on
//    the kernel version, and every other suite builds and loads the module on both kernels.

const release = process.env['XTT_KERNEL_RELEASE'] ?? '';
const onThisKernel = /^6\.1\.0-/.test(release) || process.env['XTT_VM_INSTALL'] === '1';

const VERSION = (JSON.parse(readFileSync(`${REPO}/package.json`, 'utf8')) as { version: string }).version;
const MODS = `/lib/modules/${release}`;
const SO = '/usr/lib/x86_64-linux-gnu/xtables/libxt_traffic.so';
const { H1, X } = RoutedTopo;

/** The environment of an operator's shell: no XTABLES_LIBDIR pointing into the checkout. */
const plainEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env['XTABLES_LIBDIR'];
  return env;
};

/** Runs a program as an operator would (no XTABLES_LIBDIR), without blocking the event loop. */
function plain(cmd: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', env: plainEnv(), maxBuffer: 1 << 26 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Runs the CLI and logs how long it took (the figures the comment above quotes). */
async function timedCli(args: string[], ns?: string): Promise<CliResult> {
  const t0 = Date.now();
  const r = await runCli(args, ns);
  console.log(`xttraffic ${args.join(' ')} (kernel ${release}): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

/** `s` as a regular expression matching itself (releases like 6.12.117+deb12-amd64). */
const lit = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const KEEP = new Set(['net', 'lib', 'crypto']);
const created: string[] = [];
const mounted: string[] = [];

describe.skipIf(!onThisKernel)('xttraffic install / uninstall in the VM', () => {
  let topo: RoutedTopo;

  beforeAll(async () => {
    // other suites may have left the module loaded: install is about loading it via modprobe
    await unloadModuleWhenFree();
    // The topology first: it loads veth (drivers/, hidden below) and nf_tables.
    topo = await RoutedTopo.create('iptables');

    // The guest's /lib/modules is the read-only kernel cache: give it a writable overlay,
    // with the kernel/ subtrees nothing here uses whited out (see the comment at the top).
    await shAsync('mkdir', ['-p', '/run/xtt-mods']);
    await shAsync('mount', ['-t', 'tmpfs', 'tmpfs', '/run/xtt-mods']);
    mounted.push('/run/xtt-mods');
    await shAsync('mkdir', ['-p', `/run/xtt-mods/u/${release}/kernel`, '/run/xtt-mods/w']);
    const hidden = readdirSync(`${MODS}/kernel`).filter((d) => !KEEP.has(d));
    expect(hidden).toContain('drivers');
    for (const d of hidden) await shAsync('mknod', [`/run/xtt-mods/u/${release}/kernel/${d}`, 'c', '0', '0']);
    await shAsync('mount', ['-t', 'overlay', 'overlay', '-o', 'lowerdir=/lib/modules,upperdir=/run/xtt-mods/u,workdir=/run/xtt-mods/w', '/lib/modules']);
    mounted.push('/lib/modules');
    expect(existsSync(`${MODS}/kernel/drivers`)).toBe(false);
    expect(readdirSync(`${MODS}/kernel/net/netfilter`).filter((f) => /^x_tables\.ko(\.xz|\.zst)?$/.test(f))).toHaveLength(1);

    // On a Debian box the linux-headers-REL package makes /lib/modules/REL/build point at
    // the headers, and DKMS builds against it. The kernel cache has no such link (the host
    // has the headers, which setup installs): make the one the package would.
    if (!existsSync(`${MODS}/build`)) symlinkSync(`/usr/src/linux-headers-${release}`, `${MODS}/build`);
    expect(existsSync(`${MODS}/build/Makefile`)).toBe(true);

    // dkms uses bash's <(...), i.e. /dev/fd, which udev/systemd create on a real system; the
    // guest's bare devtmpfs has none (dkms then warns "/proc is not mounted" and `dkms
    // status` fails).
    for (const [name, target] of [['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2']] as const) {
      if (!existsSync(`/dev/${name}`)) {
        symlinkSync(target, `/dev/${name}`);
        created.push(`/dev/${name}`);
      }
    }
  }, 300_000);

  afterAll(async () => {
    topo?.destroy();
    await unloadModuleWhenFree();
    // whatever a failed test left installed goes with the overlays
    rmSync(SO, { force: true });
    rmSync(`/usr/src/xt_traffic-${VERSION}`, { recursive: true, force: true });
    rmSync('/var/lib/dkms/xt_traffic', { recursive: true, force: true });
    for (const p of created) rmSync(p, { force: true });
    // the suites after this one need the kernel's whole module tree back: an unmount that
    // fails must fail this suite, not go unnoticed
    if (mounted.includes('/lib/modules')) await shAsync('umount', ['/lib/modules']);
    if (mounted.includes('/run/xtt-mods')) await shAsync('umount', ['/run/xtt-mods']);
    expect(existsSync(`${MODS}/kernel/drivers`)).toBe(true);
  }, 120_000);

  it('install: depmod makes `modprobe xt_traffic` work, iptables finds the extension without XTABLES_LIBDIR; uninstall reverses both', async () => {
    const ko = `${MODS}/updates/xt_traffic.ko`;
    expect((await plain('iptables', ['-m', 'traffic', '-h'])).code).not.toBe(0);
    expect((await plain('modprobe', ['-n', 'xt_traffic'])).code).not.toBe(0);

    const inst = JSON.parse(ok(await timedCli(['install', '--json'])).stdout) as unknown;
    expect(inst).toEqual({ release, module: { path: ko, dkms: false }, extension: { path: SO } });
    expect(readFileSync(ko)).toEqual(readFileSync(`${REPO}/.cache/build/${release}/xt_traffic.ko`));
    expect(readFileSync(SO)).toEqual(readFileSync(`${REPO}/libxt/libxt_traffic.so`));
    // depmod recorded it with its dependency
    expect(readFileSync(`${MODS}/modules.dep`, 'utf8')).toMatch(/^updates\/xt_traffic\.ko: kernel\/net\/netfilter\/x_tables\.ko(\.xz|\.zst)?$/m);

    const mp = await plain('modprobe', ['-v', 'xt_traffic']);
    expect(mp.code, mp.stderr).toBe(0);
    expect(mp.stdout).toMatch(new RegExp(`^insmod ${lit(ko)} *$`, 'm'));
    expect(existsSync('/sys/module/xt_traffic')).toBe(true);
    const help = await plain('iptables', ['-m', 'traffic', '-h']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('--netbase');
    ok(await runCli(['unload']));

    const un = JSON.parse(ok(await timedCli(['uninstall', '--json'])).stdout) as unknown;
    expect(un).toEqual({ removed: [ko, SO], dkmsVersions: [], stillLoaded: false });
    expect(existsSync(ko) || existsSync(SO)).toBe(false);
    expect(readFileSync(`${MODS}/modules.dep`, 'utf8')).not.toContain('xt_traffic');
    expect((await plain('modprobe', ['xt_traffic'])).code).not.toBe(0);
    expect(existsSync('/sys/module/xt_traffic')).toBe(false);
    expect((await plain('iptables', ['-m', 'traffic', '-h'])).code).not.toBe(0);
  }, 900_000);

  it('install --dkms: DKMS builds the module for the running kernel, modprobe loads that build, a rule counts a ping exactly; uninstall removes it all', async () => {
    const tree = `/usr/src/xt_traffic-${VERSION}`;
    const inst = JSON.parse(ok(await timedCli(['install', '--dkms', '--json'])).stdout) as unknown;
    expect(inst).toEqual({ release, module: { path: tree, dkms: true, version: VERSION }, extension: { path: SO } });
    expect(readFileSync(`${tree}/dkms.conf`, 'utf8')).toMatch(new RegExp(`^PACKAGE_VERSION="${lit(VERSION)}"$`, 'm'));
    expect(readFileSync(`${tree}/xt_traffic.c`)).toEqual(readFileSync(`${REPO}/kernel/xt_traffic.c`));

    // DKMS has it installed for this kernel, built from that tree
    const st = await plain('dkms', ['status', '-m', 'xt_traffic']);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout.trim()).toBe(`xt_traffic/${VERSION}, ${release}, x86_64: installed`);
    expect(existsSync(`/var/lib/dkms/xt_traffic/${VERSION}/source/xt_traffic.c`)).toBe(true);
    expect(readFileSync(`/var/lib/dkms/xt_traffic/${VERSION}/source/dkms.conf`)).toEqual(readFileSync(`${tree}/dkms.conf`));
    const built = readdirSync(`/var/lib/dkms/xt_traffic/${VERSION}/${release}/x86_64/module`);
    expect(built.filter((f) => f.startsWith('xt_traffic.ko'))).toHaveLength(1);

    // modprobe finds and loads the DKMS build (6.12's DKMS compresses it like the kernel's modules)
    const path = (await shAsync('modinfo', ['-n', 'xt_traffic'])).trim();
    expect(path).toMatch(new RegExp(`^${lit(MODS)}/updates/dkms/xt_traffic\\.ko(\\.xz|\\.zst)?$`));
    expect(existsSync(`${MODS}/updates/xt_traffic.ko`)).toBe(false);
    const mp = await plain('modprobe', ['-v', 'xt_traffic']);
    expect(mp.code, mp.stderr).toBe(0);
    expect(mp.stdout).toMatch(new RegExp(`^insmod ${lit(path)} *$`, 'm'));
    expect(readFileSync('/sys/module/xt_traffic/srcversion', 'utf8').trim()).toBe((await shAsync('modinfo', ['-F', 'srcversion', path])).trim());
    expect(readFileSync('/sys/module/xt_traffic/version', 'utf8').trim()).toBe(VERSION);

    // a rule with it (plain iptables: the installed extension) counts 3 pings H1 -> X
    // exactly: 3 echo requests out and 3 replies in, 56 + 8 + 20 bytes each
    const r = topo.r.name;
    const add = await plain('ip', ['netns', 'exec', r, 'iptables', '-t', 'raw', '-A', 'PREROUTING', '-m', 'traffic', '--traffic', '--netbase', '10.1.0.0', '--netmask', '255.255.0.0', '--name', 'dk']);
    expect(add.code, add.stderr).toBe(0);
    await topo.h1.run('ping', ['-q', '-c', '3', '-i', '0.2', '-s', '56', '-W', '2', X]);
    const echo = 56 + 8 + 20;
    const read = JSON.parse(ok(await runCli(['read', 'dk', '--json'], r)).stdout) as { rows: unknown[] };
    const zero = { in: 0, out: 0 };
    expect(read.rows).toEqual([{ ip: H1, total: { in: 3 * echo, out: 3 * echo }, tcp: zero, udp: zero, other: { in: 3 * echo, out: 3 * echo } }]);
    const del = await plain('ip', ['netns', 'exec', r, 'iptables', '-t', 'raw', '-D', 'PREROUTING', '-m', 'traffic', '--traffic', '--netbase', '10.1.0.0', '--netmask', '255.255.0.0', '--name', 'dk']);
    expect(del.code, del.stderr).toBe(0);
    await unloadModuleWhenFree();

    const un = JSON.parse(ok(await timedCli(['uninstall', '--json'])).stdout) as unknown;
    expect(un).toEqual({ removed: [tree, `dkms xt_traffic/${VERSION}`, SO], dkmsVersions: [VERSION], stillLoaded: false });
    const after = await plain('dkms', ['status', '-m', 'xt_traffic']);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout.trim()).toBe('');
    for (const p of [tree, SO, `${MODS}/updates/dkms/xt_traffic.ko`, `${MODS}/updates/dkms/xt_traffic.ko.xz`, '/var/lib/dkms/xt_traffic']) expect(existsSync(p), p).toBe(false);
    expect(readFileSync(`${MODS}/modules.dep`, 'utf8')).not.toContain('xt_traffic');
    expect((await plain('modprobe', ['xt_traffic'])).code).not.toBe(0);
    expect(existsSync('/sys/module/xt_traffic')).toBe(false);
  }, 1_500_000);
});
