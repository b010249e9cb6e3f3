/**
 * A guest that PVE moved on its own between plan and apply (PVE 9.2's load balancer, HA): the run
 * finds it on its current node through /cluster/resources at the apply-time re-check and at execute,
 * acts on it there exactly once, and policy's rules on nodes judge the node it is on now and the node
 * a migrate would put it on. The prod demo cluster has two nodes; the guest is moved through the
 * simulator's control API, as a test in another process would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const SECRET = 'moved-guest-simulator-secret';
let t: TestService;
beforeAll(async () => {
  t = await startTestService(() => {}, { simulatorTokenSecret: SECRET });
});
afterAll(async () => {
  await t?.stop();
});

async function moveGuest(vmid: number, node: string): Promise<void> {
  const res = await fetch(`${t.sim('prod').url}/_sim/guests/${vmid}/move`, {
    method: 'POST',
    headers: { authorization: `PVEAPIToken=proxmox-agent@pve!agent=${SECRET}`, 'content-type': 'application/json' },
    body: JSON.stringify({ node }),
  });
  expect(res.status).toBe(200);
}

/** Plans as the agent; the two approvers approve when prod asks for it. */
async function planAndApprove(body: object): Promise<{ planId: string; requestHash: string; target: unknown; status: string; reasons: unknown[] }> {
  const p = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body });
  expect(p.status).toBe(201);
  let status = p.body.status;
  for (const token of [TOKENS.approver1, TOKENS.approver2]) {
    if (status !== 'awaiting_approval') break;
    const a = await t.call('POST', `/v1/actions/${p.body.planId}/approvals`, { token, body: { decision: 'approve', comment: 'ok' } });
    expect(a.status).toBe(202);
    status = a.body.status;
  }
  return p.body;
}

const apply = (p: { planId: string; requestHash: string }) => t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.planId, requestHash: p.requestHash } });

describe('a guest moved between plan and apply', () => {
  it('is found on its new node and acted on there exactly once', async () => {
    const sim = t.sim('prod');
    sim.reset();
    // The request names the node the guest is on when planned.
    const p = await planAndApprove({ action: 'vm.snapshot.create', environment: 'prod', target: { node: 'pve-prod', vmid: 200 }, params: { snapname: 'pre-move' }, reason: 'before the upgrade' });
    expect(p.target).toEqual({ node: 'pve-prod', vmid: 200 });
    await moveGuest(200, 'pve-prod-2');

    expect((await apply(p)).status).toBe(202);
    const done = await t.waitForStatus(p.planId, ['succeeded', 'failed', 'denied']);
    expect(done.status).toBe('succeeded');
    expect(done.result).toMatchObject({ outcome: 'applied', exitstatus: 'OK', upid: expect.stringMatching(/^UPID:pve-prod-2:.*:qmsnapshot:200:/) });
    expect(sim.mutations.all()).toMatchObject([{ vmid: 200, op: 'snapshot', key: 'pre-move', node: 'pve-prod-2' }]);
    expect(sim.mutations.duplicates()).toEqual([]);
  });

  it('is judged by the node rules of the node it is on now; a migrate is judged by its destination', async () => {
    const sim = t.sim('prod');
    sim.reset();
    t.config.policy.rules.push({ id: 'drain-pve-prod-2', match: { nodes: ['pve-prod-2'] }, decision: 'deny', message: 'pve-prod-2 is being drained' });
    try {
      const migrate = await t.call('POST', '/v1/actions/plan', {
        token: TOKENS.agent,
        body: { action: 'vm.migrate', environment: 'prod', target: { vmid: 201 }, params: { target: 'pve-prod-2' }, reason: 'rebalance' },
      });
      expect(migrate.body).toMatchObject({ status: 'denied', decision: 'denied' });
      expect(migrate.body.reasons).toContainEqual(expect.objectContaining({ rule: 'policy.drain-pve-prod-2', nodes: [{ node: 'pve-prod-2', role: 'destination' }] }));

      // Allowed on pve-prod; by apply time HA has put the guest on the drained node.
      const p = await planAndApprove({ action: 'vm.snapshot.create', environment: 'prod', target: { node: 'pve-prod', vmid: 200 }, params: { snapname: 'drained' }, reason: 'before the upgrade' });
      expect(p.status).not.toBe('denied');
      await moveGuest(200, 'pve-prod-2');
      // The apply waits for the run's re-check, which reads the guest where it is now: denied.
      const a = await apply(p);
      expect(a.status).toBe(409);
      expect(a.body).toMatchObject({ code: 'plan-denied' });
      const done = await t.waitForStatus(p.planId, ['succeeded', 'failed', 'denied']);
      expect(done.status).toBe('denied');
      expect(done.decision).toBe('denied');
      expect(sim.mutations.all()).toEqual([]);
    } finally {
      t.config.policy.rules.pop();
    }
  });
});
