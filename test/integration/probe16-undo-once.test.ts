/**
 * PROBE 16 / undo — "a plan is undone at most once" (docs/approvals.md, "Undo", "One undo per plan").
 *
 * Setup: two API processes and two worker processes (all separate OS processes) on one Temporal
 * server, one PostgreSQL audit store (so one dispatch journal and one replay cache), one standalone
 * simulator. VM 100 starts stopped; plan P = vm.start succeeds (one `start` mutation).
 * Attack: 12 undo requests race through BOTH APIs at once: the same request from the agent (same
 * reason) six times, the agent with other reasons, human:olivia (plan scope) with the same and with
 * other reasons. While they race, API 0 is SIGKILLed and restarted. The undo plan is then applied
 * concurrently through both APIs; its stop task is slowed and its answer dropped after dispatch,
 * and the worker that dispatched it is SIGKILLed mid-task (a fresh worker takes over). After the
 * undo ended, more undo requests (same and different) and more applies are sent.
 * Oracle (outsider's view): every 201 names the same plan, undoPlanId(P), with one requester and
 * reason; every other answer is 409 plan-already-undone (or a transport failure from the killed
 * API); the simulator's request log holds at most ONE executed stop POST for VM 100 and the
 * mutation log at most one `stop` of VM 100; the original names exactly that undo (`undoneBy`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimGuestSeed } from '../../src/simulator/index.js';
import { undoPlanId } from '../../src/domain/plan-id.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { sha256, startTwoApis, type TwoApis } from './support/probe16-two-apis.js';
import { until } from './support/until.js';

const AGENT = 'demo-agent-token';
const ALICE = 'demo-approver-1-token';
const OPS = 'p16-ops-token';
const guests: SimGuestSeed[] = [{ vmid: 100, type: 'qemu', node: 'pve-f1', name: 'web', status: 'stopped', disks: { scsi0: 'local-lvm:vm-100-disk-0,size=8G' } }];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = ['succeeded', 'failed', 'rejected', 'expired', 'denied', 'outcome_unknown', 'cancelled'];

let pg: TempPostgres;
let s: TwoApis;

describePostgres('probe16 undo: one undo per plan across two APIs, races and kills', () => {
  beforeAll(async () => {
    pg = await startTempPostgres();
    s = await startTwoApis({
      guests,
      pgUrl: await pg.createDatabase(),
      taskDurationMs: 150,
      extraTokens: [{ id: 'p16-ops', principal: 'human:olivia', secretSha256: sha256(OPS), scopes: ['plan', 'apply', 'approve', 'read'], environments: ['*'], roles: [], channels: ['api', 'cli'] }],
    });
  }, 240_000);
  afterAll(async () => {
    await s?.stop();
    await pg?.stop();
  });

  const get = async (planId: string) => {
    for (let i = 0; ; i++) {
      const r = await s.call(i, 'GET', `/v1/actions/${planId}`, { token: AGENT });
      if (r.status === 200 || i > 20) return r.body;
      await sleep(200);
    }
  };

  it('makes one undo plan and sends its inverse to Proxmox at most once', { timeout: 400_000 }, async () => {
    const p = await s.call(0, 'POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.start', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'p16 original' } });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect((await s.call(1, 'POST', '/v1/actions/apply', { token: AGENT, body: { planId: p.body.planId, requestHash: p.body.requestHash } })).status).toBe(202);
    const original = await until('original succeeded', async () => {
      const v = await get(p.body.planId);
      return TERMINAL.includes(v?.status) ? v : undefined;
    }, 60_000, 200);
    expect(original.status, JSON.stringify(original.result)).toBe('succeeded');
    expect(s.sim.mutations.countFor(100, 'start')).toBe(1);
    const undoId = undoPlanId(p.body.planId);

    // The stop task is slow and its answer lost: only the journal knows it was dispatched.
    s.sim.faults.slowTasks(6000, { method: 'POST', path: '/nodes/*/qemu/100/status/stop', times: 1 });
    s.sim.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/100/status/stop', times: 1 });

    const undo = (i: number, reason: string, token = AGENT) => s.call(i, 'POST', `/v1/actions/${p.body.planId}/undo`, { token, body: { reason }, headers: { 'idempotency-key': `k-${i}-${reason.replace(/ /g, '_')}` } });
    const racing = [
      ...Array.from({ length: 6 }, (_, i) => undo(i, 'p16 take it back')),
      undo(0, 'p16 other reason A'),
      undo(1, 'p16 other reason B'),
      undo(0, 'p16 take it back', OPS),
      undo(1, 'p16 take it back', OPS),
      undo(0, 'p16 olivia reason', OPS),
      undo(1, 'p16 olivia reason', OPS),
    ];
    // API 0 dies while they race, and comes back (on a new port).
    const killApi = (async () => {
      await sleep(30);
      await s.apis[0]!.kill('SIGKILL');
      const fresh = await s.startApi();
      s.urls[0] = fresh.line.api;
      s.urls.pop();
    })();
    const answers = await Promise.all(racing);
    await killApi;
    const describe = (a: { status: number; body: any }) => ({ status: a.status, planId: a.body?.planId, type: a.body?.type, requester: a.body?.requester?.principal, reason: a.body?.reason, err: a.body?.error });
    console.log('undo race answers', JSON.stringify(answers.map(describe)));

    // Anything lost with the killed API is retried, as a client would.
    const retried = await Promise.all(answers.map(async (a, i) => (a.status === 0 || a.status >= 500 ? undo(i % 2 === 0 ? 1 : 0, i < 6 ? 'p16 take it back' : i === 6 ? 'p16 other reason A' : i === 7 ? 'p16 other reason B' : i < 10 ? 'p16 take it back' : 'p16 olivia reason', i < 8 ? AGENT : OPS) : a)));
    const made = retried.filter((a) => a.status === 201);
    const other = retried.filter((a) => a.status !== 201 && a.status !== 409);
    expect(other.map(describe), 'every undo request answered 201 or 409').toEqual([]);
    expect(new Set(made.map((a) => a.body.planId)), 'one undo plan').toEqual(new Set([undoId]));
    expect(new Set(made.map((a) => `${a.body.requester.principal}|${a.body.reason}`)).size, 'one requester and reason').toBe(1);
    for (const r of retried.filter((a) => a.status === 409)) expect(r.body.type).toBe('/problems/plan-already-undone');

    const u = await get(undoId);
    const token = u.requester.principal === 'human:olivia' ? OPS : AGENT;
    // Apply it through both APIs at once, several times.
    const applies = Array.from({ length: 6 }, (_, i) => s.call(i, 'POST', '/v1/actions/apply', { token, body: { planId: undoId, requestHash: u.requestHash } }));
    if (u.status === 'awaiting_approval') applies.push(s.call(1, 'POST', `/v1/actions/${undoId}/approvals`, { token: u.requester.principal === 'human:alice' ? OPS : ALICE, body: { decision: 'approve' } }));
    await Promise.all(applies);
    // Kill the worker(s) while the stop task runs; a fresh worker takes over.
    await until('the stop POST to reach the simulator', () => s.sim.requests.all().some((r) => r.method === 'POST' && r.path.endsWith('/qemu/100/status/stop')), 60_000, 50);
    for (const w of [...s.workers]) await w.kill('SIGKILL');
    s.workers.length = 0;
    await s.startWorker();
    await s.startWorker();
    const done = await until('undo ended', async () => {
      const v = await get(undoId);
      return TERMINAL.includes(v?.status) ? v : undefined;
    }, 180_000, 500);
    console.log('undo plan', JSON.stringify({ status: done.status, result: done.result }));

    // After it ended: the same request again, other requests, applies again.
    const late = await Promise.all([
      undo(0, u.reason, token),
      undo(1, u.reason, token),
      undo(0, 'p16 late other', AGENT),
      undo(1, 'p16 late other', OPS),
      ...Array.from({ length: 4 }, (_, i) => s.call(i, 'POST', '/v1/actions/apply', { token, body: { planId: undoId, requestHash: u.requestHash } })),
    ]);
    console.log('late answers', JSON.stringify(late.map(describe)));
    for (const a of late.slice(0, 4)) {
      expect([201, 409], JSON.stringify(describe(a))).toContain(a.status);
      if (a.status === 201) expect(a.body.planId).toBe(undoId);
    }
    await sleep(3000);

    const stopPosts = s.sim.requests.all().filter((r) => r.method === 'POST' && r.path.endsWith('/qemu/100/status/stop') && r.executed);
    const stops = s.sim.mutations.all().filter((m) => m.vmid === 100 && m.op === 'stop');
    const evidence = `stop POSTs executed: ${JSON.stringify(stopPosts.map((r) => ({ seq: r.seq, upid: r.upid, faults: r.faults })))}; stop mutations: ${JSON.stringify(stops.map((m) => ({ dispatch: m.dispatch, upid: m.upid })))}; undo: ${JSON.stringify({ status: done.status, result: done.result })}`;
    console.log(evidence);
    expect(stopPosts.length, `at most one inverse request reached Proxmox: ${evidence}`).toBeLessThanOrEqual(1);
    expect(stops.length, `at most one inverse mutation: ${evidence}`).toBeLessThanOrEqual(1);
    expect((await get(p.body.planId)).undoneBy).toBe(undoId);
    // No second stop hides anywhere: every mutating request to VM 100 after the start is the one stop.
    const mutating = s.sim.requests.all().filter((r) => r.method !== 'GET' && r.executed && /\/qemu\/100\//.test(r.path) && !r.path.endsWith('/status/start'));
    expect(mutating.map((r) => `${r.method} ${r.path}`), evidence).toEqual(stopPosts.map((r) => `${r.method} ${r.path}`));
  });
});
