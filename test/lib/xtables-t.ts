// A small runner for iptables' own extension test format (`extensions/*.t`,
// run upstream by iptables-test.py), so libxt/libxt_traffic.t runs against a real
// `iptables` (nft backend) and `iptables-legacy` inside the VM.
//
// Format, one entry per line:
//   # comment                 ignored, as are blank lines
//   *TABLE                    table for the following rules (default filter)
//   :CHAIN[,CHAIN...]         chains every following rule is tried in
//   @CMD / %CMD               external command (run as is; "iptables" is replaced
//                             by the binary under test)
//   RULE;SAVE;RESULT[;VARIANT[;ALTRESULT]]
//     RULE    arguments after `-A CHAIN` (double/single quotes group words)
//     SAVE    the rule as iptables-save prints it after `-A CHAIN `, `=` for RULE
//             itself, empty for FAIL lines
//     RESULT  OK (loads and saves as SAVE), FAIL (iptables exits non-zero),
//             NOMATCH (loads but saves differently)
//     VARIANT NFT or LEGACY: RESULT holds for that backend only, the other one
//             gets ALTRESULT, or the inverse of RESULT
//
// For each rule and chain: `iptables -t TABLE -A CHAIN RULE`, then `iptables-save
// -t TABLE` must list exactly `-A CHAIN SAVE` in that chain (it is empty before),
// then `iptables -t TABLE -D CHAIN RULE` must remove it. Every command runs with an
// argument array (no shell), optionally inside `ip netns exec NETNS`.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export type TExpect = 'OK' | 'FAIL' | 'NOMATCH';
export type TVariant = 'NFT' | 'LEGACY';

export interface TRule {
  kind: 'rule';
  file: string;
  lineno: number;
  table: string;
  chains: string[];
  /** The rule as written (after `-A CHAIN`). */
  rule: string;
  args: string[];
  /** Expected iptables-save text after `-A CHAIN ` (`=` resolved); '' for FAIL lines. */
  save: string;
  expect: TExpect;
  variant?: TVariant;
  altExpect?: TExpect;
}

export interface TCommand {
  kind: 'command';
  file: string;
  lineno: number;
  command: string;
  args: string[];
}

export type TEntry = TRule | TCommand;

export class TFormatError extends Error {
  constructor(
    readonly file: string,
    readonly lineno: number,
    message: string,
  ) {
    super(`${file}:${lineno}: ${message}`);
    this.name = 'TFormatError';
  }
}

