/**
 * Probe: a snapshot delete whose 200 answer is garbled is not a no-op.
 *
 * Proxmox executes `DELETE …/snapshot/{name}` (the task deletes the snapshot) and answers 200 with a
 * body cut short. The run cannot read the UPID; when it looks again the snapshot is gone. Guarantee:
 * the plan reports the deletion it caused (applied with the task's UPID) or outcome_unknown with it,
 * never "succeeded as a no-op": a no-op caused no mutation.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startProbe, type Probe } from './support/probe.js';

let probe: Probe;
beforeAll(async () => {
  probe = await startProbe({ name: 'garbled-delete', guests: [{ vmid: 100, name: 'web', status: 'running', snapshots: ['probe-del'] }] });
}, 300_000);
afterAll(async () => probe?.stop());

it('a garbled 200 to a snapshot delete is reported as the deletion it was', async () => {
  probe.env.sims.lab.faults.garbleAfterDispatch({ method: 'DELETE', path: '/nodes/*/qemu/100/snapshot/probe-del', times: 1 });
  const run = await probe.plan('vm.snapshot.delete', 100, { snapname: 'probe-del' });
  await probe.apply(run);
  await probe.settle(run);
  await probe.quiet();

  const { violations, text } = await probe.verdict();
  expect(violations.map((v) => v.rule), text).toEqual([]);
}, 300_000);
