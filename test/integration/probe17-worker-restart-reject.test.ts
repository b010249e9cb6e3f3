/**
 * probe17 — a human "no" while the worker running the plan is dead.
 *
 * Setup: the simulator standalone, the API in this process, one worker process. Policy: everything in
 * lab needs one approval. Each round: alice approves a vm.reset of VM 100, the agent applies, and
 *  A. the apply-time re-check's read of the guest is held 3 s by a slow Proxmox; the worker is
 *     SIGKILLed during it; bob rejects while no worker runs; a fresh worker starts r ms later;
 *  B. the reset POST is held 3 s before it executes (the dispatch); the worker is SIGKILLed while it
 *     is held; bob rejects; a fresh worker starts r ms later.
 * Oracle: a 202 'rejected' recorded true ⇒ nothing of the plan executed on Proxmox, final 'rejected',
 * plan.rejected on the evidence chain. A rejection of a plan whose request went to Proxmox is 409,
 * never 202 'rejected' (recorded or not).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimGuestSeed } from '../../src/simulator/index.js';
import { startSplitService, type SplitService, type WorkerProcess } from './support/split-service.js';
import { executedMutations } from './support/mutations.js';

const AGENT = 'demo-agent-token';
const ALICE = 'demo-approver-1-token';
const BOB = 'demo-approver-2-token';
const guests: SimGuestSeed[] = [{ vmid: 100, type: 'qemu', node: 'pve-f1', name: 'web', status: 'running', disks: { scsi0: 'local-lvm:vm-100-disk-0,size=8G' } }];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const terminal = ['succeeded', 'failed', 'outcome_unknown', 'rejected', 'denied', 'expired'];

let s: SplitService;
let worker: WorkerProcess | undefined;
beforeAll(async () => {
  s = await startSplitService({
    guests,
    taskDurationMs: 200,
    policy: { rules: [{ id: 'lab-one', description: 'one approver for everything in lab', match: { environments: ['lab'] }, approvals: { count: 1 } }] },
  });
  worker = await s.startWorker();
}, 120_000);
afterAll(async () => {
  await worker?.kill('SIGTERM');
  await s?.stop();
});

async function waitFor(planId: string, statuses: string[], ms = 90_000) {
  const until = Date.now() + ms;
  let last: any;
  while (Date.now() < until) {
    last = (await s.call('GET', `/v1/actions/${planId}`, { token: AGENT })).body;
    if (statuses.includes(last?.status)) return last;
    await sleep(150);
  }
  throw new Error(`${planId} never reached ${statuses.join('|')}: ${JSON.stringify(last)}`);
}

async function round(kind: 'A' | 'B', restartAfter: number): Promise<{ row: string; violation?: string }> {
  const p = await s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.reset', environment: 'lab', target: { vmid: 100 }, params: {}, reason: `probe17 ${kind} ${restartAfter}` } });
  expect(p.status, JSON.stringify(p.body)).toBe(201);
  expect(p.body.status).toBe('awaiting_approval');
  const { planId, requestHash } = p.body;
  expect((await s.call('POST', `/v1/actions/${planId}/approvals`, { token: ALICE, body: { decision: 'approve' } })).status).toBe(202);
  const from = Date.now();
  if (kind === 'A') s.sim.faults.slowResponses(3000, { method: 'GET', path: '/nodes/*/qemu/100/status/current', times: 1 });
  else s.sim.faults.slowResponses(3000, { method: 'POST', path: '/nodes/*/qemu/100/status/reset', times: 1, beforeDispatch: true });
  const app = s.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId, requestHash } });
  // Wait until the held request is at the simulator, then kill the worker.
  const heldPath = kind === 'A' ? /\/qemu\/100\/status\/current$/ : /\/qemu\/100\/status\/reset$/;
  const heldMethod = kind === 'A' ? 'GET' : 'POST';
  for (let i = 0; i < 400 && !s.sim.requests.all().some((r) => r.time > from && r.method === heldMethod && heldPath.test(r.path)); i++) await sleep(20);
  await sleep(300);
  await worker!.kill('SIGKILL');
  worker = undefined;
  const restarting = sleep(restartAfter).then(async () => (worker = await s.startWorker()));
  const rej = await s.call('POST', `/v1/actions/${planId}/approvals`, { token: BOB, body: { decision: 'reject', comment: `no (${kind} ${restartAfter})` } });
  await restarting;
  await app;
  const final = await waitFor(planId, terminal);
  await sleep(3500);
  const sent = executedMutations(s.sim, { after: from }).filter((r) => r.path.includes('/qemu/100/'));
  const evidence = await s.call('GET', `/v1/actions/${planId}/evidence`, { token: AGENT });
  const chain: string[] = (evidence.body?.audit?.records ?? []).map((r: { event: string }) => r.event);
  const row = `${kind} r=${restartAfter}: reject ${rej.status} ${rej.body?.status ?? rej.body?.title ?? ''} recorded=${rej.body?.recorded}; final ${final.status}; sent ${sent.map((r) => `${r.method} ${r.path}`).join(',') || 'nothing'}; chain …${chain.slice(-3).join(',')}`;
  let violation: string | undefined;
  if (rej.status === 202 && rej.body?.status === 'rejected') {
    if (rej.body?.recorded === true && (sent.length > 0 || final.status !== 'rejected' || !chain.includes('plan.rejected'))) violation = `${row} — recorded rejection did not stop it`;
    if (sent.length > 0) violation = `${row} — 202 'rejected' for a request that went to Proxmox`;
  } else if (rej.status === 202) violation = `${row} — 202 that is not a rejection`;
  return { row, ...(violation ? { violation } : {}) };
}

describe('probe17: rejecting while the worker is dead', () => {
  it('a 202 rejection is never followed by the reset', { timeout: 900_000 }, async () => {
    const rows: string[] = [];
    const violations: string[] = [];
    for (const [kind, r] of [['A', 500], ['A', 7000], ['B', 500], ['B', 7000]] as const) {
      const { row, violation } = await round(kind, r);
      rows.push(row);
      if (violation) violations.push(violation);
      s.sim.faults.clear();
    }
    console.log(rows.join('\n'));
    expect(violations, rows.join('\n')).toEqual([]);
  });
});
