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
// Two modes, as in iptables-test.py:
// - full: for each rule and chain, `iptables -t TABLE -A CHAIN RULE`, then
//   `iptables-save -t TABLE` must list exactly `-A CHAIN SAVE` in that chain (it is
//   empty before), then `iptables -t TABLE -D CHAIN RULE` must remove it.
// - fast (the default where possible): all OK lines of a table go in with one
//   iptables-restore and come back from one iptables-save, in order; FAIL lines run
//   one by one. Under TCG every exec costs a lot, so fast mode runs a FAIL line in the
//   first of its chains only (a parse error does not depend on the chain); `failChains:
//   'all'` restores iptables-test.py's behaviour. If the batch is rejected, the OK lines
//   of that table are re-run in full mode so the failure names its line.
// Every command runs with an argument array (no shell), optionally inside
// `ip netns exec NETNS`, asynchronously (a long synchronous run starves vitest's RPC).
import { spawn } from 'node:child_process';
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
  /** Its restore binary; default `${iptables}-restore`. */
  restore?: string;
  /** Environment of every command (e.g. XTABLES_LIBDIR); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Run every command inside `ip netns exec NETNS`. */
  netns?: string;
  /** Backend for VARIANT lines; default: from `iptables --version`. */
  backend?: TVariant;
  /** Flush every table the file uses before starting and after (default true). */
  flush?: boolean;
  /** 'fast' (default; falls back to full for files with NOMATCH, variants or commands) or 'full'. */
  mode?: 'fast' | 'full';
  /** Chains a FAIL line is tried in: default 'first' in fast mode, 'all' in full mode. */
  failChains?: 'first' | 'all';
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
  /** Exit status of `iptables -A` (null if killed by a signal; 0 for fast-mode OK lines). */
  status: number | null;
  stderr: string;
  /** The chain's rules in iptables-save after the -A (without "-A CHAIN "). */
  saved: string[];
  /** How the line was run. */
  mode: 'fast' | 'full';
}

