/** `xttraffic install`: the module (depmod, or DKMS) and libxt_traffic.so. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { install } from '../system/install.js';
import { emit, examples, optsOf } from '../cmdline/options.js';
import { VERSION } from '../core/version.js';

interface InstallOptions {
  dkms?: boolean;
}

export function registerInstall(program: Command, deps: Deps): void {
  program
    .command('install')
    .description('install the module for the running kernel (depmod) and libxt_traffic.so into the xtables directory')
    .option('--dkms', 'register the module with DKMS instead, so kernel upgrades rebuild it')
    .addHelpText('after', examples(['xttraffic build && sudo xttraffic install', 'sudo xttraffic install --dkms', 'sudo modprobe xt_traffic   # once installed']))
    .action(async (_o: InstallOptions, cmd: Command) => {
      const o = optsOf<InstallOptions>(cmd);
      const r = await install(deps, { dkms: o.dkms, version: VERSION });
      emit(deps, o.json, r, () =>
        `installed for ${r.release}:\n  module: ${r.module.dkms ? `DKMS ${r.module.version} (${r.module.path})` : r.module.path}\n  extension: ${r.extension.path}\n`);
    });
}
