#!/usr/bin/env node
// Builds the N-API addon (build/Release/xttraffic.node) with node-gyp when it is stale.
//   node scripts/build-native.mjs [--force] [--strict] [--verbose]
// Stale: the .node is missing or older than binding.gyp, native/*, or the uapi header.
// When the build fails it prints one clear warning and exits 0, so `npm install` and the
// commands that do not need the addon still work; --strict exits 1 instead (xttraffic build).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const force = args.has('--force');
const strict = args.has('--strict');
const verbose = args.has('--verbose') || process.env.XTT_VERBOSE === '1';
const out = join(root, 'build', 'Release', 'xttraffic.node');

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

function inputs() {
  const files = [join(root, 'binding.gyp'), join(root, 'kernel/include/uapi/linux/netfilter/xt_traffic.h')];
  for (const f of readdirSync(join(root, 'native'))) if (/\.(cc|h)$/.test(f)) files.push(join(root, 'native', f));
  return files;
}

function stale() {
  const built = mtime(out);
  if (built < 0) return 'not built yet';
  const newer = inputs().find((f) => mtime(f) > built);
  return newer ? `${newer.slice(root.length + 1)} changed` : undefined;
}

/** node-gyp: the one npm runs install scripts with, ours, or the one on PATH. */
function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) {
    return [process.execPath, process.env.npm_config_node_gyp];
  }
  try {
    return [process.execPath, createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    return ['node-gyp'];
  }
}

/** Headers: npm's nodedir, else the ones installed next to this node (e.g. /usr/include/node). */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [`--nodedir=${process.env.npm_config_nodedir}`];
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return [`--nodedir=${prefix}`];
  return [];
}

function warn(msg, detail) {
  process.stderr.write(`xttraffic: warning: ${msg}\n`);
  if (detail) process.stderr.write(detail.trimEnd().split('\n').filter((l) => !l.startsWith('gyp info')).slice(-25).map((l) => `  ${l}`).join('\n') + '\n');
  process.stderr.write(
    'xttraffic: the native addon is needed by `xttraffic load` and `unload` (and speeds up `read`);\n' +
      'xttraffic: install g++, make and python3 (apt install build-essential python3), then run `npm run build:native`.\n',
  );
  process.exit(strict ? 1 : 0);
}

const why = force ? 'forced' : stale();
if (!why) {
  if (verbose) process.stderr.write('xttraffic: native addon up to date\n');
  process.exit(0);
}

const [cmd, ...pre] = nodeGyp();
const configured = existsSync(join(root, 'build', 'Makefile')) && mtime(join(root, 'build', 'Makefile')) >= mtime(join(root, 'binding.gyp'));
const action = configured && !force ? ['build'] : ['rebuild'];
const gypArgs = [...pre, ...action, ...nodedirArgs(), '--release'];
const tty = process.stderr.isTTY && !process.env.CI;
if (tty || verbose) process.stderr.write(`xttraffic: building the native addon (${why})\n`);
const r = spawnSync(cmd, gypArgs, {
  cwd: root,
  stdio: tty || verbose ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
  env: { ...process.env, JOBS: process.env.JOBS ?? '2' },
});
if (r.error) warn(`could not run node-gyp (${r.error.message})`);
if (r.status !== 0) warn(`building the native addon failed (node-gyp exit ${r.status})`, `${r.stdout ?? ''}${r.stderr ?? ''}`);
if (!existsSync(out)) warn(`node-gyp succeeded but ${out} is missing`);
if (tty || verbose) process.stderr.write(`xttraffic: built ${out.slice(root.length + 1)}\n`);