export interface ExecResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function exec(bin: string, args: string[], opts: RunTOptions, input?: string): Promise<ExecResult> {
  const [cmd, argv]: [string, string[]] = opts.netns
    ? ['ip', ['netns', 'exec', opts.netns, bin, ...args]]
    : [bin, args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} ${argv.join(' ')}: ${e.message}`));
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // EPIPE when the child exits early
    child.stdin.end(input ?? '');
  });
}

/** Backend of an iptables binary from its --version ("(legacy)" / "(nf_tables)"). */
export async function detectBackend(iptables: string, opts: Omit<RunTOptions, 'iptables'> = {}): Promise<TVariant> {
  const r = await exec(iptables, ['--version'], { ...opts, iptables });
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

/** Whether fast mode can run these entries (iptables-test.py's fast_run_possible, per table). */
export function fastPossible(entries: TEntry[]): boolean {
  return entries.every((e) => e.kind === 'rule' && e.variant === undefined && e.expect !== 'NOMATCH');
}

function newResult(e: TRule, chain: string, expect: TExpect, mode: 'fast' | 'full'): TResult {
  return {
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
    mode,
  };
}

/** One rule line in one chain the iptables-test.py way: -A, save, -D. */
async function runFull(e: TRule, chain: string, expect: TExpect, opts: Required<Pick<RunTOptions, 'iptables' | 'save'>> & RunTOptions): Promise<TResult> {
  const ipt = opts.iptables;
  const res = newResult(e, chain, expect, 'full');
  const cmd = `${ipt} -t ${e.table} -A ${chain} ${e.rule}`;
  const del = async (): Promise<void> => {
    const d = await exec(ipt, ['-t', e.table, '-D', chain, ...e.args], opts);
    if (d.status !== 0) {
      res.pass = false;
      res.reason ||= `cannot delete: ${ipt} -t ${e.table} -D ${chain} ${e.rule}: ${d.stderr.trim()}`;
      // Leave the chain empty for the next case anyway.
      await exec(ipt, ['-t', e.table, '-F', chain], opts);
    }
  };

  const add = await exec(ipt, ['-t', e.table, '-A', chain, ...e.args], opts);
  res.status = add.status;
  res.stderr = add.stderr;
  if (add.signal !== null) {
    res.reason = `command killed by ${add.signal}: ${cmd}`;
    return res;
  }
  if (add.status !== 0) {
    res.pass = expect === 'FAIL';
    if (!res.pass) res.reason = `cannot load: ${cmd}: ${add.stderr.trim()}`;
    return res;
  }
  if (expect === 'FAIL') {
    res.reason = `should fail: ${cmd}`;
    await del();
    return res;
  }

  const s = await exec(opts.save, ['-t', e.table], opts);
  if (s.status !== 0 || s.signal !== null) {
    res.reason = `${opts.save} -t ${e.table} failed (${s.status ?? s.signal}): ${s.stderr.trim()}`;
    await del();
    return res;
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
  await del();
  return res;
}

/** All OK lines of one table with one iptables-restore and one iptables-save. */
async function runFastTable(table: string, lines: TRule[], opts: Required<Pick<RunTOptions, 'iptables' | 'save' | 'restore'>> & RunTOptions): Promise<TResult[] | null> {
  const results: TResult[] = [];
  const want = new Map<string, string[]>();
  const restore = [`*${table}`];
  for (const e of lines) {
    for (const chain of e.chains) {
      restore.push(`-A ${chain} ${e.rule}`);
      want.set(chain, [...(want.get(chain) ?? []), e.save]);
      results.push(newResult(e, chain, 'OK', 'fast'));
    }
  }
  restore.push('COMMIT', '');
  const r = await exec(opts.restore, [], opts, restore.join('\n'));
  if (r.status !== 0) return null;
  const s = await exec(opts.save, ['-t', table], opts);
  const got = new Map<string, string[]>();
  for (const chain of want.keys()) got.set(chain, chainRules(s.stdout, chain));
  const index = new Map<string, number>();
  for (const res of results) {
    const i = index.get(res.chain) ?? 0;
    index.set(res.chain, i + 1);
    const g = got.get(res.chain) ?? [];
    const w = want.get(res.chain) ?? [];
    res.status = 0;
    res.saved = g[i] === undefined ? [] : [g[i]!];
    res.pass = s.status === 0 && g.length === w.length && g[i] === w[i];
    if (!res.pass) {
      res.reason = s.status !== 0
        ? `${opts.save} -t ${table} failed (${s.status}): ${s.stderr.trim()}`
        : `cannot find: -A ${res.chain} ${w[i]}\n  got: ${g[i] === undefined ? '(nothing)' : `-A ${res.chain} ${g[i]}`}` +
          (g.length !== w.length ? ` (chain has ${g.length} rules, expected ${w.length})` : '');
    }
  }
  return results;
}

/** Runs every entry; one TResult per rule line and chain it ran in. Never rejects for a test failure. */
export async function runT(entries: TEntry[], options: RunTOptions): Promise<TResult[]> {
  const ipt = options.iptables;
  const opts = { ...options, save: options.save ?? `${ipt}-save`, restore: options.restore ?? `${ipt}-restore` };
  const backend = options.backend ?? (await detectBackend(ipt, options));
  const fast = (options.mode ?? 'fast') === 'fast' && fastPossible(entries);
  const failChains = options.failChains ?? (fast ? 'first' : 'all');
  const rules = entries.filter((e): e is TRule => e.kind === 'rule');
  const tables = [...new Set(rules.map((e) => e.table))];
  const flush = async (): Promise<void> => {
    for (const t of tables) {
      const r = await exec(ipt, ['-t', t, '-F'], opts);
      if (r.status !== 0) throw new Error(`${ipt} -t ${t} -F failed (${r.status}): ${r.stderr}`);
    }
  };
  if (options.flush ?? true) await flush();

  const results: TResult[] = [];
  if (fast) {
    for (const table of tables) {
      const ok = rules.filter((e) => e.table === table && e.expect === 'OK');
      let res = ok.length ? await runFastTable(table, ok, opts) : [];
      if (res === null) {
        // The batch was rejected: find the line(s) one by one.
        res = [];
        for (const e of ok) for (const chain of e.chains) res.push(await runFull(e, chain, 'OK', opts));
        if (res.every((r) => r.pass)) {
          for (const r of res) {
            r.pass = false;
            r.reason = `iptables-restore rejected the batch of table ${table}, though every line loads alone`;
          }
        }
      }
      await exec(ipt, ['-t', table, '-F'], opts);
      results.push(...res);
    }
    for (const e of rules.filter((r) => r.expect === 'FAIL')) {
      for (const chain of failChains === 'first' ? e.chains.slice(0, 1) : e.chains) results.push(await runFull(e, chain, 'FAIL', opts));
    }
  } else {
    for (const e of entries) {
      if (e.kind === 'command') {
        const [bin = '', ...rest] = e.args;
        await exec(bin === 'iptables' ? ipt : bin, rest, opts);
        continue;
      }
      const expect = expectFor(e, backend);
      const chains = expect === 'FAIL' && failChains === 'first' ? e.chains.slice(0, 1) : e.chains;
      for (const chain of chains) results.push(await runFull(e, chain, expect, opts));
    }
  }
  if (options.flush ?? true) await flush();
  // File order, then chain order, whatever the mode.
  return results.sort((a, b) => a.lineno - b.lineno);
}

export async function runTFile(path: string, opts: RunTOptions): Promise<TResult[]> {
  return runT(parseTFile(path), opts);
}

/** One line per failed result, for assertion messages. */
export function formatFailures(results: TResult[]): string {
  return results
    .filter((r) => !r.pass)
    .map((r) => `${r.file}:${r.lineno} [${r.table} ${r.chain}] ${r.reason}`)
    .join('\n');
}
