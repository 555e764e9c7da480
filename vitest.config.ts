import { defineConfig } from 'vitest/config';

// Host suites: pure unit tests, in-process CLI tests and C unit tests of the module's logic.
// The VM suites live in vitest.vm.config.ts and run inside the guest (npm test runs both).
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/cli/**/*.test.ts', 'test/harness/**/*.test.ts'],
    testTimeout: 20_000,
  },
});
