/**
 * The operator's install, as README's "Installing on a router or monitor box" says, on stock
 * Debian in debootstrap'd chroots (scripts/operator-chroot.sh; bases cached in
 * /var/cache/xttraffic, each run in its own copy-on-write overlay under a temporary folder):
 *  - Debian 13 (trixie): README's apt command, `npm install -g` of `npm pack` of this working
 *    tree (better-sqlite3 and the addon built from source with Debian's Node 20 headers),
 *    `xttraffic --help`, `--version`, a read of a saved table (XTT_PROC_DIR) with exact numbers,
 *    `xttraffic build` of the module and the extension against Debian 13's kernel headers;
 *  - Debian 12 (bookworm): the same installed package run by Debian 12's own Node 18 fails early,
 *    exit 3, with the message of src/engine-check.ts.
 * Needs root, debootstrap and network access to Debian's archive and the npm registry.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../lib/sh.js';

interface Run {
  status: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs asynchronously (a blocked worker would starve vitest's RPC). */
function exec(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const t0 = Date.now();
  const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: { ...process.env, ...opts.env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr, ms: Date.now() - t0 }));
  });
}

const SCRIPT = path.join(REPO, 'scripts/operator-chroot.sh');
const PKG = '/usr/local/lib/node_modules/xttraffic'; // where `npm install -g` puts it (Debian's npm prefix)

function chroot(suite: string, dir: string, binds: string[], cmd: string[]): Promise<Run> {
  return exec('bash', [SCRIPT, 'run', suite, dir, ...binds.flatMap((b) => ['--bind', b]), '--', ...cmd]);
}

function show(r: Run): string {
  return `exit ${r.status}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`;
}

// A saved traffic table in the kernel's exact format (docs/design.md): header, then per IP
// ip, total_in, total_out, tcp_in, tcp_out, udp_in, udp_out, other_in, other_out, each field
// followed by a tab except the last. The first row is README's session (5 pings of 84 bytes,
// one 1000-byte UDP datagram: 1028 out); the second has a u64 maximum.
const TABLE =
  'IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n' +
  '10.20.1.5\t420\t1448\t0\t0\t0\t1028\t420\t420\n' +
  '10.20.3.7\t18446744073709551615\t3000\t2000\t1500\t700\t900\t300\t600\n';

const COMMANDS = ['load', 'unload', 'rule', 'read', 'watch', 'status', 'mirror', 'build', 'install', 'uninstall'];

let work = '';
let tgz = '';
let kernelRelease = '';
let install: Run;
const timings: string[] = [];

