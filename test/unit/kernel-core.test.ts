import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { REPO } from '../lib/sh.js';

// The module's pure logic (kernel/xt_traffic_core.h) compiled in userspace with
// ASan/UBSan: test/c/core_test.c checks masks, names, buckets, GSO bytes, flow keys.
it('xt_traffic core logic passes its C unit tests', () => {
  const r = spawnSync('make', ['-s', '-C', `${REPO}/test/c`], { encoding: 'utf8' });
  const out = r.stdout + r.stderr;
  expect(out).toMatch(/^\d+ passed, 0 failed$/m);
  expect(out).not.toContain('FAIL');
  expect(r.status).toBe(0);
});
