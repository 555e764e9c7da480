/** `xttraffic uninstall`: reverses `install` (both the depmod and the DKMS way). */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { uninstall } from '../system/install.js';
import { moduleState } from '../system/module.js';
import { emit, examples, optsOf } from '../cmdline/options.js';

export function registerUninstall(program: Command, deps: Deps): void {
  program
    .command('uninstall')
    .description('remove the installed module (and its DKMS registration), libxt_traffic.so and the boot files install --persist and persist save wrote')
    .addHelpText('after', examples(['sudo xttraffic uninstall']))
    .action(async (_o: object, cmd: Command) => {
      const o = optsOf<object>(cmd);
      const r = await uninstall(deps);
      const loaded = moduleState(deps).loaded;
      emit(deps, o.json, { ...r, stillLoaded: loaded }, () =>
        (r.removed.length ? `removed:\n${r.removed.map((x) => `  ${x}\n`).join('')}` : 'nothing was installed\n') +
        (loaded ? 'note: xt_traffic is still loaded; `xttraffic unload` removes it from the running kernel\n' : ''));
    });
}
