#!/usr/bin/env node
/** Entry point: the only place that sets process.exitCode. */
import { realDeps } from './lib/deps.js';
import { run } from './program.js';

process.exitCode = await run(process.argv.slice(2), await realDeps());
