import { defineConfig } from 'vitest/config';

// Self-tests of `npm run vm`: each boots a guest from the host, one at a time.
export default defineConfig({
  test: {
    include: ['test/harness/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 600_000,
  },
});
