/**
 * PROBE 19 / budgets — the file-ledger twin of probe19-budget-pg-begin-race.int.test.ts: a plan's
 * `beginApplying` right at its charge's expiry racing another plan's `charge` through a second store
 * on the same file (two replicas' stores; the host lock arbitrates between them).
 *
 * Scenario: `concurrent: 1`, one principal per round. Plan A is charged with expiresAt ≈ now + 300 ms;
 * around that instant store 1 runs A's beginApplying while store 2 charges B1, B2, … until one is
 * admitted.
 *
 * Guarantee under test: promise 1 and promise 3 (a plan whose beginApplying said ok holds the slot;
 * no second plan admitted beside it). Oracle: the verdicts and the ledger's snapshot after each round.
 *
 * Seen (PASSES): every operation is one read-decide-write under the host lock, so A either began
 * before B's charge read the file (B refused) or was refused `lapsed`; never both.
 * 05:09 UTC: 60 rounds, A began in 3, a B admitted in 57, both in 0, at most 1 holder (A's call mostly
 * queued behind B's fsync'd writes and lapsed: the boundary is hit less often than on PostgreSQL).
 *
 * Reproduce: nice -n 19 npx vitest run test/budgets/probe19-budget-file-begin-race.test.ts
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { openFileBudgetStore } from '../../src/budgets/file-store.js';
import { expectNoTwoHoldersAtExpiry } from './support/begin-race.js';

describe('probe19 budget: beginApplying at the expiry racing a charge on the file ledger', () => {
  it('never leaves two plans holding the one concurrency slot', { timeout: 120_000 }, async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pa-probe19-')), 'audit.jsonl.budgets.json');
    const [one, two] = [await openFileBudgetStore(path), await openFileBudgetStore(path)];
    try {
      await expectNoTwoHoldersAtExpiry(one, two, { rounds: 60, tag: 'p19f' });
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });
});
