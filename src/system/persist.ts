/**
 * Boot persistence: what a router needs after a reboot comes back by itself.
 *
 * Files (all under deps.paths.etc, default /etc, and deps.paths.systemdUnits, default
 * /etc/systemd/system), each starting with the MARKER line so that `uninstall` removes only
 * what xttraffic wrote and never an operator's file of the same name:
 *  - modules-load.d/xttraffic.conf   `xt_traffic` (install --persist): systemd-modules-load
 *                                    loads the module early at boot;
 *  - modprobe.d/xttraffic.conf       `options xt_traffic K=V ...` (persist save): the loaded
 *                                    module's parameters that differ from the defaults;
 *  - xttraffic/rules.v4              the -m traffic rules only, iptables-save format (persist save);
 *  - xttraffic/persist.conf          the iptables backend and the mirror interfaces (persist save);
 *  - systemd units xttraffic-restore.service (and xttraffic-collect.service when the package has
 *    it), enabled by a symlink in TARGET.wants/ for each WantedBy= (install --persist).
 *
 * At boot xttraffic-restore.service (oneshot, after the module is loaded and after the
 * distribution's firewall restore, before network-pre.target and the collector) runs
 * `xttraffic persist restore`: the mirror set-up first (it creates the raw PROMISC chain the
 * mirror's rules live in), then every saved rule that is missing (`iptables -C`, then `-N` for a
 * missing user chain and `-A`). Nothing else in the firewall is touched: no iptables-restore,
 * no flush; a rule already there (the firewall's own restore may have brought it) is kept.
 * Restored rules are appended to their chain, as `xttraffic rule add` does.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Deps } from '../core/deps.js';
import { ResourceError, UsageError } from '../core/errors.js';
import { MODULE_NAME } from '../proc/names.js';
import { parseRawSave } from './mirror.js';
import { parseSave, tokenize } from './rule.js';
import type { Backend } from './xtables.js';

export const MARKER = '# xttraffic:';
export const RESTORE_UNIT = 'xttraffic-restore.service';
export const COLLECT_UNIT = 'xttraffic-collect.service';
export const UNITS = [RESTORE_UNIT, COLLECT_UNIT] as const;

/** The module's parameters and their defaults (kernel/xt_traffic.c MODULE_PARM_DESC). */
export const PARAM_DEFAULTS: Readonly<Record<string, string>> = {
  max_entries: '1048576',
  flow_timeout: '30',
  proc_perms: '0600',
  proc_uid: '0',
  proc_gid: '0',
  // a bool: /sys shows Y or N, saved as 1 or 0
  packets: '0',
  // seconds an entry must be idle before a table created with it may free it (0: never)
  reclaim_idle: '0',
};

/** Parameters that are bools in the module (sysfs Y/N, module option 0/1). */
const BOOL_PARAMS: ReadonlySet<string> = new Set(['packets']);

export interface PersistPaths {
  modulesLoad: string;
  modprobe: string;
  dir: string;
  rules: string;
  conf: string;
  units: string;
}

export function persistPaths(deps: Deps): PersistPaths {
  const etc = deps.paths.etc;
  return {
    modulesLoad: join(etc, 'modules-load.d', 'xttraffic.conf'),
    modprobe: join(etc, 'modprobe.d', 'xttraffic.conf'),
    dir: join(etc, 'xttraffic'),
    rules: join(etc, 'xttraffic', 'rules.v4'),
    conf: join(etc, 'xttraffic', 'persist.conf'),
    units: deps.paths.systemdUnits,
  };
}

// ---------------------------------------------------------------------------------------------
// Pure: file contents

export function modulesLoadText(): string {
  return `${MARKER} written by \`xttraffic install --persist\`; \`xttraffic uninstall\` removes it\n${MODULE_NAME}\n`;
}

/** Parameter values as a module option: octal for proc_perms, decimal otherwise. */
function paramValue(key: string, sysValue: string): string {
  if (BOOL_PARAMS.has(key) && /^[YN]$/.test(sysValue)) return sysValue === 'Y' ? '1' : '0';
  return key === 'proc_perms' && /^\d+$/.test(sysValue) ? `0${Number(sysValue).toString(8)}` : sysValue;
}

