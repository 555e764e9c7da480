import { defineConfig } from 'vitest/config';

// Checks of the bench smoke run's report (test/bench/): `npm test` runs
// `BENCH_QUICK=1 bash bench/bench.sh` first, then these against its quick.json.
export default defineConfig({
  test: {
    include: ['test/bench/**/*.test.ts'],
    testTimeout: 20_000,
  },
});
