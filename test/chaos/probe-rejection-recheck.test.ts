/**
 * Probe: a rejection the API accepts while the apply-time re-check runs must stop the plan.
 *
 * A lab rollback (high risk, one approval): alice approves, the agent applies, and carol rejects right
 * behind the apply while the re-check reads the guest (two reads made 3 s slow, as a loaded Proxmox
 * answers). Guarantee: if the API answers 202 "rejected", the plan ends
 * rejected and nothing is rolled back; if the API refuses the rejection, the plan may go on.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sleep, startProbe, type Probe } from './support/probe.js';

let probe: Probe;
beforeAll(async () => {
  probe = await startProbe({ name: 'rejection-recheck', guests: [{ vmid: 100, name: 'web', status: 'running', snapshots: ['probe-rb'] }] });
}, 300_000);
afterAll(async () => probe?.stop());

it('a rejection accepted during the apply-time re-check is not ignored', async () => {
  const run = await probe.plan('vm.snapshot.rollback', 100, { snapname: 'probe-rb' }, 'reject-race');
  await probe.decide(run, 'alice', 'approve');
  probe.env.sims.lab.faults.slowResponses(3000, { method: 'GET', path: '/nodes/*/qemu/100/**', times: 2 });
  probe.event('arm-slow-recheck', run.spec.label, 'the next 2 reads of 100 answered after 3 s');
  const applying = probe.apply(run);
  await sleep(200);
  const rejected = await probe.decide(run, 'carol', 'reject');
  await applying;
  await probe.settle(run);

  const { violations, text } = await probe.verdict();
  console.log(`[rejection-recheck] the API answered the rejection ${rejected.status} ${JSON.stringify(rejected.body?.status ?? rejected.body?.type)}`);
  expect(violations.map((v) => v.rule), text).toEqual([]);
}, 300_000);
