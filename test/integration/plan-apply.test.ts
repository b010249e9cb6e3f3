import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { untilRecorded } from './support/run-progress.js';
import { verifyChain } from '../../src/audit/record.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

const plan = (body: object, token: string = TOKENS.agent, headers: Record<string, string> = {}) =>
  t.call('POST', '/v1/actions/plan', { token, body, headers });
const apply = (planId: string, requestHash: string, token: string = TOKENS.agent) =>
  t.call('POST', '/v1/actions/apply', { token, body: { planId, requestHash } });
const approve = (planId: string, token: string, decision = 'approve', extra: object = {}) =>
  t.call('POST', `/v1/actions/${planId}/approvals`, { token, body: { decision, comment: 'looks right', ...extra } });

describe('plan → approve → apply against Temporal and the simulator', () => {
  it('reports healthy once the worker polls', async () => {
    let res = await t.call('GET', '/healthz');
    for (let i = 0; i < 50 && res.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      res = await t.call('GET', '/healthz');
    }
    expect(res.status).toBe(200);
    expect(res.body.checks.worker.ok).toBe(true);
  });

  it('applies a low-risk action without approval', async () => {
    expect(t.sim('lab').model.guest(101)?.status).toBe('stopped');
    const p = await plan({ action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'bring db-lab up' });
    expect(p.status).toBe(201);
    expect(p.body).toMatchObject({
      action: 'vm.start',
      environment: 'lab',
      target: { node: 'pve-lab', vmid: 101 },
      risk: 'low',
      decision: 'allowed',
      status: 'planned',
      approval: { required: 0, received: 0 },
      preflight: { state: { status: 'stopped', exists: true }, assessment: { kind: 'proceed' } },
    });
    expect(p.body.planId).toMatch(/^plan_[0-9A-Z]{26}$/);
    expect(p.body.requestHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(p.body.reasons[0]).toEqual({ rule: 'catalog.base_risk', message: expect.any(String) });
    expect(Date.parse(p.body.expiresAt)).toBeGreaterThan(Date.now());

    const a = await apply(p.body.planId, p.body.requestHash);
    expect(a.status).toBe(202);
    expect(a.body.planId).toBe(p.body.planId);
    const done = await t.waitForStatus(p.body.planId, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');
    expect(done.result).toMatchObject({ outcome: 'applied', exitstatus: 'OK', upid: expect.stringMatching(/^UPID:pve-lab:.*:qmstart:101:/) });
    expect(t.sim('lab').model.guest(101)?.status).toBe('running');
    expect(t.sim('lab').mutations.countFor(101, 'start')).toBe(1);
  });

  it('holds a prod delete for two distinct approvers, then deletes the VM', async () => {
    const sim = t.sim('prod');
    expect(sim.model.guest(201)).toBeDefined();
    const p = await plan({ action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'decommission db-prod (CHG-42)' });
    expect(p.status).toBe(201);
    expect(p.body).toMatchObject({ risk: 'critical', decision: 'requires_approval', status: 'awaiting_approval', approval: { required: 2, received: 0 } });
    expect(p.body.reasons.map((r: { rule: string }) => r.rule)).toContain('approval.required');

    // Apply before approval is accepted; nothing runs yet.
    const early = await apply(p.body.planId, p.body.requestHash);
    expect(early.status).toBe(202);
    expect(early.body.status).toBe('awaiting_approval');

    const first = await approve(p.body.planId, TOKENS.approver1);
    expect(first.status).toBe(202);
    expect(first.body.approval).toMatchObject({ required: 2, received: 1 });
    // One identity counts once.
    const again = await approve(p.body.planId, TOKENS.approver1);
    expect(again.status).toBe(409);
    expect(again.body.type).toBe('/problems/approval-not-counted');
    // The run wrote alice's approval as it went back to waiting: only now does "nothing ran" say something.
    await untilRecorded(t, p.body.planId, 'approval.granted');
    expect(sim.model.guest(201)).toBeDefined();
    expect((await t.call('GET', `/v1/actions/${p.body.planId}`, { token: TOKENS.agent })).body.status).toBe('awaiting_approval');

    const second = await approve(p.body.planId, TOKENS.approver2);
    expect(second.status).toBe(202);
    const done = await t.waitForStatus(p.body.planId, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');
    expect(done.approval.approvers.map((a: { principal: string }) => a.principal)).toEqual(['human:alice', 'human:bob']);
    expect(sim.model.guest(201)).toBeUndefined();
    expect(sim.mutations.countFor(201, 'destroy')).toBe(1);

    const evidence = await t.service.audit.forPlan(p.body.planId);
    expect(evidence.map((r) => r.event)).toEqual([
      'plan.created', 'apply.requested', 'approval.granted', 'approval.granted', 'apply.checked', 'apply.started', 'action.applied',
    ]);
    expect(verifyChain(await t.service.audit.all()).ok).toBe(true);
  });

  it('refuses self-approval even to a token that holds the approve scope', async () => {
    const p = await plan({ action: 'vm.reboot', environment: 'prod', target: { vmid: 200 }, params: {}, reason: 'kernel update' }, TOKENS.ops);
    expect(p.body).toMatchObject({ risk: 'high', status: 'awaiting_approval', requester: { principal: 'human:olivia' } });
    const self = await approve(p.body.planId, TOKENS.ops);
    expect(self.status).toBe(403);
    expect(self.headers.get('content-type')).toContain('application/problem+json');
    expect(self.body).toMatchObject({ type: '/problems/self-approval', status: 403, code: 'self-approval' });
    // The agent token has no approve scope at all.
    const agent = await approve(p.body.planId, TOKENS.agent);
    expect(agent.status).toBe(403);
    expect(agent.body.type).toBe('/problems/forbidden');
    const view = (await t.call('GET', `/v1/actions/${p.body.planId}`, { token: TOKENS.agent })).body;
    expect(view.approval.received).toBe(0);
  });

  it('refuses an apply with the wrong requestHash, and a rejected plan', async () => {
    const p = await plan({ action: 'vm.shutdown', environment: 'prod', target: { vmid: 200 }, params: {}, reason: 'maintenance' });
    const wrong = await apply(p.body.planId, `sha256:${'0'.repeat(64)}`);
    expect(wrong.status).toBe(409);
    expect(wrong.body.type).toBe('/problems/request-hash-mismatch');
    const rejected = await approve(p.body.planId, TOKENS.approver1, 'reject');
    expect(rejected.status).toBe(202);
    const final = await t.waitForStatus(p.body.planId, ['rejected']);
    expect(final.approval.rejectedBy.principal).toBe('human:alice');
    const late = await apply(p.body.planId, p.body.requestHash);
    expect(late.status).toBe(409);
    expect(late.body.type).toBe('/problems/plan-rejected');
    expect(t.sim('prod').model.guest(200)?.status).toBe('running');
  });

  it('replays an Idempotency-Key: same body → same plan, other body → 422', async () => {
    const body = { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'idem1' }, reason: 'replay test' };
    const headers = { 'idempotency-key': `k-${Date.now()}` };
    const first = await plan(body, TOKENS.agent, headers);
    const second = await plan({ ...body, params: { snapname: 'idem1', vmstate: false } }, TOKENS.agent, headers);
    expect(second.status).toBe(201);
    expect(second.body.planId).toBe(first.body.planId);
    expect(second.body.requestHash).toBe(first.body.requestHash);
    const other = await plan({ ...body, params: { snapname: 'idem2' } }, TOKENS.agent, headers);
    expect(other.status).toBe(422);
    expect(other.body.type).toBe('/problems/idempotency-key-reused');
    // Still the same after the run has finished.
    await apply(first.body.planId, first.body.requestHash);
    await t.waitForStatus(first.body.planId, ['succeeded']);
    const afterwards = await plan(body, TOKENS.agent, headers);
    expect(afterwards.body).toMatchObject({ planId: first.body.planId, status: 'succeeded' });
    expect(t.sim('lab').mutations.countFor(100, 'snapshot')).toBe(1);
  });

  it('keeps plans and approvals inside the token’s environments', async () => {
    const denied = await plan({ action: 'vm.start', environment: 'prod', target: { vmid: 201 }, params: {}, reason: 'x' }, TOKENS.labOnly);
    expect(denied.status).toBe(403);
    const p = await plan({ action: 'vm.stop', environment: 'prod', target: { vmid: 200 }, params: {}, reason: 'x' });
    const peek = await t.call('GET', `/v1/actions/${p.body.planId}`, { token: TOKENS.labOnly });
    expect(peek.status).toBe(404);
    // Applying a plan of another environment: as for reading it, the plan does not exist for this token.
    const foreign = await apply(p.body.planId, p.body.requestHash, TOKENS.labOnly);
    expect(foreign.status).toBe(404);
  });

  it('answers bad input with problem+json and changes nothing', async () => {
    const before = t.sim('lab').mutations.all().length;
    const cases = [
      await t.call('POST', '/v1/actions/plan', { body: { action: 'vm.start' } }),
      await plan({ action: 'vm.start', environment: 'lab', target: { vmid: 'abc' }, params: {}, reason: 'x' }),
      await plan({ action: 'vm.nuke', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'x' }),
      await plan({ action: 'vm.start', environment: 'lab', target: { vmid: 100 }, params: { force: 1 }, reason: 'x' }),
      await plan({ action: 'vm.start', environment: 'mars', target: { vmid: 100 }, params: {}, reason: 'x' }),
      await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: '{not json', headers: { 'content-type': 'application/json' } }),
      await apply('plan_00000000000000000000000000', `sha256:${'0'.repeat(64)}`),
      await t.call('GET', '/v1/actions/not-a-plan-id', { token: TOKENS.agent }),
    ];
    expect(cases.map((c) => c.status)).toEqual([401, 400, 400, 400, 422, 400, 404, 400]);
    expect(cases[4]!.body.type).toBe('/problems/unknown-environment');
    for (const c of cases) {
      expect(c.headers.get('content-type')).toContain('application/problem+json');
      expect(c.body.type).toMatch(/^\/problems\//);
    }
    expect(cases[1]!.body.errors[0].path).toBe('target.vmid');
    expect(t.sim('lab').mutations.all().length).toBe(before);
  });
});

describe('plan expiry', () => {
  let short: TestService;
  beforeAll(async () => {
    short = await startTestService((c) => {
      c.policy.planTtlSeconds = 2;
    });
  });
  afterAll(async () => {
    await short?.stop();
  });

  it('expires an unapplied plan and refuses a late apply with 410', async () => {
    const p = await short.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.stop', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'later' },
    });
    expect(p.body.status).toBe('planned');
    const expired = await short.waitForStatus(p.body.planId, ['expired'], 10_000);
    expect(expired.status).toBe('expired');
    const late = await short.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.body.planId, requestHash: p.body.requestHash } });
    expect(late.status).toBe(410);
    expect(late.body.type).toBe('/problems/plan-expired');
    expect(short.sim('lab').model.guest(100)?.status).toBe('running');
  });
});
