// Host tests of test/lib/xtables-t.ts: the .t parser, and the runner against a fake
// iptables (a node script keeping its rules in a JSON file), so the runner's own
// verdicts are checked without root or a kernel.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TFormatError,
  chainRules,
  expectFor,
  formatFailures,
  parseT,
  parseTFile,
  runT,
  splitArgs,
  type TRule,
} from '../lib/xtables-t.js';

const T_FILE = fileURLToPath(new URL('../../libxt/libxt_traffic.t', import.meta.url));

function rules(text: string): TRule[] {
  return parseT(text, 'x.t').filter((e): e is TRule => e.kind === 'rule');
}

function formatErr(text: string): TFormatError {
  try {
    parseT(text, 'x.t');
  } catch (e) {
    expect(e).toBeInstanceOf(TFormatError);
    return e as TFormatError;
  }
  throw new Error('expected a TFormatError, nothing was thrown');
}

describe('splitArgs', () => {
  it('splits on blanks and keeps quoted words whole', () => {
    expect(splitArgs('-m traffic  --name\tRSN')).toEqual(['-m', 'traffic', '--name', 'RSN']);
    expect(splitArgs('--name "" --x')).toEqual(['--name', '', '--x']);
    expect(splitArgs(`--comment "a b" --c 'd "e"' f\\ g`)).toEqual(['--comment', 'a b', '--c', 'd "e"', 'f g']);
    expect(splitArgs('a"b c"d')).toEqual(['ab cd']);
    expect(splitArgs('"x\\"y"')).toEqual(['x"y']);
    expect(splitArgs('  ')).toEqual([]);
  });

  it('does no shell expansion', () => {
    expect(splitArgs('$HOME `id` * ;')).toEqual(['$HOME', '`id`', '*', ';']);
  });

  it('rejects an unterminated quote', () => {
    expect(() => splitArgs('--name "abc')).toThrow('unterminated " in: --name "abc');
    expect(() => splitArgs("--name 'abc")).toThrow("unterminated ' in: --name 'abc");
  });
});

describe('parseT', () => {
  it('tracks table and chains, resolves "=" and keeps line numbers', () => {
    const r = rules(
      [
        ':INPUT,OUTPUT',
        '# comment',
        '-m a --x;=;OK',
        '',
        '-m a --y 24;-m a --y 255.255.255.0;OK',
        '*raw',
        ':PREROUTING',
        '-m a --z;;FAIL',
        '-m a --w;-m a --v;NOMATCH',
      ].join('\n'),
    );
    expect(r.map((e) => [e.lineno, e.table, e.chains.join(','), e.save, e.expect])).toEqual([
      [3, 'filter', 'INPUT,OUTPUT', '-m a --x', 'OK'],
      [5, 'filter', 'INPUT,OUTPUT', '-m a --y 255.255.255.0', 'OK'],
      [8, 'raw', 'PREROUTING', '', 'FAIL'],
      [9, 'raw', 'PREROUTING', '-m a --v', 'NOMATCH'],
    ]);
    expect(r[1]!.args).toEqual(['-m', 'a', '--y', '24']);
  });

  it('parses external commands and variants', () => {
    const e = parseT(':INPUT\n@iptables -N FOO\n-m a;=;OK;NFT\n-m b;=;FAIL;LEGACY;NOMATCH\n', 'x.t');
    expect(e[0]).toEqual({ kind: 'command', file: 'x.t', lineno: 2, command: 'iptables -N FOO', args: ['iptables', '-N', 'FOO'] });
    const [a, b] = e.slice(1) as TRule[];
    expect([expectFor(a!, 'NFT'), expectFor(a!, 'LEGACY')]).toEqual(['OK', 'FAIL']);
    expect([expectFor(b!, 'NFT'), expectFor(b!, 'LEGACY')]).toEqual(['NOMATCH', 'FAIL']);
  });

  it('names the line of a malformed entry', () => {
    expect(formatErr('-m a;=;OK').message).toBe('x.t:1: rule before any :CHAIN line');
    expect(formatErr(':INPUT\n-m a;OK').message).toBe('x.t:2: expected RULE;SAVE;RESULT[;VARIANT[;ALTRESULT]], got 2 fields');
    expect(formatErr(':INPUT\n\n-m a;=;PASS').message).toBe('x.t:3: result must be OK, FAIL or NOMATCH, got "PASS"');
    expect(formatErr(':INPUT\n-m a;;OK').message).toBe('x.t:2: an OK line needs SAVE (or =)');
    expect(formatErr(':INPUT\n-m a;=;OK;BOTH').message).toBe('x.t:2: variant must be NFT or LEGACY, got "BOTH"');
    expect(formatErr(':INPUT\n-m a --n "x;=;OK').message).toBe('x.t:2: unterminated " in: -m a --n "x');
    expect(formatErr('*Raw!').message).toBe('x.t:1: bad table name "Raw!"');
    expect(formatErr(':IN PUT').message).toBe('x.t:1: bad chain list ":IN PUT"');
  });

  it('chainRules picks one chain out of iptables-save output', () => {
    const out = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m a\n-A INPUTX -m b\n-A OUTPUT -m c\n-A INPUT -j DROP\nCOMMIT\n';
    expect(chainRules(out, 'INPUT')).toEqual(['-m a', '-j DROP']);
    expect(chainRules(out, 'FORWARD')).toEqual([]);
  });
});

