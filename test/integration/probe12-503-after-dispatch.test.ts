/**
 * probe12 — a 5xx that Proxmox (or the proxy in front of it) answers AFTER the request executed.
 *
 * Scenario: a lab `vm.reset` (medium risk, no approval) of running VM 100. The simulator executes the
 * POST …/status/reset (a qmreset task is started, the VM is reset) and then answers `503 Service
 * Unavailable` (fault `error` with `afterDispatch: true`; e.g. Envoy/Istio answers 503 "upstream
 * reset before headers" after it forwarded the request). The client classifies 503 as "did not reach
 * Proxmox" (error-map.ts: outcomeUnknown = status !== 503), the dispatch journal releases the intent
 * as not_dispatched, the activity is retried, the guest reads "running", and the reset is sent again.
 *
 * Oracle: the simulator's mutation log must hold exactly one `reset` of VM 100 (guarantee 1: at most
 * once), and the plan's view must not report success of one task while another ran.
 * A 502 variant (the outcome-unknown path) is kept as a control.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService((c) => {
    c.server.rateLimit = false;
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
});
afterAll(async () => {
  await t?.stop();
});

async function runReset(vmid: number) {
  const plan = await t.call('POST', '/v1/actions/plan', {
    token: TOKENS.agent,
    body: { action: 'vm.reset', environment: 'lab', target: { vmid }, params: {}, reason: 'probe12 reset after 5xx' },
  });
  expect(plan.status, JSON.stringify(plan.body)).toBe(201);
  expect(plan.body.decision).toBe('allowed');
  const apply = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: plan.body.planId, requestHash: plan.body.requestHash } });
  expect(apply.status, JSON.stringify(apply.body)).toBe(202);
  const view = await t.waitForStatus(plan.body.planId, ['succeeded', 'failed', 'outcome_unknown'], 60_000);
  // Let any retry still running finish.
  await new Promise((r) => setTimeout(r, 3000));
  const resets = t.sim('lab').mutations.all().filter((m) => m.vmid === vmid && m.op === 'reset');
  const posts = t.sim('lab').requests.all().filter((r: any) => r.method === 'POST' && String(r.path).endsWith(`/qemu/${vmid}/status/reset`));
  return { view, resets, posts };
}

describe('probe12: 5xx after Proxmox executed the request', () => {
  it('502 after dispatch (control): one reset on Proxmox', { timeout: 120_000 }, async () => {
    t.sim('lab').mutations.clear();
    t.sim('lab').faults.errorRate({ method: 'POST', path: '/nodes/*/qemu/100/status/reset', times: 1, status: 502, message: 'Bad Gateway', afterDispatch: true });
    const { view, resets, posts } = await runReset(100);
    console.log('502 view', JSON.stringify({ status: view.status, result: view.result }), 'resets', JSON.stringify(resets), 'posts', posts.length);
    expect(resets.length, `reset mutations: ${JSON.stringify(resets)}`).toBe(1);
  });

  it('503 after dispatch: the reset reaches Proxmox at most once', { timeout: 120_000 }, async () => {
    t.sim('lab').mutations.clear();
    t.sim('lab').faults.errorRate({ method: 'POST', path: '/nodes/*/qemu/100/status/reset', times: 1, status: 503, message: 'Service Unavailable', afterDispatch: true });
    const { view, resets, posts } = await runReset(100);
    console.log('503 view', JSON.stringify({ status: view.status, result: view.result }), 'resets', JSON.stringify(resets), 'posts', posts.length);
    expect(resets.length, `reset mutations of VM 100 (each a distinct dispatch): ${JSON.stringify(resets)}; plan view: ${JSON.stringify({ status: view.status, result: view.result })}`).toBe(1);
  });
});
