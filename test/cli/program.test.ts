import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Fake } from './fakes.js';

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

  it('an unexpected failure is a runtime error (exit 1) with its code', async () => {
    const deps = f.deps();
    deps.readProcFile = () => Promise.reject(Object.assign(new Error('disk on fire'), { code: 'EIO' }));
    const { run } = await import('../../src/program.js');
    expect(await run(['read', 'x', '--json'], deps)).toBe(1);
    const path = `${f.procNet}/x`;
    expect(JSON.parse(f.stderr)).toEqual({ error: { code: 'EIO', message: `reading ${path} failed: disk on fire`, exitCode: 1, path } });
  });
});
