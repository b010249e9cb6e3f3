/**
 * Probe: one run, one outcome in the audit chain, even when the workflow task that decided an outcome
 * never reached Temporal.
 *
 * A lab stop, planned while the guest is unlocked. Someone locks the guest (as a backup would) and the
 * agent applies: the apply-time re-check (made slow) finds the plan stale and the run records
 * `apply.refused_stale`, but the Temporal server is down at that moment, so that workflow task is
 * lost. By the time Temporal is back the lock is gone: the run's re-check now passes and it stops the
 * guest. Guarantee: the chain holds one outcome for the run, the one the run really had.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sleep, startProbe, type Probe } from './support/probe.js';

let probe: Probe;
beforeAll(async () => {
  probe = await startProbe({ name: 'two-outcomes', guests: [{ vmid: 100, name: 'web', status: 'running' }] });
}, 300_000);
afterAll(async () => probe?.stop());

it('a decision whose workflow task was lost leaves no outcome record behind', async () => {
  const sim = probe.env.sims.lab;
  const run = await probe.plan('vm.stop', 100);
  const guest = sim.model.findGuest(100)!;
  guest.lock = 'backup';
  sim.faults.slowResponses(5000, { method: 'GET', path: '/nodes/*/qemu/100/status/current', times: 1 });
  const applying = probe.apply(run);
  await sleep(1500);
  probe.event('temporal-restart', 'dev server', 'down while the re-check runs');
  const restart = probe.env.temporal.restart(15_000);
  await sleep(9000);
  delete guest.lock;
  await restart;
  await applying;
  await probe.settle(run);

  const { violations, text } = await probe.verdict();
  expect(violations.map((v) => v.rule), text).toEqual([]);
}, 300_000);
