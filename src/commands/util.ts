/** Small helpers shared by the commands (argument parsing). */
import { InvalidArgumentError } from 'commander';

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
