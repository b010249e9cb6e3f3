/**
 * PROBE 19 / budgets — a concurrency refusal's `freesAt` names the holder's expiry (+1 min) because the
 * holder was not applying at the time of the refusal; the holder is then applied (well within its TTL)
 * and its Proxmox task runs past that `freesAt`: at `freesAt` there is no room.
 *
 * Scenario: `agent:pi-demo` has `concurrent: 1`; plans expire after 5 s (policy.planTtlSeconds); lab
 * snapshots are `planned` (no approval). The simulator's snapshot task on lab/100 takes 75 s.
 *  1. Plan A (lab/100 snapshot) → planned: charged, holds the one slot (not applying).
 *  2. Plan B (lab/101 snapshot) → denied `budget.concurrent`, heldBy [A], freesAt F = A's expiry + 1 min.
 *  3. A is applied at once (inside its 5 s TTL): its run marks the charge applying and sends the
 *     snapshot to Proxmox, which runs 75 s (past F).
 *  4. At F + 3 s, plan C (lab/101 snapshot). No plan newer than B took the slot.
 *
 * Guarantee under test: promise 2 — a refused plan names `freesAt`, and at that time there is room for
 * one more plan (unless a newer plan took it). Oracle: the plans' views (C's decision and reasons),
 * GET /v1/budgets at F + 3 s, and A's status then (still applying, an OLDER plan than B).
 *
 * Cause (seen: FAILS): ledger.ts `counted` computes `concurrent.frees` from `slotUntil`, which is the
 * charge's `expiresAt` for a plan not applying YET; nothing stops that plan from beginning to apply
 * later (beginApplying only refuses past expiresAt), and from then on `slotUntil` is `lapseAt`
 * (expiry + 6 h): the `freesAt` told before was not a time the slot frees, only a time a plan that
 * never applies frees it.
 *
 * Seen (05:03 UTC): A created 05:02:08.993Z, expires 05:02:13.993Z; B told freesAt 05:03:14.168Z; C at
 * 05:03:17.408Z denied budget.concurrent, used 1 of 1, heldBy [A], A `applying`, new freesAt 11:03:14.168Z
 * (A's lapse, 6 h later).
 *
 * Answer: no time can be promised for a holder that may still begin applying (its task may run for
 * hours). The refusal's hint and docs/policy.md now say "unless one of them begins applying before
 * then", and the probe checks that promise: C is refused only because A is applying, and is told so.
 *
 * Reproduce: nice -n 19 npx vitest run test/integration/probe19-budget-freesat-applied-later.test.ts
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBudgetService, type BudgetService } from './support/budget-service.js';
import { TOKENS } from './support/service.js';
import { until } from './support/until.js';

const TASK_MS = 75_000;
let svc: BudgetService;

beforeAll(async () => {
  svc = await startBudgetService('probe19 freesAt');
}, 120_000);
afterAll(async () => {
  await svc?.t.stop();
});

describe('probe19 budget: freesAt of a holder applied after the refusal', () => {
  it('has room at the freesAt a concurrency refusal named unless its holder began applying, and the refusal says so', { timeout: 180_000 }, async () => {
    const sim = svc.t.sim('lab');
    sim.faults.add({ kind: 'slow-task', method: 'POST', path: '/nodes/*/qemu/100/snapshot', durationMs: TASK_MS, times: 1 });
    const a = await svc.plan(100, 'p19-a');
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(a.body.status, JSON.stringify(a.body.reasons)).toBe('planned');

    const b = await svc.plan(101, 'p19-b');
    expect(b.body.decision, JSON.stringify(b.body)).toBe('denied');
    const reason = (b.body.reasons as { rule: string; budget?: { freesAt: string; heldBy?: string[] } }[]).find((r) => r.rule === 'budget.concurrent')!;
    expect(reason.budget!.heldBy).toEqual([a.body.planId]);
    const freesAt = Date.parse(reason.budget!.freesAt);

    // A is applied now, inside its TTL: its snapshot goes to Proxmox and runs past freesAt.
    expect((await svc.t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: a.body.planId, requestHash: a.body.requestHash } })).status).toBe(202);
    await until('A is applying', async () => (sim.model.tasks().some((x) => x.type === 'qmsnapshot' && x.id === '100' && x.status === 'running') ? true : undefined), 20_000, 50);

    await new Promise((r) => setTimeout(r, Math.max(0, freesAt + 3_000 - Date.now())));
    const c = await svc.plan(101, 'p19-c');
    const atFreesAt = await svc.concurrent();
    const aNow = (await svc.t.call('GET', `/v1/actions/${a.body.planId}`, { token: TOKENS.agent })).body;
    console.log(
      JSON.stringify({
        aCreatedAt: a.body.createdAt,
        aExpiresAt: a.body.expiresAt,
        freesAtToldB: reason.budget!.freesAt,
        cAt: new Date().toISOString(),
        cDecision: c.body.decision,
        cBudgetReasons: (c.body.reasons ?? []).filter((r: { rule: string }) => r.rule.startsWith('budget.')),
        atFreesAt,
        aStatusAtFreesAt: aNow?.status,
      }),
    );
    await svc.t.waitForStatus(a.body.planId, ['succeeded', 'failed'], 120_000);
    // The promise as made (docs/policy.md, "A refused plan"): room at freesAt unless a plan holding
    // the slot begins applying before then, and the refusal says so. A did: C is refused, named A
    // (applying), and told a later time; had A not applied, C would have had room.
    expect((b.body.reasons as { rule: string; hint?: string }[]).find((r) => r.rule === 'budget.concurrent')?.hint).toContain('unless one of them begins applying before then');
    const cReason = (c.body.reasons ?? []).find((r: { rule: string }) => r.rule === 'budget.concurrent') as { budget: { freesAt: string; heldBy: string[] } } | undefined;
    if (cReason) {
      expect(aNow?.status, 'C refused at freesAt only because its holder began applying').toBe('applying');
      expect(cReason.budget.heldBy).toEqual([a.body.planId]);
      expect(Date.parse(cReason.budget.freesAt)).toBeGreaterThan(freesAt);
    } else {
      expect(c.body.decision).not.toBe('denied');
    }
  });
});
