/**
 * Probe 15 / freeze: an operator's cancel of a run whose Proxmox task started BEFORE the freeze.
 *
 * Scenario: a low-risk vm.start on lab VM 101 is applied; its qmstart task is made slow (20 s), so
 * it is still running when an admin freezes lab. The freeze answers (201). Then the run is cancelled
 * the way operators do it (Temporal Web UI / CLI: workflow cancel). The promises say: from the
 * freeze's answer on, no mutating request of this service reaches the frozen environment "through
 * any path", and running tasks started before the freeze are left alone (not stopped).
 *
 * Oracle: the lab simulator's request log (mutating requests executed after the freeze answered)
 * and the task itself (still running / ended OK vs stopped by a DELETE).
 *
 * What the oracle saw when this was written: the cancel path (execute.ts follow() →
 * stopCancelledTask) sends DELETE /nodes/pve-lab/tasks/<upid> into the frozen environment after the
 * freeze answered, and the pre-freeze task is stopped (exitstatus "received interrupt" or similar),
 * the guest left stopped. The kill switch does not gate this path (it only gates journal.begin).
 *
 * Decided (docs/operations.md, "Freezing an environment"): a freeze stops new applies; it does not
 * take away an operator's explicit cancel of a run, which stops the task that run started (a human
 * "no" wins). So this is kept as a test of that: after the freeze answered, the only mutating
 * request is the DELETE of the cancelled run's own task, sent once, and the guest is left as the
 * stopped task left it; nothing else is sent, and the run reports what happened.
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

describe('freeze vs an operator cancel of a run whose task started before the freeze', () => {
  it('an operator\'s cancel still stops the task its run started; nothing else is sent after the freeze answered', async () => {
    const sim = t.sim('lab');
    expect(sim.model.guest(101)?.status).toBe('stopped');
    const slow = sim.faults.slowTasks(20_000, { path: '/nodes/*/qemu/101/status/start' });
    try {
      const p = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'probe15 cancel under freeze' } });
      expect(p.status).toBe(201);
      expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.body.planId, requestHash: p.body.requestHash } })).status).toBe(202);
      const task = await until('the start task runs', () => sim.model.tasks().find((x) => x.type === 'qmstart' && x.id === '101' && x.status === 'running'), 20_000, 50);

      const f = await t.call('POST', '/v1/freezes', { token: TOKENS.admin, body: { environment: 'lab', reason: 'probe15 incident' } });
      const answeredAt = Date.now();
      expect(f.status).toBe(201);

      // The operator cancels the run (Temporal Web UI / CLI) while lab is frozen.
      await t.service.client.workflow.getHandle(p.body.planId).cancel();
      const final = await t.waitForStatus(p.body.planId, ['failed', 'succeeded'], 40_000);

      const late = executedMutations(sim, { after: answeredAt });
      const taskNow = sim.model.task(task.upid);
      // Evidence first, so a failure shows everything the oracle saw.
      const evidence = JSON.stringify({ late: late.map((r) => ({ method: r.method, path: r.path, time: r.time, answeredAt })), task: { status: taskNow?.status, exitstatus: taskNow?.exitstatus }, final: { status: final.status, result: final.result } });
      // Only the operator's stop of that run's own task, once.
      expect(late.map((r) => `${r.method} ${r.path}`), evidence).toEqual([`DELETE /nodes/pve-lab/tasks/${task.upid}`]);
      await until('the task has stopped', () => sim.model.task(task.upid)?.status === 'stopped', 30_000, 200);
      expect(sim.model.task(task.upid)?.exitstatus, evidence).not.toBe('OK');
      expect(sim.model.guest(101)?.status, evidence).toBe('stopped');
      expect(final.status, evidence).toBe('failed');
      expect(final.result.outcome, evidence).toBe('failed');
    } finally {
      sim.faults.remove(slow);
    }
  }, 120_000);
});
