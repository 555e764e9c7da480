/**
 * The command tree: makeProgram(deps) builds it, run(argv, deps) parses, runs and turns any
 * error into text or JSON on stderr plus an exit code (cli.ts sets process.exitCode from it).
 *
 * Each command's module (and what it imports) is loaded only when needed: run() registers just
 * the command being run, all of them only for what lists them (top-level help, `help`, no or an
 * unknown command). Start-up is part of every command's cost (`read` of a big table included).
 */
import { Command, CommanderError } from 'commander';
import type { Deps } from './core/deps.js';
import { EXIT_USAGE, UsageError, toXtError, type XtError } from './core/errors.js';
import { toJson } from './output/format.js';
import { examples } from './cmdline/options.js';
import { VERSION } from './core/version.js';

export { VERSION } from './core/version.js';

type Register = (program: Command, deps: Deps) => void;

/**
 * Every environment variable xttraffic reads (test/cli/program.test.ts checks this list
 * against the sources) and the exit codes (src/core/errors.ts): the end of `--help`, and
 * README's "Environment and exit codes".
 */
export const ENVIRONMENT_HELP = `
Environment (xttraffic's own start with XTT_; all optional):
  XTT_PROC_DIR=DIR       table files from DIR instead of /proc/net/xt_traffic (read, watch, status)
  XTT_COUNTERS_DIR=DIR   counters files from DIR instead of /proc/net/xt_traffic_counters (collect)
  XTT_DB=FILE            the ledger (collect, report, history, group, quota; --db wins),
                         default /var/lib/xttraffic/ledger.db
  XTT_CACHE=DIR          build output (build, install, load), default .cache in the package
  XTT_BINDING=FILE       the native addon to try first (load, unload, status)
  XTT_ETC=DIR            instead of /etc for boot persistence (install --persist, persist)
  XTT_SYSTEMD_UNITS=DIR  instead of /etc/systemd/system for the units (install --persist)
  XTABLES_LIBDIR=DIRS    iptables' own: where it finds libxt_traffic.so; kept when set, else
                         the package's libxt/ comes first when it holds a built extension
  TMPDIR=DIR             where a cleared read's snapshot is saved when its output fails
                         (read), default /tmp
  XTT_CLOCK_OFFSET_MS=N  a test hook: N ms added to the wall clock the ledger commands see
                         (quota period ends in tests); never set it on a real box

Exit status:
  0  success
  1  runtime error: a command failed, output was lost, status found something broken
  2  usage error: an unknown command or option, a bad value or combination
  3  version or ABI mismatch: Node.js older than 20, a file not in this version's format
  4  missing resource or permission: no such table, module not loaded, not root, tool missing
`;

/** The commands in help order, each loading its module on demand. */
const COMMANDS: ReadonlyArray<readonly [string, () => Promise<Register>]> = [
  ['build', async () => (await import('./commands/build.js')).registerBuild],
  ['install', async () => (await import('./commands/install.js')).registerInstall],
  ['uninstall', async () => (await import('./commands/uninstall.js')).registerUninstall],
  ['load', async () => (await import('./commands/load.js')).registerLoad],
  ['unload', async () => (await import('./commands/unload.js')).registerUnload],
  ['status', async () => (await import('./commands/status.js')).registerStatus],
  ['rule', async () => (await import('./commands/rule.js')).registerRule],
  ['read', async () => (await import('./commands/read.js')).registerRead],
  ['watch', async () => (await import('./commands/watch.js')).registerWatch],
  ['mirror', async () => (await import('./commands/mirror.js')).registerMirror],
  ['collect', async () => (await import('./commands/collect.js')).registerCollect],
  ['report', async () => (await import('./commands/report.js')).registerReport],
  ['history', async () => (await import('./commands/history.js')).registerHistory],
  ['group', async () => (await import('./commands/group.js')).registerGroup],
  ['quota', async () => (await import('./commands/quota.js')).registerQuota],
  ['persist', async () => (await import('./commands/persist.js')).registerPersist],
];

function buildProgram(deps: Deps, registers: Register[]): Command {
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
      'sudo xttraffic collect --interval 60     # the ledger (or systemd/xttraffic-collect.service)',
      'xttraffic report --period 2026-02 --top 10',
    ]) + ENVIRONMENT_HELP)
    .exitOverride();
  for (const register of registers) register(program, deps);
  // a command's hidden --json twin (cmdline/options.ts jsonTwin) takes the global --json's
  // value, so that its options' conflicts('json') see it
  program.hook('preSubcommand', (p, sub) => {
    if (p.getOptionValue('json') === true && sub.options.some((o) => o.long === '--json')) sub.setOptionValueWithSource('json', true, 'cli');
  });

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

/** The whole command tree (every command's module loaded). */
export async function makeProgram(deps: Deps): Promise<Command> {
  return buildProgram(deps, await Promise.all(COMMANDS.map(([, load]) => load())));
}

/**
 * The commands argv needs registered: the one it names (the first word that is not an option:
 * the global options take no value), none for a bare --version, else all (help lists them,
 * commander suggests the nearest for an unknown one).
 */
function commandsFor(argv: readonly string[]): Array<() => Promise<Register>> {
  const word = argv.find((a) => !a.startsWith('-'));
  const named = COMMANDS.find(([name]) => name === word);
  if (named) return [named[1]];
  const help = argv.includes('-h') || argv.includes('--help');
  if (word === undefined && !help && (argv.includes('-V') || argv.includes('--version'))) return [];
  return COMMANDS.map(([, load]) => load);
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
  try {
    // `help NAME` with a NAME that is no command: commander would print the general help, exit 0
    const words = argv.filter((a) => !a.startsWith('-'));
    if (words[0] === 'help' && words[1] !== undefined && words[1] !== 'help' && !COMMANDS.some(([name]) => name === words[1])) {
      throw new UsageError(`unknown command '${words[1]}'`, { hint: 'see xttraffic --help' });
    }
    const program = buildProgram(deps, await Promise.all(commandsFor(argv).map((load) => load())));
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      if (e.code === 'commander.help' && e.exitCode === 0) return 0; // `xttraffic help [COMMAND]`
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
