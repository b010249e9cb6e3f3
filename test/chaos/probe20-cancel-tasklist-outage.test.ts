/**
 * Probe: an operator cancel of a run whose dispatch answer was lost, while the node's task list
 * answers 503 for longer than the stop after the cancel keeps trying.
 *
 * A backup whose POST Proxmox executes but answers 502 (its UPID never reaches the service); its
 * vzdump task runs 40 s. Three seconds after the dispatch an operator cancels the run, and from then
 * on `GET /nodes/{node}/tasks` (the only way to learn the lost UPID) answers 503 until the run has
 * ended; task status reads keep working. Guarantee: the task is stopped (the operator's cancel), or
 * the plan names its UPID (applied, failed or outcome_unknown); never an outcome without the task its
 * request started.
 *
 * FAILS (3 of 3 runs, `nice -n 19 npx vitest run --config test/chaos/vitest.config.ts
 * test/chaos/probe20-cancel-tasklist-outage.test.ts`): the run ends ~25 s after its dispatch as
 * failed/outcome_unknown, errorType Cancelled, message "the run was cancelled before anything was sent
 * to Proxmox", with no UPID; the vzdump task is never stopped and the backup is made:
 *   [unknown-without-upid] says outcome_unknown with UPID (none), but its task was
 *   UPID:pve-lab:…:vzdump:100:proxmox-agent@pve!agent:
 * The outage lasts only until the run has ended (~22 s of 503s): the run gives up on its own task
 * instead of learning it once the list answers again.
 * Fixed: the stop after a cancel fails its attempt while the list does not answer, and Temporal tries
 * it again for as long as an unanswered request holds its guest (6 min), no longer 5 times; the probe
 * keeps the list down for 60 s, then lets it answer. Passes: the run names its vzdump UPID.
 */
import { expect, it } from 'vitest';
import { startedTask, useProbe } from './support/use-probe.js';

const probe = useProbe({ name: 'cancel-tasklist-outage', guests: [{ vmid: 100, name: 'web', status: 'running' }] });

it('a run cancelled while its lost answer cannot be looked up reports the task it started', async () => {
  const sim = probe().env.sims.lab;
  sim.faults.slowTasks(40_000, { method: 'POST', path: '/nodes/*/vzdump' });
  sim.faults.errorRate({ method: 'POST', path: '/nodes/*/vzdump', times: 1, status: 502, message: 'Bad Gateway', afterDispatch: true });
  const run = await probe().plan('vm.backup', 100, { storage: 'local', notes: 'probe-cancel-tasklist' });
  await probe().apply(run);
  await startedTask(probe(), '/vzdump', 3000);
  const outage = sim.faults.errorRate({ method: 'GET', path: '/nodes/*/tasks', status: 503, message: 'Service Unavailable' });
  await probe().cancel(run);
  // The outage outlasts the old stop's five tries (~25 s) by far.
  await probe().settle(run, 60_000);
  sim.faults.remove(outage);
  // Once the list answers again the stop finds the task (it keeps looking for as long as an
  // unanswered request holds its guest); an outage longer than that would leave nothing to learn.
  await probe().settle(run, 60_000);
  await probe().quiet(90_000);

  const { violations, text } = await probe().verdict();
  expect(violations.map((v) => v.rule), text).toEqual([]);
}, 420_000);
