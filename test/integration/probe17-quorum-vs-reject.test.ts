/**
 * probe17 — two approvers racing, one approve completing the quorum and one reject, with the apply
 * already requested and Proxmox slow both at the re-check (status read) and at the dispatch (the
 * reset POST held before it executes).
 *
 * Scenario: lab vm.reset needs two approvals (medium risk → 2). Alice approves, the agent applies
 * (the run waits for the quorum). Then bob approves (completing it) and olivia rejects, the reject
 * sent d ms after the approve (d may be negative), while status/current answers 800 ms late and the
 * reset POST is held 1.5 s before it executes.
 * Oracle: a 202 'rejected' recorded true ⇒ no reset of this plan on Proxmox, final 'rejected', and
 * plan.rejected on the chain; otherwise the reject is 409 (never 202 'rejected').
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { executedMutations } from './support/mutations.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.policy.approvalsByRisk.medium = 2;
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const terminal = ['succeeded', 'failed', 'outcome_unknown', 'rejected', 'expired', 'denied'];

describe('probe17: quorum-completing approve racing a reject', () => {
  it('a 202 rejection is never followed by the reset', { timeout: 500_000 }, async () => {
    const offsets = [-30, 0, 0, 10, 40, 120, 400, 700, 800, 850, 900, 1000, 1300, 1800];
    const violations: string[] = [];
    const rows: string[] = [];
    for (const d of offsets) {
      const sim = t.sim('lab');
      const plan = await t.call('POST', '/v1/actions/plan', {
        token: TOKENS.agent,
        body: { action: 'vm.reset', environment: 'lab', target: { vmid: 100 }, params: {}, reason: `probe17 quorum vs reject ${d}` },
      });
      expect(plan.status, JSON.stringify(plan.body)).toBe(201);
      const { planId, requestHash } = plan.body;
      expect(plan.body.approval.required).toBe(2);
      expect((await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(202);
      const app = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } });
      expect(app.status, JSON.stringify(app.body)).toBe(202);
      const from = Date.now();
      sim.faults.slowResponses(800, { method: 'GET', path: '/nodes/*/qemu/100/status/current', times: 1 });
      sim.faults.slowResponses(1500, { method: 'POST', path: '/nodes/*/qemu/100/status/reset', times: 1, beforeDispatch: true });
      const approve = () => t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'approve' } });
      const reject = () => t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.ops, body: { decision: 'reject', comment: `no (${d})` } });
      let ok, rej;
      if (d < 0) {
        const r = reject();
        await sleep(-d);
        [rej, ok] = await Promise.all([r, approve()]);
      } else {
        const a = approve();
        await sleep(d);
        [rej, ok] = await Promise.all([reject(), a]);
      }
      const final = await t.waitForStatus(planId, terminal, 60_000);
      await sleep(2000);
      const resets = executedMutations(sim, { after: from }).filter((r) => r.path.includes('/qemu/100/'));
      const chain = (await t.service.audit.forPlan(planId)).map((r) => r.event);
      const row = `d=${d}: approve ${ok.status} ${ok.body?.status ?? ''}; reject ${rej.status} ${rej.body?.status ?? rej.body?.title ?? ''} recorded=${rej.body?.recorded}; final ${final.status}; sent ${resets.length}; chain ${chain.slice(-3).join(',')}`;
      rows.push(row);
      if (rej.status === 202) {
        if (rej.body?.status !== 'rejected' || rej.body?.recorded !== true) violations.push(`${row} — 202 not a recorded rejection`);
        else if (resets.length > 0 || final.status !== 'rejected' || !chain.includes('plan.rejected')) violations.push(`${row} — rejection did not stop it`);
      } else if (rej.status !== 409) violations.push(`${row} — neither 202 nor 409`);
      // Let the held dispatch and the faults drain before the next round.
      sim.faults.clear();
      await sleep(300);
    }
    console.log(rows.join('\n'));
    expect(violations, rows.join('\n')).toEqual([]);
  });
});
