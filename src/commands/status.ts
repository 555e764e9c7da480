/** `xttraffic status`: module, addon, iptables backend and extension, and every table. */
import type { Command } from 'commander';
import type { BindingAttempt } from '../system/binding.js';
import type { Deps } from '../core/deps.js';
import { RuntimeError, toXtError, type XtErrorJson } from '../core/errors.js';
import { renderTable } from '../output/format.js';
import { moduleState, type ModuleState } from '../system/module.js';
import type { TableInfo } from '../proc/parse.js';
import { listTables, readInfo } from '../proc/tables.js';
import { iptablesEnv, iptablesMessage, parseBackend, type Backend } from '../system/xtables.js';
import { emit, examples, optsOf } from '../cmdline/options.js';

export interface Status {
  module: ModuleState;
  addon: { loaded: boolean; path?: string | undefined; tried: BindingAttempt[] };
  iptables: { found: boolean; version?: string | undefined; backend?: Backend | undefined };
  extension: { found: boolean; libdir?: string | undefined; error?: string | undefined };
  tables: Array<{ name: string; info?: TableInfo; error?: XtErrorJson }>;
}

function addonStatus(deps: Deps): Status['addon'] {
  const s = deps.bindingStatus();
  return { loaded: s.path !== undefined, path: s.path, tried: s.tried };
}

export async function getStatus(deps: Deps): Promise<Status> {
  const env = await iptablesEnv(deps);
  const v = await deps.run('iptables', ['-V'], { env });
  const iptables: Status['iptables'] = v.code === 0 && !v.notFound
    ? { found: true, version: v.stdout.trim(), backend: parseBackend(v.stdout) }
    : { found: false };
  let extension: Status['extension'] = { found: false };
  if (iptables.found) {
    const h = await deps.run('iptables', ['-m', 'traffic', '-h'], { env });
    extension = h.code === 0
      ? { found: true, libdir: env['XTABLES_LIBDIR'] }
      : { found: false, error: iptablesMessage(h) };
  }
  const tables: Status['tables'] = [];
  for (const name of await listTables({ proc: deps.paths.proc })) {
    try {
      tables.push({ name, info: await readInfo(name, { proc: deps.paths.proc, readFile: deps.readProcFile }) });
    } catch (e) {
      tables.push({ name, error: toXtError(e).toJSON() });
    }
  }
  return { module: moduleState(deps), addon: addonStatus(deps), iptables, extension, tables };
}

function entries(i: TableInfo): string {
  const e: string[] = [];
  if (i.trafficEntries !== undefined) e.push(`traffic ${i.trafficEntries}`);
  if (i.ipconnEntries !== undefined) e.push(`ipconn ${i.ipconnEntries}`);
  if (i.portconnEntries !== undefined) e.push(`portconn ${i.portconnEntries}`);
  return e.join(', ');
}

function options(i: TableInfo): string {
  return Object.entries(i.options).filter(([, on]) => on).map(([k]) => k).join(' ');
}

export function renderStatus(s: Status): string {
  const lines: string[] = [];
  const m = s.module;
  lines.push(`module:     ${m.loaded ? `xt_traffic loaded${m.version ? `, version ${m.version}` : ''}${m.refcnt !== undefined ? `, used by ${m.refcnt}` : ''}` : 'xt_traffic not loaded'}`);
  lines.push(`addon:      ${s.addon.loaded ? `loaded (${s.addon.path ?? ''})` : `not available (tried ${s.addon.tried.map((t) => t.path).join(', ')}): load/unload need it`}`);
  lines.push(`iptables:   ${s.iptables.found ? `${s.iptables.version} (backend: ${s.iptables.backend ?? 'unknown'})` : 'not found'}`);
  lines.push(`extension:  ${s.extension.found ? `libxt_traffic found${s.extension.libdir ? ` (XTABLES_LIBDIR=${s.extension.libdir})` : ''}` : `not found${s.extension.error ? `: ${s.extension.error}` : ''}`}`);
  if (s.tables.length === 0) {
    lines.push('tables:     none in this network namespace');
    return `${lines.join('\n')}\n`;
  }
  lines.push('tables:');
  const rows = s.tables.map((t) =>
    t.info
      ? [t.name, t.info.family, `${t.info.netbase}/${t.info.prefixLength}`, `/${t.info.hostPrefix}`, options(t.info), String(t.info.hashsize), String(t.info.rules), entries(t.info), t.info.overflow.toString()]
      : [t.name, '', `error: ${t.error?.message ?? ''}`, '', '', '', '', '', ''],
  );
  const table = renderTable({
    headers: ['NAME', 'FAMILY', 'NET', 'PER', 'OPTIONS', 'HASHSIZE', 'RULES', 'ENTRIES', 'OVERFLOW'],
    rows,
    align: ['left', 'left', 'left', 'right', 'left', 'right', 'right', 'left', 'right'],
  });
  return `${lines.join('\n')}\n${table.replace(/^(?=.)/gm, '  ')}`;
}

/**
 * What is broken, one phrase each; empty when healthy. Checked: the module is loaded, iptables
 * is found, the extension loads, every table's _info reads. The addon is not (only load/unload
 * need it) and neither is having no tables (no rule yet).
 */
export function problems(s: Status): string[] {
  const p: string[] = [];
  if (!s.module.loaded) p.push('module xt_traffic not loaded');
  if (!s.iptables.found) p.push('iptables not found');
  else if (!s.extension.found) p.push('extension libxt_traffic not found');
  for (const t of s.tables) if (t.error) p.push(`table ${t.name} unreadable`);
  return p;
}

export function registerStatus(program: Command, deps: Deps): void {
  program
    .command('status')
    .description('show the module, the addon, iptables and every table of this network namespace')
    .addHelpText('after', `
Exit status (a health check): 0 when everything checked is fine; 1 when something is
broken (module not loaded, iptables not found, extension not found, a table unreadable),
after printing the same output, with one line on stderr naming what failed. The addon and
having no tables yet do not count. Other errors keep their codes (2 usage, 4 resource).
${examples(['xttraffic status', 'xttraffic status --json | jq .tables', 'xttraffic status >/dev/null || echo broken', 'sudo ip netns exec blue xttraffic status'])}`)
    .action(async (_o: object, cmd: Command) => {
      const o = optsOf<object>(cmd);
      const s = await getStatus(deps);
      emit(deps, o.json, s, () => renderStatus(s));
      const p = problems(s);
      if (p.length > 0) {
        throw new RuntimeError('EUNHEALTHY', `status: ${p.length} check${p.length === 1 ? '' : 's'} failed: ${p.join(', ')}`);
      }
    });
}
