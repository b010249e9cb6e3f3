/**
 * Probe 15 / freeze: several worker processes (PostgreSQL audit store and dispatch journal), the
 * API in this process, the simulator standalone.
 *
 * Scenario: two worker processes; 12 snapshot plans on 3 shared guests are applied at once and an
 * admin (demo-admin-token, human:carol) freezes lab while they are being dispatched. Then both
 * workers are SIGKILLed while runs are held, and a fresh worker process is started. Then the freeze
 * is lifted.
 * Oracle: the simulator's request log — no mutating request executed after the freeze answered,
 * across the kill and the restart — and its mutation log after the lift — each plan's snapshot made
 * at most once (exactly once for the plans that succeeded), no duplicates; every held run ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimGuestSeed } from '../../src/simulator/index.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { startSplitService, type SplitService, type WorkerProcess } from './support/split-service.js';
import { TOKENS } from './support/service.js';
import { executedMutations } from './support/mutations.js';
import { until } from './support/until.js';

const AGENT = 'demo-agent-token';
const guests: SimGuestSeed[] = [100, 101, 102].map((vmid) => ({ vmid, type: 'qemu', node: 'pve-f1', name: `vm-${vmid}`, status: 'running' }));

let pg: TempPostgres;
let s: SplitService;
let workers: WorkerProcess[] = [];

describePostgres('freeze with several worker processes', () => {
  beforeAll(async () => {
    pg = await startTempPostgres();
    s = await startSplitService({
      audit: { postgres: { url: { env: 'PA_AUDIT_PG_URL' } } },
      env: { PA_AUDIT_PG_URL: await pg.createDatabase() },
      guests,
      taskDurationMs: 300,
    });
    workers = await Promise.all([s.startWorker(), s.startWorker()]);
  }, 240_000);
  afterAll(async () => {
    await s?.stop();
    await pg?.stop();
  });

  it('nothing starts after the freeze answered, across a SIGKILL of every worker and a restart; each run at most once after the lift', async () => {
    const executedAfter = (at: number) => executedMutations(s.sim, { after: at });
    const plans = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const vmid = guests[i % 3]!.vmid;
        const r = await s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid }, params: { snapname: `p15w${i}` }, reason: `probe15 workers ${i}` } });
        expect(r.status, JSON.stringify(r.body)).toBe(201);
        return { planId: r.body.planId as string, requestHash: r.body.requestHash as string, snap: `p15w${i}` };
      }),
    );
    const applies = plans.map((p) => s.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId: p.planId, requestHash: p.requestHash } }));
    // The freeze lands once the first snapshot reached Proxmox: the others are on their way.
    await until('a first snapshot dispatched', () => s.sim.requests.all().some((r) => r.method === 'POST' && r.path.endsWith('/snapshot')), 60_000, 5);
    const f = await s.call('POST', '/v1/freezes', { token: TOKENS.admin, body: { environment: 'lab', reason: 'probe15 workers' } });
    const answeredAt = Date.now();
    expect(f.status, JSON.stringify(f.body)).toBe(201);
    for (const a of await Promise.all(applies)) expect(a.status).toBe(202);

    const view = async (id: string) => (await s.call('GET', `/v1/actions/${id}`, { token: AGENT })).body;
    const settled = await until(
      'every run finished or held',
      async () => {
        const vs = await Promise.all(plans.map((p) => view(p.planId)));
        return vs.every((v) => ['succeeded', 'failed'].includes(v.status) || v.frozen?.id === f.body.id) && vs;
      },
      90_000,
      250,
    );
    const heldIds = settled.filter((v: any) => v.frozen).map((v: any) => v.planId);
    console.log(`probe15 workers: ${heldIds.length} held, stillSending ${JSON.stringify(f.body.stillSending)}`);
    expect(executedAfter(answeredAt)).toEqual([]);

    // SIGKILL every worker while runs are held, then start a fresh one.
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    workers = [await s.startWorker()];
    await new Promise((r) => setTimeout(r, 5000));
    expect(executedAfter(answeredAt)).toEqual([]);
    for (const id of heldIds) expect((await view(id)).frozen?.id).toBe(f.body.id);

    expect((await s.call('DELETE', `/v1/freezes/${f.body.id}`, { token: TOKENS.admin })).status).toBe(200);
    const done = await until(
      'every run finished after the lift',
      async () => {
        const vs = await Promise.all(plans.map((p) => view(p.planId)));
        return vs.every((v) => ['succeeded', 'failed', 'outcome_unknown'].includes(v.status)) && vs;
      },
      150_000,
      500,
    );
    for (const [i, p] of plans.entries()) {
      const made = s.sim.mutations.all().filter((m) => m.key === p.snap);
      expect(made.length, `${p.snap}: ${done[i].status} ${JSON.stringify(done[i].result)}`).toBe(done[i].status === 'succeeded' ? 1 : 0);
    }
    expect(s.sim.mutations.duplicates()).toEqual([]);
  }, 360_000);
});
