/**
 * Undo end to end (docs/approvals.md, "Undo"): POST /v1/actions/{planId}/undo against the real
 * Temporal dev server and the simulator. The oracles are what an outsider sees: the simulator's
 * guest state and mutation log, both plans' views, their evidence bundles and the audit chain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/record.js';
import { undoPlanId } from '../../src/domain/plan-id.js';
import { configDigest, configWithPending } from '../../src/simulator/guest-config.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const plan = (body: object, token: string = TOKENS.agent) => t.call('POST', '/v1/actions/plan', { token, body });
const apply = (p: { planId: string; requestHash: string }, token: string = TOKENS.agent) =>
  t.call('POST', '/v1/actions/apply', { token, body: { planId: p.planId, requestHash: p.requestHash } });
const undo = (planId: string, reason: string, token: string = TOKENS.agent, headers: Record<string, string> = {}) =>
  t.call('POST', `/v1/actions/${planId}/undo`, { token, body: { reason }, headers });
const get = async (planId: string) => (await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.agent })).body;

/** Plans and applies `body` (approved by `approver` when given), and waits for it to succeed. */
async function succeeded(body: object, token: string = TOKENS.agent, approver?: string) {
  const p = await plan(body, token);
  expect(p.status, JSON.stringify(p.body)).toBe(201);
  expect((await apply(p.body, token)).status).toBe(202);
  if (approver) expect((await t.call('POST', `/v1/actions/${p.body.planId}/approvals`, { token: approver, body: { decision: 'approve' } })).status).toBe(202);
  const done = await t.waitForStatus(p.body.planId, ['succeeded', 'failed']);
  expect(done.status, JSON.stringify(done.result)).toBe('succeeded');
  return done;
}