/** A module parameter's number: a leading 0 means octal, as the kernel's kstrtouint(s, 0). */
function numeric(v: string): number {
  return v.length > 1 && v.startsWith('0') ? Number.parseInt(v, 8) : Number.parseInt(v, 10);
}

/** The parameters of /sys/module/xt_traffic/parameters (name -> value) that differ from the defaults. */
export function changedParams(sys: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(sys).sort(([a], [b]) => a.localeCompare(b))) {
    const val = paramValue(k, v.trim());
    const def = PARAM_DEFAULTS[k];
    if (def !== undefined && numeric(val) === numeric(def)) continue;
    out.push(`${k}=${val}`);
  }
  return out;
}

/** KEY=VALUE parameters checked against the module's. */
export function checkParams(params: string[]): string[] {
  for (const p of params) {
    const m = /^([a-z_]+)=([0-9]+)$/.exec(p);
    if (!m) throw new UsageError(`--param ${p}: expected KEY=NUMBER, e.g. max_entries=65536`);
    if (!(m[1]! in PARAM_DEFAULTS)) throw new UsageError(`--param ${p}: ${MODULE_NAME} has no parameter ${m[1]}`, { hint: `its parameters: ${Object.keys(PARAM_DEFAULTS).join(', ')}` });
    if (BOOL_PARAMS.has(m[1]!) && m[2] !== '0' && m[2] !== '1') throw new UsageError(`--param ${p}: ${m[1]} is 0 or 1`);
  }
  return params;
}

export function modprobeText(params: string[]): string {
  return `${MARKER} written by \`xttraffic persist save\` (the loaded module's parameters); \`xttraffic uninstall\` removes it\noptions ${MODULE_NAME} ${params.join(' ')}\n`;
}

/** The parameters in a modprobe.d file of ours. */
export function parseModprobe(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    if (t[0] === 'options' && t[1] === MODULE_NAME) out.push(...t.slice(2));
  }
  return out;
}

export interface SavedTrafficRule {
  table: string;
  chain: string;
  /** The rule's arguments after `-A CHAIN`. */
  args: string[];
  /** The line as in the file. */
  line: string;
  /** The chain is a user-defined one (`:CHAIN - [0:0]` in the file): restore creates it if missing. */
  userChain: boolean;
  /** --name of its traffic match. */
  name: string;
}

/** Chains per table in iptables-save output (`:NAME POLICY [p:b]`), the user-defined ones only
 * (policy `-`) when `userOnly`. */
function chainsOf(save: string, userOnly: boolean): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      out.set(table, out.get(table) ?? new Set());
    } else if (line.startsWith(':')) {
      const m = /^:(\S+)(?: (\S+))?/.exec(line);
      if (m && (!userOnly || m[2] === '-')) out.get(table)?.add(m[1]!);
    }
  }
  return out;
}

/** User-defined chains per table in iptables-save output (`:NAME - [p:b]`). */
export function userChains(save: string): Map<string, Set<string>> {
  return chainsOf(save, true);
}

/** All chains (built-in and user) per table in iptables-save output. */
export function allChains(save: string): Map<string, Set<string>> {
  return chainsOf(save, false);
}

/** rules.v4: only the -m traffic rules of iptables-save output (no counters), per table. */
export function renderRules(save: string, savedAt: string): { text: string; count: number } {
  const rules = parseSave(save.replace(/^\[\d+:\d+\] /gm, ''));
  const user = userChains(save);
  const tables: string[] = [];
  for (const r of rules) if (!tables.includes(r.table)) tables.push(r.table);
  const lines = [
    `${MARKER} the -m traffic rules, saved by \`xttraffic persist save\` at ${savedAt}.`,
    '# Restored at boot by `xttraffic persist restore` (xttraffic-restore.service), which appends each',
    '# rule that is missing (iptables -C, then -A): the rest of the firewall is left alone. Do not feed',
    '# this file to iptables-restore without --noflush: it holds only these rules.',
  ];
  for (const t of tables) {
    lines.push(`*${t}`);
    const mine = rules.filter((r) => r.table === t);
    const chains = [...new Set(mine.map((r) => r.chain))].filter((c) => user.get(t)?.has(c));
    for (const c of chains) lines.push(`:${c} - [0:0]`);
    for (const r of mine) lines.push(r.line);
    lines.push('COMMIT');
  }
  return { text: `${lines.join('\n')}\n`, count: rules.length };
}

