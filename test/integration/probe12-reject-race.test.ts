/**
 * probe12 — a human "no" racing the agent's apply while the apply-time re-check reads a slow Proxmox.
 *
 * Scenario: policy tweaked so that medium risk needs 1 approval; each round plans `vm.reset` of lab
 * VM 100, alice approves (quorum met, not yet applied), the next read of VM 100's status is made
 * 2.5 s slow (the re-check's read), then the agent applies and bob rejects `d` ms later
 * (d = 0…2000 ms, also one round with the reject sent just BEFORE the apply).
 * Oracle: bob's HTTP answer, the plan's final view, and the simulator's mutation log.
 * Guarantee 2: whenever bob's reject was answered 2xx (accepted), no reset of this round reaches
 * Proxmox and the plan ends `rejected`. A reject answered 409 (the request had been sent) may lose.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.policy.approvalsByRisk.medium = 1;
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
});
afterAll(async () => {
  await t?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const terminal = ['succeeded', 'failed', 'outcome_unknown', 'rejected', 'expired', 'denied'];

describe('probe12: reject racing apply during a slow re-check', () => {
  it('an accepted rejection is never followed by the action on Proxmox', { timeout: 400_000 }, async () => {
    const offsets = [-50, 0, 50, 150, 300, 600, 1000, 1500, 2000, 2400, 2600, 3000];
    const violations: string[] = [];
    const rows: string[] = [];
    for (const d of offsets) {
      const sim = t.sim('lab');
      const plan = await t.call('POST', '/v1/actions/plan', {
        token: TOKENS.agent,
        body: { action: 'vm.reset', environment: 'lab', target: { vmid: 100 }, params: {}, reason: `probe12 reject race ${d}` },
      });
      expect(plan.status, JSON.stringify(plan.body)).toBe(201);
      expect(plan.body.decision).toBe('requires_approval');
      const { planId, requestHash } = plan.body;
      const ok = await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } });
      expect(ok.status, JSON.stringify(ok.body)).toBe(202);
      const before = sim.mutations.all().length;
      sim.faults.slowResponses(2500, { method: 'GET', path: '/nodes/*/qemu/100/status/current', times: 1 });
      const reject = () => t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'reject', comment: `no (${d})` } });
      const apply = () => t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } });
      let rej, app;
      if (d < 0) {
        const r = reject();
        await sleep(-d);
        [rej, app] = await Promise.all([r, apply()]);
      } else {
        const a = apply();
        await sleep(d);
        [rej, app] = await Promise.all([reject(), a]);
      }
      const view = await t.waitForStatus(planId, terminal, 60_000);
      await sleep(500);
      const resets = sim.mutations.all().slice(before).filter((m) => m.vmid === 100 && m.op === 'reset');
      const row = `d=${d}: reject ${rej.status} ${rej.body?.status ?? rej.body?.type ?? ''} recorded=${rej.body?.recorded}; apply ${app.status} ${app.body?.status ?? app.body?.type ?? ''}; final ${view.status}; resets ${resets.length} ${resets.map((m) => m.upid).join(',')}`;
      rows.push(row);
      if (rej.status >= 200 && rej.status < 300 && (resets.length > 0 || view.status !== 'rejected')) violations.push(row);
      // Nothing of this round still running before the next.
      await sleep(300);
    }
    console.log(rows.join('\n'));
    expect(violations, rows.join('\n')).toEqual([]);
  });
});