/**
 * Splits a rule into arguments like a POSIX shell would for plain words and
 * '...' / "..." quoting (backslash escapes the next character outside single
 * quotes). No expansion of any kind. Throws on an unterminated quote.
 */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${text}`);
      cur += text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        cur += text[j];
      }
      if (j >= text.length) throw new Error(`unterminated " in: ${text}`);
      i = j;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
    } else {
      cur += c;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

const RESULTS: readonly string[] = ['OK', 'FAIL', 'NOMATCH'];
const VARIANTS: readonly string[] = ['NFT', 'LEGACY'];

/** Parses the text of a .t file. Throws TFormatError naming the line. */
export function parseT(text: string, file = '(t)'): TEntry[] {
  const entries: TEntry[] = [];
  let table = 'filter';
  let chains: string[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, idx) => {
    const lineno = idx + 1;
    const line = raw.replace(/\r$/, '');
    const bad = (msg: string): never => {
      throw new TFormatError(file, lineno, msg);
    };
    if (line.trim() === '' || line.startsWith('#')) return;
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      if (!/^[a-z]+$/.test(table)) bad(`bad table name "${table}"`);
      return;
    }
    if (line.startsWith(':')) {
      chains = line.slice(1).trim().split(',');
      if (chains.some((c) => !/^[A-Za-z0-9_.-]+$/.test(c))) bad(`bad chain list "${line}"`);
      return;
    }
    if (line.startsWith('@') || line.startsWith('%')) {
      const command = line.slice(1).trim();
      let args: string[] = [];
      try {
        args = splitArgs(command);
      } catch (e) {
        bad((e as Error).message);
      }
      if (args.length === 0) bad('empty command');
      entries.push({ kind: 'command', file, lineno, command, args });
      return;
    }
    if (chains.length === 0) bad('rule before any :CHAIN line');
    const f = line.split(';');
    if (f.length < 3 || f.length > 5) bad(`expected RULE;SAVE;RESULT[;VARIANT[;ALTRESULT]], got ${f.length} fields`);
    const [rule = '', saveField = '', result = ''] = f.map((x) => x.trim());
    if (!RESULTS.includes(result)) bad(`result must be OK, FAIL or NOMATCH, got "${result}"`);
    const expect = result as TExpect;
    if (rule === '') bad('empty rule');
    let args: string[] = [];
    try {
      args = splitArgs(rule);
    } catch (e) {
      bad((e as Error).message);
    }
    if (expect === 'OK' && saveField === '') bad('an OK line needs SAVE (or =)');
    const entry: TRule = {
      kind: 'rule',
      file,
      lineno,
      table,
      chains: [...chains],
      rule,
      args,
      save: saveField === '=' ? rule : saveField,
      expect,
    };
    if (f.length >= 4) {
      const variant = f[3]!.trim();
      if (!VARIANTS.includes(variant)) bad(`variant must be NFT or LEGACY, got "${variant}"`);
      entry.variant = variant as TVariant;
    }
    if (f.length === 5) {
      const alt = f[4]!.trim();
      if (!RESULTS.includes(alt)) bad(`alternative result must be OK, FAIL or NOMATCH, got "${alt}"`);
      entry.altExpect = alt as TExpect;
    }
    entries.push(entry);
  });
  return entries;
}

export function parseTFile(path: string): TEntry[] {
  return parseT(readFileSync(path, 'utf8'), path);
}

/** The result a rule line expects from the given backend (iptables-test.py's variant_res). */
export function expectFor(rule: TRule, backend: TVariant): TExpect {
  if (rule.variant === undefined || rule.variant === backend) return rule.expect;
  if (rule.altExpect !== undefined) return rule.altExpect;
  return rule.expect === 'OK' ? 'FAIL' : 'OK';
}

export interface RunTOptions {
  /** iptables binary under test: `iptables`, `iptables-legacy`, `iptables-nft` or a path. */
  iptables: string;
  /** Its save binary; default `${iptables}-save`. */
  save?: string;
  /** Environment of every command (e.g. XTABLES_LIBDIR); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Run every command inside `ip netns exec NETNS`. */
  netns?: string;
  /** Backend for VARIANT lines; default: from `iptables --version`. */
  backend?: TVariant;
  /** Flush every table the file uses before starting (default true). */
  flush?: boolean;
}

export interface TResult {
  file: string;
  lineno: number;
  table: string;
  chain: string;
  rule: string;
  expect: TExpect;
  pass: boolean;
  /** Why it did not pass ('' when it did), in iptables-test.py's words. */
  reason: string;
  /** Exit status of `iptables -A` (null if killed by a signal). */
  status: number | null;
  stderr: string;
  /** The chain's rules in iptables-save after the -A (without "-A CHAIN "). */
  saved: string[];
}

export interface ExecResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function exec(bin: string, args: string[], opts: RunTOptions): ExecResult {
  const [cmd, argv]: [string, string[]] = opts.netns
    ? ['ip', ['netns', 'exec', opts.netns, bin, ...args]]
    : [bin, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: opts.env ?? process.env, timeout: 60_000 });
  if (r.error) throw new Error(`${cmd} ${argv.join(' ')}: ${r.error.message}`);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Backend of an iptables binary from its --version ("(legacy)" / "(nf_tables)"). */
export function detectBackend(iptables: string, opts: Omit<RunTOptions, 'iptables'> = {}): TVariant {
  const r = exec(iptables, ['--version'], { ...opts, iptables });
  if (/\(legacy\)/.test(r.stdout)) return 'LEGACY';
  if (/\(nf_tables\)/.test(r.stdout)) return 'NFT';
  throw new Error(`${iptables} --version: cannot tell the backend from ${JSON.stringify(r.stdout)}`);
}

