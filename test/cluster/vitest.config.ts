import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The cluster suite (`npm run test:cluster`): not one of `npm test`'s projects (the root config's unit
 * project excludes test/cluster). It starts a real Temporal server on PostgreSQL, two API replicas and
 * two workers, so it needs no global setup; files one at a time in a forked process, generous timeouts
 * (2 cores).
 */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    name: 'cluster',
    include: ['test/cluster/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 600_000,
    teardownTimeout: 120_000,
  },
});