describe('undo', () => {
  it('sets a config update back to the values the plan read, linked both ways in views and evidence', async () => {
    const sim = t.sim('lab');
    // VM 100 runs, so a cores change waits in [PENDING]: read the config as GET config shows it.
    const guest = () => ({ ...sim.model.findGuest(100)!, config: configWithPending(sim.model.findGuest(100)!) });
    expect(guest().config.cores).toBe('2');
    const description = guest().config.description;
    expect(description).toBeTruthy();
    const original = await succeeded({ action: 'vm.config.update', environment: 'lab', target: { vmid: 100 }, params: { cores: 6, description: 'resized' }, reason: 'load test' });
    expect(guest().config.cores).toBe('6');
    expect(original.result.digestAfter).toBe(configDigest(sim.model.findGuest(100)!));
    // The plan carries its inverse: the values its preflight read.
    expect(original.undo).toEqual({
      inverse: { action: 'vm.config.update', target: { vmid: 100 }, params: { cores: 2, description } },
      reason: expect.stringContaining('back to the values the plan read'),
    });

    const u = await undo(original.planId, 'load test is over');
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    expect(u.headers.get('location')).toBe(`/v1/actions/${u.body.planId}`);
    expect(u.body).toMatchObject({
      planId: undoPlanId(original.planId),
      undoes: original.planId,
      action: 'vm.config.update',
      params: { cores: 2, description },
      reason: 'load test is over',
      requester: { principal: 'agent:pi-demo' },
      status: 'planned',
      // Held to the config the original left, not to whatever the undo plan read.
      preflight: { fingerprint: { digest: original.result.digestAfter } },
    });
    expect((await get(original.planId)).undoneBy).toBe(u.body.planId);

    expect((await apply(u.body)).status).toBe(202);
    const done = await t.waitForStatus(u.body.planId, ['succeeded', 'failed']);
    expect(done.status, JSON.stringify(done.result)).toBe('succeeded');
    expect(guest().config.cores).toBe('2');
    expect(guest().config.description).toBe(description);
    expect(sim.mutations.all().filter((m) => m.vmid === 100 && m.op === 'config')).toHaveLength(2);

    const evidence = async (planId: string) => (await t.call('GET', `/v1/actions/${planId}/evidence`, { token: TOKENS.agent })).body;
    expect((await evidence(original.planId)).undo).toMatchObject({ undoneBy: u.body.planId, inverse: { action: 'vm.config.update' } });
    expect((await evidence(u.body.planId)).undo).toMatchObject({ undoes: original.planId });
    // The link is on the audit chain too: the undo plan's own record names the plan it undoes.
    const created = (await t.service.audit.forPlan(u.body.planId)).find((r) => r.event === 'plan.created');
    expect(created?.detail?.undoes).toBe(original.planId);
    expect(verifyChain(await t.service.audit.all()).ok).toBe(true);
  });

  it('puts the undo under policy like any plan: a prod start undone is a stop that waits for an approver', async () => {
    const sim = t.sim('prod');
    expect(sim.model.guest(201)?.status).toBe('stopped');
    const original = await succeeded({ action: 'vm.start', environment: 'prod', target: { vmid: 201 }, params: {}, reason: 'smoke test' }, TOKENS.agent, TOKENS.approver2);
    expect(sim.model.guest(201)?.status).toBe('running');

    // Requested by another identity than the original's: the undo's requester is its caller.
    const u = await undo(original.planId, 'smoke test done', TOKENS.ops);
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    // What planning vm.stop directly would get: high risk in prod, and the DBA rule for a db guest.
    expect(u.body).toMatchObject({ action: 'vm.stop', risk: 'high', decision: 'requires_approval', status: 'awaiting_approval', undoes: original.planId, requester: { principal: 'human:olivia' } });
    expect((await apply(u.body, TOKENS.ops)).body.status).toBe('awaiting_approval');
    // No one approves their own request, an undo included.
    const self = await t.call('POST', `/v1/actions/${u.body.planId}/approvals`, { token: TOKENS.ops, body: { decision: 'approve' } });
    expect(self.body.type).toBe('/problems/self-approval');
    const dba = await t.call('POST', `/v1/actions/${u.body.planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'approve' } });
    expect(dba.status, JSON.stringify(dba.body)).toBe(202);
    const done = await t.waitForStatus(u.body.planId, ['succeeded', 'failed']);
    expect(done.status, JSON.stringify(done)).toBe('succeeded');
    expect(sim.model.guest(201)?.status).toBe('stopped');
    expect(sim.mutations.countFor(201, 'stop')).toBe(1);
  });

  it('gives a plan one undo: concurrent requests get that one plan or 409, and a repeat of the same request answers it again', async () => {
    const original = await succeeded({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 101 }, params: { snapname: 'undo-once' }, reason: 'checkpoint' });
    const answers = await Promise.all([
      undo(original.planId, 'not needed'),
      undo(original.planId, 'not needed'),
      undo(original.planId, 'another reason'),
      undo(original.planId, 'not needed', TOKENS.ops),
    ]);
    const made = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status === 409);
    expect(made.length + refused.length, JSON.stringify(answers.map((a) => a.body))).toBe(4);
    // Three different requests (two reasons, two callers) race: one wins, the others are told who did.
    expect(refused.length).toBeGreaterThanOrEqual(2);
    expect(new Set(made.map((a) => a.body.planId))).toEqual(new Set([undoPlanId(original.planId)]));
    for (const r of refused) expect(r.body).toMatchObject({ type: '/problems/plan-already-undone', detail: expect.stringContaining(undoPlanId(original.planId)) });
    // Whoever won, the one undo plan has one requester and one reason, and the same request from it is answered again.
    const winner = await get(undoPlanId(original.planId));
    expect(made.every((a) => a.body.requester.principal === winner.requester.principal && a.body.reason === winner.reason)).toBe(true);
    const token = winner.requester.principal === 'human:olivia' ? TOKENS.ops : TOKENS.agent;
    const again = await undo(original.planId, winner.reason, token, { 'idempotency-key': 'k1' });
    expect(again.status).toBe(201);
    expect(again.body.planId).toBe(winner.planId);

    expect((await apply(again.body, token)).status).toBe(202);
    expect((await t.waitForStatus(winner.planId, ['succeeded', 'failed'])).status).toBe('succeeded');
    expect(t.sim('lab').model.snapshots(101)).not.toContain('undo-once');
    expect(t.sim('lab').mutations.countFor(101, 'snapshot-delete')).toBe(1);
  });

  it('refuses, with a 409 problem and nothing planned, what cannot be undone', async () => {
    const resized = await succeeded({ action: 'vm.disk.resize', environment: 'lab', target: { vmid: 100 }, params: { disk: 'scsi0', size: '64G' }, reason: 'room' });
    expect(resized.undo).toEqual({ inverse: null, reason: expect.stringContaining('cannot shrink') });
    const noInverse = await undo(resized.planId, 'too big');
    expect(noInverse.status).toBe(409);
    expect(noInverse.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(noInverse.body).toMatchObject({ type: '/problems/plan-not-undoable', planId: resized.planId, detail: expect.stringContaining('cannot shrink') });

    // A no-op changed nothing: undoing "start a running VM" would stop it.
    const noop = await succeeded({ action: 'vm.start', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'make sure it runs' });
    expect(noop.result.outcome).toBe('noop');
    expect((await undo(noop.planId, 'x')).body).toMatchObject({ status: 409, detail: expect.stringContaining('changed nothing') });

    // Not applied: nothing to take back.
    const planned = await plan({ action: 'ct.stop', environment: 'lab', target: { vmid: 300 }, params: {}, reason: 'later' });
    expect((await undo(planned.body.planId, 'x')).body).toMatchObject({ status: 409, detail: expect.stringContaining('it is planned') });

    for (const id of [resized.planId, noop.planId, planned.body.planId]) {
      expect((await t.call('GET', `/v1/actions/${undoPlanId(id)}`, { token: TOKENS.agent })).status).toBe(404);
      expect((await get(id)).undoneBy).toBeUndefined();
    }
    // A plan in an environment the caller may not see is not found, and a token without plan scope may not undo.
    const prodPlan = await plan({ action: 'vm.snapshot.create', environment: 'prod', target: { vmid: 200 }, params: { snapname: 'hidden' }, reason: 'x' });
    expect((await undo(prodPlan.body.planId, 'x', TOKENS.labOnly)).status).toBe(404);
    expect((await undo(prodPlan.body.planId, 'x', TOKENS.approver1)).status).toBe(403);
  });

  it('denies an undo of a config changed since (undo.stale), and refuses one whose config changes after it was planned', async () => {
    const sim = t.sim('lab');
    const ct = () => sim.model.findGuest(300)!;
    const first = await succeeded({ action: 'ct.config.update', environment: 'lab', target: { vmid: 300 }, params: { memory: 1024 }, reason: 'more memory' });
    // Someone changes the container by hand after the plan: an undo would overwrite that.
    ct().config.swap = '1024';
    const stale = await undo(first.planId, 'back to 512');
    expect(stale.status, JSON.stringify(stale.body)).toBe(201);
    expect(stale.body).toMatchObject({ status: 'denied', decision: 'denied', undoes: first.planId });
    expect(stale.body.reasons.at(-1)).toMatchObject({ rule: 'undo.stale', hint: expect.any(String) });
    expect((await apply(stale.body)).body).toMatchObject({ type: '/problems/plan-denied' });

    const before = sim.mutations.countFor(300, 'config');
    const second = await succeeded({ action: 'ct.config.update', environment: 'lab', target: { vmid: 300 }, params: { memory: 2048 }, reason: 'even more' });
    const u = await undo(second.planId, 'back to 1024');
    expect(u.body).toMatchObject({ status: 'planned', params: { memory: 1024 } });
    ct().config.swap = '2048'; // changed after the undo was planned
    const refused = await apply(u.body);
    expect(refused.status, JSON.stringify(refused.body)).toBe(409);
    expect(refused.body.type).toBe('/problems/plan-stale');
    expect((await get(u.body.planId)).status).toBe('failed');
    expect(ct().config.memory).toBe('2048');
    expect(sim.mutations.countFor(300, 'config')).toBe(before + 1);
  });
});
