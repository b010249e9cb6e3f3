/**
 * PROBE 19 / budgets — the file ledger forgets a lapsed charge once it is an hour old, and then lets
 * the plan it belonged to begin applying ("a plan never charged is free to go").
 *
 * Scenario (the default TTL, config/demo.yaml `policy.planTtlSeconds: 3600`): `agent:pi` has
 * `concurrent: 1`. The store's clock is injected (openFileBudgetStore `now`), standing in for time
 * passing.
 *  1. T: plan A is charged (expiresAt = T + 1 h + 1 min, as chargeBudget computes it for a 3600 s TTL).
 *     A is approved and applied just before its expiry; its execute activity is scheduled, and the
 *     worker that would run it is SIGKILLed / restarting (or the environment's queue has no worker)
 *     past T + 1 h + 1 min.
 *  2. T + 1 h + 2 min: A's slot was given up at its expiresAt. Plan B is charged: admitted (right),
 *     and B begins applying (it holds the one slot).
 *  3. A's execute activity now starts on a worker: holdBudgetSlot → store.beginApplying(A).
 *
 * Guarantee under test: promise 3 — a plan whose concurrency slot was given up (no longer counted by
 * the ledger) never sends anything to Proxmox afterwards (beginApplying must refuse it, `lapsed`).
 * Oracle: beginApplying's answer (the execute activity sends to Proxmox iff it is `ok`), and the
 * store's snapshot (how many plans hold `concurrent` when A goes on).
 *
 * Cause (seen: FAILS): B's charge rewrites the ledger without the charges `isSpent` (ledger.ts): not in
 * the hour (A.at <= now - 1 h) and not holding (past expiresAt, not applying). A's charge is gone, and
 * file-store.ts `beginApplying` answers `{ ok: true }` for a plan it cannot find. A then sends while
 * B applies: two plans on Proxmox against `concurrent: 1`, and the ledger counts only B.
 * (The PostgreSQL store keeps an unreleased charge until lapse_at, expiry + 6 h, so it refuses A here.)
 *
 * Seen: lateA = { ok: true }; the ledger holds only plan-b (applying).
 *
 * Fixed: ledger.ts `isSpent` keeps a charge nobody released until its lapse, so beginApplying finds
 * it and refuses (`lapsed`).
 *
 * Reproduce: nice -n 19 npx vitest run test/budgets/probe19-budget-pruned-lapse.test.ts
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFileBudgetStore } from '../../src/budgets/file-store.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;

describe('probe19 budget: a lapsed charge forgotten after its hour', () => {
  it('refuses to let a plan whose slot was given up begin applying, even once its charge is an hour old', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pa-probe19-')), 'audit.jsonl.budgets.json');
    const T = Date.parse('2026-12-07T05:00:00.000Z');
    let now = T;
    const store = await openFileBudgetStore(path, { now: () => now });
    const limits = { concurrent: 1 };
    const ttl = 3600 * 1000;

    const a = await store.charge(limits, { planId: 'plan-a', principal: 'agent:pi', destructive: false, guest: 'lab/100', expiresAt: T + ttl + MINUTE });
    expect(a.admitted).toBe(true);

    // A minute past A's charge expiry: its slot is given up; B takes it and begins applying.
    now = T + ttl + 2 * MINUTE;
    const b = await store.charge(limits, { planId: 'plan-b', principal: 'agent:pi', destructive: false, guest: 'lab/101', expiresAt: now + ttl + MINUTE });
    expect(b.admitted).toBe(true);
    expect(await store.beginApplying('plan-b')).toEqual({ ok: true });

    // A's late execute attempt asks to begin: its slot was given up and is B's now.
    now += 5_000;
    const lateA = await store.beginApplying('plan-a');
    const snap = await store.snapshot();
    console.log(JSON.stringify({ lateA, ledger: snap.charges.map((c) => ({ planId: c.planId, applyingAt: c.applyingAt, expiresAt: new Date(c.expiresAt).toISOString() })) }));
    await store.close();
    expect(lateA, 'plan A, whose slot lapsed and is held by B, was let begin applying (it would send to Proxmox)').toMatchObject({ ok: false });
  });
});
