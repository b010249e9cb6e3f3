/**
 * probe17 — sweep of a human "no" across the life of a safeguarded plan whose action a freeze holds.
 *
 * Scenario (each round a fresh plan): prod config updates of VM 200 need one approval and a safeguard
 * snapshot; the snapshot task runs 2 s. Alice approves, the agent applies; once the snapshot task runs
 * on Proxmox an admin freezes prod, and bob rejects d ms after the freeze (d < 0: before it, while the
 * snapshot task runs). The freeze is lifted 3 s after it landed.
 * Oracle: every 202 'rejected' recorded true ⇒ nothing of the plan was sent to Proxmox (no snapshot
 * request, no config write), final 'rejected', plan.rejected on the chain; a rejection arriving after
 * something of the plan went to Proxmox is 409.
 *
 * Found by the adversary (it failed every run): the "no" was accepted and the action never ran, but
 * the safeguard snapshot taken before it stayed on the guest, and the final record did not say so. A "no" to a held
 * run stops the action (refusing it would let the action run at the lift); the snapshot stays, and
 * the plan (`safeguard.taken`) and its final record (`detail.safeguard`, `left: true`) name it. The
 * oracle allows exactly that snapshot, named, and nothing else of the plan.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { safeguardSnapshotName } from '../../src/domain/safeguard.js';
import { besidesSafeguard, executedMutations } from './support/mutations.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.policy.approvalsByRisk = { low: 1, medium: 1, high: 1, critical: 2 };
    c.policy.rules.push({ id: 'prod-snapshot-first', match: { environments: ['prod'], actions: ['*.config.update'] }, safeguard: 'snapshot' });
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const terminal = ['succeeded', 'failed', 'outcome_unknown', 'rejected', 'expired', 'denied'];

describe('probe17: rejection sweep around a freeze after the safeguard snapshot', () => {
  it('a 202 rejection stops the action: only the safeguard snapshot taken before it reached Proxmox, and it is named', { timeout: 600_000 }, async () => {
    const offsets = [-800, -200, 0, 150, 500, 1200, 2500];
    const rows: string[] = [];
    const violations: string[] = [];
    let cores = 3;
    for (const d of offsets) {
      const sim = t.sim('prod');
      sim.faults.add({ kind: 'slow-task', method: 'POST', path: '/nodes/*/qemu/200/snapshot', durationMs: 2_000, times: 1 });
      const from = Date.now();
      const p = await t.call('POST', '/v1/actions/plan', {
        token: TOKENS.agent,
        body: { action: 'vm.config.update', environment: 'prod', target: { vmid: 200 }, params: { cores: cores++ }, reason: `probe17 sweep ${d}` },
      });
      expect(p.status, JSON.stringify(p.body)).toBe(201);
      const { planId, requestHash } = p.body;
      const name = safeguardSnapshotName(planId);
      expect((await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(202);
      expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } })).status).toBe(202);
      const snapshotRunning = () => sim.model.tasks().some((x) => x.type === 'qmsnapshot' && x.id === '200' && x.status === 'running' && x.starttime * 1000 >= from - 1000);
      for (let i = 0; i < 400 && !snapshotRunning(); i++) await sleep(20);
      const reject = () => t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'reject', comment: `no (${d})` } });
      let rej;
      let f;
      if (d < 0) {
        const r = reject();
        await sleep(-d);
        f = await t.call('POST', '/v1/freezes', { token: TOKENS.admin, body: { environment: 'prod', reason: `probe17 sweep ${d}` } });
        rej = await r;
      } else {
        f = await t.call('POST', '/v1/freezes', { token: TOKENS.admin, body: { environment: 'prod', reason: `probe17 sweep ${d}` } });
        await sleep(d);
        rej = await reject();
      }
      expect(f.status, JSON.stringify(f.body)).toBe(201);
      await sleep(3000);
      expect((await t.call('DELETE', `/v1/freezes/${f.body.id}`, { token: TOKENS.admin })).status).toBe(200);
      const final = await t.waitForStatus(planId, terminal, 90_000);
      await sleep(800);
      const sent = executedMutations(sim, { after: from }).filter((r) => r.path.includes('/qemu/200/'));
      const chain = (await t.service.audit.forPlan(planId)).map((r) => r.event);
      const row = `d=${d}: reject ${rej.status} ${rej.body?.status ?? rej.body?.title ?? ''} recorded=${rej.body?.recorded}; final ${final.status}; sent ${sent.map((r) => `${r.method} ${r.path.replace(/^.*\/qemu\/200/, '…')}`).join(',') || 'nothing'}; chain …${chain.slice(-4).join(',')}`;
      rows.push(row);
      if (rej.status === 202 && rej.body?.status === 'rejected' && rej.body?.recorded === true) {
        // The action stopped; only the safeguard snapshot taken before the "no" may have reached
        // Proxmox, and then the plan and its final record name it.
        const record = (await t.service.audit.forPlan(planId)).find((r) => r.event === 'plan.rejected');
        const named = sent.length === 0 || (final.safeguard?.taken && (record?.detail?.safeguard as { snapshot?: string } | undefined)?.snapshot === name);
        if (besidesSafeguard(sent, name).length > 0 || final.status !== 'rejected' || !chain.includes('plan.rejected') || !named) violations.push(row);
      } else if (rej.status !== 409) violations.push(`${row} — neither a recorded rejection nor 409`);
      sim.faults.clear();
      await sleep(300);
    }
    console.log(rows.join('\n'));
    expect(violations, rows.join('\n')).toEqual([]);
  });
});
