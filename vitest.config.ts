import { defineConfig } from 'vitest/config';

// Host suites: pure unit tests, in-process CLI tests and C unit tests of the module's logic.
// The harness self-tests (vitest.harness.config.ts) boot VMs from the host; the kernel
// suites (vitest.vm.config.ts) run inside the guest. `npm test` runs all three.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/cli/**/*.test.ts', 'test/ledger/**/*.test.ts'],
    testTimeout: 20_000,
  },
});