describe('libxt/libxt_traffic.t', () => {
  const all = parseTFile(T_FILE).filter((e): e is TRule => e.kind === 'rule');
  const ok = all.filter((e) => e.expect === 'OK');
  const fail = all.filter((e) => e.expect === 'FAIL');

  it('has the OK and FAIL cases in filter and raw', () => {
    expect(ok.length).toBe(26);
    expect(fail.length).toBe(46);
    expect(all.length).toBe(72);
    expect([...new Set(all.map((e) => `${e.table}:${e.chains.join(',')}`))]).toEqual([
      'filter:INPUT,FORWARD,OUTPUT',
      'raw:PREROUTING,OUTPUT',
    ]);
  });

  it('expects the canonical save form of every OK rule', () => {
    const order = ['--traffic', '--portconn', '--ipconn', '--netbase', '--netmask', '--name', '--hashsize', '--clearonread', '--nointernal'];
    for (const e of ok) {
      const save = splitArgs(e.save);
      const m = save.indexOf('--netmask');
      expect(save[m + 1], e.save).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      // Options of each traffic match appear in save order.
      const seen = save.filter((a) => order.includes(a)).map((a) => order.indexOf(a));
      const firsts = save.reduce<number[]>((acc, a, i) => (a === 'traffic' && save[i - 1] === '-m' ? [...acc, i] : acc), []);
      expect(firsts.length, e.save).toBeGreaterThan(0);
      if (firsts.length === 1) expect(seen, e.save).toEqual([...seen].sort((a, b) => a - b));
    }
  });

  it('FAIL lines carry no SAVE and every one is different', () => {
    expect(fail.filter((e) => e.save !== '')).toEqual([]);
    expect(new Set(fail.map((e) => e.rule)).size).toBe(fail.length);
  });
});

