/** `xttraffic install`: the module (depmod, or DKMS) and libxt_traffic.so. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { install } from '../system/install.js';
import { emit, examples, optsOf } from '../cmdline/options.js';
import { VERSION } from '../core/version.js';

interface InstallOptions {
  dkms?: boolean;
  persist?: boolean;
}

export function registerInstall(program: Command, deps: Deps): void {
  program
    .command('install')
    .description('install the module for the running kernel (depmod) and libxt_traffic.so into the xtables directory')
    .option('--dkms', 'register the module with DKMS instead, so kernel upgrades rebuild it')
    .option('--persist', 'also at boot: load the module (modules-load.d) and restore what `xttraffic persist save` saved (xttraffic-restore.service)')
    .addHelpText('after', examples(['xttraffic build && sudo xttraffic install', 'sudo xttraffic install --dkms --persist', 'sudo modprobe xt_traffic   # once installed']))
    .action(async (_o: InstallOptions, cmd: Command) => {
      const o = optsOf<InstallOptions>(cmd);
      const r = await install(deps, { dkms: o.dkms, persist: o.persist, version: VERSION });
      emit(deps, o.json, r, () =>
        `installed for ${r.release}:\n  module: ${r.module.dkms ? `DKMS ${r.module.version} (${r.module.path})` : r.module.path}\n  extension: ${r.extension.path}\n` +
        (r.persist
          ? `  at boot:\n${r.persist.files.map((f) => `    ${f.path}${f.state === 'kept' ? ' (exists and is not ours: left alone)' : ''}\n`).join('')}` +
            `${r.persist.enabled.map((l) => `    ${l}\n`).join('')}` +
            `  systemd: ${r.persist.systemd === 'reloaded' ? 'units reloaded' : 'not running (the units take effect at the next boot)'}\n` +
            'then, once the rules and the mirror are in place: sudo xttraffic persist save\n'
          : ''));
    });
}
