import { expect, it } from 'vitest';
import { REPO, runAsync } from '../lib/sh.js';

// Kernel coding style: the kernel's own checkpatch.pl (Debian linux-source-6.1) over the
// module, its headers and the uapi header; the module's .c files also under --strict.
it('kernel sources are checkpatch clean', async () => {
  const r = await runAsync('bash', [`${REPO}/scripts/checkpatch.sh`], { cwd: REPO });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
}, 120_000);

it('xt_traffic.c and xt_traffic_core.h are clean under --strict too', async () => {
  const r = await runAsync('bash', [`${REPO}/scripts/checkpatch.sh`, '--strict', 'kernel/xt_traffic.c', 'kernel/xt_traffic_core.h'], { cwd: REPO });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
}, 120_000);
