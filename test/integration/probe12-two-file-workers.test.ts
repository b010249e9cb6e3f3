/**
 * probe12 — two worker processes on one host with the FILE audit store and file dispatch journal.
 *
 * The file journal keeps its entries in each process's memory (read from disk only at start), so
 * two workers sharing it would not see each other's intents: a retry on the other worker could send
 * a plan's request again. The guarantee holds only if the second worker is refused.
 * Scenario: start one worker, then a second with the same config; if the second one runs, kill the
 * first while a slow snapshot task of a plan runs (answer dropped after dispatch so only the journal
 * knows the dispatch), and let the second worker retry.
 * Oracle: the second worker refuses to start, or the mutation log holds one snapshot and the plan
 * reports its UPID.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimGuestSeed } from '../../src/simulator/index.js';
import { startSplitService, type SplitService, type WorkerProcess } from './support/split-service.js';

const AGENT = 'demo-agent-token';
const guests: SimGuestSeed[] = [{ vmid: 100, type: 'qemu', node: 'pve-f1', name: 'web', status: 'running', disks: { scsi0: 'local-lvm:vm-100-disk-0,size=8G' } }];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let s: SplitService;
const workers: WorkerProcess[] = [];
beforeAll(async () => {
  s = await startSplitService({ guests, taskDurationMs: 200 });
}, 120_000);
afterAll(async () => {
  for (const w of workers) await w.kill('SIGTERM').catch(() => undefined);
  await s?.stop();
});

describe('probe12: two workers on one file journal', () => {
  it('a second worker on the same file store is refused, or the dispatch still happens once', { timeout: 240_000 }, async () => {
    workers.push(await s.startWorker());
    let second: WorkerProcess | undefined;
    let refusal = '';
    try {
      second = await s.startWorker();
      workers.push(second);
    } catch (err) {
      refusal = (err as Error).message.slice(0, 600);
    }
    console.log(second ? 'second worker STARTED' : `second worker refused: ${refusal}`);
    if (!second) {
      expect(refusal).toMatch(/lock|another|writer|locked/i);
      return;
    }
    s.sim.faults.slowTasks(8000, { method: 'POST', path: '/nodes/*/qemu/100/snapshot', times: 1 });
    s.sim.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/100/snapshot', times: 1 });
    const p = await s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'two-w' }, reason: 'probe12 two workers' } });
    expect(p.status).toBe(201);
    await s.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId: p.body.planId, requestHash: p.body.requestHash } });
    for (let i = 0; i < 100 && !s.sim.requests.all().some((r: any) => r.method === 'POST' && String(r.path).endsWith('/snapshot')); i++) await sleep(100);
    await workers[0]!.kill('SIGKILL');
    let view: any;
    for (let i = 0; i < 180; i++) {
      view = (await s.call('GET', `/v1/actions/${p.body.planId}`, { token: AGENT })).body;
      if (['succeeded', 'failed', 'outcome_unknown'].includes(view?.status)) break;
      await sleep(1000);
    }
    const snaps = s.sim.mutations.all().filter((m) => m.op === 'snapshot');
    const evidence = `snapshots: ${JSON.stringify(snaps.map((m) => ({ key: m.key, upid: m.upid, dispatch: m.dispatch })))}; plan: ${JSON.stringify({ status: view?.status, result: view?.result })}`;
    console.log(evidence);
    expect(snaps.length, evidence).toBeLessThanOrEqual(1);
  });
});
