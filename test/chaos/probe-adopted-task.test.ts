/**
 * Probe: a retry must never adopt another plan's Proxmox task.
 *
 * Two snapshot plans on one guest. A's snapshot runs and ends. B's POST is executed by Proxmox but
 * its answer is lost (drop-after-dispatch), so B's retry has to find out what happened to its own
 * request. Guarantee: B reports its own task's UPID (or outcome_unknown), never A's; every mutation
 * belongs to exactly one plan.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startProbe, type Probe } from './support/probe.js';

let probe: Probe;
beforeAll(async () => {
  probe = await startProbe({ name: 'adopted-task', guests: [{ vmid: 100, name: 'web', status: 'running' }] });
}, 300_000);
afterAll(async () => probe?.stop());

it('a retry after a lost answer reports its own task, not an earlier plan\'s task on the same guest', async () => {
  const a = await probe.plan('vm.snapshot.create', 100, { snapname: 'probe-a' });
  await probe.apply(a);
  expect((await probe.settle(a)).status).toBe('succeeded');

  probe.env.sims.lab.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/100/snapshot', times: 1 });
  const b = await probe.plan('vm.snapshot.create', 100, { snapname: 'probe-b' });
  await probe.apply(b);
  await probe.settle(b);

  const { violations, text } = await probe.verdict();
  expect(violations.map((v) => v.rule), text).toEqual([]);
}, 300_000);
