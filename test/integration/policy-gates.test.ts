import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { untilRecorded } from './support/run-progress.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

const plan = (body: object, token: string = TOKENS.agent) => t.call('POST', '/v1/actions/plan', { token, body });
const apply = (p: { planId: string; requestHash: string }) =>
  t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.planId, requestHash: p.requestHash } });
const approve = (planId: string, token: string) => t.call('POST', `/v1/actions/${planId}/approvals`, { token, body: { decision: 'approve' } });

describe('policy gates against the real run', () => {
  it('needs a DBA among the approvers of a prod database guest', async () => {
    const p = await plan({ action: 'vm.start', environment: 'prod', target: { vmid: 201 }, params: {}, reason: 'start db-prod' });
    expect(p.body).toMatchObject({ risk: 'high', decision: 'requires_approval', status: 'awaiting_approval' });
    expect(p.body.approval.requirements).toEqual([
      { id: 'risk.high', count: 1, received: 0 },
      { id: 'policy.prod-db-needs-dba', count: 1, roles: ['dba'], received: 0 },
    ]);
    await apply(p.body);
    const alice = await approve(p.body.planId, TOKENS.approver1); // sre: counts for risk.high only
    expect(alice.status).toBe(202);
    expect(alice.body.status).toBe('awaiting_approval');
    // The run wrote alice's approval as it went back to waiting: only now does "still stopped" say something.
    await untilRecorded(t, p.body.planId, 'approval.granted');
    expect(t.sim('prod').model.guest(201)?.status).toBe('stopped');
    const bob = await approve(p.body.planId, TOKENS.approver2); // dba
    // The answer is the plan as the run recorded the approval: the quorum met, it may already be applying.
    expect(['approved', 'applying', 'succeeded']).toContain(bob.body.status);
    const done = await t.waitForStatus(p.body.planId, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');
    expect(t.sim('prod').model.guest(201)?.status).toBe('running');
  });

  it('refuses a stale plan: the target changed between plan and apply', async () => {
    const p = await plan({ action: 'vm.stop', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'stop web-lab' });
    expect(p.body).toMatchObject({ decision: 'allowed', preflight: { fingerprint: { status: 'running' } } });
    // Someone stops the VM directly on Proxmox, behind the plan's back.
    const client = t.service.environments.environments.get('lab')!.client;
    const upid = await client.request('POST', '/nodes/{node}/qemu/{vmid}/status/stop', { node: 'pve-lab', vmid: 100 });
    await client.waitForTask('pve-lab', upid as string, { intervalMs: 20 });
    const stopsBefore = t.sim('lab').mutations.countFor(100, 'stop');
    const a = await apply(p.body);
    expect(a.status).toBe(409);
    expect(a.body.type).toBe('/problems/plan-stale');
    expect(a.body.detail).toMatch(/status/);
    const view = await t.waitForStatus(p.body.planId, ['failed']);
    expect(view.result).toMatchObject({ outcome: 'failed', errorType: 'PlanStale' });
    expect(t.sim('lab').mutations.countFor(100, 'stop')).toBe(stopsBefore);
    // Put it back for the other tests.
    const start = await client.request('POST', '/nodes/{node}/qemu/{vmid}/status/start', { node: 'pve-lab', vmid: 100 });
    await client.waitForTask('pve-lab', start as string, { intervalMs: 20 });
  });

  it('refuses an apply whose target cannot be re-read, and says so (not "changed")', async () => {
    // Regression (chaos suite): a re-read that failed was reported as "target changed since the plan (state)".
    const p = await plan({ action: 'vm.stop', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'stop web-lab' });
    expect(p.body).toMatchObject({ decision: 'allowed' });
    t.sim('lab').faults.errorRate({ method: 'GET', path: '/cluster/resources', status: 503, message: 'Service Unavailable' });
    try {
      const a = await apply(p.body);
      expect(a.status).toBe(409);
      expect(a.body.type).toBe('/problems/plan-stale');
      expect(a.body.detail).toMatch(/^could not re-read the target: .*503/);
      const view = await t.waitForStatus(p.body.planId, ['failed']);
      expect(view.result).toMatchObject({ outcome: 'failed', errorType: 'PlanStale' });
      expect(view.result.message).not.toMatch(/changed/);
    } finally {
      t.sim('lab').faults.clear();
    }
    expect(t.sim('lab').model.guest(100)?.status).toBe('running');
  });

  it('re-evaluates at apply: a stricter policy asks for approvals again', async () => {
    const p = await plan({ action: 'vm.shutdown', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'maintenance' });
    expect(p.body).toMatchObject({ decision: 'allowed', status: 'planned' });
    t.config.policy.rules.push({ id: 'lab-shutdown-review', match: { actions: ['vm.shutdown'] }, decision: 'require_approval' });
    try {
      const a = await apply(p.body);
      expect(a.status).toBe(202);
      expect(a.body.status).toBe('awaiting_approval');
      const waiting = (await t.call('GET', `/v1/actions/${p.body.planId}`, { token: TOKENS.agent })).body;
      expect(waiting.approval.requirements.map((r: { id: string }) => r.id)).toContain('policy.lab-shutdown-review');
      expect(waiting.reasons.map((r: { rule: string }) => r.rule)).toContain('reevaluated.policy.lab-shutdown-review');
      expect(t.sim('lab').model.guest(100)?.status).toBe('running');
      expect((await approve(p.body.planId, TOKENS.approver1)).status).toBe(202);
      const done = await t.waitForStatus(p.body.planId, ['succeeded', 'failed']);
      expect(done.status).toBe('succeeded');
      expect(t.sim('lab').model.guest(100)?.status).toBe('stopped');
    } finally {
      t.config.policy.rules.pop();
    }
  });

  it('re-evaluates at apply: a new deny rule wins', async () => {
    const p = await plan({ action: 'vm.start', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'start web-lab' });
    t.config.policy.rules.push({ id: 'lab-freeze', match: { environments: ['lab'] }, decision: 'deny', message: 'lab frozen' });
    try {
      const a = await apply(p.body);
      expect(a.status).toBe(409);
      expect(a.body.type).toBe('/problems/plan-denied');
      const view = await t.waitForStatus(p.body.planId, ['denied']);
      expect(view.reasons.map((r: { rule: string }) => r.rule)).toContain('reevaluated.policy.lab-freeze');
      expect(t.sim('lab').model.guest(100)?.status).toBe('stopped');
    } finally {
      t.config.policy.rules.pop();
    }
  });
});

describe('POST /v1/policy/evaluate', () => {
  it('explains a decision without starting anything', async () => {
    const before = (await t.service.audit.all()).length;
    const res = await t.call('POST', '/v1/policy/evaluate', {
      token: TOKENS.agent,
      // db-prod is running since the first test started it.
      body: { action: 'vm.stop', environment: 'prod', target: { vmid: 201 }, params: {}, reason: 'what if' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ risk: 'high', decision: 'requires_approval', approvalsRequired: 1, preflight: { state: { vmid: 201, tags: ['db', 'prod'] } } });
    expect(res.body.requirements).toEqual([{ id: 'risk.high', count: 1 }, { id: 'policy.prod-db-needs-dba', count: 1, roles: ['dba'] }]);
    expect(res.body.reasons.map((r: { rule: string }) => r.rule)).toEqual(['catalog.base_risk', 'policy.prod-db-needs-dba', 'approval.required']);
    expect(res.body.reasons.find((r: { rule: string }) => r.rule === 'approval.required').hint).toBeTruthy();
    expect((await t.service.audit.all()).length).toBe(before);
  });

  it('reports a blocked preflight as denied with a hint', async () => {
    const res = await t.call('POST', '/v1/policy/evaluate', {
      token: TOKENS.agent,
      body: { action: 'vm.reboot', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'x' },
    });
    expect(res.body.decision).toBe('denied');
    expect(res.body.reasons.at(-1)).toMatchObject({ rule: 'preflight.blocked', hint: expect.any(String) });
  });

  it('evaluates time windows at the given instant', async () => {
    t.config.policy.rules.push({
      id: 'xmas-freeze',
      match: { environments: ['prod'], when: { timezone: 'UTC', windows: [{ from: '2026-12-20T00:00:00Z', to: '2027-01-05T00:00:00Z' }] } },
      decision: 'deny',
    });
    try {
      const body = { action: 'vm.start', environment: 'prod', target: { vmid: 400 }, params: {}, reason: 'x' };
      const inside = await t.call('POST', '/v1/policy/evaluate', { token: TOKENS.agent, body: { ...body, action: 'ct.start', at: '2026-12-24T12:00:00Z' } });
      const insideVm = await t.call('POST', '/v1/policy/evaluate', { token: TOKENS.agent, body: { ...body, target: { vmid: 200 }, at: '2026-12-24T12:00:00Z' } });
      const outside = await t.call('POST', '/v1/policy/evaluate', { token: TOKENS.agent, body: { ...body, target: { vmid: 200 }, at: '2027-01-06T12:00:00Z' } });
      expect([insideVm.body.decision, outside.body.decision]).toEqual(['denied', 'allowed']);
      expect(insideVm.body.reasons.find((r: { rule: string }) => r.rule === 'policy.xmas-freeze').hint).toContain('2027-01-05');
      expect([200, 400]).toContain(inside.status); // ct.start exists once the LXC catalog lands
    } finally {
      t.config.policy.rules.pop();
    }
  });
});
