/**
 * Probe: a 2xx answer whose body is not JSON, after Proxmox executed the request, is not a clean
 * failure.
 *
 * Three plans on one guest, each meeting one garbled 200: the snapshot POST (a task was started),
 * the config PUT (a synchronous change was made), and a task status read while the task runs on.
 * Guarantee: a plan whose request changed Proxmox is reported applied with its UPID, or
 * outcome_unknown with what was seen, never as a plain failure.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startProbe, type Probe } from './support/probe.js';

let probe: Probe;
beforeAll(async () => {
  probe = await startProbe({ name: 'garbled-2xx', guests: [{ vmid: 100, name: 'web', status: 'running' }] });
}, 300_000);
afterAll(async () => probe?.stop());

it('garbled 200s after dispatch end as applied or outcome_unknown, never as a clean failure', async () => {
  const f = probe.env.sims.lab.faults;
  f.garbleAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/100/snapshot', times: 1 });
  const snapshot = await probe.plan('vm.snapshot.create', 100, { snapname: 'probe-garbled' });
  await probe.apply(snapshot);
  await probe.settle(snapshot);
  await probe.quiet();

  f.garbleAfterDispatch({ method: 'PUT', path: '/nodes/*/qemu/100/config', times: 1 });
  const config = await probe.plan('vm.config.update', 100, { description: 'probe garbled config' });
  await probe.apply(config);
  await probe.settle(config);
  await probe.quiet();

  f.slowTasks(4000, { method: 'POST', path: '/nodes/*/qemu/100/snapshot', times: 1 });
  f.garbleAfterDispatch({ method: 'GET', path: '/nodes/*/tasks/*/status', times: 1 });
  const polled = await probe.plan('vm.snapshot.create', 100, { snapname: 'probe-garbled-poll' });
  await probe.apply(polled);
  await probe.settle(polled);

  const { violations, text } = await probe.verdict();
  expect(violations.map((v) => v.rule), text).toEqual([]);
}, 300_000);
