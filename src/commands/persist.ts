/** `xttraffic persist save|status|restore`: what comes back at boot (see src/system/persist.ts). */
import type { Command } from 'commander';
import { join } from 'node:path';
import type { Deps, RunResult } from '../core/deps.js';
import { ResourceError, RuntimeError } from '../core/errors.js';
import { MODULE_NAME } from '../proc/names.js';
import { moduleState } from '../system/module.js';
import {
  allChains, changedParams, checkParams, loadedParams, mirrorsOf, persistPaths, presentIn, readSaved, restorePlan, writeSaved,
  type RestoreStep, type SavedTrafficRule,
} from '../system/persist.js';
import { netString, parseSave } from '../system/rule.js';
import { checkBackend, iptablesCmd, iptablesError, iptablesSaveCmd, runIptables, type Backend } from '../system/xtables.js';
import { collect, emit, examples, optsOf } from '../cmdline/options.js';

interface SaveOptions {
  backend?: string;
  param?: string[];
}

interface StatusOptions {
  backend?: string;
}

async function iptablesSave(deps: Deps, backend: Backend | undefined): Promise<string> {
  const cmd = iptablesSaveCmd(backend);
  const r = await runIptables(deps, cmd, []);
  if (r.code !== 0) throw iptablesError(deps, cmd, [], r, 'list');
  return r.stdout;
}

function lastLine(r: RunResult): string {
  return (r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).split('\n').filter((l) => l !== '').pop()!;
}

function ruleJson(r: SavedTrafficRule) {
  const m = parseSave(`*${r.table}\n${r.line}\n`)[0]!.match;
  return { table: r.table, chain: r.chain, name: r.name, net: netString(m), rule: r.line };
}

