/**
 * probe17 — a human "no" after the safeguard snapshot went to Proxmox, through approval.required_again.
 *
 * Scenario: prod config updates need one approval and a safeguard snapshot (snapshot task 2 s). Alice
 * approves, the agent applies, the snapshot task starts, an admin freezes prod: the action is held.
 * While held, policy is made stricter (two approvals for every risk). The freeze is lifted: the
 * re-check finds the quorum short and the plan asks for approvals again (status awaiting_approval),
 * with its snapshot already on Proxmox. Bob then rejects.
 * Oracle: if bob's rejection is answered 202 'rejected' (recorded true), nothing of the plan was ever
 * sent to Proxmox (simulator mutation log), it ends 'rejected', and plan.rejected is on its chain;
 * a rejection that came too late (the request already went to Proxmox) must be answered 409.
 *
 * Found by the adversary (it failed every run): the "no" was accepted and the action never ran, but
 * the safeguard snapshot taken before it stayed on the guest, and the final record did not say so. A "no" to a held
 * run stops the action (refusing it would let the action run at the lift); the snapshot stays, and
 * the plan (`safeguard.taken`) and its final record (`detail.safeguard`, `left: true`) name it. The
 * oracle allows exactly that snapshot, named, and nothing else of the plan.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKENS, type TestService } from './support/service.js';
import { expectRejectionHonoured, holdAfterSafeguard, reject, startSafeguardService, TERMINAL } from './support/safeguard-held.js';

let t: TestService;
beforeAll(async () => {
  t = await startSafeguardService();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

describe('probe17: rejecting a plan that asks for approvals again after its safeguard snapshot was sent', () => {
  it('a 202 rejection means nothing of the plan reached Proxmox', async () => {
    const plan = await holdAfterSafeguard(t, 'probe17 safeguard, required again, then no');
    // Stricter policy while held, then the lift: the re-check asks for approvals again.
    t.config.policy.approvalsByRisk = { low: 2, medium: 2, high: 2, critical: 2 };
    expect((await t.call('DELETE', `/v1/freezes/${plan.freezeId}`, { token: TOKENS.admin })).status).toBe(200);
    const again = await t.waitForStatus(plan.planId, ['awaiting_approval', ...TERMINAL], 60_000);
    expect(again.status, JSON.stringify(again)).toBe('awaiting_approval');
    // Bob says no to the plan asking again.
    const rej = await reject(t, plan.planId);
    await expectRejectionHonoured(t, plan, rej, await t.waitForStatus(plan.planId, TERMINAL, 60_000));
  }, 180_000);
});
