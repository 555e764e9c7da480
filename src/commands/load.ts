/** `xttraffic load`: finit_module of xt_traffic.ko, its dependencies first. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { loadModule } from '../system/module.js';
import { emit, examples, optsOf } from '../cmdline/options.js';
import { collect } from '../cmdline/options.js';

interface LoadOptions {
  param?: string[];
  ko?: string;
}

export function registerLoad(program: Command, deps: Deps): void {
  program
    .command('load')
    .description('load the xt_traffic module into the running kernel (its dependencies, e.g. x_tables, first)')
    .option('--param <key=value>', 'module parameter (repeatable): max_entries, flow_timeout, proc_perms, proc_uid, proc_gid, packets (0|1), reclaim_idle (seconds, 0: never)', collect, [])
    .option('--ko <file>', 'the .ko to load (default: the one `xttraffic build` made for this kernel, else the installed one)')
    .addHelpText('after', examples([
      'sudo xttraffic load',
      'sudo xttraffic load --param max_entries=65536 --param flow_timeout=60',
      'sudo xttraffic load --param proc_gid=4 --param proc_perms=0440   # group adm may read',
    ]))
    .action(async (_o: LoadOptions, cmd: Command) => {
      const o = optsOf<LoadOptions>(cmd);
      const r = await loadModule(deps, { params: o.param ?? [], ko: o.ko });
      const loadedDeps = r.steps.filter((s) => s.module !== 'xt_traffic' && (s.via === 'finit_module' || s.via === 'modprobe'));
      emit(deps, o.json, { loaded: true, path: r.path, version: r.info.version ?? null, release: r.info.release ?? null, params: r.params, steps: r.steps }, () =>
        `loaded xt_traffic${r.info.version ? ` ${r.info.version}` : ''} from ${r.path}${r.params ? ` (${r.params})` : ''}` +
        `${loadedDeps.length ? `, after ${loadedDeps.map((s) => s.module).join(', ')}` : ''}\n`);
    });
}
