import { defineConfig } from 'vitest/config';

/**
 * Two projects:
 *  - `unit`: fast, no external services (`npm run test:unit`).
 *  - `integration`: needs a Temporal server. `test/setup/temporal-global-setup.ts` uses TEMPORAL_ADDRESS
 *    if set, otherwise starts a throw-away dev server (random port, fresh temp SQLite file, headless) and
 *    provides `temporalAddress` / `temporalNamespace` via `inject()` and TEMPORAL_TEST_ADDRESS /
 *    TEMPORAL_TEST_NAMESPACE env vars. Files run one at a time in forked processes (one Temporal
 *    Runtime per process; see docs/temporal-server.md) (`npm run test:integration`).
 * Integration runs after unit (sequence.groupOrder) so they do not compete for the 2 cores.
 */
export default defineConfig({
  test: {
    // Global-setup teardown stops the dev server (SIGTERM, up to 10 s, then SIGKILL).
    teardownTimeout: 30_000,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          // test/chaos and test/cluster have their own configs (npm run test:chaos, test:cluster): not part of npm test.
          exclude: ['test/integration/**', 'test/chaos/**', 'test/cluster/**', '**/*.int.test.ts', '**/node_modules/**'],
          environment: 'node',
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/**/*.int.test.ts'],
          exclude: ['**/node_modules/**'],
          environment: 'node',
          globalSetup: ['test/setup/temporal-global-setup.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