export function registerPersist(program: Command, deps: Deps): void {
  const persist = program
    .command('persist')
    .description('boot persistence: save the -m traffic rules, the mirror set-up and the module parameters; show or restore them')
    .addHelpText('after', examples([
      'sudo xttraffic install --persist     # module at boot, xttraffic-restore.service',
      'sudo xttraffic rule add --name lan --net 192.168.0.0/16',
      'sudo xttraffic persist save',
      'sudo xttraffic persist status',
    ]));

  persist
    .command('save')
    .description('save the current -m traffic rules, the interfaces with the mirror enabled and the module\'s parameters (in /etc/xttraffic, /etc/modprobe.d)')
    .option('--backend <nft|legacy>', 'save from iptables-nft or iptables-legacy instead of `iptables` (restored with the same)')
    .option('--param <key=value>', 'module parameter to set at boot (repeatable; default: the loaded module\'s values that differ from the defaults)', collect)
    .addHelpText('after', examples(['sudo xttraffic persist save', 'sudo xttraffic persist save --backend legacy --param flow_timeout=60 --json']))
    .action(async (_o: SaveOptions, cmd: Command) => {
      const o = optsOf<SaveOptions>(cmd);
      const backend = checkBackend(o.backend);
      let params: string[] | undefined;
      if (o.param !== undefined) params = checkParams(o.param);
      else {
        const sys = loadedParams(deps);
        params = sys === undefined ? undefined : changedParams(sys);
      }
      if (deps.getuid() !== 0) throw new ResourceError('EPERM', 'persist save needs root', { hint: 'run it as root: sudo xttraffic persist save' });
      const save = await iptablesSave(deps, backend);
      const r = writeSaved(deps, save, backend, params, new Date(deps.now()).toISOString());
      const saved = readSaved(deps);
      const atBoot = saved.modulesLoad && saved.units.some((u) => u.unit === 'xttraffic-restore.service' && u.enabled.length > 0);
      emit(deps, o.json, { ...r, atBoot }, () =>
        `saved:\n` +
        `  ${r.rules.path}: ${r.rules.count} -m traffic rule${r.rules.count === 1 ? '' : 's'} (${r.conf.backend})\n` +
        `  ${r.conf.path}: ${r.conf.mirrors.length ? `mirror on ${r.conf.mirrors.join(', ')}` : 'no mirror'}\n` +
        `  ${r.modprobe.path}: ${r.modprobe.state === 'kept' ? 'not ours, left alone' : r.modprobe.params.length ? `options ${MODULE_NAME} ${r.modprobe.params.join(' ')}` : 'no parameters'}\n` +
        (atBoot ? '' : 'note: nothing restores them at boot yet: sudo xttraffic install --persist\n'));
    });

  persist
    .command('status')
    .description('what comes back at boot: module, parameters, units, saved rules and mirror interfaces, compared with what is in place now')
    .option('--backend <nft|legacy>', 'compare with iptables-nft or iptables-legacy (default: the saved backend)')
    .addHelpText('after', examples(['sudo xttraffic persist status', 'sudo xttraffic persist status --json']))
    .action(async (_o: StatusOptions, cmd: Command) => {
      const o = optsOf<StatusOptions>(cmd);
      const saved = readSaved(deps);
      const backend = o.backend !== undefined ? checkBackend(o.backend) : saved.conf?.backend;
      let live: { rules: boolean[]; mirrors: string[]; unsaved: string[] } | undefined;
      let liveError: string | undefined;
      try {
        const save = await iptablesSave(deps, backend);
        const present = presentIn(save, saved.rules);
        const savedKeys = saved.rules.map((r) => `${r.table} ${r.chain} ${r.args.join(' ')}`);
        const unsaved = parseSave(save.replace(/^\[\d+:\d+\] /gm, ''))
          .filter((r) => !savedKeys.includes(`${r.table} ${r.chain} ${r.args.join(' ')}`))
          .map((r) => `${r.table} ${r.line}`);
        live = { rules: present, mirrors: mirrorsOf(save), unsaved };
      } catch (e) {
        liveError = (e as Error).message;
      }
      const p = persistPaths(deps);
      const data = {
        module: { atBoot: saved.modulesLoad, path: p.modulesLoad, params: saved.params, loadedNow: moduleState(deps).loaded },
        units: saved.units,
        saved: saved.conf ? { at: saved.conf.savedAt ?? null, backend: saved.conf.backend ?? 'iptables' } : null,
        rules: saved.rules.map((r, i) => ({ ...ruleJson(r), presentNow: live ? live.rules[i]! : null })),
        mirrors: (saved.conf?.mirrors ?? []).map((m) => ({ iface: m, enabledNow: live ? live.mirrors.includes(m) : null })),
        notSaved: live ? { rules: live.unsaved, mirrors: live.mirrors.filter((m) => !(saved.conf?.mirrors ?? []).includes(m)) } : null,
        liveError: liveError ?? null,
      };
      emit(deps, o.json, data, () => {
        const now = (b: boolean | null) => (b === null ? '' : b ? ' (in place now)' : ' (NOT in place now)');
        const l: string[] = [];
        l.push(`module: ${data.module.atBoot ? `${MODULE_NAME} loaded at boot (${p.modulesLoad})` : 'not loaded at boot (xttraffic install --persist)'}` +
          `${data.module.params.length ? `, options ${data.module.params.join(' ')}` : ''}`);
        for (const u of data.units) l.push(`unit ${u.unit}: ${u.installed ? (u.enabled.length ? `enabled (${u.enabled.join(', ')})` : 'installed, not enabled') : 'not installed'}`);
        l.push(data.saved ? `saved: ${data.saved.at ?? '?'} (${data.saved.backend})` : 'saved: nothing (xttraffic persist save)');
        for (const m of data.mirrors) l.push(`mirror ${m.iface}${now(m.enabledNow)}`);
        for (const r of data.rules) l.push(`rule ${r.name} ${r.net} in ${r.table} ${r.chain}${now(r.presentNow)}`);
        if (data.notSaved && (data.notSaved.rules.length || data.notSaved.mirrors.length)) {
          l.push(`not saved (lost at reboot until \`xttraffic persist save\`):`);
          for (const m of data.notSaved.mirrors) l.push(`  mirror ${m}`);
          for (const r of data.notSaved.rules) l.push(`  ${r}`);
        }
        if (liveError) l.push(`(what is in place now is unknown: ${liveError})`);
        return `${l.join('\n')}\n`;
      });
    });

  persist
    .command('restore')
    .description('what xttraffic-restore.service runs at boot: the saved mirror set-up, then every saved rule that is missing (iptables -C, then -A); nothing else is touched')
    .addHelpText('after', examples(['sudo xttraffic persist restore', 'sudo xttraffic persist restore --json']))
    .action(async (_o: object, cmd: Command) => {
      const o = optsOf<object>(cmd);
      const saved = readSaved(deps);
      const backend = saved.conf?.backend;
      const ipt = iptablesCmd(backend);
      const failures: string[] = [];
      // 1. the module (modules-load.d normally loaded it already)
      let module: 'loaded' | 'modprobe' | 'not needed' = 'not needed';
      if (saved.rules.length > 0) {
        if (moduleState(deps).loaded) module = 'loaded';
        else {
          const r = await deps.run('modprobe', [MODULE_NAME]);
          if (r.code !== 0 || r.notFound) {
            throw new ResourceError('EMODPROBE', `modprobe ${MODULE_NAME}: ${r.notFound ? 'modprobe not found' : lastLine(r)}`, { hint: 'is the module installed? xttraffic install' });
          }
          module = 'modprobe';
        }
      }
      // 2. the mirror set-up, by `xttraffic mirror enable` itself (idempotent)
      const mirrors: Array<{ iface: string; changed: boolean | null; error: string | null }> = [];
      for (const iface of saved.conf?.mirrors ?? []) {
        const args = [join(deps.paths.root, 'dist', 'cli.js'), 'mirror', 'enable', iface, ...(backend ? ['--backend', backend] : []), '--json'];
        const r = await deps.run(process.execPath, args);
        if (r.code === 0 && !r.notFound) {
          let changed: boolean | null = null;
          try {
            changed = (JSON.parse(r.stdout) as { mirror: { changed: boolean } }).mirror.changed;
          } catch {
            changed = null;
          }
          mirrors.push({ iface, changed, error: null });
        } else {
          const err = (() => {
            try {
              return (JSON.parse(r.stderr) as { error: { message: string } }).error.message;
            } catch {
              return lastLine(r);
            }
          })();
          mirrors.push({ iface, changed: null, error: err });
          failures.push(`mirror ${iface}: ${err}`);
        }
      }
      // 3. the rules that are missing
      const rules: Array<{ name: string; table: string; chain: string; state: 'present' | 'added' | 'failed'; error: string | null }> = [];
      const steps: RestoreStep[] = [];
      if (saved.rules.length > 0) {
        const chains = allChains(await iptablesSave(deps, backend));
        const present: boolean[] = [];
        for (const r of saved.rules) {
          if (!chains.get(r.table)?.has(r.chain)) {
            present.push(false);
            continue;
          }
          const args = ['-t', r.table, '-C', r.chain, ...r.args];
          const c = await runIptables(deps, ipt, args);
          if (c.code === 0) present.push(true);
          else if (c.code === 1 && /Bad rule|does a matching rule exist/i.test(`${c.stderr}${c.stdout}`)) present.push(false);
          else throw iptablesError(deps, ipt, args, c, 'list');
        }
        steps.push(...restorePlan(saved.rules, present, chains, ipt));
        const failedChains = new Set<string>();
        saved.rules.forEach((r, i) => {
          if (present[i]) rules.push({ name: r.name, table: r.table, chain: r.chain, state: 'present', error: null });
        });
        for (const s of steps) {
          const table = s.args[1]!;
          const chain = s.args[3]!;
          const rule = saved.rules.find((r) => r.table === table && r.chain === chain && s.args.slice(4).join('\0') === r.args.join('\0'));
          const res = failedChains.has(`${table} ${chain}`) ? undefined : await runIptables(deps, ipt, s.args);
          const ok = res !== undefined && res.code === 0;
          if (s.args[2] === '-N') {
            if (!ok && !(res && /exists/i.test(res.stderr))) {
              failedChains.add(`${table} ${chain}`);
              failures.push(`${s.what}: ${res ? iptablesError(deps, ipt, s.args, res, 'chain').message : 'skipped'}`);
            }
            continue;
          }
          const error = ok ? null : res ? iptablesError(deps, ipt, s.args, res, 'add').message : `chain ${chain} could not be created`;
          rules.push({ name: rule!.name, table, chain, state: ok ? 'added' : 'failed', error });
          if (error) failures.push(`${s.what}: ${error}`);
        }
      }
      const p = persistPaths(deps);
      emit(deps, o.json, { from: p.dir, savedAt: saved.conf?.savedAt ?? null, module, mirrors, rules, steps }, () => {
        if (!saved.conf && saved.rules.length === 0) return `nothing saved in ${p.dir}: nothing to restore\n`;
        const l = [`restore from ${p.dir} (saved ${saved.conf?.savedAt ?? '?'}):`];
        if (module !== 'not needed') l.push(`  module ${MODULE_NAME}: ${module === 'loaded' ? 'already loaded' : 'loaded (modprobe)'}`);
        for (const m of mirrors) l.push(`  mirror ${m.iface}: ${m.error ? `FAILED: ${m.error}` : m.changed === false ? 'already enabled' : 'enabled'}`);
        for (const r of rules) l.push(`  rule ${r.name} in ${r.table} ${r.chain}: ${r.state === 'failed' ? `FAILED: ${r.error}` : r.state === 'present' ? 'already there' : 'added'}`);
        return `${l.join('\n')}\n`;
      });
      if (failures.length > 0) {
        throw new RuntimeError('ERESTORE', `${failures.length} step${failures.length === 1 ? '' : 's'} of the restore failed: ${failures.join('; ')}`, {
          hint: 'the rest was restored; `xttraffic persist status` shows what is in place',
        });
      }
    });
}
