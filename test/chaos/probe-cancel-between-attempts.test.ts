/**
 * Probe: an operator cancel while no attempt of the execute activity runs.
 *
 * A backup whose POST Proxmox executes but answers 502 (its UPID never reaches the service); the
 * worker settling that lost answer is SIGKILLed, and the operator cancels the run while no worker
 * runs. A new worker comes up. Guarantee: the task is stopped (the operator's cancel is the one
 * allowed reason) and nothing is backed up, or the plan says what the task did, with its UPID:
 * applied, stopped, or outcome_unknown; never an outcome without the task it was.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sleep, startProbe, type Probe } from './support/probe.js';

let probe: Probe;
beforeAll(async () => {
  probe = await startProbe({ name: 'cancel-between-attempts', guests: [{ vmid: 100, name: 'web', status: 'running' }] });
}, 300_000);
afterAll(async () => probe?.stop());

it('a run cancelled between attempts, its lost dispatch unsettled, reports the task it started', async () => {
  const sim = probe.env.sims.lab;
  sim.faults.slowTasks(30_000, { method: 'POST', path: '/nodes/*/vzdump' });
  sim.faults.errorRate({ method: 'POST', path: '/nodes/*/vzdump', times: 1, status: 502, message: 'Bad Gateway', afterDispatch: true });
  const run = await probe.plan('vm.backup', 100, { storage: 'local', notes: 'probe-cancel-between' });
  await probe.apply(run);
  for (let i = 0; i < 120 && !sim.requests.all().some((r) => r.upid && r.path.endsWith('/vzdump')); i++) await sleep(250);
  await sleep(1000);
  const worker = probe.env.workers[0]!;
  await worker.kill();
  await probe.cancel(run);
  await sleep(2000);
  await worker.start();
  await probe.settle(run);
  await probe.quiet();

  const { violations, text } = await probe.verdict();
  expect(violations.map((v) => v.rule), text).toEqual([]);
}, 300_000);
