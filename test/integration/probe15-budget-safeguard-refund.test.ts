/**
 * PROBE 15 / budgets — a plan whose safeguard snapshot was sent to Proxmox is refunded from the hourly
 * budgets ("nothing was sent"), so a principal with `perHour.guests: 1` changes two guests in one hour.
 *
 * Scenario: `agent:pi-demo` has `perHour.guests: 1`; plans expire after 25 s; prod config updates take a
 * safeguard snapshot first. The snapshot task is slow (2 s) and an operator freezes prod while it runs.
 *  1. Plan A: vm.config.update prod/200 (guests: 1 of 1). Applied and approved: the safeguard snapshot
 *     is SENT to Proxmox and taken (the simulator's mutation log has it); the action's dispatch then
 *     meets the freeze and the run is held, until the plan expires.
 *  2. The run ends `expired`; the workflow resets `outcomeFields` when the dispatch met the freeze, so
 *     `releaseBudget(sent = false)`: A is REFUNDED from the hourly budgets, though it reached Proxmox.
 *  3. Plan B: vm.snapshot.create lab/100, a second guest within the hour → admitted and applied.
 *
 * Guarantee under test: distinct guests per sliding hour; docs: "a plan that reached the Proxmox step
 * keeps its hourly charges for the hour". Oracle: the simulators' mutation logs (two guests mutated
 * within the hour by this principal's plans) vs GET /v1/budgets / the admission of B.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safeguardSnapshotName } from '../../src/domain/safeguard.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';

const PRINCIPAL = 'agent:pi-demo';
const ADMIN = 'probe15-budget-admin-token';
let t: TestService;

beforeAll(async () => {
  t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.tokens.push({ id: 'probe15-admin', principal: 'human:carol', secretSha256: createHash('sha256').update(ADMIN).digest('hex'), scopes: ['admin', 'read'], environments: ['*'], roles: [] });
    c.policy.rules.push({ id: 'prod-snapshot-first', match: { environments: ['prod'], actions: ['*.config.update'] }, safeguard: 'snapshot' });
    c.policy.planTtlSeconds = 25;
    c.budgets = { [PRINCIPAL]: { perHour: { guests: 1 } } };
  });
  await until('/healthz 200', async () => (await t.call('GET', '/healthz')).status === 200, 30_000, 200);
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const plan = (body: object) => t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body });
const guests = async () => ((await t.call('GET', '/v1/budgets', { token: TOKENS.agent })).body.budgets as { budget: string; used: number }[]).find((b) => b.budget === 'guests');

describe('probe15 budget: a safeguard snapshot sent, then the plan held and expired', () => {
  it('keeps the hourly guests charge of a plan that sent its safeguard snapshot to Proxmox', { timeout: 150_000 }, async () => {
    const sim = t.sim('prod');
    sim.faults.add({ kind: 'slow-task', method: 'POST', path: '/nodes/*/qemu/200/snapshot', durationMs: 2_000, times: 1 });
    const a = await plan({ action: 'vm.config.update', environment: 'prod', target: { vmid: 200 }, params: { cores: 3 }, reason: 'probe15 safeguard refund' });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(a.body.decision, JSON.stringify(a.body.reasons)).not.toBe('denied');
    const since = Date.parse(a.body.createdAt);
    expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: a.body.planId, requestHash: a.body.requestHash } })).status).toBe(202);
    if (a.body.status === 'awaiting_approval') expect((await t.call('POST', `/v1/actions/${a.body.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(202);
    const snapshotRunning = () => sim.model.tasks().some((x) => x.type === 'qmsnapshot' && x.id === '200' && x.status === 'running');
    await until('the safeguard snapshot runs', async () => (snapshotRunning() ? true : undefined), 15_000, 25);
    const f = await t.call('POST', '/v1/freezes', { token: ADMIN, body: { environment: 'prod', reason: 'probe15 incident during the snapshot' } });
    expect(f.status, JSON.stringify(f.body)).toBe(201);
    let ended: any;
    try {
      ended = await t.waitForStatus(a.body.planId, ['expired', 'succeeded', 'failed'], 60_000);
    } finally {
      await t.call('DELETE', `/v1/freezes/${f.body.id}`, { token: ADMIN });
    }
    const name = safeguardSnapshotName(a.body.planId);
    const sentToProxmox = sim.mutations.all().filter((m) => m.vmid === 200 && m.time >= since);
    console.log(JSON.stringify({ aStatus: ended.status, safeguard: ended.safeguard, mutationsOnProd200: sentToProxmox.map((m) => ({ op: m.op, key: m.key, time: new Date(m.time).toISOString() })) }));
    expect(ended.status).toBe('expired');
    expect(sentToProxmox.some((m) => m.op === 'snapshot' && m.key === name)).toBe(true);

    // Something reached Proxmox for prod/200: the guest must still count for the hour.
    await new Promise((r) => setTimeout(r, 2_000)); // the run's last step (release) after the expiry
    const afterA = await guests();
    const b = await plan({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'probe15b' }, reason: 'probe15 second guest' });
    let bMutated = false;
    if (b.body.status === 'planned') {
      expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: b.body.planId, requestHash: b.body.requestHash } })).status).toBe(202);
      await t.waitForStatus(b.body.planId, ['succeeded', 'failed'], 30_000);
      bMutated = t.sim('lab').mutations.all().some((m) => m.vmid === 100 && m.time >= since);
    }
    console.log(JSON.stringify({ guestsAfterA: afterA, bDecision: b.body.decision, bStatus: b.body.status, bMutatedLab100: bMutated }));
    expect.soft(afterA?.used, 'prod/200 had a snapshot sent within the hour, yet guests used is').toBe(1);
    expect(b.body.decision, 'a second distinct guest within the hour past perHour.guests: 1').toBe('denied');
  });
});
