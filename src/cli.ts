#!/usr/bin/env node
/** Entry point: the only place that sets process.exitCode. */
import './engine-check.js';
import { realDeps } from './real-deps.js';
import { run } from './program.js';

// A reader that stops early (`xttraffic status | head`) closes the pipe: that ends the
// output, as it does for any Unix filter, never with a stack trace. `read` does not write
// through this stream but through deps.writeAll (write(2), byte-exact): a non-clearing read
// ends quietly on EPIPE too, while a clearing one (--clear, a --clearonread table) exits 1
// saying what was lost and where the snapshot was saved; no exit 0 here can hide that.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  throw e;
});

process.exitCode = await run(process.argv.slice(2), await realDeps());
