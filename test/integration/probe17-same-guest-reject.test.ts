/**
 * probe17 — several plans on the SAME guest, one of them rejected while they all race.
 *
 * Scenario: every lab action needs one approval. Three config updates of VM 100, each setting a
 * different core count (its fingerprint in the simulator's request log), are approved by alice and
 * applied at once, while every read of VM 100 answers 1.2 s late and config writes are held 600 ms
 * before they execute. Bob rejects the middle plan d ms after the applies.
 * Oracle: a 202 'rejected' recorded true for the middle plan ⇒ no request carrying its core count
 * ever executed on Proxmox, it ends 'rejected', and plan.rejected is on its chain; a late rejection
 * is 409. The other plans' outcomes are not judged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { executedMutations } from './support/mutations.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.policy.approvalsByRisk = { low: 1, medium: 1, high: 1, critical: 2 };
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const terminal = ['succeeded', 'failed', 'outcome_unknown', 'rejected', 'expired', 'denied'];

describe('probe17: a rejection among plans on the same guest', () => {
  it('the rejected plan never reaches Proxmox', { timeout: 600_000 }, async () => {
    const offsets = [0, 200, 700, 1200, 1300, 1500, 1900, 2500, 3500, 5000, 7000];
    const rows: string[] = [];
    const violations: string[] = [];
    let cores = 2;
    for (const d of offsets) {
      const sim = t.sim('lab');
      const plans: { planId: string; requestHash: string; cores: number }[] = [];
      for (let i = 0; i < 3; i++) {
        const c = cores++;
        const p = await t.call('POST', '/v1/actions/plan', {
          token: TOKENS.agent,
          body: { action: 'vm.config.update', environment: 'lab', target: { vmid: 100 }, params: { cores: c }, reason: `probe17 same guest ${d}/${i}` },
        });
        expect(p.status, JSON.stringify(p.body)).toBe(201);
        expect(p.body.status, JSON.stringify(p.body)).toBe('awaiting_approval');
        plans.push({ planId: p.body.planId, requestHash: p.body.requestHash, cores: c });
      }
      for (const p of plans) expect((await t.call('POST', `/v1/actions/${p.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(202);
      const from = Date.now();
      sim.faults.slowResponses(1200, { method: 'GET', path: '/nodes/*/qemu/100/**', times: 12 });
      sim.faults.slowResponses(600, { method: '*', path: '/nodes/*/qemu/100/config', times: 6, beforeDispatch: true });
      const applies = plans.map((p) => t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.planId, requestHash: p.requestHash } }));
      await sleep(d);
      const victim = plans[1]!;
      const rej = await t.call('POST', `/v1/actions/${victim.planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'reject', comment: `no (${d})` } });
      await Promise.all(applies);
      const finals = await Promise.all(plans.map((p) => t.waitForStatus(p.planId, terminal, 90_000)));
      await sleep(1500);
      const mine = executedMutations(sim, { after: from }).filter((r) => r.path.includes('/qemu/100/') && String((r.params as any)?.cores) === String(victim.cores));
      const chain = (await t.service.audit.forPlan(victim.planId)).map((r) => r.event);
      const row = `d=${d}: reject ${rej.status} ${rej.body?.status ?? rej.body?.title ?? ''} recorded=${rej.body?.recorded}; finals ${finals.map((f) => f.status).join('/')}; victim's requests executed ${mine.length}; chain …${chain.slice(-3).join(',')}`;
      rows.push(row);
      if (rej.status === 202) {
        if (rej.body?.status !== 'rejected' || rej.body?.recorded !== true) violations.push(`${row} — 202 not a recorded rejection`);
        else if (mine.length > 0 || finals[1].status !== 'rejected' || !chain.includes('plan.rejected')) violations.push(`${row} — rejection did not stop it`);
      } else if (rej.status !== 409) violations.push(`${row} — neither 202 nor 409`);
      else if (mine.length === 0 && !['succeeded', 'failed', 'outcome_unknown'].includes(finals[1].status)) violations.push(`${row} — 409 though nothing was sent`);
      sim.faults.clear();
      await sleep(300);
    }
    console.log(rows.join('\n'));
    expect(violations, rows.join('\n')).toEqual([]);
  });
});
