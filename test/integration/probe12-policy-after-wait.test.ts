/**
 * probe12 — the policy is checked at apply, but the action may wait for its guest AFTER that check.
 *
 * Scenario (demo policy: guests tagged `do-not-touch` are denied, "managed by hand only"):
 *  1. Plan P0 = `vm.reset` of lab VM 100 (medium, no approval), its qmreset task made to run 12 s
 *     (no guest lock in Proxmox): it holds the guest in the dispatch journal while it runs.
 *  2. Plan P2 = `vm.reset` of VM 100 (medium, no approval) is applied 1 s later: the run re-checks
 *     target and policy (allowed), then its execute activity waits for the guest behind P0.
 *  3. 2 s later a human tags VM 100 `do-not-touch` in Proxmox (written straight into the simulator).
 *  4. P0's task ends; P2's execute reads the guest, sees a running VM and resets it.
 * Oracle: the simulator's mutation log (a reset of VM 100 after the tag was set), P2's view, and a
 * fresh plan of the same action (the policy's verdict on the guest as it is when P2 dispatched).
 * Guarantee 2 ("an action never runs without the approvals its policy requires"): P2 must not reset a
 * guest the policy denies at the time it acts; it should be refused (denied/stale) instead.
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const terminal = ['succeeded', 'failed', 'outcome_unknown', 'denied', 'rejected', 'expired'];
async function planApply(action: string, params: Record<string, unknown>) {
  const p = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { action, environment: 'lab', target: { vmid: 100 }, params, reason: `probe12 ${action}` } });
  expect(p.status, JSON.stringify(p.body)).toBe(201);
  expect(p.body.decision, JSON.stringify(p.body)).toBe('allowed');
  const a = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.body.planId, requestHash: p.body.requestHash } });
  expect(a.status, JSON.stringify(a.body)).toBe(202);
  return p.body.planId as string;
}

describe('probe12: policy change while an applied plan waits for its guest', () => {
  it('a reset queued behind another plan does not run on a guest the policy now denies', { timeout: 120_000 }, async () => {
    const sim = t.sim('lab');
    sim.faults.slowTasks(12_000, { method: 'POST', path: '/nodes/*/qemu/100/status/reset', times: 1 });
    const p0 = await planApply('vm.reset', {});
    await sleep(1000);
    const p2 = await planApply('vm.reset', {});
    await sleep(2000);
    const checked = await t.call('GET', `/v1/actions/${p2}`, { token: TOKENS.agent });
    const taggedAt = Date.now();
    (sim.model.findGuest(100) as any).config.tags = 'do-not-touch';
    const v0 = await t.waitForStatus(p0, terminal, 60_000);
    const v2 = await t.waitForStatus(p2, terminal, 60_000);
    const fresh = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { action: 'vm.reset', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'probe12 policy now' } });
    const resets = sim.mutations.all().filter((m) => m.vmid === 100 && m.op === 'reset').map((m) => ({ seq: m.seq, time: m.time, afterTag: m.time > taggedAt, upid: m.upid, p2: m.upid === v2.result?.upid }));
    const evidence =
      `P2 status when the tag was set: ${checked.body?.status}; P0: ${v0.status}; P2: ${JSON.stringify({ status: v2.status, result: v2.result })}; ` +
      `resets of VM 100: ${JSON.stringify(resets)}; policy now (fresh plan): ${fresh.body?.decision} ${JSON.stringify(fresh.body?.reasons?.map((r: any) => r.rule))}`;
    console.log(evidence);
    expect(fresh.body?.decision, evidence).toBe('denied');
    expect(resets.filter((r) => r.p2).length, `P2 reset a do-not-touch guest after the policy check. ${evidence}`).toBe(0);
  });
});