/** The rules of CHAIN in `iptables-save` output, without the leading "-A CHAIN ". */
export function chainRules(saveOutput: string, chain: string): string[] {
  const prefix = `-A ${chain} `;
  return saveOutput
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
}

/** Runs every entry; one TResult per rule line and chain. Never throws for a test failure. */
export function runT(entries: TEntry[], opts: RunTOptions): TResult[] {
  const ipt = opts.iptables;
  const save = opts.save ?? `${ipt}-save`;
  const backend = opts.backend ?? detectBackend(ipt, opts);
  const results: TResult[] = [];

  if (opts.flush ?? true) {
    const tables = new Set(entries.filter((e): e is TRule => e.kind === 'rule').map((e) => e.table));
    for (const t of tables) {
      const r = exec(ipt, ['-t', t, '-F'], opts);
      if (r.status !== 0) throw new Error(`${ipt} -t ${t} -F failed (${r.status}): ${r.stderr}`);
    }
  }

  for (const e of entries) {
    if (e.kind === 'command') {
      const [bin = '', ...rest] = e.args;
      exec(bin === 'iptables' ? ipt : bin, rest, opts);
      continue;
    }
    const expect = expectFor(e, backend);
    for (const chain of e.chains) {
      const res: TResult = {
        file: e.file,
        lineno: e.lineno,
        table: e.table,
        chain,
        rule: e.rule,
        expect,
        pass: false,
        reason: '',
        status: null,
        stderr: '',
        saved: [],
      };
      results.push(res);
      const cmd = `${ipt} -t ${e.table} -A ${chain} ${e.rule}`;
      const del = (): void => {
        const d = exec(ipt, ['-t', e.table, '-D', chain, ...e.args], opts);
        if (d.status !== 0) {
          res.pass = false;
          res.reason ||= `cannot delete: ${ipt} -t ${e.table} -D ${chain} ${e.rule}: ${d.stderr.trim()}`;
          // Leave the chain empty for the next case anyway.
          exec(ipt, ['-t', e.table, '-F', chain], opts);
        }
      };

      const add = exec(ipt, ['-t', e.table, '-A', chain, ...e.args], opts);
      res.status = add.status;
      res.stderr = add.stderr;
      if (add.signal !== null) {
        res.reason = `command killed by ${add.signal}: ${cmd}`;
        continue;
      }
      if (add.status !== 0) {
        res.pass = expect === 'FAIL';
        if (!res.pass) res.reason = `cannot load: ${cmd}: ${add.stderr.trim()}`;
        continue;
      }
      if (expect === 'FAIL') {
        res.reason = `should fail: ${cmd}`;
        del();
        continue;
      }

      const s = exec(save, ['-t', e.table], opts);
      if (s.status !== 0 || s.signal !== null) {
        res.reason = `${save} -t ${e.table} failed (${s.status ?? s.signal}): ${s.stderr.trim()}`;
        del();
        continue;
      }
      res.saved = chainRules(s.stdout, chain);
      const same = res.saved.length === 1 && res.saved[0] === e.save;
      if (expect === 'OK') {
        res.pass = same;
        if (!same) {
          res.reason = `cannot find: -A ${chain} ${e.save}\n  got: ${res.saved.map((r) => `-A ${chain} ${r}`).join('\n       ') || '(nothing)'}`;
        }
      } else {
        res.pass = !same;
        if (same) res.reason = `should not match: ${cmd}`;
      }
      del();
    }
  }
  return results;
}

export function runTFile(path: string, opts: RunTOptions): TResult[] {
  return runT(parseTFile(path), opts);
}

/** One line per failed result, for assertion messages. */
export function formatFailures(results: TResult[]): string {
  return results
    .filter((r) => !r.pass)
    .map((r) => `${r.file}:${r.lineno} [${r.table} ${r.chain}] ${r.reason}`)
    .join('\n');
}
