/**
 * Fails early, with one message, when the running Node is older than package.json's
 * "engines" (node >= 20): on Debian 12 `apt install nodejs` gives Node 18, with which npm
 * only warns (EBADENGINE) and the CLI would then half-work.
 *
 * `src/cli.ts` imports this module first, so it is evaluated before any other module of the
 * CLI. It must itself run on old Node: it imports nothing, and uses no syntax or API newer
 * than Node 18 (ES2022 output; test/operator/ runs it under Debian 12's own Node 18).
 * The exit code is EXIT_VERSION of src/core/errors.ts (3: version/ABI), repeated here so that
 * nothing else is loaded before the check.
 */

const NEED_MAJOR = 20;
const EXIT_VERSION = 3;

const running = process.versions.node;
const major = Number.parseInt(running.split('.')[0] ?? '', 10);

if (!(major >= NEED_MAJOR)) {
  const message = `Node.js ${running} (${process.execPath}) is too old: xttraffic needs Node.js ${NEED_MAJOR} or newer`;
  const hint =
    'Debian 13 (trixie): `apt install nodejs npm` gives Node.js 20. ' +
    "Debian 12 (bookworm): Debian's archive has Node.js 18 only (bookworm, bookworm-updates, " +
    'bookworm-security and bookworm-backports): upgrade to Debian 13, or use a Node.js 20 or ' +
    'newer from outside Debian (not tested with xttraffic), then install xttraffic again with ' +
    'that node so that its native modules are built for it.';
  if (process.argv.includes('--json')) {
    const error = { code: 'ENODEVERSION', message, exitCode: EXIT_VERSION, hint };
    process.stderr.write(`${JSON.stringify({ error })}\n`);
  } else {
    process.stderr.write(`xttraffic: ${message}\nhint: ${hint}\n`);
  }
  process.exit(EXIT_VERSION);
}

export {};
