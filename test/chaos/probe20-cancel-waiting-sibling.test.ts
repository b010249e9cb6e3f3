/**
 * Probe: an operator cancels a plan that waits for the guest while it helps settle a sibling plan's
 * lost dispatch.
 *
 * Plan A snapshots guest 100; Proxmox executes its POST but the connection drops before the answer
 * (A's UPID never reaches the service), and the snapshot task runs 30 s. Plan B, a backup of the same
 * guest, is made and applied together with A: B waits behind A's open intent and, once the intent is old enough (20 s), looks for A's task itself. Right then the operator
 * cancels B. Guarantee: B's cancel stops no task (B started none), A's task is not stopped and A names
 * it, and B sends nothing.
 *
 * PASSES (1 of 1 run with this timing; `nice -n 19 npx vitest run --config test/chaos/vitest.config.ts
 * test/chaos/probe20-cancel-waiting-sibling.test.ts`): A applied with its qmsnapshot UPID, B failed
 * Cancelled, no task stopped, the oracle clean. (B made while A's task ran was denied at plan time, and
 * B applied then is refused as stale: hence the joint apply.)
 */
import { expect, it } from 'vitest';
import { sleep } from './support/probe.js';
import { startedTask, useProbe } from './support/use-probe.js';

const probe = useProbe({ name: 'cancel-waiting-sibling', guests: [{ vmid: 100, name: 'web', status: 'running' }] });

it('cancelling a plan that settles a sibling\'s lost dispatch stops nothing of the sibling\'s', async () => {
  const sim = probe().env.sims.lab;
  sim.faults.slowTasks(30_000, { method: 'POST', path: '/nodes/*/qemu/100/snapshot', times: 1 });
  sim.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/100/snapshot', times: 1 });
  const a = await probe().plan('vm.snapshot.create', 100, { snapname: 'probe-race-a' });
  const b = await probe().plan('vm.backup', 100, { storage: 'local', notes: 'probe-race-b' });
  // Applied together, so that B's re-check still sees the guest idle (a re-check that sees A's lock
  // refuses B as stale: probe20-sibling-lock-stale).
  await Promise.all([probe().apply(a), probe().apply(b)]);
  const dispatched = await startedTask(probe(), '/snapshot');
  await sleep((dispatched?.time ?? Date.now()) + 21_000 - Date.now());
  await probe().cancel(b);
  await probe().settle(b, 180_000);
  await probe().settle(a, 180_000);
  await probe().quiet();

  const { violations, text } = await probe().verdict();
  expect(violations.map((v) => v.rule), text).toEqual([]);
  expect(sim.taskStops(), text).toEqual([]);
}, 420_000);