beforeAll(async () => {
  work = mkdtempSync('/var/tmp/xtt-operator-');
  const share = path.join(work, 'share');
  mkdirSync(path.join(share, 'proc'), { recursive: true });
  writeFileSync(path.join(share, 'proc', 'LAN'), TABLE);

  // npm pack of the working tree, in a copy (its `prepare` runs tsc; the clone's dist/ is
  // left alone): tracked files and new files git does not ignore.
  const tree = path.join(work, 'tree');
  const ls = spawnSync('git', ['ls-files', '-z', '-c', '-o', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' });
  expect(ls.status).toBe(0);
  for (const f of ls.stdout.split('\0').filter(Boolean)) {
    if (existsSync(path.join(REPO, f))) cpSync(path.join(REPO, f), path.join(tree, f), { recursive: true });
  }
  symlinkSync(path.join(REPO, 'node_modules'), path.join(tree, 'node_modules'));
  let t0 = Date.now();
  const pack = await exec('npm', ['pack', '--json', '--pack-destination', share], { cwd: tree });
  expect(pack.status, show(pack)).toBe(0);
  tgz = (JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string }[])[0]!.filename;
  timings.push(`npm pack ${Math.round((Date.now() - t0) / 1000)} s`);

  // The bases (created once per machine; minutes the first time).
  for (const suite of ['trixie', 'bookworm']) {
    t0 = Date.now();
    const base = await exec('bash', [SCRIPT, 'base', suite]);
    expect(base.status, show(base)).toBe(0);
    if (suite === 'trixie') kernelRelease = readFileSync(path.join(base.stdout.trim(), 'etc/xtt-kernel-release'), 'utf8').trim();
    timings.push(`${suite} base ${Math.round((Date.now() - t0) / 1000)} s`);
  }

  // README: `npm install -g ./xttraffic-VERSION.tgz`, in the folder holding the tarball.
  install = await chroot('trixie', path.join(work, 'trixie'), [`${share}:/xtt`], ['sh', '-c', `cd /xtt && npm install -g ./${tgz}`]);
  timings.push(`npm install -g ${Math.round(install.ms / 1000)} s`);
}, 1_200_000);

afterAll(() => {
  process.stderr.write(`operator suite: ${timings.join(', ')}\n`);
  if (work && process.env.XTT_OPERATOR_KEEP !== '1') rmSync(work, { recursive: true, force: true });
});

describe('Debian 13 (trixie): the operator install of README', () => {
  it('README gives the apt and npm commands this test runs', async () => {
    const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const start = readme.indexOf('## Installing on a router or monitor box');
    expect(start).toBeGreaterThan(-1);
    const end = readme.indexOf('\n## ', start + 3);
    const section = readme.slice(start, end < 0 ? undefined : end);
    const apt = await exec('bash', [SCRIPT, 'apt-line', 'trixie']);
    expect(apt.stdout.trim()).toBe('apt install build-essential linux-headers-$(uname -r) libxtables-dev pkg-config nodejs npm');
    expect(section).toContain(apt.stdout.trim());
    expect(section).toContain('npm install -g ./xttraffic-0.1.0.tgz');
    expect(tgz).toBe('xttraffic-0.1.0.tgz');
  });

  it('npm install -g ./xttraffic-0.1.0.tgz: no engine warning, better-sqlite3 and the addon built for Node 20', async () => {
    expect(install.status, show(install)).toBe(0);
    expect(install.stdout + install.stderr).not.toMatch(/EBADENGINE|xttraffic: warning/);
    const dir = path.join(work, 'trixie', 'upper');
    expect(existsSync(path.join(dir, PKG, 'build/Release/xttraffic.node'))).toBe(true);
    expect(existsSync(path.join(dir, PKG, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))).toBe(true);
    const r = await chroot('trixie', path.join(work, 'trixie'), [], [
      'node',
      '-e',
      `const D = require('${PKG}/node_modules/better-sqlite3');` +
        `const a = require('${PKG}/build/Release/xttraffic.node');` +
        `console.log(process.version, new D(':memory:').prepare('select 6 * 7 as x').get().x, typeof a)`,
    ]);
    expect(r.status, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^v20\.\d+\.\d+ 42 object\n$/);
  });

  it('xttraffic --help: exit 0, every command listed', async () => {
    const r = await chroot('trixie', path.join(work, 'trixie'), [], ['xttraffic', '--help']);
    expect(r.status, show(r)).toBe(0);
    expect(r.stderr).toBe('');
    const listed = [...r.stdout.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]);
    for (const c of COMMANDS) expect(listed).toContain(c);
  });

  it('xttraffic --version prints the package version', async () => {
    const r = await chroot('trixie', path.join(work, 'trixie'), [], ['xttraffic', '--version']);
    expect(r.status, show(r)).toBe(0);
    expect(r.stdout).toBe('0.1.0\n');
  });

  it('XTT_PROC_DIR=DIR xttraffic read LAN --json: the saved table, exact numbers', async () => {
    const r = await chroot('trixie', path.join(work, 'trixie'), [`${work}/share:/xtt`], [
      'env',
      'XTT_PROC_DIR=/xtt/proc',
      'xttraffic',
      'read',
      'LAN',
      '--json',
    ]);
    expect(r.status, show(r)).toBe(0);
    // u64 values beyond 2^53 are printed as exact integers: compare them as text
    const exact = r.stdout.replace(/\s+/g, '');
    expect(exact).toContain('"total":{"in":18446744073709551615,"out":3000}');
    expect(exact).toContain('"totals":{"total":{"in":18446744073709552035,"out":4448}');
    const doc = JSON.parse(r.stdout) as {
      table: string;
      kind: string;
      cleared: boolean;
      count: number;
      rows: { ip: string; tcp: { in: number; out: number }; udp: { in: number; out: number }; other: { in: number; out: number } }[];
      totals: { tcp: unknown; udp: unknown; other: unknown };
    };
    expect(doc.table).toBe('LAN');
    expect(doc.kind).toBe('traffic');
    expect(doc.cleared).toBe(false);
    expect(doc.count).toBe(2);
    expect(doc.rows.map((x) => x.ip)).toEqual(['10.20.1.5', '10.20.3.7']);
    expect(doc.rows[0]).toEqual({
      ip: '10.20.1.5',
      total: { in: 420, out: 1448 },
      tcp: { in: 0, out: 0 },
      udp: { in: 0, out: 1028 },
      other: { in: 420, out: 420 },
    });
    expect(doc.rows[1]!.tcp).toEqual({ in: 2000, out: 1500 });
    expect(doc.rows[1]!.udp).toEqual({ in: 700, out: 900 });
    expect(doc.rows[1]!.other).toEqual({ in: 300, out: 600 });
    expect(doc.totals.tcp).toEqual({ in: 2000, out: 1500 });
    expect(doc.totals.udp).toEqual({ in: 700, out: 1928 });
    expect(doc.totals.other).toEqual({ in: 720, out: 1020 });
  });

  it("xttraffic build: the module and the extension, with Debian 13's kernel headers", async () => {
    const headers = `/usr/src/linux-headers-${kernelRelease}`;
    const r = await chroot('trixie', path.join(work, 'trixie'), [], ['xttraffic', 'build', '--kernel-headers', headers]);
    expect(r.status, show(r)).toBe(0);
    const out = await chroot('trixie', path.join(work, 'trixie'), [], [
      'sh',
      '-c',
      `modinfo -F vermagic $(find ${PKG} -name xt_traffic.ko | head -1); ls $(find ${PKG} -name libxt_traffic.so | head -1)`,
    ]);
    expect(out.status, show(out)).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`^${kernelRelease.replace(/[.+]/g, '\\$&')} SMP preempt mod_unload modversions \n.*libxt_traffic\\.so\n$`));
  });
});