/** The rules of a rules.v4 file. */
export function parseRulesFile(text: string, path = 'rules.v4'): SavedTrafficRule[] {
  const out: SavedTrafficRule[] = [];
  let table: string | undefined;
  let user = new Set<string>();
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      user = new Set();
    } else if (line.startsWith(':')) {
      user.add(line.slice(1).split(' ')[0]!);
    } else if (line === 'COMMIT') {
      table = undefined;
    } else if (line.startsWith('-A ') && table !== undefined) {
      const t = tokenize(line);
      const parsed = parseSave(`*${table}\n${line}\n`)[0];
      if (!parsed || t.length < 3) throw new ResourceError('EPERSIST', `${path}: line ${i + 1}: not a -m traffic rule: ${line}`, { hint: '`xttraffic persist save` writes it anew' });
      out.push({ table, chain: t[1]!, args: t.slice(2), line, userChain: user.has(t[1]!), name: parsed.match.name });
    } else {
      throw new ResourceError('EPERSIST', `${path}: line ${i + 1}: unexpected ${JSON.stringify(line)}`, { hint: '`xttraffic persist save` writes it anew' });
    }
  }
  return out;
}

export interface PersistConf {
  backend: Backend | undefined;
  mirrors: string[];
  savedAt: string | undefined;
}

export function renderConf(c: PersistConf): string {
  return [
    `${MARKER} written by \`xttraffic persist save\`; read at boot by \`xttraffic persist restore\``,
    `saved=${c.savedAt ?? ''}`,
    `backend=${c.backend ?? 'iptables'}`,
    ...c.mirrors.map((m) => `mirror=${m}`),
    '',
  ].join('\n');
}

export function parseConf(text: string, path = 'persist.conf'): PersistConf {
  const c: PersistConf = { backend: undefined, mirrors: [], savedAt: undefined };
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z]+)=(.*)$/.exec(line);
    const bad = () => new ResourceError('EPERSIST', `${path}: line ${i + 1}: unexpected ${JSON.stringify(raw)}`, { hint: '`xttraffic persist save` writes it anew' });
    if (!m) throw bad();
    const [k, v] = [m[1]!, m[2]!];
    if (k === 'backend') {
      if (v !== 'iptables' && v !== 'nft' && v !== 'legacy') throw bad();
      c.backend = v === 'iptables' ? undefined : v;
    } else if (k === 'mirror') c.mirrors.push(v);
    else if (k === 'saved') c.savedAt = v || undefined;
    else throw bad();
  }
  return c;
}

/** `@XTTRAFFIC@` (the command) and `@ETC@` in a unit template. */
export function unitText(template: string, command: string, etc: string): string {
  return template.replaceAll('@XTTRAFFIC@', command).replaceAll('@ETC@', etc);
}

/** The targets of the [Install] section's WantedBy= lines. */
export function wantedBy(unit: string): string[] {
  const out: string[] = [];
  let install = false;
  for (const raw of unit.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) install = line === '[Install]';
    else if (install && line.startsWith('WantedBy=')) out.push(...line.slice(9).trim().split(/\s+/).filter((x) => x !== ''));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Files

/** Whether the file exists and xttraffic wrote it (its first line is the marker). */
export function ours(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').startsWith(MARKER);
  } catch {
    return false;
  }
}

function fsError(e: unknown, path: string, what: string): ResourceError {
  const err = e as NodeJS.ErrnoException;
  return new ResourceError(err.code ?? 'EIO', `${what} ${path}: ${err.message}`, {
    path,
    hint: err.code === 'EACCES' || err.code === 'EPERM' ? 'run it as root (sudo)' : undefined,
  });
}

/** Writes a file of ours; a file of the same name that is not ours is kept (returns false). */
export function writeOurs(path: string, text: string): 'written' | 'unchanged' | 'kept' {
  if (existsSync(path) && !ours(path)) return 'kept';
  try {
    if (existsSync(path) && readFileSync(path, 'utf8') === text) return 'unchanged';
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return 'written';
  } catch (e) {
    throw fsError(e, path, 'cannot write');
  }
}

function removeOurs(path: string, removed: string[]): void {
  if (!ours(path)) return;
  try {
    rmSync(path);
  } catch (e) {
    throw fsError(e, path, 'cannot remove');
  }
  removed.push(path);
}

