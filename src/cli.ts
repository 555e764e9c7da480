#!/usr/bin/env node
/** Entry point: the only place that sets process.exitCode. */
import './engine-check.js';
import { realDeps } from './real-deps.js';
import { run } from './program.js';

// A reader that stops early (`xttraffic read BIG | head`) closes the pipe: that ends the
// output, as it does for any Unix filter, never with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  throw e;
});

process.exitCode = await run(process.argv.slice(2), await realDeps());
