/**
 * Probe (guarantee 1: every Proxmox mutation happens exactly once, for its own plan).
 *
 * The dispatch journal settles an unanswered intent from SETTLE_AFTER_MS (20 s) on, once the worker
 * has abandoned its request (15 s). A loaded pveproxy can hold a request longer than that before it
 * executes it (the simulator's `slow-response` with `beforeDispatch`: "a loaded pveproxy"), and the
 * server does not drop work because the client hung up. This probe asks for one backup while the first
 * POST /vzdump is held 30 s before executing: the intent, with no task found at 20 s, keeps its guest
 * (HOLD_UNANSWERED_MS) and claims the task when it appears at 30 s; the plan is never sent again.
 * Outsider's view: the simulator's mutation log must show exactly one backup for the plan.
 *
 * The control case holds the *answer* 30 s (the request executes at once): the journal must settle
 * it from the node's task list and follow that one task.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startDeployment, type Deployment } from './support/deployment.js';
import { flows, type Flows, type Run } from './support/flows.js';

let d: Deployment;
let f: Flows;
beforeAll(async () => {
  d = await startDeployment({ log: () => undefined });
  f = flows(d);
  console.log(`[probe] deployment up; logs in ${ARTIFACTS}`);
}, 600_000);
afterAll(async () => d?.stop(), 120_000);

const backups = (run: Run) => d.sims.lab.mutations.all().filter((m) => m.vmid === run.vmid && m.op === 'backup');
const vzdumpRequests = (vmid: number) =>
  d.sims.lab.requests
    .all()
    .filter((r) => r.method === 'POST' && r.path.endsWith('/vzdump') && String(r.params?.vmid) === String(vmid))
    .map((r) => ({ seq: r.seq, time: r.time, faults: r.faults, executed: r.executed, upid: r.upid, answer: r.answer }));

// The held-request case was pinned with `it.fails` while the journal released an unanswered intent at
// 20 s (two backups for one plan); see docs/idempotency.md §3, step 3.
async function oneBackup(label: string, vmid: number, beforeDispatch: boolean): Promise<void> {
  const rule = d.sims.lab.faults.slowResponses(30_000, { method: 'POST', path: '/nodes/*/vzdump', times: 1, beforeDispatch });
  try {
    const { run } = await f.plan(d.apis[0]!, `held-${vmid}`, { action: 'vm.backup', environment: 'lab', target: { vmid }, params: { storage: 'local', notes: `probe ${label}` } }, 'backup');
    expect((await f.apply(d.apis[0]!, run)).status).toBe(202);
    const done = await f.settle(run, 180_000);
    // Let a held request finish executing, and its task end, before judging.
    await new Promise((r) => setTimeout(r, 15_000));
    const evidence = JSON.stringify({ final: { status: done?.status, result: done?.result }, mutations: backups(run), requests: vzdumpRequests(vmid), duplicates: d.sims.lab.mutations.duplicates() }, null, 1);
    console.log(`[probe] ${label}: ${evidence}`);
    expect(done?.status, evidence).toBe('succeeded');
    expect(backups(run).length, evidence).toBe(1);
    expect(backups(run).map((m) => m.upid), evidence).toEqual([done.result.upid]);
  } finally {
    d.sims.lab.faults.remove(rule);
  }
}

describe('a Proxmox that is slow to take a request', () => {
  it('answer held 30 s (request executed at once): one plan, one backup', () => oneBackup('answer held 30 s (request executed at once)', 112, false));
  it('request held 30 s before pveproxy executes it: one plan, one backup', () => oneBackup('request held 30 s before pveproxy executes it', 113, true));
});
