import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { realDeps, realRunner } from '../../src/real-deps.js';
import { block, ensureBlockRules, listBlocked, removeBlockRules, unblock } from '../../src/system/block.js';
import { installPersist, uninstallPersist } from '../../src/system/persist.js';
import type { Backend } from '../../src/system/xtables.js';
import { ok, type CliResult } from '../lib/cli.js';
import { loadModule, unloadModuleWhenFree } from '../lib/module.js';
import { REPO, runAsync } from '../lib/sh.js';
import { RoutedTopo } from '../lib/topo.js';

// Boot persistence and the quota block, for real in the guest, on both iptables backends.
//
// Persistence: the router R of RoutedTopo has a -m traffic rule in raw PREROUTING, the mirror
// set-up on a dummy interface with a -m traffic rule in raw PROMISC, an operator's own FORWARD
// rule, and the module loaded with flow_timeout=45. The boot files go into a temporary root
// (XTT_ETC, XTT_SYSTEMD_UNITS): `installPersist` as `install --persist` calls it (the module
// and depmod part of install is install.test.ts's), then `xttraffic persist save` in R. A
// "reboot": the module unloaded, R's tables flushed and its user chains deleted, the mirror
// interface re-created fresh, then the firewall's own rule put back (as a distribution's
// restore would). Then what the boot runs, in order: systemd-modules-load (the module with the
// options of modprobe.d/xttraffic.conf), the unit's ExecStart= line as written in the unit file
// (with its Environment=). The rules, the mirror and the parameter must be back, nothing
// doubled, the operator's rule untouched, and the table must count 3 pings exactly.
//
// Block: ensureBlockRules / block / unblock / removeBlockRules run against R (commands
// wrapped in `ip netns exec R`); H1 pings X: 3 replies, 0 once H1 (then X) is blocked, the DROP
// rules' counters show exactly the 3 echo requests, a second block changes nothing.

const { H1, X } = RoutedTopo;
const ECHO = 56 + 8 + 20;

