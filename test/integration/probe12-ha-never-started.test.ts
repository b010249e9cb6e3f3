/**
 * probe12 — an HA-managed start that ha-manager does not carry out is reported as done.
 *
 * Scenario: lab VM 101 (stopped) is made HA-managed in the simulator (haManaged, hastate stopped),
 * and ha-manager is made to act only after 10 minutes (simulator haDelayMs), i.e. as when the
 * CRM/LRM cannot start the guest (HA state "error", storage missing, node fenced). The agent plans
 * and applies `vm.start` (low risk). Proxmox answers with an `hastart` task that ends OK at once
 * ("the task only asks ha-manager"); the execute activity then re-reads the guest until it is seen
 * running, for at most 600 polls (pollIntervalMs 50 ms in this test; 1 s by default, i.e. 10 min),
 * and returns `applied` whether or not it saw it.
 * Oracle: the plan view vs. the simulator's model and mutation log at the moment the plan is
 * terminal. Guarantee 3 ("never silently reported as done when it was not"): a plan that says
 * succeeded must have its start on Proxmox (VM 101 running, a `start` mutation of 101); otherwise
 * it must be pending or explicitly unknown, or at least say the change was not seen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService(
    (c) => {
      c.server.rateLimit = false;
    },
    { service: { simulator: { taskDurationMs: 50, authFailureDelayMs: 0, haDelayMs: 600_000 } } },
  );
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
});
afterAll(async () => {
  await t?.stop();
});

describe('probe12: HA start not carried out', () => {
  it('a start that never happened is not reported as succeeded without a word', { timeout: 180_000 }, async () => {
    const g = t.sim('lab').model.findGuest(101)! as any;
    expect(g.status).toBe('stopped');
    g.haManaged = true;
    g.haState = 'stopped';
    const plan = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'probe12 HA start' } });
    expect(plan.status, JSON.stringify(plan.body)).toBe(201);
    expect(plan.body.decision, JSON.stringify(plan.body)).toBe('allowed');
    const apply = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: plan.body.planId, requestHash: plan.body.requestHash } });
    expect(apply.status).toBe(202);
    const view = await t.waitForStatus(plan.body.planId, ['succeeded', 'failed', 'outcome_unknown'], 150_000);
    const now = t.sim('lab').model.findGuest(101)! as any;
    const starts = t.sim('lab').mutations.all().filter((m) => m.vmid === 101 && m.op === 'start');
    const tasks = t.sim('lab').requests.all().filter((r: any) => r.method === 'POST' && String(r.path).includes('/qemu/101/status/start'));
    const evidence = `plan: ${JSON.stringify({ status: view.status, result: view.result })}; VM 101 in the simulator: status=${now.status} hastate=${now.haState}; start mutations of 101: ${JSON.stringify(starts)}; start POSTs: ${tasks.length}`;
    console.log(evidence);
    if (view.status === 'succeeded') {
      const saysNotSeen = /not seen|does not show|not (yet )?(running|started)/i.test(`${view.result?.note ?? ''} ${view.result?.message ?? ''}`);
      expect(now.status === 'running' || saysNotSeen, `reported succeeded, silently, while VM 101 is ${now.status}. ${evidence}`).toBe(true);
    }
  });
});
