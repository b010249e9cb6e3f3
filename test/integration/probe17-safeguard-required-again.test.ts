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
import { safeguardSnapshotName } from '../../src/domain/safeguard.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { besidesSafeguard, executedMutations } from './support/mutations.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.policy.approvalsByRisk = { low: 1, medium: 1, high: 1, critical: 2 };
    c.policy.rules.push({ id: 'prod-snapshot-first', match: { environments: ['prod'], actions: ['*.config.update'] }, safeguard: 'snapshot' });
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const terminal = ['succeeded', 'failed', 'outcome_unknown', 'rejected', 'expired', 'denied'];

describe('probe17: rejecting a plan that asks for approvals again after its safeguard snapshot was sent', () => {
  it('a 202 rejection means nothing of the plan reached Proxmox', async () => {
    const sim = t.sim('prod');
    sim.faults.add({ kind: 'slow-task', method: 'POST', path: '/nodes/*/qemu/200/snapshot', durationMs: 2_000, times: 1 });
    const start = Date.now();
    const p = await t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.config.update', environment: 'prod', target: { vmid: 200 }, params: { cores: 5 }, reason: 'probe17 safeguard then no' },
    });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect(p.body.status).toBe('awaiting_approval');
    const { planId, requestHash } = p.body;
    const name = safeguardSnapshotName(planId);
    expect((await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(202);
    expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } })).status).toBe(202);
    const snapshotRunning = () => sim.model.tasks().some((x) => x.type === 'qmsnapshot' && x.id === '200' && x.status === 'running');
    for (let i = 0; i < 400 && !snapshotRunning(); i++) await sleep(25);
    expect(snapshotRunning()).toBe(true);
    const f = await t.call('POST', '/v1/freezes', { token: TOKENS.admin, body: { environment: 'prod', reason: 'probe17 incident during the snapshot' } });
    expect(f.status, JSON.stringify(f.body)).toBe(201);
    let held: any;
    for (let i = 0; i < 400; i++) {
      held = (await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.agent })).body;
      if (held.frozen?.id === f.body.id && held.safeguard?.taken) break;
      await sleep(50);
    }
    expect(held.frozen?.id, JSON.stringify(held)).toBe(f.body.id);
    // Stricter policy while held, then the lift: the re-check asks for approvals again.
    t.config.policy.approvalsByRisk = { low: 2, medium: 2, high: 2, critical: 2 };
    expect((await t.call('DELETE', `/v1/freezes/${f.body.id}`, { token: TOKENS.admin })).status).toBe(200);
    const again = await t.waitForStatus(planId, ['awaiting_approval', ...terminal], 60_000);
    expect(again.status, JSON.stringify(again)).toBe('awaiting_approval');
    // Bob says no to the plan asking again.
    const rej = await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'reject', comment: 'probe17: no' } });
    const view = await t.waitForStatus(planId, terminal, 60_000);
    await sleep(1000);
    const sent = executedMutations(sim, { after: start }).filter((r) => r.path.includes('/qemu/200/'));
    const evidence = await t.call('GET', `/v1/actions/${planId}/evidence`, { token: TOKENS.agent });
    const events = (await t.service.audit.forPlan(planId)).map((r) => r.event);
    const left = sim.model.findGuest(200)!.snapshots.filter((x) => x.name === name).length;
    const row = `reject ${rej.status} ${rej.body?.status ?? rej.body?.type} recorded=${rej.body?.recorded}; final ${view.status}; sent to Proxmox: ${sent.map((r) => `${r.method} ${r.path}`).join(', ') || 'nothing'}; snapshots named ${name}: ${sim.mutations.all().filter((m) => m.vmid === 200 && m.op === 'snapshot' && m.key === name).length}; still on the guest: ${left}; chain: ${events.join(',')}`;
    console.log(row);
    if (rej.status === 202 && rej.body?.status === 'rejected') {
      // The guarantee: a 202 'rejected' stops the action: nothing of it reaches Proxmox. The safeguard
      // snapshot taken before the "no" stays on the guest, and the plan and its final record say so.
      expect(besidesSafeguard(sent, name), row).toEqual([]);
      expect(view.status, row).toBe('rejected');
      expect(evidence.status).toBe(200);
      expect(events, row).toContain('plan.rejected');
      if (sent.length > 0) {
        expect(view.safeguard?.taken, row).toBeDefined();
        const final = (await t.service.audit.forPlan(planId)).find((r) => r.event === 'plan.rejected');
        expect(final?.detail?.safeguard, row).toMatchObject({ snapshot: name, left: true });
      }
    } else {
      // Too late: answered 409, never 202.
      expect(rej.status, row).toBe(409);
    }
  }, 180_000);
});
