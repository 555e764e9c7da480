import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENVIRONMENT_HELP } from '../../src/program.js';
import { Fake } from './fakes.js';

const ROOT = resolve(__dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

let f: Fake;
beforeEach(() => (f = new Fake()));
afterEach(() => f.cleanup());

const COMMANDS = [['build'], ['install'], ['uninstall'], ['load'], ['unload'], ['status'], ['rule'], ['rule', 'add'], ['rule', 'del'], ['rule', 'list'], ['read'], ['watch']];

describe('xttraffic (program)', () => {
  it.each(COMMANDS)('%s %s --help: usage and examples on stdout, exit 0', async (...cmd: string[]) => {
    expect(await f.run(...cmd.filter(Boolean), '--help')).toBe(0);
    expect(f.stdout).toMatch(new RegExp(`^Usage: xttraffic ${cmd.filter(Boolean).join(' ')} `));
    expect(f.stdout).toMatch(/\nExamples:\n {2}\$ (sudo )?xttraffic /);
    expect(f.stdout).toContain('--json');
    expect(f.stderr).toBe('');
  });

  it('--version', async () => {
    expect(await f.run('--version')).toBe(0);
    expect(f.stdout).toBe('0.1.0\n');
  });

  it('makeProgram builds every command, in help order; run loads only what argv needs, with the same output', async () => {
    const { makeProgram } = await import('../../src/program.js');
    const p = await makeProgram(f.deps());
    expect(p.commands.map((c) => c.name()).slice(0, 10)).toEqual(['build', 'install', 'uninstall', 'load', 'unload', 'status', 'rule', 'read', 'watch', 'mirror']);
    // top-level help lists every command, whichever way it is asked for
    expect(await f.run('--help')).toBe(0);
    const help = f.stdout;
    for (const c of p.commands) expect(help).toContain(`\n  ${c.name()} `);
    expect(await f.run('-h')).toBe(0);
    expect(f.stdout).toBe(help);
    expect(await f.run('--json', 'help', 'read')).toBe(0);
    expect(f.stdout).toMatch(/^Usage: xttraffic read \[options\] <name>\n/);
    expect(await f.run('reed')).toBe(2);
    expect(f.stderr).toBe("xttraffic: unknown command 'reed'\n(Did you mean read?)\nhint: see xttraffic --help\n");
    expect(await f.run('--json', '--version')).toBe(0);
    expect(f.stdout).toBe('0.1.0\n');
  });

  it('usage errors are exit 2, as text or as JSON', async () => {
    expect(await f.run()).toBe(2);
    expect(f.stderr).toContain('xttraffic: no command given\nhint: see xttraffic --help\n');
    expect(await f.run('frobnicate')).toBe(2);
    expect(f.stderr).toBe("xttraffic: unknown command 'frobnicate'\nhint: see xttraffic --help\n");
    expect(await f.run('help', 'nope')).toBe(2);
    expect(f.stderr).toBe("xttraffic: unknown command 'nope'\nhint: see xttraffic --help\n");
    expect(f.stdout).toBe('');
    expect(await f.run('--json', 'help', 'nope')).toBe(2);
    expect(f.errorJson()).toEqual({ error: { code: 'EUSAGE', message: "unknown command 'nope'", exitCode: 2, hint: 'see xttraffic --help' } });
    expect(await f.run('help', 'status')).toBe(0);
    expect(f.stdout).toMatch(/^Usage: xttraffic status /);
    expect(await f.run('help')).toBe(0);
    expect(f.stdout).toMatch(/^Usage: xttraffic \[options\] \[command\]\n/);
    expect(await f.run('status', '--bogus', '--json')).toBe(2);
    expect(f.errorJson()).toEqual({ error: { code: 'EUSAGE', message: "unknown option '--bogus'", exitCode: 2, hint: 'see xttraffic --help' } });
    expect(await f.run('read', '--json')).toBe(2);
    expect(f.errorJson().error['message']).toBe("missing required argument 'name'");
    expect(f.stdout).toBe('');
  });

  it('--help ends with every environment variable the sources read and every exit code, one line each', async () => {
    expect(await f.run('--help')).toBe(0);
    const help = f.stdout;
    expect(help.trimEnd().endsWith(ENVIRONMENT_HELP.trimEnd())).toBe(true);
    const env = help.slice(help.indexOf('\nEnvironment'), help.indexOf('\nExit status:'));
    const listed = [...env.matchAll(/^ {2}([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!);
    // what src/ reads: env['NAME'] (deps.env, process.env, a passed env) or env.NAME
    const read = new Set<string>();
    for (const file of sources(join(ROOT, 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/\benv(?:\[['"]([A-Z][A-Z0-9_]*)['"]\]|\.([A-Z][A-Z0-9_]*)\b)/g)) read.add(m[1] ?? m[2]!);
    }
    expect([...listed].sort()).toEqual([...read].sort());
    expect(listed).toHaveLength(new Set(listed).size);
    // one prefix for xttraffic's own; the others belong to iptables and the system
    expect(listed.filter((n) => !n.startsWith('XTT_'))).toEqual(['XTABLES_LIBDIR', 'TMPDIR']);
    // 0 and each EXIT_* of src/core/errors.ts, in order
    const codes = [...readFileSync(join(ROOT, 'src/core/errors.ts'), 'utf8').matchAll(/^export const EXIT_[A-Z]+ = (\d+);/gm)].map((m) => Number(m[1]));
    expect(codes).toEqual([1, 2, 3, 4]);
    const exit = help.slice(help.indexOf('\nExit status:'));
    expect([...exit.matchAll(/^ {2}(\d) {2}\S/gm)].map((m) => Number(m[1]))).toEqual([0, ...codes]);
    // and what they say is what happens: a usage error is 2, a missing table 4
    expect(exit).toMatch(/^ {2}2 {2}usage error/m);
    expect(await f.run('read', '--bogus')).toBe(2);
    expect(exit).toMatch(/^ {2}4 {2}missing resource or permission: no such table/m);
    expect(await f.run('read', 'nosuch')).toBe(4);
  });

  it('README\'s "Environment and exit codes" is the same text, among the operator\'s sections', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const sections = [...readme.matchAll(/^## (.*)$/gm)].map((m) => m[1]);
    expect(sections.indexOf('Environment and exit codes')).toBeGreaterThan(sections.indexOf('Installing on a router or monitor box'));
    expect(sections.indexOf('Environment and exit codes')).toBeLessThan(sections.indexOf('Kernel tests in a VM'));
    const start = readme.indexOf('## Environment and exit codes');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    expect(section).toContain(`\`\`\`text${ENVIRONMENT_HELP}\`\`\``);
  });

  it('an unexpected failure is a runtime error (exit 1) with its code', async () => {
    const deps = f.deps();
    deps.readProcFile = () => Promise.reject(Object.assign(new Error('disk on fire'), { code: 'EIO' }));
    const { run } = await import('../../src/program.js');
    expect(await run(['read', 'x', '--json'], deps)).toBe(1);
    const path = `${f.procNet}/x`;
    expect(JSON.parse(f.stderr)).toEqual({ error: { code: 'EIO', message: `reading ${path} failed: disk on fire`, exitCode: 1, path } });
  });
});
