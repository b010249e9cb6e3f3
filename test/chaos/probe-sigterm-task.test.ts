/**
 * Probe: a worker shutting down must not stop the Proxmox task it waits on.
 *
 * One worker with a 2 s shutdown grace; a backup whose vzdump task runs 12 s. While the task runs the
 * worker gets SIGTERM (a deploy, a scale-down) and is started again. Guarantee: a task is stopped only
 * when an operator cancels its run; the backup is made exactly once and the plan reports its UPID.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sleep, startProbe, type Probe } from './support/probe.js';

let probe: Probe;
beforeAll(async () => {
  probe = await startProbe({ name: 'sigterm-task', guests: [{ vmid: 100, name: 'web', status: 'running' }], workers: 1, shutdownGraceSeconds: 2 });
}, 300_000);
afterAll(async () => probe?.stop());

it('SIGTERM of the worker while the backup task runs leaves the task running, and the plan follows it to the end', async () => {
  const sim = probe.env.sims.lab;
  sim.faults.slowTasks(12_000, { method: 'POST', path: '/nodes/*/vzdump' });
  const run = await probe.plan('vm.backup', 100, { storage: 'local', notes: 'probe-sigterm' });
  await probe.apply(run);
  // Wait until the vzdump task has run for 2 s, then shut the worker down.
  for (let i = 0; i < 120; i++) {
    const req = sim.requests.all().find((r) => r.upid && r.path.endsWith('/vzdump'));
    if (req && Date.now() - req.time > 2000) break;
    await sleep(250);
  }
  const worker = probe.env.workers[0]!;
  probe.event('sigterm', worker.name, 'the vzdump task runs');
  await worker.term();
  await worker.start();
  await probe.settle(run);

  const { violations, text } = await probe.verdict();
  expect(violations.map((v) => v.rule), text).toEqual([]);
  expect(run.final?.status, text).toBe('succeeded');
}, 300_000);