describe("Debian 12 (bookworm): the CLI under Debian's own Node 18 fails early", () => {
  const pkgDir = (): string => path.join(work, 'trixie', 'upper', PKG);

  it('xttraffic --help: one message naming the version, what is needed and what to install; exit 3', async () => {
    const bw = path.join(work, 'bookworm');
    const v = await chroot('bookworm', bw, [], ['node', '--version']);
    expect(v.stdout).toMatch(/^v18\.\d+\.\d+\n$/);
    const version = v.stdout.trim().slice(1);
    const r = await chroot('bookworm', bw, [`${pkgDir()}:/opt/xttraffic`], ['/opt/xttraffic/dist/cli.js', '--help']);
    expect(r.status, show(r)).toBe(3);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(`xttraffic: Node.js ${version} (/usr/bin/node) is too old: xttraffic needs Node.js 20 or newer`);
    expect(lines[1]).toMatch(/^hint: Debian 13 \(trixie\): `apt install nodejs npm` gives Node\.js 20\. Debian 12 \(bookworm\): /);
    expect(lines[1]).toContain('bookworm-backports');
    expect(lines[2]).toBe('');
  });

  it('xttraffic read LAN --json: the same as one JSON error on stderr; exit 3', async () => {
    const r = await chroot('bookworm', path.join(work, 'bookworm'), [`${pkgDir()}:/opt/xttraffic`, `${work}/share:/xtt`], [
      'env',
      'XTT_PROC_DIR=/xtt/proc',
      '/opt/xttraffic/dist/cli.js',
      'read',
      'LAN',
      '--json',
    ]);
    expect(r.status, show(r)).toBe(3);
    expect(r.stdout).toBe('');
    const doc = JSON.parse(r.stderr) as { error: { code: string; exitCode: number; message: string; hint: string } };
    expect(doc.error.code).toBe('ENODEVERSION');
    expect(doc.error.exitCode).toBe(3);
    expect(doc.error.message).toMatch(/^Node\.js 18\.\d+\.\d+ \(\/usr\/bin\/node\) is too old: xttraffic needs Node\.js 20 or newer$/);
  });
});
