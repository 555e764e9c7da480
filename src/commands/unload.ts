/** `xttraffic unload`: delete_module of xt_traffic, refused while rules use it. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { unloadModule } from '../system/module.js';
import { emit, examples, optsOf } from '../cmdline/options.js';

export function registerUnload(program: Command, deps: Deps): void {
  program
    .command('unload')
    .description('unload the xt_traffic module (refused while rules use it; the counters are lost)')
    .addHelpText('after', examples(['sudo xttraffic rule del --name lan && sudo xttraffic unload']))
    .action(async (_o: object, cmd: Command) => {
      const o = optsOf<object>(cmd);
      await unloadModule(deps);
      emit(deps, o.json, { unloaded: true }, () => 'unloaded xt_traffic\n');
    });
}
