/**
 * The command tree: makeProgram(deps) builds it, run(argv, deps) parses, runs and turns any
 * error into text or JSON on stderr plus an exit code (cli.ts sets process.exitCode from it).
 */
import { Command, CommanderError } from 'commander';
import { registerBuild } from './commands/build.js';
import { registerInstall } from './commands/install.js';
import { registerLoad } from './commands/load.js';
import { registerMirror } from './commands/mirror.js';
import { registerRead } from './commands/read.js';
import { registerRule } from './commands/rule.js';
import { registerStatus } from './commands/status.js';
import { registerUninstall } from './commands/uninstall.js';
import { registerUnload } from './commands/unload.js';
import { registerWatch } from './commands/watch.js';
import type { Deps } from './lib/deps.js';
import { EXIT_USAGE, UsageError, toXtError, type XtError } from './lib/errors.js';
import { toJson } from './lib/format.js';

export const VERSION = '0.1.0';

export interface GlobalOptions {
  json?: boolean;
}

/** Options of a command merged with the global ones. */
export function optsOf<T>(cmd: Command): T & GlobalOptions {
  return cmd.optsWithGlobals<T & GlobalOptions>();
}

/** Prints one JSON document (with --json) or text. */
export function emit(deps: Deps, json: boolean | undefined, data: unknown, text: () => string): void {
  deps.stdout.write(json ? `${toJson(data)}\n` : text());
}

export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

export function makeProgram(deps: Deps): Command {
  const program = new Command('xttraffic')
    .description('Per-IP traffic and connection accounting with one iptables rule (the xt_traffic match)')
    .version(VERSION, '-V, --version')
    .option('--json', 'print one JSON document (errors too, on stderr)')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addHelpText('after', examples([
      'sudo xttraffic build && sudo xttraffic install',
      'sudo xttraffic load',
      'sudo xttraffic rule add --name lan --net 192.168.0.0/16 --traffic --ipconn',
      'sudo xttraffic read lan --sort total --top 10 --human',
      'sudo xttraffic watch lan',
    ]))
    .exitOverride();
  registerBuild(program, deps);
  registerInstall(program, deps);
  registerUninstall(program, deps);
  registerLoad(program, deps);
  registerUnload(program, deps);
  registerStatus(program, deps);
  registerRule(program, deps);
  registerRead(program, deps);
  registerWatch(program, deps);
  registerMirror(program, deps);

  // Every command: help and errors through deps, commander's own exits as exceptions.
  const configure = (c: Command) => {
    c.exitOverride().configureOutput({
      writeOut: (s) => deps.stdout.write(s),
      writeErr: (s) => deps.stderr.write(s),
      outputError: () => undefined, // run() prints it (as JSON with --json)
    });
    c.commands.forEach(configure);
  };
  configure(program);
  return program;
}

function printError(deps: Deps, err: XtError, json: boolean): void {
  if (json) {
    deps.stderr.write(`${toJson({ error: err.toJSON() })}\n`);
    return;
  }
  deps.stderr.write(`xttraffic: ${err.message}\n`);
  if (err.hint) deps.stderr.write(`hint: ${err.hint}\n`);
}

/** Parses `argv` (the user's arguments, without node and the script), runs, returns the exit code. */
export async function run(argv: string[], deps: Deps): Promise<number> {
  const json = argv.includes('--json');
  const program = makeProgram(deps);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      // commander.help: no command given; the others are usage errors (unknown option, ...)
      const msg = e.code === 'commander.help' ? 'no command given' : e.message.replace(/^error: /, '');
      printError(deps, new UsageError(msg, { hint: 'see xttraffic --help' }), json);
      return EXIT_USAGE;
    }
    const err = toXtError(e);
    printError(deps, err, json);
    return err.exitCode;
  }
}
