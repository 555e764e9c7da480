/**
 * What the commands share below them: option parsers, --json/text output, help examples.
 * Commands import this, never each other.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { Deps } from '../core/deps.js';
import { UsageError } from '../core/errors.js';
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

/** The table file `--conn ip|port` names (traffic without it). */
export function kindOf(conn: string | undefined): TableKind {
  if (conn === undefined) return 'traffic';
  if (conn === 'ip') return 'ipconn';
  if (conn === 'port') return 'portconn';
  throw new UsageError(`--conn ${conn}: must be ip or port`);
}