// The fake: rules live in $FAKE_IPT_STATE; "--bad" makes -A (and a restore holding it)
// fail, "--netmask 24" saves as 255.255.255.0, "--sticky" makes -D fail, "--twice"
// adds the rule two times. Every call is logged to $FAKE_IPT_STATE.log.
const FAKE = `#!/usr/bin/env node
const fs = require('fs');
const path = require('path');
const file = process.env.FAKE_IPT_STATE;
const st = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
const a = process.argv.slice(2);
const me = path.basename(process.argv[1]);
const save = () => fs.writeFileSync(file, JSON.stringify(st));
fs.appendFileSync(file + '.log', me + ' ' + JSON.stringify(a) + '\\n');
if (a[0] === '--version') { console.log('iptables v1.8.9 (' + (process.env.FAKE_IPT_BACKEND || 'legacy') + ')'); process.exit(0); }
const canon = (rest) => rest.map((x) => x === '' ? '""' : x).join(' ').replace('--netmask 24', '--netmask 255.255.255.0');
const add = (t, chain, rest) => { t.push([chain, canon(rest)]); if (rest.includes('--twice')) t.push([chain, canon(rest)]); };
if (me.endsWith('-restore')) {
  const input = fs.readFileSync(0, 'utf8');
  fs.appendFileSync(file + '.restore', input);
  const lines = input.split('\\n');
  let table = 'filter';
  const next = {};
  for (const l of lines) {
    if (l.startsWith('*')) { table = l.slice(1); next[table] = []; }
    else if (l.startsWith('-A ')) {
      const [, chain, ...rest] = l.split(' ').map((x) => x === '""' ? '' : x);
      if (rest.includes('--bad')) { process.stderr.write('fake-restore: line failed\\n'); process.exit(1); }
      add(next[table], chain, rest);
    }
  }
  Object.assign(st, next); save(); process.exit(0);
}
let table = 'filter';
if (a[0] === '-t') { table = a[1]; a.splice(0, 2); }
const t = (st[table] ||= []);
if (me.endsWith('-save')) {
  console.log('# Generated by fake\\n*' + table + '\\n:INPUT ACCEPT [0:0]');
  for (const [c, r] of t) console.log('-A ' + c + ' ' + r);
  console.log('COMMIT');
  process.exit(0);
}
const [op, chain, ...rest] = a;
if (op === '-F') { st[table] = chain ? t.filter(([c]) => c !== chain) : []; save(); process.exit(0); }
if (op === '-A') {
  if (rest.includes('--bad')) { process.stderr.write('fake: --bad is bad\\n'); process.exit(2); }
  add(t, chain, rest); save(); process.exit(0);
}
if (op === '-D') {
  const i = t.findIndex(([c, r]) => c === chain && r === canon(rest));
  if (i < 0 || rest.includes('--sticky')) { process.stderr.write('fake: no such rule\\n'); process.exit(1); }
  t.splice(i, 1); save(); process.exit(0);
}
process.exit(2);
`;

