/**
 * Adversary probe (issue 16): "a requester is told the outcome of their plan exactly once per plan"
 * (docs/approvals.md, "The requester told": once per outcome; `plan.approved` again only after
 * `approval.required_again`).
 *
 * A plan needs ONE approval. Alice approves it before the agent applies; the gate is open
 * (status `approved`) and the requester is told `plan.approved`. While the plan waits for its apply,
 * Bob approves too: the approval is counted (the plan accepts approvals while `approved`), nothing
 * about the gate changed, and no approval was asked again. The agent then applies, the plan runs.
 *
 * Oracle (what a webhook target outside sees): every outcome event reaches the JSON webhook under
 * exactly one X-PA-Delivery (retries of one notice share it and are dropped by the receiver), and the
 * requester hears `plan.approved` once and `plan.succeeded` once: a second `plan.approved` under a
 * NEW delivery id (`plan.approved.2`) cannot be dropped by any receiver and tells the requester twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../proxmox/helpers/http-server.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';

let t: TestService;
let hooks: TestServer;

beforeAll(async () => {
  hooks = await startTestServer((_req, res) => res.end('ok'));
  t = await startTestService((config) => {
    config.notifications = { webhooks: [{ name: 'requester', url: `${hooks.url}/told`, format: 'json' }] };
    // Snapshots in lab need one approval here, from any channel.
    config.policy.rules.push({ id: 'p16-told-review', match: { environments: ['lab'], actions: ['vm.snapshot.create'] }, decision: 'require_approval' });
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
}, 120_000);

afterAll(async () => {
  await t?.stop();
  await hooks?.close();
});

/** Outcome notices (plan.*) the webhook received for the plan, grouped by X-PA-Delivery. */
function outcomes(planId: string): { event: string; delivery: string }[] {
  const seen = new Map<string, string>();
  for (const r of hooks.requests) {
    if (r.url !== '/told' || !r.body.includes(planId)) continue;
    const event = String(r.headers['x-pa-event']);
    if (!event.startsWith('plan.')) continue;
    seen.set(String(r.headers['x-pa-delivery']), event);
  }
  return [...seen].map(([delivery, event]) => ({ event, delivery }));
}

describe('probe16: the requester told once per outcome, with more approvers than required', () => {
  it('an extra approval while the plan waits for its apply does not tell the requester "approved" a second time', async () => {
    const p = await t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 101 }, params: { snapname: `p16-told-${Date.now()}` }, reason: 'probe16 told once' },
    });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect(p.body).toMatchObject({ status: 'awaiting_approval', approval: { required: 1 } });
    const { planId, requestHash } = p.body as { planId: string; requestHash: string };

    const a1 = await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve', comment: 'ok' } });
    expect(a1.status, JSON.stringify(a1.body)).toBe(202);
    await t.waitForStatus(planId, ['approved']);
    await until('plan.approved to reach the requester', () => outcomes(planId).some((o) => o.event === 'plan.approved'));

    // A second approver, before the apply: the gate was already open.
    const a2 = await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'approve', comment: 'me too' } });
    expect([202, 409]).toContain(a2.status);

    const ap = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } });
    expect(ap.status, JSON.stringify(ap.body)).toBeLessThan(300);
    const done = await t.service.client.workflow.getHandle(planId).result();
    expect(done.status).toBe('succeeded');

    const told = outcomes(planId);
    const approved = told.filter((o) => o.event === 'plan.approved');
    const succeeded = told.filter((o) => o.event === 'plan.succeeded');
    expect(
      approved.map((o) => o.delivery),
      `the requester was told "approved" under ${approved.length} distinct deliveries (once expected): ${JSON.stringify(told)}`,
    ).toHaveLength(1);
    expect(succeeded, JSON.stringify(told)).toHaveLength(1);
  }, 120_000);
});
