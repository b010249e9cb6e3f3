import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The chaos suite (`npm run test:chaos`): not one of `npm test`'s projects (the root config excludes
 * test/chaos). It starts its own Temporal dev server, simulators, API and worker processes, so it
 * needs no global setup; one file, in a forked process, with generous timeouts (2 cores).
 */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    name: 'chaos',
    include: ['test/chaos/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 900_000,
    hookTimeout: 300_000,
    teardownTimeout: 60_000,
  },
});
