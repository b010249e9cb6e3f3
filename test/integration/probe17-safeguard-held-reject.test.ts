/**
 * probe17 — a human "no" to a plan whose safeguard snapshot already went to Proxmox.
 *
 * Scenario: prod config updates need one approval and a safeguard snapshot (snapshot tasks slowed so
 * a freeze lands after the snapshot's dispatch and before the action's). Alice approves, the agent
 * applies, the snapshot task starts on Proxmox, an admin freezes prod: the action meets the freeze at
 * its dispatch and the run is held (status back to what it waited as). Bob then rejects.
 * Oracle (the guarantee as an outsider sees it): if bob's rejection is answered 202 'rejected'
 * (recorded true), then NOTHING of that plan was ever sent to Proxmox (simulator mutation log), the
 * plan ends 'rejected', and its outcome record is on the audit chain. A rejection that came too late
 * (the request already went to Proxmox) must be answered 409.
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

describe('probe17: rejecting a plan held by a freeze after its safeguard snapshot was sent', () => {
  it('a 202 rejection means nothing of the plan reached Proxmox', async () => {
    const plan = await holdAfterSafeguard(t, 'probe17 safeguard then no');
    // Bob says no while the run is held.
    const rej = await reject(t, plan.planId);
    expect((await t.call('DELETE', `/v1/freezes/${plan.freezeId}`, { token: TOKENS.admin })).status).toBe(200);
    await expectRejectionHonoured(t, plan, rej, await t.waitForStatus(plan.planId, TERMINAL, 60_000));
  }, 180_000);
});
