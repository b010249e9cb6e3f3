/**
 * probe17 — the approver told "rejected" reads the plan and its audit chain at once.
 *
 * Scenario: lab vm.reset needs one approval (medium risk → 1). Alice approves, the agent applies, and
 * the apply-time re-check's read of the guest is held by a slow Proxmox (slow-response on
 * status/current, 3 s). Bob rejects at varying offsets into the re-check; the moment his 202 arrives
 * a reader fetches GET /v1/actions/{id}, GET /v1/actions/{id}/evidence and the audit store.
 * Oracle: a 202 'rejected' (recorded true) ⇒ nothing of the plan is sent to Proxmox, the plan ends
 * 'rejected', and whoever sees a final status (the 202 itself, the plan view, the evidence) finds the
 * outcome record (plan.rejected) on the chain at that moment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { executedMutations } from './support/mutations.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.policy.approvalsByRisk.medium = 1;
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const terminal = ['succeeded', 'failed', 'outcome_unknown', 'rejected', 'expired', 'denied'];
const outcomes = ['plan.rejected', 'apply.refused_stale', 'apply.denied', 'plan.expired', 'apply.succeeded', 'apply.failed'];

describe('probe17: a rejection read back at once', () => {
  it('whoever sees the final status finds its outcome on the chain; nothing is sent', { timeout: 400_000 }, async () => {
    const offsets = [0, 20, 100, 300, 800, 1500, 2500, 2900, 3100];
    const violations: string[] = [];
    const rows: string[] = [];
    for (const d of offsets) {
      const sim = t.sim('lab');
      const plan = await t.call('POST', '/v1/actions/plan', {
        token: TOKENS.agent,
        body: { action: 'vm.reset', environment: 'lab', target: { vmid: 100 }, params: {}, reason: `probe17 read at once ${d}` },
      });
      expect(plan.status, JSON.stringify(plan.body)).toBe(201);
      const { planId, requestHash } = plan.body;
      expect((await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(202);
      const from = Date.now();
      sim.faults.slowResponses(3000, { method: 'GET', path: '/nodes/*/qemu/100/status/current', times: 1 });
      const app = t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } });
      await sleep(d);
      const rej = await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'reject', comment: `no (${d})` } });
      // Read at once, all three ways, in parallel.
      const [viewNow, evNow, chainNow] = await Promise.all([
        t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.agent }),
        t.call('GET', `/v1/actions/${planId}/evidence`, { token: TOKENS.agent }),
        t.service.audit.forPlan(planId),
      ]);
      const chainEvents = chainNow.map((r) => r.event);
      const evEvents: string[] = (evNow.body?.audit?.records ?? []).map((r: { event: string }) => r.event);
      await app;
      const final = await t.waitForStatus(planId, terminal, 60_000);
      await sleep(400);
      const sent = executedMutations(sim, { after: from }).filter((r) => r.path.includes('/qemu/100/'));
      const row =
        `d=${d}: reject ${rej.status} ${rej.body?.status ?? rej.body?.type} recorded=${rej.body?.recorded}; at once: view ${viewNow.body?.status}, evidence ${evNow.status} ${evNow.body?.outcome?.status ?? ''} ` +
        `[${evEvents.filter((e) => outcomes.includes(e)).join(',')}], store [${chainEvents.filter((e) => outcomes.includes(e)).join(',')}]; final ${final.status}; sent ${sent.length}`;
      rows.push(row);
      if (rej.status === 202 && rej.body?.status === 'rejected' && rej.body?.recorded === true) {
        if (sent.length > 0 || final.status !== 'rejected') violations.push(`${row} — not stopped`);
        // The approver saw 'rejected': the outcome record must be findable now.
        if (!chainEvents.includes('plan.rejected')) violations.push(`${row} — 202 'rejected' but plan.rejected not yet in the audit store`);
      } else if (rej.status === 202) violations.push(`${row} — 202 that is not a recorded rejection`);
      if (terminal.includes(viewNow.body?.status) && !chainEvents.some((e) => outcomes.includes(e))) violations.push(`${row} — view final without outcome record`);
      if (terminal.includes(evNow.body?.outcome?.status) && !evEvents.some((e) => outcomes.includes(e))) violations.push(`${row} — evidence final without outcome record`);
      await sleep(300);
    }
    console.log(rows.join('\n'));
    expect(violations, rows.join('\n')).toEqual([]);
  });
});
