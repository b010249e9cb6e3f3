/**
 * PROBE 19 / budgets — on the PostgreSQL ledger, a plan's `beginApplying` right at its charge's expiry
 * races another plan's `charge` on another replica: `beginApplying` locks only its own row (FOR UPDATE)
 * and reads the time before it writes, while `charge` takes the principal's advisory lock, which
 * `beginApplying` does not take, and reads the committed rows (MVCC: not A's uncommitted mark).
 *
 * Scenario: `concurrent: 1`, one principal per round, two stores (two replicas, their own pools) on one
 * database. Plan A is charged with expiresAt ≈ now + 300 ms. Around that instant replica 1 runs
 * A's beginApplying (the execute activity about to send) while replica 2 charges plans B1, B2, … one
 * after another until one is admitted (an agent retrying at the `freesAt` it was told).
 *
 * Guarantee under test: promise 1 (never admitted past `concurrent`, across replicas and workers) and
 * promise 3 (a plan that sends to Proxmox, i.e. whose beginApplying said ok, counts against
 * `concurrent` until its run ends). Oracle: the verdicts, and the store's snapshot of the round's
 * principal after it: how many charges hold a slot (not released, and applying or before expiresAt).
 * A violating round: A's beginApplying ok AND a B admitted → two slots held against a limit of 1.
 *
 * Seen (05:08 UTC, FAILS): 80 rounds, A began in 57, a B was admitted in 28, BOTH in 5 (rounds 42, 44,
 * 59, 60, 61): the snapshot then shows 2 charges holding against `concurrent: 1` (A applying, B admitted).
 * A second run (05:10 UTC): again 57 / 28 / both in 5 (rounds 2, 3, 4, 5, …), max 2 holders.
 *
 * Cause: pg-store.ts `beginApplying` reads `now` (clock_timestamp) inside its transaction, finds it
 * before expiresAt, marks the row applying and commits a few round trips later; `charge` on the other
 * replica, serialised with other charges only (pg_advisory_xact_lock on the principal, which
 * beginApplying never takes), reads at a `now` past expiresAt the committed, not-yet-applying row, so
 * ledger.ts `holding` says A's slot is free and admits B. The file store is not affected (one lock
 * for every operation).
 *
 * Fixed: pg-store.ts `beginApplying` takes the principal's advisory lock, like `charge`, so the two
 * decide in one order (after the fix: 80 rounds, both in 0).
 *
 * Reproduce: nice -n 19 npx vitest run test/budgets/probe19-budget-pg-begin-race.int.test.ts
 */
import { afterAll, beforeAll, it } from 'vitest';
import { openPostgresBudgetStore } from '../../src/budgets/pg-store.js';
import type { BudgetStore } from '../../src/budgets/store.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { expectNoTwoHoldersAtExpiry } from './support/begin-race.js';

let server: TempPostgres;
let one: BudgetStore;
let two: BudgetStore;

describePostgres('probe19 budget: beginApplying at the expiry racing a charge on another replica', () => {
  beforeAll(async () => {
    server = await startTempPostgres();
    const url = await server.createDatabase();
    one = await openPostgresBudgetStore(url, { poolSize: 4 });
    two = await openPostgresBudgetStore(url, { poolSize: 4 });
  }, 60_000);
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await server?.stop();
  });

  it('never leaves two plans holding the one concurrency slot', { timeout: 150_000 }, async () => {
    await expectNoTwoHoldersAtExpiry(one, two, { rounds: 80, tag: 'p19' });
  });
});
