/**
 * probe12 — a task orphaned by a "not sent" misclassification is adopted by a later plan.
 *
 * Scenario (lab VM 100, `vm.reset`, medium risk, no approval):
 *  1. Plan A: Proxmox executes the reset POST (task T1) and the answer is `503` (fault `error`,
 *     afterDispatch). The journal releases A's intent as not_dispatched; A's retry sends the reset
 *     again (task T2) and claims T2. T1 is on Proxmox, started by our token, claimed by no plan.
 *  2. Plan B, a few seconds later: Proxmox executes its reset POST (task T3) and drops the connection
 *     before answering (drop-after-dispatch). B's intent is settled from the node's task list: the
 *     first unclaimed qmreset of VM 100 by our token started after B's intent less 60 s of clock skew.
 * Oracle: the simulator's mutation log (each reset with its UPID and HTTP dispatch) and B's view.
 * Guarantee 1: B must report its own task T3 (or outcome_unknown), never T1, which A's request started.
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

const terminal = ['succeeded', 'failed', 'outcome_unknown'];
async function reset(label: string) {
  const plan = await t.call('POST', '/v1/actions/plan', {
    token: TOKENS.agent,
    body: { action: 'vm.reset', environment: 'lab', target: { vmid: 100 }, params: {}, reason: `probe12 orphan ${label}` },
  });
  expect(plan.status, JSON.stringify(plan.body)).toBe(201);
  const apply = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: plan.body.planId, requestHash: plan.body.requestHash } });
  expect(apply.status, JSON.stringify(apply.body)).toBe(202);
  return plan.body.planId as string;
}

describe('probe12: orphaned task adoption', () => {
  it('a plan whose answer was lost does not claim a task another plan\'s request started', { timeout: 180_000 }, async () => {
    const sim = t.sim('lab');
    sim.mutations.clear();
    sim.faults.errorRate({ method: 'POST', path: '/nodes/*/qemu/100/status/reset', times: 1, status: 503, message: 'Service Unavailable', afterDispatch: true });
    const a = await reset('A');
    const va = await t.waitForStatus(a, terminal, 60_000);
    await new Promise((r) => setTimeout(r, 1500));

    sim.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/100/status/reset', times: 1 });
    const b = await reset('B');
    const vb = await t.waitForStatus(b, terminal, 120_000);

    const resets = sim.mutations.all().filter((m) => m.vmid === 100 && m.op === 'reset').map((m) => ({ seq: m.seq, dispatch: m.dispatch, upid: m.upid }));
    const evidence =
      `resets on Proxmox (in order): ${JSON.stringify(resets)}; ` +
      `A: ${JSON.stringify({ status: va.status, result: va.result })}; B: ${JSON.stringify({ status: vb.status, result: vb.result })}`;
    console.log(evidence);
    // The reset B's own POST started is the last one; the first one is A's orphan.
    const bOwn = resets.at(-1)?.upid;
    const orphan = resets[0]?.upid;
    expect(vb.result?.upid === undefined || vb.result.upid === bOwn, `B reports a task that is not the one its request started. ${evidence}`).toBe(true);
    expect(vb.result?.upid, `B claims A's orphaned task. ${evidence}`).not.toBe(orphan);
    // Guarantee 1 (at most once per plan) for A as well.
    expect(resets.length, `A caused ${resets.length - 1} resets, B one. ${evidence}`).toBe(2);
  });
});
