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
    expect(ok.length).toBe(24);
    expect(fail.length).toBe(43);
    expect(all.length).toBe(67);
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

// The fake: rules live in $FAKE_IPT_STATE; "--bad" makes -A fail, "--netmask 24" saves
// as 255.255.255.0, "--sticky" makes -D fail, "--twice" adds the rule two times.
const FAKE = `#!/usr/bin/env node
const fs = require('fs');
const path = require('path');
const file = process.env.FAKE_IPT_STATE;
const st = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
const a = process.argv.slice(2);
const save = () => fs.writeFileSync(file, JSON.stringify(st));
const log = (l) => fs.appendFileSync(file + '.log', l + '\\n');
log(path.basename(process.argv[1]) + ' ' + JSON.stringify(a));
if (a[0] === '--version') { console.log('iptables v1.8.9 (' + (process.env.FAKE_IPT_BACKEND || 'legacy') + ')'); process.exit(0); }
let table = 'filter';
if (a[0] === '-t') { table = a[1]; a.splice(0, 2); }
const t = (st[table] ||= []);
if (process.argv[1].endsWith('-save')) {
  console.log('# Generated by fake\\n*' + table + '\\n:INPUT ACCEPT [0:0]');
  for (const [c, r] of t) console.log('-A ' + c + ' ' + r);
  console.log('COMMIT');
  process.exit(0);
}
const [op, chain, ...rest] = a;
const canon = rest.map((x) => x === '' ? '""' : x).join(' ').replace('--netmask 24', '--netmask 255.255.255.0');
if (op === '-F') { st[table] = chain ? t.filter(([c]) => c !== chain) : []; save(); process.exit(0); }
if (op === '-A') {
  if (rest.includes('--bad')) { process.stderr.write('fake: --bad is bad\\n'); process.exit(2); }
  t.push([chain, canon]);
  if (rest.includes('--twice')) t.push([chain, canon]);
  save(); process.exit(0);
}
if (op === '-D') {
  const i = t.findIndex(([c, r]) => c === chain && r === canon);
  if (i < 0 || rest.includes('--sticky')) { process.stderr.write('fake: no such rule\\n'); process.exit(1); }
  t.splice(i, 1); save(); process.exit(0);
}
process.exit(2);
`;

describe('runT against a fake iptables', () => {
  let dir = '';
  let bin = '';
  let state = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'xtables-t-'));
    bin = join(dir, 'fake-iptables');
    state = join(dir, 'state.json');
    writeFileSync(bin, FAKE);
    writeFileSync(`${bin}-save`, FAKE);
    chmodSync(bin, 0o755);
    chmodSync(`${bin}-save`, 0o755);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (text: string, backend?: string) => {
    rmSync(state, { force: true });
    rmSync(`${state}.log`, { force: true });
    const env = { ...process.env, FAKE_IPT_STATE: state, FAKE_IPT_BACKEND: backend ?? 'legacy' };
    return runT(parseT(text, 'f.t'), { iptables: bin, env });
  };
  const verdicts = (text: string, backend?: string) =>
    run(text, backend).map((r) => [r.lineno, r.chain, r.pass, r.reason]);

  it('passes rules that load, save as expected and delete', () => {
    const res = run(':INPUT,OUTPUT\n-m x --a;=;OK\n-m x --netmask 24;-m x --netmask 255.255.255.0;OK\n-m x --bad;;FAIL\n');
    expect(res.map((r) => [r.lineno, r.chain, r.pass, r.reason, r.status])).toEqual([
      [2, 'INPUT', true, '', 0],
      [2, 'OUTPUT', true, '', 0],
      [3, 'INPUT', true, '', 0],
      [3, 'OUTPUT', true, '', 0],
      [4, 'INPUT', true, '', 2],
      [4, 'OUTPUT', true, '', 2],
    ]);
    expect(res[2]!.saved).toEqual(['-m x --netmask 255.255.255.0']);
    expect(res[4]!.stderr).toBe('fake: --bad is bad\n');
    expect(JSON.parse(readFileSync(state, 'utf8'))).toEqual({ filter: [] });
    // Every command got an argument array: the empty name stays one argument.
    run(':INPUT\n-m x --name "";-m x --name "";OK\n');
    const log = readFileSync(`${state}.log`, 'utf8').split('\n');
    expect(log).toContain('fake-iptables ["-t","filter","-A","INPUT","-m","x","--name",""]');
    expect(log).toContain('fake-iptables ["-t","filter","-D","INPUT","-m","x","--name",""]');
  });

  it('fails what iptables-test.py fails', () => {
    expect(verdicts(':INPUT\n-m x --a;;FAIL\n')).toEqual([
      [2, 'INPUT', false, `should fail: ${bin} -t filter -A INPUT -m x --a`],
    ]);
    expect(verdicts(':INPUT\n-m x --bad;=;OK\n')).toEqual([
      [2, 'INPUT', false, `cannot load: ${bin} -t filter -A INPUT -m x --bad: fake: --bad is bad`],
    ]);
    expect(verdicts(':INPUT\n-m x --netmask 24;=;OK\n')).toEqual([
      [2, 'INPUT', false, 'cannot find: -A INPUT -m x --netmask 24\n  got: -A INPUT -m x --netmask 255.255.255.0'],
    ]);
    expect(verdicts(':INPUT\n-m x --twice;=;OK\n')).toEqual([
      [2, 'INPUT', false, 'cannot find: -A INPUT -m x --twice\n  got: -A INPUT -m x --twice\n       -A INPUT -m x --twice'],
    ]);
    expect(verdicts(':INPUT\n-m x --sticky;=;OK\n')).toEqual([
      [2, 'INPUT', false, `cannot delete: ${bin} -t filter -D INPUT -m x --sticky: fake: no such rule`],
    ]);
    // The chain is flushed after a failed delete, so the next case starts clean.
    expect(verdicts(':INPUT\n-m x --sticky;=;OK\n-m x --a;=;OK\n').map((v) => v[2])).toEqual([false, true]);
  });

  it('handles NOMATCH, variants and tables', () => {
    expect(verdicts(':INPUT\n-m x --netmask 24;-m x --netmask 24;NOMATCH\n-m x --a;=;NOMATCH\n')).toEqual([
      [2, 'INPUT', true, ''],
      [3, 'INPUT', false, `should not match: ${bin} -t filter -A INPUT -m x --a`],
    ]);
    const text = ':INPUT\n-m x --a;=;FAIL;NFT\n';
    expect(verdicts(text, 'legacy')).toEqual([[2, 'INPUT', true, '']]);
    expect(verdicts(text, 'nf_tables')).toEqual([[2, 'INPUT', false, `should fail: ${bin} -t filter -A INPUT -m x --a`]]);
    const res = run('*raw\n:PREROUTING\n-m x --a;=;OK\n');
    expect(res.map((r) => [r.table, r.chain, r.pass])).toEqual([['raw', 'PREROUTING', true]]);
    expect(formatFailures(res)).toBe('');
  });

  it('formats failures one per line', () => {
    expect(formatFailures(run(':INPUT\n-m x --a;;FAIL\n'))).toBe(
      `f.t:2 [filter INPUT] should fail: ${bin} -t filter -A INPUT -m x --a`,
    );
  });
});
