/**
 * Adversary probe (issue 16), two guarantees under worker kills, several workers and shared guests:
 *
 * 1. Safeguards (docs/policy.md): a plan whose policy asks `safeguard: snapshot` has its snapshot
 *    taken on Proxmox exactly once, before its action, and its action never runs without it, even
 *    when the worker running it is SIGKILLed or SIGTERMed at any point while the snapshot is taken.
 * 2. The requester told (docs/approvals.md): each outcome of a plan that asked for approval reaches
 *    the requester's webhook once (one X-PA-Delivery per outcome; retries of one notice share it,
 *    and the receiver drops them), even across worker kills and retries.
 *
 * Setup: PostgreSQL audit store and dispatch journal, the simulator standalone (snapshot tasks slowed
 * to 1.5 s), the API in this process, two worker processes. Policy: lab config updates need one
 * approval and a safeguard snapshot. A loopback webhook target receives the notices and holds each
 * answer for 400 ms.
 *
 * Rounds: on each of four guests a safeguarded config update (approved by alice, applied by the
 * agent), and on two of them a plain snapshot plan by another plan at the same time. In each round
 * every worker is killed (SIGKILL or SIGTERM, alternating by round) once at a random moment while a safeguard
 * snapshot task runs on Proxmox, and once while an outcome notice is being received; fresh workers
 * are started each time.
 *
 * Oracles (outsiders' views): the simulator's mutation and request logs (per safeguarded plan: at
 * most one snapshot request executed and one snapshot mutation of its name; its config change, if
 * any, exactly once and after exactly one snapshot of its name; succeeded ⇒ changed), and the
 * webhook's receipts (per plan and outcome event: exactly one X-PA-Delivery, the events being
 * plan.approved and the plan's final status).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safeguardSnapshotName } from '../../src/domain/safeguard.js';
import type { SimGuestSeed } from '../../src/simulator/index.js';
import { startTestServer, type TestServer } from '../proxmox/helpers/http-server.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { startSplitService, type SplitService, type WorkerProcess } from './support/split-service.js';
import { until } from './support/until.js';

const AGENT = 'demo-agent-token';
const ALICE = 'demo-approver-1-token';
const VMIDS = [100, 101, 102, 103];
const SHARED = new Set([100, 102]);
const ROUNDS = 3;
const guests: SimGuestSeed[] = VMIDS.map((vmid) => ({ vmid, type: 'qemu', node: 'pve-f1', name: `vm-${vmid}`, status: 'running' }));

let pg: TempPostgres;
let s: SplitService;
let hooks: TestServer;
let workers: WorkerProcess[] = [];
/** Outcome notices received (plan.*), in order of arrival. */
const notices: { planId: string; event: string; delivery: string; at: number }[] = [];

