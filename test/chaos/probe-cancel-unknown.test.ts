/**
 * Probe: an operator cancel while the answer to the dispatch is still missing.
 *
 * A backup whose POST Proxmox executes but answers 502 (its UPID never reaches the service) and whose
 * vzdump task runs 12 s. Two seconds into the task an operator cancels the run. Guarantee: the task is
 * stopped (the operator's cancel is the one allowed reason) and nothing is backed up, or, if the backup
 * happens, the plan says outcome_unknown with the task's UPID, never a plain failure without it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sleep, startProbe, type Probe } from './support/probe.js';

let probe: Probe;
beforeAll(async () => {
  probe = await startProbe({ name: 'cancel-unknown', guests: [{ vmid: 100, name: 'web', status: 'running' }] });
}, 300_000);
afterAll(async () => probe?.stop());

it('a run cancelled before its lost dispatch answer was settled reports the task it started', async () => {
  const sim = probe.env.sims.lab;
  sim.faults.slowTasks(12_000, { method: 'POST', path: '/nodes/*/vzdump' });
  sim.faults.errorRate({ method: 'POST', path: '/nodes/*/vzdump', times: 1, status: 502, message: 'Bad Gateway', afterDispatch: true });
  const run = await probe.plan('vm.backup', 100, { storage: 'local', notes: 'probe-cancel' });
  await probe.apply(run);
  for (let i = 0; i < 120; i++) {
    const req = sim.requests.all().find((r) => r.upid && r.path.endsWith('/vzdump'));
    if (req && Date.now() - req.time > 2000) break;
    await sleep(250);
  }
  await probe.cancel(run);
  await probe.settle(run);
  await probe.quiet();

  const { violations, text } = await probe.verdict();
  expect(violations.map((v) => v.rule), text).toEqual([]);
}, 300_000);
