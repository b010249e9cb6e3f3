/**
 * Throw-away PostgreSQL clusters for tests: a fresh temp directory, a random loopback port, password
 * (SCRAM) authentication over TCP; stopped and deleted at the end (and at process exit). The cluster
 * itself is src/temporal/local-postgres.ts (Debian's binaries; run as the `postgres` user when the
 * tests run as root, as CI does), which `npm run temporal:cluster` uses too.
 *
 * `describePostgres` runs a suite when the binaries exist; without them it skips locally and FAILS in
 * CI (CI=true), so a CI machine that lost its PostgreSQL cannot pass silently.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { findPostgresBin, openLocalPostgres } from '../../src/temporal/local-postgres.js';

export { findPostgresBin };

/** A describe() that runs with PostgreSQL binaries, skips without them, and fails without them in CI. */
export function describePostgres(name: string, fn: () => void): void {
  if (findPostgresBin()) {
    describe(name, fn);
  } else if (process.env.CI === 'true' || process.env.CI === '1') {
    describe(name, () => {
      it('has PostgreSQL installed (CI installs it: .ci/run)', () => {
        throw new Error('PostgreSQL binaries (initdb, pg_ctl, postgres) not found; apt-get install -y postgresql');
      });
    });
  } else {
    describe.skip(`${name} (PostgreSQL not installed)`, fn);
  }
}

export interface TempPostgres {
  /** postgres://postgres:<password>@127.0.0.1:<port>/<database> */
  url(database?: string): string;
  password: string;
  /** Creates a fresh database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startTempPostgres(): Promise<TempPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'pa-pg-'));
  const cluster = await openLocalPostgres({ dir, maxConnections: 50 });
  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    cluster.stopSync('immediate');
    rmSync(dir, { recursive: true, force: true });
  };
  // A test process that dies must not leave a postmaster behind: the exit hook, and a watchdog for a
  // process killed by a signal (vitest ends a stuck fork that way).
  process.once('exit', stopSync);
  const disarm = cluster.stopWhenProcessDies();
  try {
    await cluster.start();
  } catch (err) {
    process.removeListener('exit', stopSync);
    disarm();
    stopSync();
    throw err;
  }

  let counter = 0;
  return {
    url: (database) => cluster.url(database),
    password: cluster.password,
    createDatabase: (name = `t${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`) => cluster.createDatabase(name),
    async stop() {
      if (stopped) return;
      process.removeListener('exit', stopSync);
      disarm();
      try {
        await cluster.stop('fast');
      } finally {
        stopped = true;
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
