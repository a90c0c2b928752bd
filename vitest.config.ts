import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // integration tests start real processes; keep them from starving each other on 2 cores
    fileParallelism: true,
    maxWorkers: 2,
  },
});
