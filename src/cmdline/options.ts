/**
 * What the commands share below them: option parsers, --json/text output, help examples.
 * Commands import this, never each other.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Deps } from '../core/deps.js';
import type { TableKind } from '../proc/names.js';
import { toJson } from '../output/format.js';

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

/** A commander argParser for positive integers. */
export function positiveInt(what: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(`${what} must be a positive integer`);
    return Number(v);
  };
}

/** A commander argParser for positive numbers of seconds. */
export function seconds(v: string): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !(n >= 0.1) || n > 86400) throw new InvalidArgumentError('must be a number of seconds, 0.1..86400');
  return n;
}

/** Collects a repeatable option into an array. */
export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** What `--conn` takes (commander checks it: `choices`). */
export type Conn = 'ip' | 'port';

/** `--conn ip|port` (read, watch): commander refuses any other value, naming it. */
export function connOption(description: string): Option {
  return new Option('--conn <ip|port>', description).choices(['ip', 'port']);
}

/** The table file `--conn ip|port` names (traffic without it). */
export function kindOf(conn: Conn | undefined): TableKind {
  return conn === undefined ? 'traffic' : conn === 'ip' ? 'ipconn' : 'portconn';
}

/**
 * `--json` is the program's option: commander gives it to the program wherever it stands on
 * the command line, so a command's own options cannot name it in `conflicts()`. A command
 * whose options conflict with --json adds this hidden twin; program.ts sets it from the global
 * one before the command parses, and commander's conflict check then sees it.
 */
export function jsonTwin(): Option {
  return new Option('--json').hideHelp();
}
