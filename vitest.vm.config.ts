import { defineConfig } from 'vitest/config';

// Suites that need a real kernel with xt_traffic: run inside the VM as root
// (`npm run vm -- npx vitest run --config vitest.vm.config.ts`). One file at a time:
// they share the guest's kernel, module and iptables state.
export default defineConfig({
  test: {
    include: ['test/vm/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
