/**
 * Probe 15 / freeze: a run held twice, whose Temporal history grows long while held (it continues
 * as new), then the freeze is lifted. Promise 3: approved runs wait durably and go on (each at most
 * once) when the freeze is lifted.
 *
 * Scenario (lab, VM 101):
 *  1. plan B (vm.start 101) runs a slow task that ends in error (so it changes nothing); plan Y
 *     (vm.snapshot.create 101) is applied meanwhile: its re-check passes and its execute waits for
 *     the guest (B holds it in the dispatch journal).
 *  2. freeze F1 answers; B's task ends; Y's execute meets F1 at the journal: held (round 0).
 *  3. lift F1: Y's execute round 1 (attempt 1001) is refused by pveproxy (503, nothing executed:
 *     the intent is released at attempt 1001); freeze F2 lands before the retry, which is held.
 *  4. while held, Y's history grows past the continue-as-new threshold (here by waking the hold
 *     loop with freeze-lifted signals, standing in for hours of its one-minute re-checks), and the
 *     run continues as new.
 *  5. lift F2: Y should go on and make its snapshot once.
 *
 * Oracle: the plan view (status), the simulator's mutation log (the snapshot made once), and the
 * run's pending execute activity (Temporal describe) for evidence.
 *
 * What the oracle saw when this was written: after the lift the run stays `applying` and its
 * execute activity fails attempt after attempt with AttemptSuperseded ("attempt N ... was overtaken
 * by attempt 1001"): the count of executes (`executes`, which numbers an execute's attempts from
 * round × 1000) is not carried across continue-as-new, so the new run's attempts (1, 2, ...) are
 * all older than the journal's 1001, and the run can never go on (after 25 attempts it fails).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freezeLiftedSignal } from '../../src/workflows/messages.js';
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

const plan = async (body: object) => {
  const r = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { planId: string; requestHash: string };
};
const apply = (p: { planId: string; requestHash: string }) => t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.planId, requestHash: p.requestHash } });
const freeze = async (reason: string) => {
  const r = await t.call('POST', '/v1/freezes', { token: TOKENS.admin, body: { environment: 'lab', reason } });
  const at = Date.now();
  expect(r.status).toBe(201);
  return { ...(r.body as { id: string }), answeredAt: at };
};
const lift = (id: string) => t.call('DELETE', `/v1/freezes/${id}`, { token: TOKENS.admin });
const heldCount = async (planId: string) => (await t.service.audit.forPlan(planId)).filter((r) => r.event === 'apply.held').length;

describe('a run held twice, continued as new while held, then lifted', () => {
  it('goes on once after the lift', async () => {
    const sim = t.sim('lab');
    const y = await plan({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 101 }, params: { snapname: 'p15can' }, reason: 'probe15 long hold' });
    const b = await plan({ action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'probe15 blocker' });
    const slow = sim.faults.slowTasks(6_000, { path: '/nodes/*/qemu/101/status/start', times: 1 });
    const fail = sim.faults.failTasks('probe15: start failed', { path: '/nodes/*/qemu/101/status/start', times: 1 });
    expect((await apply(b)).status).toBe(202);
    await until('B task runs', () => sim.model.tasks().some((x) => x.type === 'qmstart' && x.id === '101' && x.status === 'running'), 20_000, 50);
    expect((await apply(y)).status).toBe(202);
    await t.waitForStatus(y.planId, ['applying'], 20_000);

    // 2. F1 while Y's execute waits for the guest; B's task ends in error; Y meets F1 at the journal.
    const f1 = await freeze('probe15 F1');
    await until('Y held once', async () => (await heldCount(y.planId)) >= 1, 30_000, 100);
    expect((await t.waitForStatus(b.planId, ['failed', 'succeeded'], 20_000)).status).toBe('failed');
    sim.faults.remove(slow);
    sim.faults.remove(fail);

    // 3. lift F1; round 1's first POST is refused by pveproxy; F2 lands before the retry.
    const refuse = sim.faults.add({ kind: 'error', status: 503, method: 'POST', path: '/nodes/*/qemu/101/snapshot', times: 1 });
    const postsBefore = sim.requests.all().length;
    expect((await lift(f1.id)).status).toBe(200);
    await until('the 503 answered', () => sim.requests.all().slice(postsBefore).some((r) => r.method === 'POST' && r.path.endsWith('/qemu/101/snapshot') && r.faults.includes('error') && r.answer), 30_000, 5);
    const f2 = await freeze('probe15 F2');
    sim.faults.remove(refuse);
    await until('Y held twice', async () => (await heldCount(y.planId)) >= 2, 30_000, 100);
    expect(sim.mutations.all().filter((m) => m.key === 'p15can')).toHaveLength(0);

    // 4. Y's history grows long while held: it continues as new.
    const handle = t.service.client.workflow.getHandle(y.planId);
    const firstRun = (await handle.describe()).runId;
    for (let i = 0; i < 400; i++) {
      await Promise.all(Array.from({ length: 10 }, () => handle.signal(freezeLiftedSignal, { freezeId: f2.id }).catch(() => undefined)));
      if (i % 10 === 9 && (await handle.describe()).runId !== firstRun) break;
    }
    await until('continued as new', async () => (await handle.describe()).runId !== firstRun, 60_000, 500);
    expect(executedMutations(sim, { after: f2.answeredAt })).toEqual([]);

    // 5. lift F2: Y goes on, once.
    expect((await lift(f2.id)).status).toBe(200);
    let final: any;
    try {
      final = await t.waitForStatus(y.planId, ['succeeded', 'failed'], 45_000);
    } catch (err) {
      const d = await handle.describe();
      const pending = (d.raw.pendingActivities ?? []).map((a) => ({ type: a.activityType?.name, attempt: a.attempt, lastFailure: a.lastFailure?.message }));
      throw new Error(`${(err as Error).message}\npending activities: ${JSON.stringify(pending)}`);
    }
    expect(final.status, JSON.stringify(final.result)).toBe('succeeded');
    expect(sim.mutations.all().filter((m) => m.key === 'p15can')).toHaveLength(1);
  }, 240_000);
});
