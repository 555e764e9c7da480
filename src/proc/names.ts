/**
 * Constants of the uapi header (kernel/include/uapi/linux/netfilter/xt_traffic.h) and the
 * table-name rules of docs/design.md. Pure. test/unit/native.test.ts checks these copies
 * against the values the addon compiles from the header.
 */
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.js';

export const XT_TRAFFIC_NAME_LEN = 32;
export const XT_TRAFFIC_HASHSIZE_MAX = 1 << 22;
export const XT_TRAFFIC_SUFFIX_IPCONN = '_ipconn';
export const XT_TRAFFIC_SUFFIX_PORTCONN = '_portconn';
export const XT_TRAFFIC_SUFFIX_INFO = '_info';
export const XT_TRAFFIC_PROC_DIR = 'xt_traffic';

export const XT_TRAFFIC_TRAFFIC = 1 << 0;
export const XT_TRAFFIC_PORTCONN = 1 << 1;
export const XT_TRAFFIC_IPCONN = 1 << 2;
export const XT_TRAFFIC_CLEARONREAD = 1 << 3;
export const XT_TRAFFIC_NOINTERNAL = 1 << 4;
export const XT_TRAFFIC_ONLYINTERNAL = 1 << 5;

export const MODULE_NAME = 'xt_traffic';
export const DEFAULT_PROC_DIR = `/proc/net/${XT_TRAFFIC_PROC_DIR}`;

/**
 * The directory of the table files: $XTT_PROC_DIR when set (any directory of files in the
 * kernel's formats: for tests, benchmarks, or tables copied from another machine), else
 * /proc/net/xt_traffic of the current network namespace. Every library function and the CLI
 * use it when no procDir is given.
 */
export function procDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const d = env['XTT_PROC_DIR'];
  return d ? resolve(d) : DEFAULT_PROC_DIR;
}

export type TableKind = 'traffic' | 'ipconn' | 'portconn';

/** Why `name` is not a valid table name, or undefined if it is one. */
export function tableNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'a table name must not be empty';
  if (name.length > XT_TRAFFIC_NAME_LEN - 1) return `table name "${name}" is longer than ${XT_TRAFFIC_NAME_LEN - 1} characters`;
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) return `table name "${name}" may only contain letters, digits, "_", "." and "-"`;
  if (name === '.' || name === '..') return `table name "${name}" is not allowed`;
  for (const s of [XT_TRAFFIC_SUFFIX_IPCONN, XT_TRAFFIC_SUFFIX_PORTCONN, XT_TRAFFIC_SUFFIX_INFO]) {
    if (name.endsWith(s)) return `table name "${name}" must not end in "${s}" (that is the name of one of its files)`;
  }
  return undefined;
}

/** Throws a UsageError (exit 2) unless `name` is a valid table name. */
export function checkTableName(name: string): string {
  const p = tableNameProblem(name);
  if (p !== undefined) throw new UsageError(p, { hint: 'names are 1..31 characters of [A-Za-z0-9_.-]' });
  return name;
}

/** File name under /proc/net/xt_traffic/ of a table's kind. */
export function tableFile(name: string, kind: TableKind | 'info'): string {
  switch (kind) {
    case 'traffic':
      return name;
    case 'ipconn':
      return name + XT_TRAFFIC_SUFFIX_IPCONN;
    case 'portconn':
      return name + XT_TRAFFIC_SUFFIX_PORTCONN;
    default:
      return name + XT_TRAFFIC_SUFFIX_INFO;
  }
}