/** The CLI in network namespace `ns` with extra environment (XTT_ETC ...). */
function cli(args: string[], ns: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const e = { ...process.env, ...env };
  delete e['XTABLES_LIBDIR'];
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, `${REPO}/dist/cli.js`, ...args], { env: e, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Deps whose commands run inside network namespace `ns`, and whose boot files go under `root`. */
async function nsDeps(ns: string, root?: string): Promise<Deps> {
  const d = await realDeps();
  return {
    ...d,
    run: (cmd, args, opts) => realRunner('ip', ['netns', 'exec', ns, cmd, ...args], opts),
    paths: root ? { ...d.paths, etc: join(root, 'etc'), systemdUnits: join(root, 'units') } : d.paths,
  };
}

/** `ping -c 3` from `from` to `to`: the replies received. */
async function pings(topo: RoutedTopo, to: string): Promise<number> {
  const r = await runAsync('ip', ['netns', 'exec', topo.h1.name, 'ping', '-q', '-c', '3', '-i', '0.2', '-W', '1', to]);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  if (!m) throw new Error(`ping: ${r.stdout}${r.stderr}`);
  expect(m[1]).toBe('3');
  return Number(m[2]);
}

/** iptables-save of a netns without comments and counters of the chains' policies. */
async function saveOf(ns: string, ipt: string, counters = false): Promise<string> {
  const r = await runAsync('ip', ['netns', 'exec', ns, `${ipt}-save`, ...(counters ? ['-c'] : [])]);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').filter((l) => !l.startsWith('#')).map((l) => (l.startsWith(':') ? l.replace(/ \[\d+:\d+\]$/, '') : l)).join('\n');
}

const BACKENDS: Array<{ backend: Backend | undefined; ipt: string }> = [
  { backend: undefined, ipt: 'iptables' },
  { backend: 'legacy', ipt: 'iptables-legacy' },
];

for (const { backend, ipt } of BACKENDS) {
  const bk = backend ? ['--backend', backend] : [];

  describe(`boot persistence and the quota block (${ipt})`, () => {
    let topo: RoutedTopo;
    let r: string;
    let root: string;
    let env: NodeJS.ProcessEnv;

    const inR = (cmd: string, args: string[]) => runAsync('ip', ['netns', 'exec', r, cmd, ...args]);
    const must = async (cmd: string, args: string[]) => {
      const res = await inR(cmd, args);
      expect(res.status, `${cmd} ${args.join(' ')}: ${res.stderr}`).toBe(0);
      return res.stdout;
    };

    /** A fresh dummy interface for the mirror (a reboot brings the NIC back in its default state). */
    async function freshMirrorIf(): Promise<void> {
      await inR('ip', ['link', 'del', 'mir0']);
      await must('ip', ['link', 'add', 'mir0', 'type', 'dummy']);
      await must('ip', ['link', 'set', 'mir0', 'up']);
    }

    beforeAll(async () => {
      await unloadModuleWhenFree();
      loadModule(['flow_timeout=45']);
      topo = await RoutedTopo.create(ipt);
      r = topo.r.name;
      root = mkdtempSync(join(tmpdir(), 'xtt-persist-'));
      env = { XTT_ETC: join(root, 'etc'), XTT_SYSTEMD_UNITS: join(root, 'units') };
      await freshMirrorIf();
    });

    afterAll(async () => {
      topo?.destroy();
      if (root) rmSync(root, { recursive: true, force: true });
      await unloadModuleWhenFree();
    });

    it('install --persist and persist save write the boot files; after a simulated reboot the boot sequence brings rules, mirror and parameters back; pings are counted exactly', async () => {
      // the running set-up
      ok(await cli(['rule', 'add', '--name', 'pr', '--net', '10.1.0.0/16', '--table', 'raw', '--chain', 'PREROUTING', ...bk], r));
      ok(await cli(['mirror', 'enable', 'mir0', ...bk], r));
      ok(await cli(['rule', 'add', '--name', 'span', '--net', '10.9.0.0/16', '--table', 'raw', '--chain', 'PROMISC', ...bk], r));
      await must(ipt, ['-A', 'FORWARD', '-s', H1, '-j', 'ACCEPT']);
      const before = await saveOf(r, ipt);

      const deps = await nsDeps(r, root);
      const inst = await installPersist(deps);
      // the collector's unit is installed too when the package ships it (the ledger's)
      const units = ['xttraffic-restore.service', ...(existsSync(`${REPO}/systemd/xttraffic-collect.service`) ? ['xttraffic-collect.service'] : [])];
      expect(inst.files.map((f) => [f.path, f.state])).toEqual([
        [join(root, 'etc/modules-load.d/xttraffic.conf'), 'written'],
        ...units.map((u) => [join(root, 'units', u), 'written']),
      ]);
      expect(inst.enabled).toEqual(units.map((u) => join(root, 'units/multi-user.target.wants', u)));
      const saved = JSON.parse(ok(await cli(['persist', 'save', ...bk, '--json'], r, env)).stdout) as {
        rules: { count: number }; conf: { backend: string; mirrors: string[] }; modprobe: { params: string[] }; atBoot: boolean;
      };
      expect(saved.rules.count).toBe(2);
      expect(saved.conf).toMatchObject({ backend: backend ?? 'iptables', mirrors: ['mir0'] });
      expect(saved.modprobe.params).toEqual(['flow_timeout=45']);
      expect(saved.atBoot).toBe(true);
      const rulesV4 = readFileSync(join(root, 'etc/xttraffic/rules.v4'), 'utf8');
      expect(rulesV4.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
        '*raw',
        ':PROMISC - [0:0]',
        '-A PREROUTING -m traffic --traffic --netbase 10.1.0.0 --netmask 255.255.0.0 --name pr',
        '-A PROMISC -m traffic --traffic --netbase 10.9.0.0 --netmask 255.255.0.0 --name span',
        'COMMIT',
        '',
      ]);
      expect(readFileSync(join(root, 'etc/modprobe.d/xttraffic.conf'), 'utf8').split('\n')[1]).toBe('options xt_traffic flow_timeout=45');

      // "reboot"
      await must(ipt, ['-t', 'raw', '-F']);
      await must(ipt, ['-t', 'raw', '-X']);
      await must(ipt, ['-t', 'filter', '-F']);
      await freshMirrorIf();
      await unloadModuleWhenFree();
      await must(ipt, ['-A', 'FORWARD', '-s', H1, '-j', 'ACCEPT']); // the distribution's firewall restore

      // systemd-modules-load: each module of modules-load.d, with its options from modprobe.d
      const modules = readFileSync(join(root, 'etc/modules-load.d/xttraffic.conf'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
      expect(modules).toEqual(['xt_traffic']);
      const options = readFileSync(join(root, 'etc/modprobe.d/xttraffic.conf'), 'utf8').split('\n').find((l) => l.startsWith('options xt_traffic '))!;
      loadModule(options.split(' ').slice(2));
      expect(readFileSync('/sys/module/xt_traffic/parameters/flow_timeout', 'utf8').trim()).toBe('45');

      // xttraffic-restore.service: its ExecStart= line as written, with its Environment=
      const unit = readFileSync(join(root, 'units/xttraffic-restore.service'), 'utf8');
      const exec = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(' ');
      const unitEnv = Object.fromEntries([...unit.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
      expect(unitEnv).toEqual({ XTT_ETC: join(root, 'etc') });
      expect(existsSync(/^ConditionPathExists=(.*)$/m.exec(unit)![1]!)).toBe(true);
      const restored = await runAsync('ip', ['netns', 'exec', r, ...exec], { env: unitEnv });
      expect(restored.status, restored.stderr).toBe(0);
      expect(restored.stdout).toBe([
        `restore from ${join(root, 'etc/xttraffic')} (saved ${/^saved=(.*)$/m.exec(readFileSync(join(root, 'etc/xttraffic/persist.conf'), 'utf8'))![1]}):`,
        '  module xt_traffic: already loaded',
        '  mirror mir0: enabled',
        '  rule pr in raw PREROUTING: added',
        '  rule span in raw PROMISC: added',
        '',
      ].join('\n'));
      // the same rules as before the reboot (the mirror's comment records the fresh interface's state)
      const after = await saveOf(r, ipt);
      expect(after.replace(/forwarding=\d/g, 'forwarding=N')).toBe(before.replace(/forwarding=\d/g, 'forwarding=N'));
      const st = JSON.parse(ok(await cli(['mirror', 'status', 'mir0', ...bk, '--json'], r)).stdout) as { mirrors: Array<{ enabled: boolean; promisc: boolean; filters: { present: number; expected: number } }> };
      expect(st.mirrors[0]).toMatchObject({ enabled: true, promisc: true, filters: { present: 9, expected: 9 } });

      // counting works: 3 pings H1 -> X through R
      expect(await pings(topo, X)).toBe(3);
      const read = JSON.parse(ok(await cli(['read', 'pr', '--json'], r)).stdout) as { rows: unknown[] };
      const zero = { in: 0, out: 0 };
      expect(read.rows).toEqual([{ ip: H1, total: { in: 3 * ECHO, out: 3 * ECHO }, tcp: zero, udp: zero, other: { in: 3 * ECHO, out: 3 * ECHO } }]);

      // a second restore (the unit started again) changes nothing
      const again = JSON.parse(ok(await cli(['persist', 'restore', '--json'], r, env)).stdout) as { steps: unknown[]; rules: Array<{ state: string }>; mirrors: Array<{ changed: boolean }> };
      expect(again.steps).toEqual([]);
      expect(again.rules.map((x) => x.state)).toEqual(['present', 'present']);
      expect(again.mirrors.map((m) => m.changed)).toEqual([false]);
      expect(await saveOf(r, ipt)).toBe(after);
      const status = JSON.parse(ok(await cli(['persist', 'status', '--json'], r, env)).stdout) as { rules: Array<{ presentNow: boolean }>; notSaved: unknown };
      expect(status.rules.map((x) => x.presentNow)).toEqual([true, true]);
      expect(status.notSaved).toEqual({ rules: [], mirrors: [] });

      // uninstall's part: every file written, nothing else
      const removed = await uninstallPersist(deps);
      expect(removed.sort()).toEqual([
        join(root, 'etc/modprobe.d/xttraffic.conf'),
        join(root, 'etc/modules-load.d/xttraffic.conf'),
        join(root, 'etc/xttraffic'),
        join(root, 'etc/xttraffic/persist.conf'),
        join(root, 'etc/xttraffic/rules.v4'),
        ...units.flatMap((u) => [join(root, 'units/multi-user.target.wants', u), join(root, 'units', u)]),
      ].sort());
      expect(readdirSync(join(root, 'etc/modules-load.d'))).toEqual([]);
      expect(readdirSync(join(root, 'units'))).toEqual([]);

      // leave R as it was for the block test: no -m traffic rules, no mirror
      ok(await cli(['rule', 'del', '--name', 'span', ...bk], r));
      ok(await cli(['rule', 'del', '--name', 'pr', ...bk], r));
      ok(await cli(['mirror', 'disable', 'mir0', ...bk], r));
    }, 600_000);

    it('block: a blocked host\'s forwarded packets are dropped (src and dst), a second block is a no-op, unblock restores them, remove leaves the firewall as it was', async () => {
      const deps = await nsDeps(r);
      const before = await saveOf(r, ipt);
      expect(await pings(topo, X)).toBe(3);

      const first = await ensureBlockRules(deps, backend);
      expect(first.steps.map((s) => `${s.cmd} ${s.args.join(' ')}`)).toEqual([
        'ipset create xttraffic-block hash:ip family inet timeout 0',
        `${ipt} -t filter -I FORWARD 1 -m set --match-set xttraffic-block dst -m comment --comment xttraffic block dst -j DROP`,
        `${ipt} -t filter -I FORWARD 1 -m set --match-set xttraffic-block src -m comment --comment xttraffic block src -j DROP`,
      ]);
      const withRules = await saveOf(r, ipt);
      expect(await ensureBlockRules(deps, backend)).toEqual({ changed: false, steps: [] });
      expect(await saveOf(r, ipt)).toBe(withRules);
      const forward = (await saveOf(r, ipt, true)).split('\n').filter((l) => / -A FORWARD /.test(` ${l.replace(/^\[\d+:\d+\] /, '')}`));
      expect(forward.map((l) => l.replace(/^\[\d+:\d+\] /, ''))).toEqual([
        '-A FORWARD -m set --match-set xttraffic-block src -m comment --comment "xttraffic block src" -j DROP',
        '-A FORWARD -m set --match-set xttraffic-block dst -m comment --comment "xttraffic block dst" -j DROP',
        `-A FORWARD -s ${H1}/32 -j ACCEPT`,
      ]);

      // H1 blocked: its 3 echo requests are dropped by the src rule
      expect(await block(deps, H1)).toEqual({ ip: H1, changed: true });
      expect(await block(deps, H1)).toEqual({ ip: H1, changed: false });
      expect(await listBlocked(deps)).toEqual([{ ip: H1, timeout: 0 }]);
      expect(await pings(topo, X)).toBe(0);
      await must(ipt, ['-Z', 'FORWARD']);
      expect(await pings(topo, X)).toBe(0);
      const counters = (await saveOf(r, ipt, true)).split('\n').filter((l) => l.includes('xttraffic block'));
      expect(counters.map((l) => l.slice(0, l.indexOf(' ')))).toEqual([`[3:${3 * ECHO}]`, '[0:0]']);
      expect(await unblock(deps, H1)).toEqual({ ip: H1, changed: true });
      expect(await unblock(deps, H1)).toEqual({ ip: H1, changed: false });
      expect(await pings(topo, X)).toBe(3);

      // X blocked: the requests to it are dropped by the dst rule
      await must(ipt, ['-Z', 'FORWARD']);
      expect(await block(deps, X)).toEqual({ ip: X, changed: true });
      expect(await pings(topo, X)).toBe(0);
      const c2 = (await saveOf(r, ipt, true)).split('\n').filter((l) => l.includes('xttraffic block'));
      expect(c2.map((l) => l.slice(0, l.indexOf(' ')))).toEqual(['[0:0]', `[3:${3 * ECHO}]`]);
      expect(await unblock(deps, X)).toEqual({ ip: X, changed: true });
      expect(await pings(topo, X)).toBe(3);

      // errors carry the value and the tool's own text
      await expect(block(deps, '10.1.1.256')).rejects.toMatchObject({ code: 'EUSAGE', message: 'bad IPv4 address "10.1.1.256"' });

      const removed = await removeBlockRules(deps, backend);
      expect(removed.changed).toBe(true);
      expect(removed.keptSet).toBeUndefined();
      expect(await saveOf(r, ipt)).toBe(before);
      expect((await inR('ipset', ['list', '-n'])).stdout).toBe('');
      expect(await removeBlockRules(deps, backend)).toEqual({ changed: false, steps: [] });
      await expect(block(deps, H1)).rejects.toMatchObject({ code: 'ENOBLOCKSET', message: 'ipset xttraffic-block does not exist' });
    }, 600_000);
  });
}
