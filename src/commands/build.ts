/** `xttraffic build`: the kernel module, the iptables extension and the addon. */
import type { Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { build } from '../system/install.js';
import { emit, examples, optsOf } from '../cmdline/options.js';

interface BuildOptions {
  kernelHeaders?: string;
}

export function registerBuild(program: Command, deps: Deps): void {
  program
    .command('build')
    .description('build the kernel module, the iptables extension and the native addon')
    .option('--kernel-headers <dir>', 'kernel headers to build against (default: /lib/modules/$(uname -r)/build)')
    .addHelpText('after', examples([
      'xttraffic build',
      'xttraffic build --kernel-headers /usr/src/linux-headers-6.12.117+deb12-amd64',
    ]))
    .action(async (_o: BuildOptions, cmd: Command) => {
      const o = optsOf<BuildOptions>(cmd);
      // Progress (and the compilers' output) only on a terminal, never mixed with --json.
      const progress = deps.stderr.isTTY && !o.json ? deps.stderr : undefined;
      const r = await build(deps, o, progress);
      emit(deps, o.json, r, () => `built for ${r.release}:\n  ${r.module}\n  ${r.extension}\n  ${r.addon}\n`);
    });
}