function readIf(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// install --persist / uninstall

export interface PersistInstallResult {
  /** What was written (or found written already). */
  files: Array<{ path: string; state: 'written' | 'unchanged' | 'kept' }>;
  enabled: string[];
  systemd: 'reloaded' | 'not running';
}

/** The command the units run: this node and this package's CLI, by absolute paths. */
export function cliCommand(deps: Deps): string {
  return `${process.execPath} ${join(deps.paths.root, 'dist', 'cli.js')}`;
}

async function daemonReload(deps: Deps): Promise<'reloaded' | 'not running'> {
  const r = await deps.run('systemctl', ['daemon-reload']);
  return r.code === 0 && !r.notFound ? 'reloaded' : 'not running';
}

export async function installPersist(deps: Deps): Promise<PersistInstallResult> {
  const p = persistPaths(deps);
  const files: PersistInstallResult['files'] = [];
  files.push({ path: p.modulesLoad, state: writeOurs(p.modulesLoad, modulesLoadText()) });
  try {
    mkdirSync(p.dir, { recursive: true });
  } catch (e) {
    throw fsError(e, p.dir, 'cannot create');
  }
  const enabled: string[] = [];
  for (const unit of UNITS) {
    const template = readIf(join(deps.paths.root, 'systemd', unit));
    if (template === undefined) continue; // the collector's unit ships with the ledger
    const text = unitText(template, cliCommand(deps), deps.paths.etc);
    const dest = join(p.units, unit);
    const state = writeOurs(dest, text.startsWith(MARKER) ? text : `${MARKER} installed by \`xttraffic install --persist\`\n${text}`);
    files.push({ path: dest, state });
    if (state === 'kept') continue;
    for (const target of wantedBy(text)) {
      const link = join(p.units, `${target}.wants`, unit);
      try {
        if (!existsSync(link) && !isSymlink(link)) {
          mkdirSync(dirname(link), { recursive: true });
          symlinkSync(dest, link);
        }
      } catch (e) {
        throw fsError(e, link, 'cannot create');
      }
      enabled.push(link);
    }
  }
  return { files, enabled, systemd: await daemonReload(deps) };
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Removes every persistence file xttraffic wrote (and nothing else). */
export async function uninstallPersist(deps: Deps): Promise<string[]> {
  const p = persistPaths(deps);
  const removed: string[] = [];
  let units = false;
  for (const unit of UNITS) {
    const dest = join(p.units, unit);
    if (!ours(dest)) continue;
    let wantsDirs: string[] = [];
    try {
      wantsDirs = readdirSync(p.units).filter((d) => d.endsWith('.wants'));
    } catch {
      wantsDirs = [];
    }
    for (const d of wantsDirs) {
      const link = join(p.units, d, unit);
      if (isSymlink(link) && readlinkSync(link) === dest) {
        rmSync(link);
        removed.push(link);
        try {
          rmdirSync(join(p.units, d)); // only when empty
        } catch {
          /* not empty: other units are enabled there */
        }
      }
    }
    removeOurs(dest, removed);
    units = true;
  }
  for (const f of [p.modulesLoad, p.modprobe, p.rules, p.conf]) removeOurs(f, removed);
  try {
    if (existsSync(p.dir) && readdirSync(p.dir).length === 0) {
      rmdirSync(p.dir);
      removed.push(p.dir);
    }
  } catch {
    /* kept */
  }
  if (units) await daemonReload(deps);
  return removed;
}

// ---------------------------------------------------------------------------------------------
// What is saved

export interface Saved {
  modulesLoad: boolean;
  params: string[];
  conf: PersistConf | undefined;
  rules: SavedTrafficRule[];
  units: Array<{ unit: string; installed: boolean; enabled: string[] }>;
}

export function readSaved(deps: Deps): Saved {
  const p = persistPaths(deps);
  const mp = readIf(p.modprobe);
  const conf = readIf(p.conf);
  const rules = readIf(p.rules);
  const units = UNITS.map((unit) => {
    const dest = join(p.units, unit);
    const text = readIf(dest);
    const enabled = text === undefined ? [] : wantedBy(text).filter((t) => isSymlink(join(p.units, `${t}.wants`, unit)));
    return { unit, installed: text !== undefined, enabled };
  });
  return {
    modulesLoad: (readIf(p.modulesLoad) ?? '').split('\n').some((l) => l.trim() === MODULE_NAME),
    params: mp === undefined ? [] : parseModprobe(mp),
    conf: conf === undefined ? undefined : parseConf(conf, p.conf),
    rules: rules === undefined ? [] : parseRulesFile(rules, p.rules),
    units,
  };
}

/** The mirror interfaces enabled in iptables-save output (raw table). */
export function mirrorsOf(save: string): string[] {
  return [...parseRawSave(save).mirrors.keys()];
}

/** Whether a saved rule is in iptables-save output (same table, chain and arguments). */
export function presentIn(save: string, rules: SavedTrafficRule[]): boolean[] {
  const live = parseSave(save.replace(/^\[\d+:\d+\] /gm, '')).map((r) => `${r.table}\0${r.chain}\0${r.args.join('\0')}`);
  return rules.map((r) => live.includes(`${r.table}\0${r.chain}\0${r.args.join('\0')}`));
}

// ---------------------------------------------------------------------------------------------
// persist save

export interface SaveResult {
  rules: { path: string; count: number; state: string };
  conf: { path: string; backend: string; mirrors: string[]; state: string };
  modprobe: { path: string; params: string[]; state: string };
}

/**
 * Writes rules.v4, persist.conf and modprobe.d/xttraffic.conf from the running system:
 * `save` is iptables-save output of the backend, `params` the module's parameters to keep
 * (undefined: the module is not loaded, modprobe.d is left as it is).
 */
export function writeSaved(deps: Deps, save: string, backend: Backend | undefined, params: string[] | undefined, savedAt: string): SaveResult {
  const p = persistPaths(deps);
  const rules = renderRules(save, savedAt);
  const mirrors = mirrorsOf(save);
  const rulesState = writeOurs(p.rules, rules.text);
  const confState = writeOurs(p.conf, renderConf({ backend, mirrors, savedAt }));
  let mpState: string;
  if (params === undefined) mpState = ours(p.modprobe) ? 'unchanged' : existsSync(p.modprobe) ? 'kept' : 'none';
  else if (params.length > 0) mpState = writeOurs(p.modprobe, modprobeText(params));
  else if (ours(p.modprobe)) {
    const removed: string[] = [];
    removeOurs(p.modprobe, removed);
    mpState = 'removed';
  } else mpState = existsSync(p.modprobe) ? 'kept' : 'none';
  return {
    rules: { path: p.rules, count: rules.count, state: rulesState },
    conf: { path: p.conf, backend: backend ?? 'iptables', mirrors, state: confState },
    modprobe: { path: p.modprobe, params: params ?? parseModprobe(readIf(p.modprobe) ?? ''), state: mpState },
  };
}

/** The loaded module's parameters (/sys/module/xt_traffic/parameters), name -> value. */
export function loadedParams(deps: Deps): Record<string, string> | undefined {
  const dir = join(deps.paths.sysModule, MODULE_NAME, 'parameters');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = readIf(join(dir, n));
    if (v !== undefined) out[n] = v.trim();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// persist restore

export interface RestoreStep {
  cmd: string;
  args: string[];
  what: string;
}

/**
 * The steps that bring the saved rules back, from what is there now: `present[i]` says
 * whether rule i is in place (iptables -C), `chains` the chains of each table now. A missing
 * user chain is created once, before its first rule. Pure.
 */
export function restorePlan(rules: SavedTrafficRule[], present: boolean[], chains: Map<string, Set<string>>, ipt: string): RestoreStep[] {
  const steps: RestoreStep[] = [];
  const made = new Set<string>();
  rules.forEach((r, i) => {
    if (present[i]) return;
    const key = `${r.table}\0${r.chain}`;
    if (r.userChain && !chains.get(r.table)?.has(r.chain) && !made.has(key)) {
      made.add(key);
      steps.push({ cmd: ipt, args: ['-t', r.table, '-N', r.chain], what: `create chain ${r.chain} in table ${r.table}` });
    }
    steps.push({ cmd: ipt, args: ['-t', r.table, '-A', r.chain, ...r.args], what: `add rule ${r.name} to ${r.table} ${r.chain}` });
  });
  return steps;
}
