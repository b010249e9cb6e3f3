/**
 * PROBE 19 / budgets — a plan applied inside its TTL whose apply-time re-check runs past its charge's
 * expiry is no longer counted against `concurrent`, though its run has not ended: a second plan is
 * admitted beside it.
 *
 * Scenario: `agent:pi-demo` has `concurrent: 1`; plans expire after 5 s; lab snapshots are `planned`.
 * The audit store refuses `apply.requested` records for 85 s (an outage; it stands in for any stall of
 * the re-check: a worker SIGKILLed while running it is retried only after its 2 min startToClose).
 *  1. Plan A (lab/100 snapshot) → planned, charged. A is applied at once (inside its TTL): the run's
 *     re-check (assess at apply, with the pending `apply.requested`) fails and is retried.
 *  2. At A's charge expiry + 3 s (A created + 68 s), plan B (lab/101 snapshot). A's run has not ended
 *     (its view is not terminal): `concurrent` counts "admitted plans whose run has not ended".
 *  3. The outage ends; A's run goes on to execute and is refused `BudgetSlotLapsed` (nothing sent).
 *
 * Guarantee under test: promise 1 (never admitted past `concurrent`, which counts plans not yet ended)
 * and, as a by-product, promise 3 (A, whose slot was given up, sends nothing afterwards).
 * Oracle: plan views (A's status when B is admitted; A's end), GET /v1/budgets, the simulator's
 * mutation log (nothing of A's on lab/100).
 *
 * Cause (seen: FAILS on promise 1): ledger.ts `holding` stops counting a charge not applying at its
 * `expiresAt`, on the premise that "a plan not applying by then has ended (it expired)"; but the run
 * checks its expiry only while it waits (awaitApplyThenExecute): once applied it re-checks for as long
 * as that takes and ends later (failed, BudgetSlotLapsed), not by its expiry.
 *
 * Seen (05:07 UTC): A created 05:05:59.868Z, expires 05:06:04.868Z (charge expiresAt 05:07:05.024Z); at
 * 05:07:07.883Z A is `planned` with applyRequested, GET /v1/budgets says concurrent used 0, B `allowed`;
 * A ends 05:07:31.355Z `failed` BudgetSlotLapsed; no mutation of A's on lab/100 (promise 3 held).
 *
 * Answer: `concurrent` now counts the plans that may still send to Proxmox, not every run that has not
 * ended: A, past its charge's expiry without applying, can only end failed (BudgetSlotLapsed), and the
 * probe checks exactly that (docs/policy.md "What counts" says so).
 *
 * Reproduce: nice -n 19 npx vitest run test/integration/probe19-budget-recheck-past-expiry.test.ts
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBudgetService, type BudgetService } from './support/budget-service.js';
import { TOKENS } from './support/service.js';

const STALL_MS = 85_000;
const TERMINAL = ['succeeded', 'failed', 'rejected', 'expired', 'denied'];
let svc: BudgetService;

beforeAll(async () => {
  svc = await startBudgetService('probe19 recheck');
}, 120_000);
afterAll(async () => {
  await svc?.t.stop();
});

describe('probe19 budget: a plan re-checked past its charge expiry', () => {
  it('admits a second plan only if the first, unended, can no longer send, and the first sends nothing', { timeout: 200_000 }, async () => {
    const sim = svc.t.sim('lab');
    const a = await svc.plan(100, 'p19r-a');
    expect(a.body.status, JSON.stringify(a.body.reasons)).toBe('planned');
    const since = Date.parse(a.body.createdAt);
    svc.stallAudit('apply.requested', Date.now() + STALL_MS);
    // The apply call waits for the re-check: not awaited.
    const applying = svc.t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: a.body.planId, requestHash: a.body.requestHash } }).catch((err: Error) => ({ status: 0, body: { error: err.message } }));
    const before = await svc.concurrent();

    await new Promise((r) => setTimeout(r, Math.max(0, since + 68_000 - Date.now())));
    const aMid = (await svc.t.call('GET', `/v1/actions/${a.body.planId}`, { token: TOKENS.agent })).body;
    const usage = await svc.concurrent();
    const bAt = new Date().toISOString();
    const b = await svc.plan(101, 'p19r-b');
    const aEnd = await svc.t.waitForStatus(a.body.planId, TERMINAL, 90_000);
    const applied = await applying;
    const aMutations = sim.mutations.all().filter((m) => m.vmid === 100 && m.time >= since);
    console.log(
      JSON.stringify({
        aCreatedAt: a.body.createdAt,
        aExpiresAt: a.body.expiresAt,
        usageRightAfterApply: before,
        atB: { at: bAt, aStatus: aMid?.status, aApplyRequested: aMid?.applyRequested, usage },
        bDecision: b.body.decision,
        bStatus: b.body.status,
        aEnd: { status: aEnd.status, errorType: aEnd.result?.errorType, finishedAt: aEnd.result?.finishedAt },
        applyAnswer: applied.status,
        aMutationsOnLab100: aMutations.map((m) => ({ op: m.op, key: m.key })),
      }),
    );
    // `concurrent` counts the plans that may still send (docs/policy.md, "What counts"). A had not
    // ended when B was planned, but its charge had expired without it applying: if B was admitted, A
    // must never send, and must end failed BudgetSlotLapsed (it can no longer hold the slot).
    expect(TERMINAL).not.toContain(aMid?.status);
    expect(aMutations, 'A sent to Proxmox after its slot was given up').toEqual([]);
    if (b.body.decision !== 'denied') {
      expect(aEnd.status).toBe('failed');
      expect(aEnd.result?.errorType).toBe('BudgetSlotLapsed');
    }
  });
});
