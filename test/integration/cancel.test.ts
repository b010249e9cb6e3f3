/**
 * Issue 3 §3: a cancelled run stops its Proxmox task where the API allows (DELETE /nodes/{node}/tasks/{upid}).
 * Operators cancel runs from the Temporal Web UI or CLI; here the test does it with the Temporal client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

const plan = async (body: object) => {
  const p = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body });
  expect(p.status, JSON.stringify(p.body)).toBe(201);
  return { planId: p.body.planId as string, requestHash: p.body.requestHash as string };
};

describe('cancelling a run', () => {
  it('stops the running Proxmox task and records the run as cancelled, with no change made', async () => {
    const sim = t.sim('lab');
    const slow = sim.faults.slowTasks(20_000, { path: '/nodes/*/qemu/101/status/start' });
    try {
      const p = await plan({ action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'cancel test' });
      await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: p });
      await t.waitForStatus(p.planId, ['applying']);
      let task: { upid: string; status: string } | undefined;
      for (let i = 0; i < 100 && !task; i++) {
        task = sim.model.tasks().find((x) => x.type === 'qmstart' && x.id === '101' && x.status === 'running');
        if (!task) await new Promise((r) => setTimeout(r, 50));
      }
      expect(task, 'the start task runs').toBeDefined();

      await t.service.client.workflow.getHandle(p.planId).cancel();
      const final = await t.waitForStatus(p.planId, ['failed', 'succeeded']);
      expect(final.status).toBe('failed');
      // Seen stopped before it changed anything: a failure, known, with the task it was.
      expect(final.result).toMatchObject({ outcome: 'failed', errorType: 'Cancelled', upid: task!.upid, message: expect.stringContaining('Proxmox stopped its task before it finished') });
      const stopped = sim.model.task(task!.upid)!;
      expect(stopped.status).toBe('stopped');
      expect(stopped.exitstatus).not.toBe('OK');
      expect(sim.model.guest(101)?.status).toBe('stopped');
      expect(sim.mutations.countFor(101, 'start')).toBe(0);
      const events = (await t.service.audit.forPlan(p.planId)).map((r) => r.event);
      expect(events.slice(-2)).toEqual(['action.failed', 'run.cancelled']);
    } finally {
      sim.faults.remove(slow);
    }
  });

  it('ends a plan waiting for approval without touching Proxmox', async () => {
    const p = await plan({ action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: {}, reason: 'cancel test' });
    const before = t.sim('prod').mutations.all().length;
    await t.service.client.workflow.getHandle(p.planId).cancel();
    const final = await t.waitForStatus(p.planId, ['failed']);
    expect(final.result).toMatchObject({ errorType: 'Cancelled', message: 'the run was cancelled while awaiting_approval' });
    expect(t.sim('prod').mutations.all().length).toBe(before);
    const late = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: p });
    expect(late.status).toBe(409);
  });
});
