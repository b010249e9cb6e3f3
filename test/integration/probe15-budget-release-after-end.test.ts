/**
 * PROBE 15 / budgets — a plan that has ended (status `expired`, visible to everyone) keeps its
 * concurrency slot while its run tells the requester, and `freesAt` names a time at which the slot is
 * still held.
 *
 * Scenario: `agent:pi-demo` has `concurrent: 1`; plans expire after 5 s (policy.planTtlSeconds); lab
 * snapshots need one approval; one notification webhook is configured and is down (answers 503).
 *  1. Plan A (lab/100 snapshot) → awaiting_approval: charged, holds the one slot.
 *  2. Plan B (lab/100, another snapshot) → denied `budget.concurrent`, heldBy [A], freesAt F (A's expiry + 1 min).
 *  3. A expires (its view says `expired`, a terminal status). The docs promise "its run releases the
 *     charge in its last step: the concurrency slot frees at once".
 *  4. At F + 3 s (the time the refusal said the budget has room), plan C (lab/100).
 *
 * Guarantee under test: promise 3 (a plan's charge is released when it ends) and promise 2 (freesAt is
 * a concrete time that is true: at that time there is room).
 *
 * Oracle: the plans' views, GET /v1/budgets. Before the run's final release step the workflow waits up
 * to 1 min for the still-retrying approval request (`requestsInFlight`), then for the requester's
 * outcome notification (`teller`, retried up to 5 min) — only then `releaseBudget`. So the slot stays
 * held long after A shows `expired`, and past F.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';

const PRINCIPAL = 'agent:pi-demo';
let t: TestService;
let hook: Server;
let hookCalls = 0;

const plan = (vmid: number, snapname: string) =>
  t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid }, params: { snapname }, reason: `probe15 release ${snapname}` } });
const concurrentUsage = async () => ((await t.call('GET', '/v1/budgets', { token: TOKENS.agent })).body.budgets as { budget: string; used: number; heldBy?: string[]; freesAt?: string }[]).find((b) => b.budget === 'concurrent');

beforeAll(async () => {
  hook = createServer((req, res) => {
    hookCalls++;
    req.resume();
    req.on('end', () => {
      res.statusCode = 503; // the notification endpoint is down
      res.end('down');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
  t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.budgets = { [PRINCIPAL]: { concurrent: 1 } };
    c.policy.planTtlSeconds = 5;
    c.policy.rules.push({ id: 'probe15-review', match: { environments: ['lab'], actions: ['vm.snapshot.create'] }, decision: 'require_approval' });
    c.notifications = { webhooks: [{ name: 'down', url: `${url}/notify`, format: 'json' }] };
  });
  await until('/healthz 200', async () => (await t.call('GET', '/healthz')).status === 200, 30_000, 200);
}, 120_000);

afterAll(async () => {
  await t?.stop();
  await new Promise((r) => hook?.close(r));
});

describe('probe15 budget: the slot of an ended plan', () => {
  it('frees the concurrency slot when the plan ends, and by the freesAt a refusal named', { timeout: 180_000 }, async () => {
    const a = await plan(100, 'pa');
    expect(a.body.status, JSON.stringify(a.body)).toBe('awaiting_approval');
    const b = await plan(100, 'pb');
    expect(b.body.decision, JSON.stringify(b.body)).toBe('denied');
    const reason = (b.body.reasons as { rule: string; budget?: { freesAt: string; heldBy?: string[] } }[]).find((r) => r.rule === 'budget.concurrent');
    expect(reason?.budget?.heldBy).toEqual([a.body.planId]);
    const freesAt = Date.parse(reason!.budget!.freesAt);

    // A ends: expired (terminal) a few seconds later.
    const ended = await t.waitForStatus(a.body.planId, ['expired'], 30_000);
    const endedAt = Date.now();
    // "the concurrency slot frees at once": give the run 5 s for its last step.
    let heldAfterEnd: unknown;
    try {
      await until('the slot of the expired plan is released', async () => ((await concurrentUsage())?.used === 0 ? true : undefined), 5_000, 200);
    } catch {
      heldAfterEnd = await concurrentUsage();
    }

    // At freesAt (+3 s), the refusal said there is room.
    await new Promise((r) => setTimeout(r, Math.max(0, freesAt + 3_000 - Date.now())));
    const c = await plan(100, 'pc');
    const atFreesAt = await concurrentUsage();
    console.log(
      JSON.stringify({ a: a.body.planId, aStatus: ended.status, endedAt: new Date(endedAt).toISOString(), freesAt: reason!.budget!.freesAt, heldAfterEnd, cDecision: c.body.decision, cReasons: c.body.reasons, atFreesAt, hookCalls }, null, 1),
    );
    expect.soft(heldAfterEnd, 'A shows expired, yet GET /v1/budgets still counts it 5 s later').toBeUndefined();
    expect(c.body.status, `plan C at freesAt+3s: ${JSON.stringify(c.body.reasons)}`).toBe('awaiting_approval');
  });
});
