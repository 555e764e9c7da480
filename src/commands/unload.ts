/** `xttraffic unload`: delete_module of xt_traffic, refused while rules use it. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { unloadModule } from '../system/module.js';
import { emit, examples, optsOf } from '../cmdline/options.js';
import { collectFirst } from '../ledger/collector.js';
import { dbPathFromEnv } from '../ledger/db.js';
import { countersLocation } from '../proc/counters.js';

export function registerUnload(program: Command, deps: Deps): void {
  program
    .command('unload')
    .description('unload the xt_traffic module (refused while rules use it; the counters are lost: a ledger collects first)')
    .addHelpText('after', examples(['sudo xttraffic rule del --name lan && sudo xttraffic unload']))
    .action(async (_o: object, cmd: Command) => {
      const o = optsOf<object>(cmd);
      // the ledger (when there is one) collects first: nothing of a table is lost with the module
      const why = 'unload';
      const r = await collectFirst({
        dbPath: dbPathFromEnv(deps.env), loc: countersLocation(deps.env), why,
        signal: (pid) => process.kill(pid, 'SIGUSR1'), sleep: (ms) => deps.sleep(ms), now: () => deps.now(),
      });
      if (r.how === 'collector') deps.stderr.write(`xttraffic: the collector (pid ${r.pid}) collected before ${why} (${r.ms} ms)\n`);
      if (r.how === 'once') deps.stderr.write(`xttraffic: collected into ${dbPathFromEnv(deps.env)} before ${why} (no collector running)\n`);
      await unloadModule(deps);
      emit(deps, o.json, { unloaded: true }, () => 'unloaded xt_traffic\n');
    });
}
