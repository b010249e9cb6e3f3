/**
 * Probe 15 / freeze: races around the kill switch, against the dev server and the simulator.
 *
 * Scenarios (each checks the outsider's oracle: the simulator's request log — no mutating request
 * executed in the frozen environment after POST /v1/freezes answered — its mutation log — each
 * plan's change made at most once — and the plan views):
 *  1. retry after a pveproxy refusal: the first snapshot POST is answered 503 by pveproxy (nothing
 *     executed, the intent released); the freeze lands before the activity's retry (1 s later).
 *  2. a dropped connection after dispatch: the POST executes but the answer is lost; the freeze
 *     lands while the intent is unsettled. Nothing may be sent again; the task is adopted.
 *  3. two freezes, lifting one: the run stays held by the other; lifting that one runs it once.
 *  4. lift and re-freeze at once, with several held runs: nothing executes after the re-freeze
 *     answered; after the final lift each run goes on at most once.
 *  5. approving after the freeze holds the run; rejecting a held run stops it for good (even after the lift).
 *  6. a freeze of prod while lab is busy: lab goes on, prod gets nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { executedMutations } from './support/mutations.js';
import { until } from './support/until.js';


let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

const executed = (env: 'lab' | 'prod') => executedMutations(t.sim(env));
const lateAfter = (env: 'lab' | 'prod', at: number) => executed(env).filter((r) => r.time > at).map((r) => ({ method: r.method, path: r.path, params: r.params, time: r.time, at }));
const plan = async (body: object) => {
  const r = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { planId: string; requestHash: string; status: string; frozen?: { id: string } };
};
const apply = (p: { planId: string; requestHash: string }) => t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.planId, requestHash: p.requestHash } });
const freeze = async (environment: string, reason: string) => {
  const r = await t.call('POST', '/v1/freezes', { token: TOKENS.admin, body: { environment, reason } });
  const at = Date.now();
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { ...(r.body as { id: string; stillSending: string[] }), answeredAt: at };
};
const lift = (id: string) => t.call('DELETE', `/v1/freezes/${id}`, { token: TOKENS.admin });
const view = async (planId: string) => (await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.agent })).body;
const held = (planId: string, freezeId?: string) =>
  until(`${planId} held`, async () => (await t.service.audit.forPlan(planId)).some((r) => r.event === 'apply.held' && (!freezeId || (r.detail as any)?.freeze?.id === freezeId)), 30_000, 100);

describe('freeze races', () => {
  it('1: the retry of an attempt refused by pveproxy (503, nothing executed) meets the freeze', async () => {
    const sim = t.sim('lab');
    const fault = sim.faults.add({ kind: 'error', status: 503, method: 'POST', path: '/nodes/*/qemu/100/snapshot', times: 1 });
    const p = await plan({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'p15retry' }, reason: 'probe15 retry race' });
    expect((await apply(p)).status).toBe(202);
    await until('the 503 answered', () => sim.requests.all().some((r) => r.method === 'POST' && r.path.endsWith('/qemu/100/snapshot') && r.faults.includes('error') && r.answer), 20_000, 5);
    const f = await freeze('lab', 'probe15 retry race');
    sim.faults.remove(fault);
    await held(p.planId);
    await new Promise((r) => setTimeout(r, 2000));
    expect(lateAfter('lab', f.answeredAt)).toEqual([]);
    expect(sim.mutations.all().filter((m) => m.key === 'p15retry')).toHaveLength(0);
    expect((await lift(f.id)).status).toBe(200);
    const done = await t.waitForStatus(p.planId, ['succeeded', 'failed'], 30_000);
    expect(done.status, JSON.stringify(done.result)).toBe('succeeded');
    expect(sim.mutations.all().filter((m) => m.key === 'p15retry')).toHaveLength(1);
  }, 90_000);

  it('2: a dropped connection after dispatch, then the freeze: the task is adopted, nothing is sent again', async () => {
    const sim = t.sim('lab');
    const fault = sim.faults.add({ kind: 'drop-after-dispatch', method: 'POST', path: '/nodes/*/lxc/300/snapshot', times: 1 });
    const p = await plan({ action: 'ct.snapshot.create', environment: 'lab', target: { vmid: 300 }, params: { snapname: 'p15drop' }, reason: 'probe15 drop race' });
    expect((await apply(p)).status).toBe(202);
    await until('the POST dropped', () => sim.requests.all().some((r) => r.method === 'POST' && r.path.endsWith('/lxc/300/snapshot') && r.answer?.kind === 'dropped'), 20_000, 5);
    const f = await freeze('lab', 'probe15 drop race');
    sim.faults.remove(fault);
    const done = await t.waitForStatus(p.planId, ['succeeded', 'failed'], 60_000);
    expect(lateAfter('lab', f.answeredAt)).toEqual([]);
    expect(sim.mutations.all().filter((m) => m.key === 'p15drop'), JSON.stringify(done.result)).toHaveLength(1);
    expect(sim.requests.all().filter((r) => r.method === 'POST' && r.path.endsWith('/lxc/300/snapshot') && r.executed)).toHaveLength(1);
    expect((await lift(f.id)).status).toBe(200);
  }, 120_000);

  it('3: two freezes, lifting one keeps the run held; lifting the other runs it once', async () => {
    const sim = t.sim('lab');
    const a = await freeze('lab', 'probe15 freeze A');
    const b = await freeze('lab', 'probe15 freeze B');
    const p = await plan({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 101 }, params: { snapname: 'p15two' }, reason: 'probe15 two freezes' });
    expect(p.frozen?.id).toBe(a.id);
    expect((await apply(p)).status).toBe(202);
    await held(p.planId);
    expect((await lift(a.id)).status).toBe(200);
    await held(p.planId, b.id);
    await new Promise((r) => setTimeout(r, 1500));
    expect(lateAfter('lab', b.answeredAt)).toEqual([]);
    expect((await view(p.planId)).frozen?.id).toBe(b.id);
    expect((await lift(b.id)).status).toBe(200);
    const done = await t.waitForStatus(p.planId, ['succeeded', 'failed'], 30_000);
    expect(done.status, JSON.stringify(done.result)).toBe('succeeded');
    expect(sim.mutations.all().filter((m) => m.key === 'p15two')).toHaveLength(1);
  }, 90_000);

  it('4: lift and re-freeze at once: nothing after the re-freeze answered; each run at most once after the final lift', async () => {
    const sim = t.sim('lab');
    const f = await freeze('lab', 'probe15 flip 1');
    const targets = [
      { action: 'vm.snapshot.create', vmid: 100 },
      { action: 'vm.snapshot.create', vmid: 101 },
      { action: 'ct.snapshot.create', vmid: 300 },
    ];
    const plans = await Promise.all(
      Array.from({ length: 9 }, async (_, i) => {
        const tg = targets[i % 3]!;
        return { ...(await plan({ action: tg.action, environment: 'lab', target: { vmid: tg.vmid }, params: { snapname: `p15flip${i}` }, reason: `probe15 flip ${i}` })), snap: `p15flip${i}` };
      }),
    );
    for (const a of await Promise.all(plans.map(apply))) expect(a.status).toBe(202);
    await Promise.all(plans.map((p) => held(p.planId)));
    const liftP = lift(f.id);
    const g = await freeze('lab', 'probe15 flip 2');
    expect((await liftP).status).toBe(200);
    await new Promise((r) => setTimeout(r, 4000));
    expect(lateAfter('lab', g.answeredAt)).toEqual([]);
    expect((await lift(g.id)).status).toBe(200);
    const done = await until(
      'all finished',
      async () => {
        const vs = await Promise.all(plans.map((p) => view(p.planId)));
        return vs.every((v) => ['succeeded', 'failed'].includes(v.status)) && vs;
      },
      90_000,
      250,
    );
    for (const [i, p] of plans.entries()) {
      const made = sim.mutations.all().filter((m) => m.key === p.snap);
      expect(made.length, `${p.snap}: ${done[i].status} ${JSON.stringify(done[i].result)}`).toBe(done[i].status === 'succeeded' ? 1 : 0);
    }
    expect(sim.mutations.duplicates()).toEqual([]);
  }, 180_000);

  it('5: approving after the freeze holds the run; a rejection of a held run stops it even after the lift', async () => {
    const sim = t.sim('prod');
    const f = await freeze('prod', 'probe15 approvals');
    const p1 = await plan({ action: 'vm.reboot', environment: 'prod', target: { vmid: 200 }, params: {}, reason: 'probe15 approve after freeze' });
    expect(p1.status).toBe('awaiting_approval');
    expect((await apply(p1)).status).toBe(202);
    expect((await t.call('POST', `/v1/actions/${p1.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve', comment: 'ok' } })).status).toBeLessThan(300);
    await held(p1.planId);
    expect(lateAfter('prod', f.answeredAt)).toEqual([]);
    const rej = await t.call('POST', `/v1/actions/${p1.planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'reject', comment: 'no' } });
    const afterReject = await until('rejected or refused', async () => {
      const v = await view(p1.planId);
      return (v.status === 'rejected' || rej.status >= 400) && v;
    });
    expect((await lift(f.id)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 3000));
    const v = await view(p1.planId);
    if (rej.status < 300) {
      expect(afterReject.status).toBe('rejected');
      expect(v.status).toBe('rejected');
      expect(sim.mutations.all().filter((m) => m.vmid === 200 && m.time > f.answeredAt)).toEqual([]);
    } else {
      // The rejection was refused as the run had its approvals: it must then run once.
      const done = await t.waitForStatus(p1.planId, ['succeeded', 'failed'], 30_000);
      expect(done.status).toBe('succeeded');
    }
  }, 90_000);

  it('6: a freeze of prod while lab is busy: lab goes on, prod gets nothing', async () => {
    const lab = t.sim('lab');
    const labPlans = await Promise.all(
      [100, 101].map((vmid, i) => plan({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid }, params: { snapname: `p15busy${i}` }, reason: 'probe15 other env busy' })),
    );
    const prodPlan = await plan({ action: 'ct.snapshot.create', environment: 'prod', target: { vmid: 400 }, params: { snapname: 'p15prod' }, reason: 'probe15 prod frozen' });
    const applies = [...labPlans, prodPlan].map(apply);
    const f = await freeze('prod', 'probe15 prod only');
    for (const a of await Promise.all(applies)) expect(a.status).toBe(202);
    for (const p of labPlans) expect((await t.waitForStatus(p.planId, ['succeeded', 'failed'], 30_000)).status).toBe('succeeded');
    const pv = await until('prod run finished or held', async () => {
      const v = await view(prodPlan.planId);
      return (['succeeded', 'failed'].includes(v.status) || v.frozen) && v;
    });
    expect(lateAfter('prod', f.answeredAt)).toEqual([]);
    expect(lab.mutations.all().filter((m) => m.key.startsWith('p15busy'))).toHaveLength(2);
    expect((await lift(f.id)).status).toBe(200);
    if (pv.frozen) expect((await t.waitForStatus(prodPlan.planId, ['succeeded', 'failed'], 30_000)).status).toBe('succeeded');
    expect(t.sim('prod').mutations.all().filter((m) => m.key === 'p15prod').length).toBeLessThanOrEqual(1);
  }, 90_000);
});
