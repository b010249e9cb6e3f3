/**
 * Budgets per principal (issue 15 §2), end to end: two instances of the service (API and worker
 * each), sharing the PostgreSQL backend and one task queue as replicas do. Twenty plans of one
 * principal race through both HTTP APIs against a budget of three: exactly three are admitted, the
 * rest refused with a `budget.destructive` reason naming the budget and when it frees; GET
 * /v1/budgets and /metrics on both instances tell the same. Then a concurrency budget is full, a
 * plan ends, and its slot frees for the next plan. Last, the embedded default (one instance, the file
 * ledger): a guests budget, and a rejected plan refunded because nothing reached Proxmox.
 *
 * Against the real dev server, workers and Proxmox simulators (nothing mocked).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';
import type { Config } from '../../src/config/schema.js';
import { runCli } from '../../src/cli/main.js';

const PRINCIPAL = 'agent:pi-demo';
const RACERS = 20;
const LIMIT = 3;

let pg: TempPostgres;
let a: TestService;
let b: TestService;

const shared = (taskQueue?: string) => (c: Config) => {
  c.audit = { file: c.audit.file, postgres: { url: { env: 'PA_BUDGETS_PG_URL' } } };
  c.server.rateLimit = false; // twenty plans at once from one token: the request rate limit is not under test
  c.budgets = { [PRINCIPAL]: { perHour: { destructive: LIMIT } } };
  if (taskQueue) c.temporal.taskQueue = taskQueue;
};

const plan = (t: TestService, body: object) => t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body });
const snapshotDelete = (snapname: string) => ({ action: 'vm.snapshot.delete', environment: 'lab', target: { vmid: 100 }, params: { snapname }, reason: `budget race ${snapname}` });
const budgets = async (t: TestService, token: string = TOKENS.agent) => (await t.call('GET', '/v1/budgets', { token })).body;
const metric = async (t: TestService, name: string, budget: string): Promise<number> => {
  const text = (await t.call('GET', '/metrics')).body as string;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`principal="${PRINCIPAL}"`) && l.includes(`budget="${budget}"`));
  return line ? Number(line.split(' ').pop()) : 0;
};

describePostgres('budgets per principal, across two service instances', () => {
  beforeAll(async () => {
    pg = await startTempPostgres();
    process.env.PA_BUDGETS_PG_URL = await pg.createDatabase();
    a = await startTestService(shared());
    b = await startTestService(shared(a.config.temporal.taskQueue));
    for (const t of [a, b]) await until('/healthz 200', async () => (await t.call('GET', '/healthz')).status === 200, 30_000, 200);
  }, 180_000);
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await pg?.stop();
  });

  it(`admits exactly ${LIMIT} of ${RACERS} racing destructive plans, and refuses the rest naming the budget and when it frees`, { timeout: 120_000 }, async () => {
    const startedAt = Date.now();
    const answers = await Promise.all(Array.from({ length: RACERS }, (_, i) => plan(i % 2 ? a : b, snapshotDelete(`gone${i}`))));
    for (const r of answers) expect(r.status, JSON.stringify(r.body)).toBe(201);
    const admitted = answers.filter((r) => r.body.decision !== 'denied');
    const refused = answers.filter((r) => r.body.decision === 'denied');
    expect(admitted.map((r) => r.body.status)).toEqual(Array(LIMIT).fill('planned'));
    expect(refused).toHaveLength(RACERS - LIMIT);

    // Every refusal names the same budget, full, and the one instant it frees: the oldest admission + 1 h.
    const freesAt = new Set<string>();
    for (const r of refused) {
      const reasons = (r.body.reasons as { rule: string; budget?: { freesAt: string } }[]).filter((x) => x.rule.startsWith('budget.'));
      expect(reasons, JSON.stringify(r.body.reasons)).toEqual([
        expect.objectContaining({ rule: 'budget.destructive', budget: { principal: PRINCIPAL, name: 'destructive', limit: LIMIT, used: LIMIT, freesAt: expect.any(String) } }),
      ]);
      freesAt.add(reasons[0]!.budget!.freesAt);
    }
    expect(freesAt.size).toBe(1);
    const frees = Date.parse([...freesAt][0]!);
    expect(frees).toBeGreaterThan(startedAt + 3_600_000 - 60_000);
    expect(frees).toBeLessThanOrEqual(Date.now() + 3_600_000);

    // Both replicas read the same ledger: the agent sees its own usage, the metrics say the same.
    for (const t of [a, b]) {
      expect((await budgets(t)).budgets).toEqual([{ principal: PRINCIPAL, budget: 'destructive', limit: LIMIT, used: LIMIT, freesAt: [...freesAt][0] }]);
      expect(await metric(t, 'proxmox_agent_budget_used', 'destructive')).toBe(LIMIT);
    }
    // Refusals are counted by the worker that decided each plan, whichever instance it ran in.
    const counted = (await metric(a, 'proxmox_agent_budget_refusals_total', 'destructive')) + (await metric(b, 'proxmox_agent_budget_refusals_total', 'destructive'));
    expect(counted).toBe(RACERS - LIMIT);
    // An approver (another principal, no budgets) sees none of the agent's.
    expect((await budgets(a, TOKENS.approver1)).budgets).toEqual([]);
  });

  it('frees a concurrency slot when a plan ends, for the next plan', { timeout: 120_000 }, async () => {
    // The three plans admitted above are still open; with room for four, one more fits.
    for (const t of [a, b]) t.config.budgets = { [PRINCIPAL]: { concurrent: 4 } };
    const fourth = await plan(a, snapshotDelete('slot4'));
    expect(fourth.body.status, JSON.stringify(fourth.body)).toBe('planned');
    const fifth = await plan(b, snapshotDelete('slot5'));
    expect(fifth.body.decision).toBe('denied');
    const reason = (fifth.body.reasons as { rule: string; budget?: { heldBy?: string[]; used: number; freesAt: string } }[]).find((r) => r.rule === 'budget.concurrent');
    expect(reason?.budget).toMatchObject({ used: 4, freesAt: expect.any(String) });
    expect(reason!.budget!.heldBy).toContain(fourth.body.planId);
    expect(reason!.budget!.heldBy).toHaveLength(4);

    // The fourth plan runs to its end; its run then releases the slot.
    const applied = await a.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: fourth.body.planId, requestHash: fourth.body.requestHash } });
    expect(applied.status, JSON.stringify(applied.body)).toBe(202);
    await a.waitForStatus(fourth.body.planId, ['succeeded']);
    await until('the slot is released', async () => ((await budgets(b)).budgets[0]?.used === 3 ? true : undefined));

    const again = await plan(b, snapshotDelete('slot5b'));
    expect(again.body.status, JSON.stringify(again.body)).toBe('planned');
  });
});

describe('budgets per principal, on the embedded file ledger', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService((c) => {
      c.budgets = { [PRINCIPAL]: { perHour: { guests: 2 } } };
    });
    await until('/healthz 200', async () => (await t.call('GET', '/healthz')).status === 200, 30_000, 200);
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('counts distinct guests, and gives back the charge of a plan rejected before anything was sent', { timeout: 120_000 }, async () => {
    // A prod delete waits for two approvers: charged (guest prod/201) while it waits.
    const waiting = await plan(t, { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'budget refund' });
    expect(waiting.body.status, JSON.stringify(waiting.body)).toBe('awaiting_approval');
    const before = Date.now();
    expect((await plan(t, snapshotDelete('g1'))).body.status).toBe('planned'); // lab/100
    const after = Date.now();
    expect((await plan(t, snapshotDelete('g2'))).body.status).toBe('planned'); // lab/100 again: no new guest

    const third = await plan(t, { ...snapshotDelete('g3'), target: { vmid: 101 } });
    expect(third.body.decision).toBe('denied');
    const reason = (third.body.reasons as { rule: string; budget?: { used: number; limit: number; freesAt: string } }[]).find((r) => r.rule === 'budget.guests');
    expect(reason?.budget).toMatchObject({ used: 2, limit: 2 });
    // prod/201 was touched first, so it leaves the hour first.
    expect(Date.parse(reason!.budget!.freesAt)).toBeLessThanOrEqual(before + 3_600_000);
    expect(Date.parse(reason!.budget!.freesAt)).toBeGreaterThan(before - 60_000 + 3_600_000);
    expect(Date.parse(reason!.budget!.freesAt)).toBeLessThan(after + 3_600_000);

    // A human rejects the prod delete: the run ends without sending anything, so its guest is given back.
    const rejected = await t.call('POST', `/v1/actions/${waiting.body.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'reject', comment: 'not now' } });
    expect(rejected.status, JSON.stringify(rejected.body)).toBe(202);
    await t.waitForStatus(waiting.body.planId, ['rejected']);
    await until('the rejected plan is refunded', async () => ((await budgets(t)).budgets[0]?.used === 1 ? true : undefined));
    expect((await plan(t, { ...snapshotDelete('g4'), target: { vmid: 101 } })).body.status).toBe('planned');
    // The ledger is the file beside the audit log: it holds the admitted lab plans; the refunded,
    // released charge counts for nothing any more and is gone.
    const g4 = (await t.call('GET', '/v1/budgets', { token: TOKENS.agent })).body;
    expect(g4.budgets).toEqual([{ principal: PRINCIPAL, budget: 'guests', limit: 2, used: 2, freesAt: expect.any(String) }]);
    const onFile = (JSON.parse(readFileSync(`${t.config.audit.file}.budgets.json`, 'utf8')) as { charges: { planId: string }[] }).charges.map((c) => c.planId);
    expect(onFile).toHaveLength(3);
    expect(onFile).not.toContain(waiting.body.planId);
    expect(await metric(t, 'proxmox_agent_budget_refusals_total', 'guests')).toBe(1);

    // The CLI shows the same usage, through the API, with the agent's token.
    const shown = await budgetsCli(t, ['budgets']);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(new RegExp(`^${PRINCIPAL}\\s+guests/hour\\s+2/2\\s+${g4.budgets[0].freesAt}`, 'm'));
  });
});

/** `proxmox-agent <args>` in this process against `t`, with the agent's token from a file; what it printed. */
async function budgetsCli(t: TestService, args: string[]): Promise<{ code: number; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'pa-budgets-cli-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, TOKENS.agent, { mode: 0o600 });
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  try {
    return { code: await runCli(['node', 'proxmox-agent', ...args, '--url', t.url, '--token-file', tokenFile]), out: out.join('\n') };
  } finally {
    console.log = log;
    process.exitCode = 0;
  }
}
