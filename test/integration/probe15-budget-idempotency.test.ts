/**
 * PROBE 15 / budgets — Idempotency-Key replays racing the first request, replays after the plan ended,
 * and a plan policy denies: none of them charged twice (or at all).
 *
 * Scenario: `agent:pi-demo` has `concurrent: 1, perHour.guests: 1` (file ledger, one instance).
 *  1. 20 POST /v1/actions/plan with one Idempotency-Key and body, all at once → one plan, one charge:
 *     GET /v1/budgets says concurrent 1 (heldBy that plan only), guests 1.
 *  2. A plan on a guest that does not exist (policy denies: preflight.blocked) → not charged.
 *  3. The plan is applied and succeeds; its slot frees (guests stays: something was sent).
 *  4. 10 replays of the first key, racing, after the end → the same plan, no new charge: concurrent 0.
 *  5. Another plan on the same guest → admitted (no new guest); one on lab/101 → denied budget.guests.
 *
 * Guarantee under test: promise 1 (Idempotency-Key replays) and promise 3 (nothing charged twice,
 * released when it ends). Oracle: plan views and GET /v1/budgets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';

const PRINCIPAL = 'agent:pi-demo';
let t: TestService;
const body = (vmid: number, snapname: string) => ({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid }, params: { snapname }, reason: `probe15 idem ${snapname}` });
const plan = (b: object, key?: string) => t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: b, ...(key ? { headers: { 'idempotency-key': key } } : {}) });
const usage = async () => (await t.call('GET', '/v1/budgets', { token: TOKENS.agent })).body.budgets as { budget: string; used: number; heldBy?: string[] }[];
const used = async (name: string) => (await usage()).find((b) => b.budget === name);

beforeAll(async () => {
  t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.budgets = { [PRINCIPAL]: { concurrent: 1, perHour: { guests: 1 } } };
  });
  await until('/healthz 200', async () => (await t.call('GET', '/healthz')).status === 200, 30_000, 200);
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

describe('probe15 budget: Idempotency-Key replays and denied plans', () => {
  it('charges one plan once, however many replays race it or follow its end', { timeout: 120_000 }, async () => {
    const key = `probe15-idem-${Date.now()}`;
    const answers = await Promise.all(Array.from({ length: 20 }, () => plan(body(100, 'idem1'), key)));
    const ids = new Set(answers.map((r) => r.body.planId));
    expect(ids.size, JSON.stringify(answers.map((r) => [r.status, r.body.planId]))).toBe(1);
    for (const r of answers) expect([200, 201]).toContain(r.status);
    expect(answers[0]!.body.status).toBe('planned');
    const planId = [...ids][0]!;
    expect(await used('concurrent')).toMatchObject({ used: 1, heldBy: [planId] });
    expect(await used('guests')).toMatchObject({ used: 1 });

    // A plan policy denies is not charged.
    const denied = await plan(body(102, 'nope'));
    expect(denied.body.decision).toBe('denied');
    expect((denied.body.reasons as { rule: string }[]).some((r) => r.rule.startsWith('budget.'))).toBe(false);
    expect(await used('concurrent')).toMatchObject({ used: 1, heldBy: [planId] });

    const applied = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash: answers[0]!.body.requestHash } });
    expect(applied.status, JSON.stringify(applied.body)).toBe(202);
    await t.waitForStatus(planId, ['succeeded']);
    await until('the slot frees', async () => ((await used('concurrent'))?.used === 0 ? true : undefined), 20_000, 200);

    // Replays after the end: the same plan, no new charge.
    const replays = await Promise.all(Array.from({ length: 10 }, () => plan(body(100, 'idem1'), key)));
    for (const r of replays) expect(r.body.planId).toBe(planId);
    expect(await used('concurrent')).toMatchObject({ used: 0 });
    expect(await used('guests')).toMatchObject({ used: 1 });

    expect((await plan(body(100, 'idem2'))).body.status).toBe('planned');
    const other = await plan(body(101, 'idem3'));
    expect(other.body.decision).toBe('denied');
    expect((other.body.reasons as { rule: string }[]).map((r) => r.rule)).toEqual(expect.arrayContaining(['budget.guests', 'budget.concurrent']));
  });
});