// Each fake call is a node start: slow on a loaded machine.
describe('runT against a fake iptables', { timeout: 120_000 }, () => {
  let dir = '';
  let bin = '';
  let state = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'xtables-t-'));
    bin = join(dir, 'fake-iptables');
    state = join(dir, 'state.json');
    for (const f of [bin, `${bin}-save`, `${bin}-restore`]) {
      writeFileSync(f, FAKE);
      chmodSync(f, 0o755);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (text: string, opts: { backend?: string; mode?: 'fast' | 'full' } = {}) => {
    rmSync(state, { force: true });
    rmSync(`${state}.log`, { force: true });
    rmSync(`${state}.restore`, { force: true });
    const env = { ...process.env, FAKE_IPT_STATE: state, FAKE_IPT_BACKEND: opts.backend ?? 'legacy' };
    return runT(parseT(text, 'f.t'), { iptables: bin, env, mode: opts.mode ?? 'full' });
  };
  const verdicts = async (text: string, opts: { backend?: string; mode?: 'fast' | 'full' } = {}) =>
    (await run(text, opts)).map((r) => [r.lineno, r.chain, r.pass, r.reason]);
  const calls = () =>
    readFileSync(`${state}.log`, 'utf8').split('\n').filter(Boolean).map((l) => l.replace(/ (\[.*)/, (_m, j: string) => ['', ...(JSON.parse(j) as string[])].join(' ')));

  it('full mode: passes rules that load, save as expected and delete', async () => {
    const res = await run(':INPUT,OUTPUT\n-m x --a;=;OK\n-m x --netmask 24;-m x --netmask 255.255.255.0;OK\n-m x --bad;;FAIL\n');
    expect(res.map((r) => [r.lineno, r.chain, r.pass, r.reason, r.status, r.mode])).toEqual([
      [2, 'INPUT', true, '', 0, 'full'],
      [2, 'OUTPUT', true, '', 0, 'full'],
      [3, 'INPUT', true, '', 0, 'full'],
      [3, 'OUTPUT', true, '', 0, 'full'],
      [4, 'INPUT', true, '', 2, 'full'],
      [4, 'OUTPUT', true, '', 2, 'full'],
    ]);
    expect(res[2]!.saved).toEqual(['-m x --netmask 255.255.255.0']);
    expect(res[4]!.stderr).toBe('fake: --bad is bad\n');
    expect(JSON.parse(readFileSync(state, 'utf8'))).toEqual({ filter: [] });
    expect(calls()).toEqual([
      'fake-iptables --version',
      'fake-iptables -t filter -F',
      'fake-iptables -t filter -A INPUT -m x --a',
      'fake-iptables-save -t filter',
      'fake-iptables -t filter -D INPUT -m x --a',
      'fake-iptables -t filter -A OUTPUT -m x --a',
      'fake-iptables-save -t filter',
      'fake-iptables -t filter -D OUTPUT -m x --a',
      'fake-iptables -t filter -A INPUT -m x --netmask 24',
      'fake-iptables-save -t filter',
      'fake-iptables -t filter -D INPUT -m x --netmask 24',
      'fake-iptables -t filter -A OUTPUT -m x --netmask 24',
      'fake-iptables-save -t filter',
      'fake-iptables -t filter -D OUTPUT -m x --netmask 24',
      'fake-iptables -t filter -A INPUT -m x --bad',
      'fake-iptables -t filter -A OUTPUT -m x --bad',
      'fake-iptables -t filter -F',
    ]);
    // Every command got an argument array: the empty name stays one argument.
    await run(':INPUT\n-m x --name "";-m x --name "";OK\n');
    const log = readFileSync(`${state}.log`, 'utf8').split('\n');
    expect(log).toContain('fake-iptables ["-t","filter","-A","INPUT","-m","x","--name",""]');
    expect(log).toContain('fake-iptables ["-t","filter","-D","INPUT","-m","x","--name",""]');
  });

  it('full mode: fails what iptables-test.py fails', async () => {
    expect(await verdicts(':INPUT\n-m x --a;;FAIL\n')).toEqual([
      [2, 'INPUT', false, `should fail: ${bin} -t filter -A INPUT -m x --a`],
    ]);
    expect(await verdicts(':INPUT\n-m x --bad;=;OK\n')).toEqual([
      [2, 'INPUT', false, `cannot load: ${bin} -t filter -A INPUT -m x --bad: fake: --bad is bad`],
    ]);
    expect(await verdicts(':INPUT\n-m x --netmask 24;=;OK\n')).toEqual([
      [2, 'INPUT', false, 'cannot find: -A INPUT -m x --netmask 24\n  got: -A INPUT -m x --netmask 255.255.255.0'],
    ]);
    expect(await verdicts(':INPUT\n-m x --twice;=;OK\n')).toEqual([
      [2, 'INPUT', false, 'cannot find: -A INPUT -m x --twice\n  got: -A INPUT -m x --twice\n       -A INPUT -m x --twice'],
    ]);
    expect(await verdicts(':INPUT\n-m x --sticky;=;OK\n')).toEqual([
      [2, 'INPUT', false, `cannot delete: ${bin} -t filter -D INPUT -m x --sticky: fake: no such rule`],
    ]);
    // The chain is flushed after a failed delete, so the next case starts clean.
    expect((await verdicts(':INPUT\n-m x --sticky;=;OK\n-m x --a;=;OK\n')).map((v) => v[2])).toEqual([false, true]);
  });

  it('handles NOMATCH, variants and tables', async () => {
    expect(await verdicts(':INPUT\n-m x --netmask 24;-m x --netmask 24;NOMATCH\n-m x --a;=;NOMATCH\n')).toEqual([
      [2, 'INPUT', true, ''],
      [3, 'INPUT', false, `should not match: ${bin} -t filter -A INPUT -m x --a`],
    ]);
    const text = ':INPUT\n-m x --a;=;FAIL;NFT\n';
    expect(await verdicts(text, { backend: 'legacy' })).toEqual([[2, 'INPUT', true, '']]);
    expect(await verdicts(text, { backend: 'nf_tables' })).toEqual([[2, 'INPUT', false, `should fail: ${bin} -t filter -A INPUT -m x --a`]]);
    // fast mode is not possible with NOMATCH or variants: it runs them in full mode
    expect((await run(text, { backend: 'legacy', mode: 'fast' })).map((r) => r.mode)).toEqual(['full']);
    const res = await run('*raw\n:PREROUTING\n-m x --a;=;OK\n');
    expect(res.map((r) => [r.table, r.chain, r.pass])).toEqual([['raw', 'PREROUTING', true]]);
    expect(formatFailures(res)).toBe('');
  });

  it('fast mode: one restore and one save per table, FAIL lines in their first chain', async () => {
    const text =
      ':INPUT,OUTPUT\n-m x --a;=;OK\n-m x --bad;;FAIL\n-m x --netmask 24;-m x --netmask 255.255.255.0;OK\n*raw\n:PREROUTING\n-m x --b;=;OK\n';
    const res = await run(text, { mode: 'fast' });
    expect(res.map((r) => [r.lineno, r.table, r.chain, r.pass, r.reason, r.mode, r.saved])).toEqual([
      [2, 'filter', 'INPUT', true, '', 'fast', ['-m x --a']],
      [2, 'filter', 'OUTPUT', true, '', 'fast', ['-m x --a']],
      [3, 'filter', 'INPUT', true, '', 'full', []],
      [4, 'filter', 'INPUT', true, '', 'fast', ['-m x --netmask 255.255.255.0']],
      [4, 'filter', 'OUTPUT', true, '', 'fast', ['-m x --netmask 255.255.255.0']],
      [7, 'raw', 'PREROUTING', true, '', 'fast', ['-m x --b']],
    ]);
    expect(calls()).toEqual([
      'fake-iptables --version',
      'fake-iptables -t filter -F',
      'fake-iptables -t raw -F',
      'fake-iptables-restore',
      'fake-iptables-save -t filter',
      'fake-iptables -t filter -F',
      'fake-iptables-restore',
      'fake-iptables-save -t raw',
      'fake-iptables -t raw -F',
      'fake-iptables -t filter -A INPUT -m x --bad',
      'fake-iptables -t filter -F',
      'fake-iptables -t raw -F',
    ]);
    expect(readFileSync(`${state}.restore`, 'utf8')).toBe(
      '*filter\n-A INPUT -m x --a\n-A OUTPUT -m x --a\n-A INPUT -m x --netmask 24\n-A OUTPUT -m x --netmask 24\nCOMMIT\n' +
        '*raw\n-A PREROUTING -m x --b\nCOMMIT\n',
    );
  });

  it('fast mode: names the lines that do not save as expected', async () => {
    expect(await verdicts(':INPUT\n-m x --a;=;OK\n-m x --netmask 24;=;OK\n-m x --c;=;OK\n', { mode: 'fast' })).toEqual([
      [2, 'INPUT', true, ''],
      [3, 'INPUT', false, 'cannot find: -A INPUT -m x --netmask 24\n  got: -A INPUT -m x --netmask 255.255.255.0'],
      [4, 'INPUT', true, ''],
    ]);
    expect(await verdicts(':INPUT\n-m x --a;=;OK\n-m x --twice;=;OK\n', { mode: 'fast' })).toEqual([
      [2, 'INPUT', false, 'cannot find: -A INPUT -m x --a\n  got: -A INPUT -m x --a (chain has 3 rules, expected 2)'],
      [3, 'INPUT', false, 'cannot find: -A INPUT -m x --twice\n  got: -A INPUT -m x --twice (chain has 3 rules, expected 2)'],
    ]);
    expect(await verdicts(':INPUT\n-m x --a;;FAIL\n', { mode: 'fast' })).toEqual([
      [2, 'INPUT', false, `should fail: ${bin} -t filter -A INPUT -m x --a`],
    ]);
  });

  it('fast mode: a rejected batch is re-run line by line', async () => {
    const res = await run(':INPUT\n-m x --a;=;OK\n-m x --bad;=;OK\n', { mode: 'fast' });
    expect(res.map((r) => [r.lineno, r.pass, r.reason, r.mode])).toEqual([
      [2, true, '', 'full'],
      [3, false, `cannot load: ${bin} -t filter -A INPUT -m x --bad: fake: --bad is bad`, 'full'],
    ]);
  });

  it('formats failures one per line', async () => {
    expect(formatFailures(await run(':INPUT\n-m x --a;;FAIL\n'))).toBe(
      `f.t:2 [filter INPUT] should fail: ${bin} -t filter -A INPUT -m x --a`,
    );
  });
});
