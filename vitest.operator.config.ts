import { defineConfig } from 'vitest/config';

// The operator's install in Debian chroots (test/operator/, scripts/operator-chroot.sh):
// needs root, debootstrap and network access to Debian's archive and the npm registry.
// The first run on a machine creates the cached chroot bases (minutes).
export default defineConfig({
  test: {
    include: ['test/operator/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 1_200_000,
  },
});
