/**
 * PROBE 15 / budgets — two service instances (API + worker each) on one PostgreSQL ledger, 12 plans of
 * one principal each sent twice at once (an Idempotency-Key replay racing the first request, through
 * the OTHER instance), over four guests, against `concurrent: 3, perHour.guests: 2`.
 *
 * Guarantee under test: promise 1 (never admitted beyond a limit across replicas, whatever the
 * interleaving and replays) and promise 3 (nothing charged twice; usage visible on both instances).
 * Oracle: the plans' views (admitted vs denied), GET /v1/budgets on both instances.
 * Expected: 12 distinct plans; at most 3 admitted, over at most 2 distinct guests; both instances'
 * GET /v1/budgets count exactly the admitted plans; every refusal names a budget with limit/used/freesAt.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';
import type { Config } from '../../src/config/schema.js';

const PRINCIPAL = 'agent:pi-demo';
let pg: TempPostgres;
let a: TestService;
let b: TestService;

const shared = (taskQueue?: string) => (c: Config) => {
  c.audit = { file: c.audit.file, postgres: { url: { env: 'PA_PROBE15_PG_URL' } } };
  c.server.rateLimit = false;
  c.budgets = { [PRINCIPAL]: { concurrent: 3, perHour: { guests: 2 } } };
  if (taskQueue) c.temporal.taskQueue = taskQueue;
};
const GUESTS = [
  { environment: 'lab', vmid: 100 },
  { environment: 'lab', vmid: 101 },
  { environment: 'prod', vmid: 200 },
  { environment: 'prod', vmid: 201 },
];

describePostgres('probe15 budget: racing plans and replays through two instances on PostgreSQL', () => {
  beforeAll(async () => {
    pg = await startTempPostgres();
    process.env.PA_PROBE15_PG_URL = await pg.createDatabase();
    a = await startTestService(shared());
    b = await startTestService(shared(a.config.temporal.taskQueue));
    for (const t of [a, b]) await until('/healthz 200', async () => (await t.call('GET', '/healthz')).status === 200, 30_000, 200);
  }, 180_000);
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await pg?.stop();
  });

  it('admits at most the limits, charges each plan once, and both instances show the same usage', { timeout: 150_000 }, async () => {
    const stamp = Date.now();
    const calls = Array.from({ length: 12 }, (_, i) => {
      const g = GUESTS[i % GUESTS.length]!;
      const body = { action: 'vm.snapshot.create', environment: g.environment, target: { vmid: g.vmid }, params: { snapname: `p15r${i}` }, reason: `probe15 pg race ${i}` };
      const headers = { 'idempotency-key': `probe15-pg-${stamp}-${i}` };
      return [a, b].map((t) => t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body, headers }));
    }).flat();
    const answers = await Promise.all(calls);
    const failed = answers.filter((r) => r.status >= 300);
    expect(failed.map((r) => [r.status, r.body?.title ?? r.body]), 'every plan call answered').toEqual([]);
    const byPlan = new Map<string, any>();
    for (const r of answers) byPlan.set(r.body.planId, r.body);
    expect(byPlan.size).toBe(12);
    const admitted = [...byPlan.values()].filter((v) => v.decision !== 'denied');
    const refused = [...byPlan.values()].filter((v) => v.decision === 'denied');
    const guestsAdmitted = new Set(admitted.map((v) => `${v.environment}/${v.target.vmid}`));
    console.log(JSON.stringify({ admitted: admitted.map((v) => [v.planId, v.environment, v.target.vmid, v.status]), refusedRules: refused.map((v) => v.reasons.filter((r: any) => r.rule.startsWith('budget.')).map((r: any) => r.rule)) }));
    expect(admitted.length).toBeLessThanOrEqual(3);
    expect(admitted.length).toBeGreaterThan(0);
    expect(guestsAdmitted.size).toBeLessThanOrEqual(2);
    for (const v of refused) {
      const br = v.reasons.filter((r: any) => r.rule.startsWith('budget.'));
      expect(br.length, JSON.stringify(v.reasons)).toBeGreaterThan(0);
      for (const r of br) expect(r.budget).toMatchObject({ principal: PRINCIPAL, limit: expect.any(Number), used: expect.any(Number), freesAt: expect.any(String) });
    }
    for (const t of [a, b]) {
      const u = (await t.call('GET', '/v1/budgets', { token: TOKENS.agent })).body.budgets as { budget: string; used: number; heldBy?: string[] }[];
      expect(u.find((x) => x.budget === 'concurrent')).toMatchObject({ used: admitted.length });
      expect(new Set(u.find((x) => x.budget === 'concurrent')!.heldBy)).toEqual(new Set(admitted.map((v) => v.planId)));
      expect(u.find((x) => x.budget === 'guests')).toMatchObject({ used: guestsAdmitted.size });
    }
  });
});
