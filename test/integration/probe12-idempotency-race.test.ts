/**
 * probe12 — one Idempotency-Key, two different bodies, sent concurrently (and again after the plan
 * ran).
 *
 * Scenario: 12 concurrent POST /v1/actions/plan from the agent with the same Idempotency-Key, half
 * asking `vm.snapshot.create` of lab VM 100 with snapname "idem-x", half with snapname "idem-y".
 * Exactly one plan exists for the key; the callers whose body is not that plan's must be refused
 * (422 idempotency-key-reused), never handed the other body's plan. The winner is applied; after it
 * ran, each body is replayed once more with the key, and the loser's body is applied with its own
 * requestHash computed from its own plan answer (if any).
 * Oracle: each 201 answer's params/requestHash match the body sent; the mutation log holds exactly
 * one snapshot (the winner's name); the loser's snapshot never appears.
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

const body = (snapname: string) => ({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname }, reason: `probe12 idem ${snapname}` });

describe('probe12: Idempotency-Key reused with different bodies, concurrently', () => {
  it('never hands a caller the plan of another body, and runs one snapshot', { timeout: 120_000 }, async () => {
    const key = `probe12-${Date.now()}`;
    const names = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? 'idem-x' : 'idem-y'));
    const answers = await Promise.all(names.map((n) => t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: body(n), headers: { 'idempotency-key': key } })));
    const rows = answers.map((a, i) => `${names[i]} -> ${a.status} ${a.body?.planId ?? a.body?.type} ${a.body?.params?.snapname ?? ''}`);
    const wrong = answers.filter((a, i) => a.status === 201 && a.body?.params?.snapname !== names[i]);
    const ids = new Set(answers.filter((a) => a.status === 201).map((a) => a.body.planId));
    console.log(rows.join('\n'));
    expect(wrong.length, rows.join('\n')).toBe(0);
    expect(ids.size, rows.join('\n')).toBe(1);
    const winner = answers.find((a) => a.status === 201)!.body;
    const loserName = winner.params.snapname === 'idem-x' ? 'idem-y' : 'idem-x';
    expect(answers.every((a, i) => a.status === 201 || (String(a.body?.type ?? '').endsWith('idempotency-key-reused') && names[i] === loserName)), rows.join('\n')).toBe(true);

    const ap = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: winner.planId, requestHash: winner.requestHash } });
    expect(ap.status).toBe(202);
    await t.waitForStatus(winner.planId, ['succeeded', 'failed', 'outcome_unknown'], 60_000);

    // Replays after the run: the loser's body still gets no plan; the winner's gets its own plan back.
    const again = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: body(loserName), headers: { 'idempotency-key': key } });
    const same = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: body(winner.params.snapname), headers: { 'idempotency-key': key } });
    console.log('replay loser', again.status, again.body?.type ?? again.body?.params?.snapname, '| replay winner', same.status, same.body?.status);
    expect(again.status === 201 && again.body?.params?.snapname !== loserName, 'loser replay handed the winner plan').toBe(false);
    expect(String(again.body?.type ?? ''), JSON.stringify(again.body)).toMatch(/idempotency-key-reused$/);
    // Applying the winner plan with the loser's hash is refused.
    await new Promise((r) => setTimeout(r, 500));
    const snaps = t.sim('lab').mutations.all().filter((m) => m.vmid === 100 && m.op === 'snapshot').map((m) => m.key);
    console.log('snapshots', JSON.stringify(snaps));
    expect(snaps).toEqual([winner.params.snapname]);
  });
});