/** A caller's ordinary retry while the API answers 503 (no worker polls: they were just killed). */
async function retried(call: () => Promise<{ status: number; body: any }>): Promise<{ status: number; body: any }> {
  for (let i = 0; ; i++) {
    const r = await call();
    if (r.status !== 503 || i >= 60) return r;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

describePostgres('probe16: safeguard and requester told under worker kills', () => {
  beforeAll(async () => {
    hooks = await startTestServer(async (req, res, body) => {
      const event = String(req.headers['x-pa-event'] ?? '');
      if (event.startsWith('plan.')) {
        let planId = '';
        try {
          planId = JSON.parse(body).planId;
        } catch {
          /* not json */
        }
        notices.push({ planId, event, delivery: String(req.headers['x-pa-delivery']), at: Date.now() });
        await new Promise((r) => setTimeout(r, 400));
      }
      res.end('ok');
    });
    pg = await startTempPostgres();
    s = await startSplitService({
      audit: { postgres: { url: { env: 'PA_AUDIT_PG_URL' } } },
      env: { PA_AUDIT_PG_URL: await pg.createDatabase() },
      guests,
      taskDurationMs: 100,
      policy: {
        rules: [{ id: 'p16-lab-config', match: { environments: ['lab'], actions: ['*.config.update'] }, decision: 'require_approval', safeguard: 'snapshot' }],
      },
    });
    // The workers read the notification targets from the config file (the API does not post them).
    const doc = parse(readFileSync(s.configPath, 'utf8'));
    doc.notifications = { webhooks: [{ name: 'requester', url: `${hooks.url}/told`, format: 'json' }] };
    writeFileSync(s.configPath, stringify(doc));
    s.sim.faults.add({ kind: 'slow-task', method: 'POST', path: '/nodes/*/qemu/*/snapshot', durationMs: 1500 });
    workers = await Promise.all([s.startWorker(), s.startWorker()]);
  }, 240_000);
  afterAll(async () => {
    await s?.stop();
    await pg?.stop();
    await hooks?.close();
  });

  it('one snapshot per safeguarded plan before its action, and one notice per outcome, across kills of every worker', { timeout: 900_000 }, async () => {
    const guarded: { planId: string; vmid: number; description: string; name: string }[] = [];
    const kills: string[] = [];
    const killAll = async (why: string, sig: NodeJS.Signals) => {
      kills.push(`${sig} ${why}`);
      const old = workers;
      workers = [];
      await Promise.all(old.map((w) => w.kill(sig)));
      workers = await Promise.all([s.startWorker(), s.startWorker()]);
    };

    for (let round = 0; round < ROUNDS; round++) {
      const roundStart = Date.now();
      const noticesBefore = notices.length;
      const plans = await Promise.all(
        VMIDS.flatMap((vmid) => {
          const description = `p16k r${round} g${vmid} ${Math.random().toString(36).slice(2, 8)}`;
          const mk = [
            s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.config.update', environment: 'lab', target: { vmid }, params: { description }, reason: `probe16 kills ${description}` } }).then((r) => {
              expect(r.status, JSON.stringify(r.body)).toBe(201);
              expect(r.body.safeguard?.name, JSON.stringify(r.body)).toBe(safeguardSnapshotName(r.body.planId));
              guarded.push({ planId: r.body.planId, vmid, description, name: r.body.safeguard.name });
              return { ...r.body, guarded: true };
            }),
          ];
          if (SHARED.has(vmid)) {
            mk.push(
              s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid }, params: { snapname: `p16other${round}x${vmid}` }, reason: 'probe16 other plan' } }).then((r) => {
                expect(r.status, JSON.stringify(r.body)).toBe(201);
                return { ...r.body, guarded: false };
              }),
            );
          }
          return mk;
        }),
      );
      // Kill every worker once while a safeguard snapshot task of this round runs on Proxmox (at a
      // random point of it), and once while an outcome notice of this round is being received.
      let snapKilled = false;
      let noticeKilled = false;
      let stop = false;
      const killer = (async () => {
        while (!stop && !(snapKilled && noticeKilled)) {
          if (!snapKilled) {
            const running = s.sim.model.tasks().some((t) => t.type === 'qmsnapshot' && t.status === 'running' && t.starttime * 1000 >= roundStart - 1000);
            const safeguardSent = s.sim.requests
              .all()
              .some((r) => r.time >= roundStart && r.method === 'POST' && r.path.endsWith('/snapshot') && r.executed && String(r.params?.snapname ?? '').startsWith('pa_'));
            if (running && safeguardSent) {
              snapKilled = true;
              await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 1200)));
              await killAll(`round ${round} during a safeguard snapshot`, round % 2 === 0 ? 'SIGKILL' : 'SIGTERM');
              continue;
            }
          }
          if (!noticeKilled && notices.length > noticesBefore && Date.now() - notices[notices.length - 1]!.at < 300) {
            noticeKilled = true;
            await killAll(`round ${round} while ${notices[notices.length - 1]!.event} was received`, round % 2 === 0 ? 'SIGTERM' : 'SIGKILL');
            continue;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      })();

      for (const a of await Promise.all(plans.map((p) => retried(() => s.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId: p.planId, requestHash: p.requestHash } }))))) {
        expect(a.status, JSON.stringify(a.body)).toBeLessThan(300);
      }
      for (const p of plans.filter((x) => x.guarded)) {
        // A retry after a 503 whose signal did reach the run is answered 409 (one identity counts once).
        const r = await retried(() => s.call('POST', `/v1/actions/${p.planId}/approvals`, { token: ALICE, body: { decision: 'approve' } }));
        expect([202, 409], JSON.stringify(r.body)).toContain(r.status);
      }
      const client = s.api!.client;
      await Promise.all(plans.map((p) => client.workflow.getHandle(p.planId).result()));
      stop = true;
      await killer;
    }
    console.log(`probe16 kills: ${kills.join('; ')}`);

    // --- Oracle 1: the safeguard.
    const mutations = s.sim.mutations.all();
    const requests = s.sim.requests.all();
    const violations: string[] = [];
    const finals = new Map<string, string>();
    const failures: string[] = [];
    for (const g of guarded) {
      const view = (await s.call('GET', `/v1/actions/${g.planId}`, { token: AGENT })).body;
      finals.set(g.planId, view.status);
      if (view.status !== 'succeeded') failures.push(`${g.planId} ${view.status} ${view.result?.errorType ?? ''}`);
      const snapSent = requests.filter((r) => r.method === 'POST' && r.path.endsWith('/snapshot') && r.executed && r.params?.snapname === g.name);
      const snaps = mutations.filter((m) => m.op === 'snapshot' && m.key === g.name);
      const actions = mutations.filter((m) => m.op === 'config' && requests.find((r) => r.seq === m.dispatch)?.params?.description === g.description);
      if (snapSent.length > 1) violations.push(`${g.planId}: ${snapSent.length} snapshot requests for ${g.name} executed`);
      if (snaps.length > 1) violations.push(`${g.planId}: ${snaps.length} snapshots ${g.name} taken`);
      if (actions.length > 1) violations.push(`${g.planId}: its action ran ${actions.length} times`);
      if (actions.length > 0) {
        const before = snaps.filter((m) => m.seq < actions[0]!.seq && m.vmid === g.vmid);
        if (before.length !== 1) violations.push(`${g.planId}: its action ran (seq ${actions[0]!.seq}) after ${before.length} snapshots of ${g.name}`);
      }
      if (view.status === 'succeeded' && actions.length !== 1) violations.push(`${g.planId}: succeeded but its action is seen ${actions.length} times`);
    }
    // --- Oracle 2: the requester told.
    for (const g of guarded) {
      const mine = notices.filter((n) => n.planId === g.planId);
      const byEvent = new Map<string, Set<string>>();
      for (const n of mine) byEvent.set(n.event, (byEvent.get(n.event) ?? new Set()).add(n.delivery));
      const final = finals.get(g.planId)!;
      const expected = ['plan.approved', `plan.${final}`];
      for (const e of expected) if ((byEvent.get(e)?.size ?? 0) !== 1) violations.push(`${g.planId}: ${e} told under ${byEvent.get(e)?.size ?? 0} deliveries ${JSON.stringify([...(byEvent.get(e) ?? [])])}`);
      for (const e of byEvent.keys()) if (!expected.includes(e)) violations.push(`${g.planId} (${final}): told ${e} too`);
    }
    const raw = new Map<string, number>();
    for (const n of notices) raw.set(n.delivery, (raw.get(n.delivery) ?? 0) + 1);
    const repeated = [...raw].filter(([, c]) => c > 1);
    console.log(
      `probe16 kills: plans ${JSON.stringify(Object.fromEntries([...finals.values()].reduce((m, v) => m.set(v, (m.get(v) ?? 0) + 1), new Map<string, number>())))}; ` +
        `same delivery received more than once (dropped by X-PA-Delivery, the documented gap): ${JSON.stringify(repeated)}`,
    );
    console.log(`probe16 kills: not succeeded: ${failures.join('; ')}`);
    expect(violations, `kills: ${kills.join('; ')}`).toEqual([]);
    // The scenario did what it says: kills happened and some safeguarded actions ran.
    expect(kills.length).toBeGreaterThanOrEqual(ROUNDS);
    expect([...finals.values()].filter((v) => v === 'succeeded').length).toBeGreaterThan(0);
  });
});
