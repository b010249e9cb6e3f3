/**
 * Probe 15 / freeze: a lift that comes right as runs become held. Promise 3: held runs "go on when
 * the freeze is lifted". The lift tells held runs by listing them in Temporal visibility
 * (ProxmoxFrozen = id) and signalling them; a run whose hold is not yet visible, or that clears its
 * "lift signalled" flag after the signal arrived (holdWhileFrozen sets it false after its audit
 * flush), only notices at its next one-minute re-check.
 *
 * Scenario: lab frozen; 6 snapshot plans on 3 guests applied; the moment the first run records
 * apply.held, the freeze is lifted. Oracle: the plan views — every run should finish (go on) within
 * 15 s of the lift — and the mutation log (each snapshot at most once, nothing before the lift).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';


let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

describe('a lift right as runs become held', () => {
  it('every held run goes on promptly after the lift, once', async () => {
    const sim = t.sim('lab');
    const f = await t.call('POST', '/v1/freezes', { token: TOKENS.admin, body: { environment: 'lab', reason: 'probe15 quick lift' } });
    expect(f.status).toBe(201);
    const frozenAt = Date.now();
    const targets = [
      { action: 'vm.snapshot.create', vmid: 100 },
      { action: 'vm.snapshot.create', vmid: 101 },
      { action: 'ct.snapshot.create', vmid: 300 },
    ];
    const plans = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const tg = targets[i % 3]!;
        const r = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { action: tg.action, environment: 'lab', target: { vmid: tg.vmid }, params: { snapname: `p15q${i}` }, reason: `probe15 quick lift ${i}` } });
        expect(r.status).toBe(201);
        return { planId: r.body.planId as string, requestHash: r.body.requestHash as string, snap: `p15q${i}` };
      }),
    );
    const applies = plans.map((p) => t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.planId, requestHash: p.requestHash } }));
    await until('a first run held', async () => {
      for (const p of plans) if ((await t.service.audit.forPlan(p.planId)).some((r) => r.event === 'apply.held')) return true;
      return false;
    }, 30_000, 20);
    const l = await t.call('DELETE', `/v1/freezes/${f.body.id}`, { token: TOKENS.admin });
    const liftedAt = Date.now();
    expect(l.status).toBe(200);
    for (const a of await Promise.all(applies)) expect(a.status).toBe(202);
    expect(sim.mutations.all().filter((m) => m.key.startsWith('p15q') && m.time > frozenAt && m.time < liftedAt - 50)).toEqual([]);

    const view = async (id: string) => (await t.call('GET', `/v1/actions/${id}`, { token: TOKENS.agent })).body;
    let vs: any[] = [];
    const deadline = liftedAt + 15_000;
    while (Date.now() < deadline) {
      vs = await Promise.all(plans.map((p) => view(p.planId)));
      if (vs.every((v) => ['succeeded', 'failed'].includes(v.status))) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const stuck = vs.filter((v) => !['succeeded', 'failed'].includes(v.status)).map((v) => ({ planId: v.planId, status: v.status, frozen: v.frozen?.id }));
    expect(stuck, `still waiting 15 s after the lift: ${JSON.stringify(stuck)}`).toEqual([]);
    for (const [i, p] of plans.entries()) expect(sim.mutations.all().filter((m) => m.key === p.snap).length).toBe(vs[i].status === 'succeeded' ? 1 : 0);
  }, 120_000);
});
