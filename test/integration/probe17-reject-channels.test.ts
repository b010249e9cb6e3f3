/**
 * probe17 — rejections through different channels at once, racing the re-check's end and the dispatch.
 *
 * Scenario: lab vm.reset needs one approval (medium → 1). Alice approves, the agent applies while the
 * re-check's read of VM 100 answers 1.5 s late and the reset POST is held 1 s before it executes.
 * d ms after the apply, three humans say no at the same moment: bob through the API, olivia through
 * the API with her own token, and dave through a signed webhook bot (channel chat).
 * Oracle, per answer: a 202 'rejected' recorded true ⇒ nothing of the plan on Proxmox, final
 * 'rejected', plan.rejected on the chain; a rejection that came too late is 409, never 202 'rejected'.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookSignature } from '../../src/channels/signing.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { executedMutations } from './support/mutations.js';

const BOT_SECRET = 'probe17-bot-secret';
let t: TestService;
beforeAll(async () => {
  process.env.PA_P17_BOT_SECRET = BOT_SECRET;
  t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.policy.approvalsByRisk.medium = 1;
    c.channels = { webhooks: [{ id: 'p17bot', secret: { env: 'PA_P17_BOT_SECRET' }, approvers: { dave: { principal: 'human:dave', roles: [], environments: ['*'] } } }] } as never;
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const terminal = ['succeeded', 'failed', 'outcome_unknown', 'rejected', 'expired', 'denied'];

function botReject(planId: string, requestHash: string, comment: string) {
  const raw = JSON.stringify({ planId, requestHash, decision: 'reject', approver: 'dave', nonce: randomUUID().replace(/-/g, ''), comment });
  const timestamp = String(Math.floor(Date.now() / 1000));
  return t.call('POST', '/v1/channels/webhook/approvals', { body: raw, headers: { 'content-type': 'application/json', 'x-pa-timestamp': timestamp, 'x-pa-signature': webhookSignature(BOT_SECRET, timestamp, raw) } });
}

describe('probe17: rejections through several channels at once', () => {
  it('no 202 rejection is followed by the reset', { timeout: 500_000 }, async () => {
    const offsets = [0, 300, 1200, 1450, 1500, 1550, 1650, 1800, 2200, 2600];
    const rows: string[] = [];
    const violations: string[] = [];
    for (const d of offsets) {
      const sim = t.sim('lab');
      const plan = await t.call('POST', '/v1/actions/plan', {
        token: TOKENS.agent,
        body: { action: 'vm.reset', environment: 'lab', target: { vmid: 100 }, params: {}, reason: `probe17 channels ${d}` },
      });
      expect(plan.status, JSON.stringify(plan.body)).toBe(201);
      const { planId, requestHash } = plan.body;
      expect((await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(202);
      const from = Date.now();
      sim.faults.slowResponses(1500, { method: 'GET', path: '/nodes/*/qemu/100/status/current', times: 1 });
      sim.faults.slowResponses(1000, { method: 'POST', path: '/nodes/*/qemu/100/status/reset', times: 1, beforeDispatch: true });
      const app = t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } });
      await sleep(d);
      const answers = await Promise.all([
        t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'reject', comment: `bob no (${d})` } }),
        t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.ops, body: { decision: 'reject', comment: `olivia no (${d})` } }),
        botReject(planId, requestHash, `dave no (${d})`),
      ]);
      await app;
      const final = await t.waitForStatus(planId, terminal, 60_000);
      await sleep(1500);
      const sent = executedMutations(sim, { after: from }).filter((r) => r.path.includes('/qemu/100/'));
      const chain = (await t.service.audit.forPlan(planId)).map((r) => r.event);
      const said = answers.map((a, i) => `${['bob', 'olivia', 'dave'][i]} ${a.status} ${a.body?.status ?? a.body?.title ?? ''}${a.body?.recorded === undefined ? '' : ` rec=${a.body.recorded}`}`);
      const row = `d=${d}: ${said.join('; ')}; final ${final.status}; sent ${sent.length}; chain …${chain.slice(-3).join(',')}`;
      rows.push(row);
      for (const a of answers) {
        if (a.status === 202 && a.body?.status === 'rejected' && a.body?.recorded === true && (sent.length > 0 || final.status !== 'rejected' || !chain.includes('plan.rejected')))
          violations.push(`${row} — a recorded rejection did not stop it`);
        if (a.status === 202 && a.body?.status === 'rejected' && sent.length > 0) violations.push(`${row} — 202 'rejected' though the request went to Proxmox`);
        if (a.status === 202 && a.body?.status !== 'rejected') violations.push(`${row} — 202 not 'rejected'`);
      }
      if (answers.filter((a) => a.status === 202).length > 1) rows.push(`   (more than one 202 for one plan)`);
      sim.faults.clear();
      await sleep(300);
    }
    console.log(rows.join('\n'));
    expect(violations, rows.join('\n')).toEqual([]);
  });
});
