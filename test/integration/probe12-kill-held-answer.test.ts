/**
 * probe12 — worker SIGKILLed while Proxmox holds back the answer to an executed request, with a
 * second plan on the same guest queued behind it.
 *
 * Scenario (split deployment: simulator, API in-process, worker as an OS process, file audit +
 * file dispatch journal): plan A `vm.reset` of VM 100. Proxmox executes the POST at once (task T_A)
 * but holds the answer 4 s (slow-response, after dispatch). 1 s after the POST arrived the worker
 * is SIGKILLed; plan B (`vm.reset` of the same VM) is planned and applied right away; a new worker is
 * started 2 s later. A's answer is lost with the worker; A's intent must be settled from the task
 * list and must claim T_A; B must wait for the guest and run its own reset T_B.
 * Oracle: the simulator's mutation log (exactly two resets, one per plan, distinct UPIDs), and the
 * views: A reports T_A (or outcome_unknown), B reports T_B — never each other's, never a third reset.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimGuestSeed } from '../../src/simulator/index.js';
import { startSplitService, type SplitService, type WorkerProcess } from './support/split-service.js';

const AGENT = 'demo-agent-token';
const guests: SimGuestSeed[] = [{ vmid: 100, type: 'qemu', node: 'pve-f1', name: 'web', status: 'running', disks: { scsi0: 'local-lvm:vm-100-disk-0,size=8G' } }];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const terminal = ['succeeded', 'failed', 'outcome_unknown', 'rejected', 'denied', 'expired'];

let s: SplitService;
let worker: WorkerProcess | undefined;
beforeAll(async () => {
  s = await startSplitService({ guests, taskDurationMs: 200 });
}, 120_000);
afterAll(async () => {
  await worker?.kill('SIGTERM');
  await s?.stop();
});

async function planAndApply(label: string) {
  const p = await s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.reset', environment: 'lab', target: { vmid: 100 }, params: {}, reason: `probe12 ${label}` } });
  expect(p.status, JSON.stringify(p.body)).toBe(201);
  expect(p.body.decision, JSON.stringify(p.body)).toBe('allowed');
  const a = await s.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId: p.body.planId, requestHash: p.body.requestHash } });
  expect(a.status, JSON.stringify(a.body)).toBe(202);
  return p.body.planId as string;
}
async function settle(planId: string, ms = 120_000) {
  const deadline = Date.now() + ms;
  let last: any;
  while (Date.now() < deadline) {
    const r = await s.call('GET', `/v1/actions/${planId}`, { token: AGENT }).catch(() => undefined);
    last = r?.body;
    if (terminal.includes(last?.status)) return last;
    if (process.env.PROBE_DEBUG) console.log(new Date().toISOString(), planId, last?.status, JSON.stringify(last?.result ?? last?.type));
    await sleep(process.env.PROBE_DEBUG ? 5000 : 500);
  }
  throw new Error(`plan ${planId} not terminal: ${JSON.stringify(last)}; worker: ${worker?.output().slice(-3000)}`);
}

describe('probe12: worker killed while the answer is held', () => {
  it('each plan reports its own reset, and no reset runs twice', { timeout: 280_000 }, async () => {
    worker = await s.startWorker();
    s.sim.faults.slowResponses(4000, { method: 'POST', path: '/nodes/*/qemu/100/status/reset', times: 1 });
    const a = await planAndApply('A');
    for (let i = 0; i < 200 && !s.sim.mutations.all().some((m) => m.op === 'reset'); i++) await sleep(50);
    expect(s.sim.mutations.all().some((m) => m.op === 'reset'), 'A\'s reset reached Proxmox').toBe(true);
    await sleep(1000);
    await worker.kill('SIGKILL');
    // B is planned while no worker runs: its plan call waits for the new worker.
    const bPlanned = planAndApply('B');
    await sleep(2000);
    worker = await s.startWorker();
    const b = await bPlanned;
    const va = await settle(a);
    const vb = await settle(b);
    await sleep(1000);
    const resets = s.sim.mutations.all().filter((m) => m.vmid === 100 && m.op === 'reset').map((m) => ({ seq: m.seq, dispatch: m.dispatch, upid: m.upid }));
    const evidence = `resets: ${JSON.stringify(resets)}; A: ${JSON.stringify({ status: va.status, result: va.result })}; B: ${JSON.stringify({ status: vb.status, result: vb.result })}`;
    console.log(evidence);
    expect(resets.length, evidence).toBe(2);
    const [ta, tb] = resets.map((r) => r.upid);
    if (va.result?.upid) expect(va.result.upid, evidence).toBe(ta);
    if (vb.result?.upid) expect(vb.result.upid, evidence).toBe(tb);
    expect(['succeeded', 'outcome_unknown'].includes(va.status), evidence).toBe(true);
    expect(vb.status, evidence).toBe('succeeded');
  });
});
