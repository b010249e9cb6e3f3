/**
 * Probe: a Proxmox read slower than the execute activity's heartbeat timeout must not make two
 * attempts dispatch.
 *
 * A lab reboot (no approval). Once the apply is accepted (the re-check passed), the guest's next status
 * read answers after 13 s: that is the execute activity's own read before it dispatches, longer than
 * its 10 s heartbeat timeout, so Temporal may start a second attempt while the first still waits for
 * its read. Guarantee: one reboot (or none, reported as such), every mutation belonging to exactly one
 * plan, and no task stopped.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startProbe, type Probe } from './support/probe.js';

let probe: Probe;
beforeAll(async () => {
  probe = await startProbe({ name: 'slow-read-duplicate', guests: [{ vmid: 100, name: 'web', status: 'running' }] });
}, 300_000);
afterAll(async () => probe?.stop());

it('an execute attempt that outlived its heartbeat timeout in a slow read does not dispatch a second reboot', async () => {
  const run = await probe.plan('vm.reboot', 100);
  await probe.apply(run);
  probe.env.sims.lab.faults.slowResponses(13_000, { method: 'GET', path: '/nodes/*/qemu/100/status/current', times: 1 });
  probe.event('arm-slow-recheck', run.spec.label, 'the next status read of 100 answers after 13 s');
  await probe.settle(run);

  const { violations, text } = await probe.verdict();
  expect(violations.map((v) => v.rule), text).toEqual([]);
}, 300_000);
