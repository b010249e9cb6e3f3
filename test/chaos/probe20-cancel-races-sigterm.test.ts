/**
 * Probe: an operator cancel that races a worker's SIGTERM while the run's task runs.
 *
 * One worker (2 s shutdown grace); a backup whose vzdump task runs 20 s. Two seconds into the task the
 * worker gets SIGTERM and the operator cancels the run, at the same moment or 1 s later (inside the
 * shutdown grace); the worker is started again once it has exited. Guarantee: the task is stopped only
 * because of the operator's cancel (it may be, or may finish), and the plan's result names the task's
 * UPID whatever it says.
 *
 * PASSES (both orderings, 1 run of the file, plus 1 earlier run of the simultaneous one;
 * `nice -n 19 npx vitest run --config test/chaos/vitest.config.ts test/chaos/probe20-cancel-races-sigterm.test.ts`):
 * each plan failed Cancelled with its own vzdump UPID, the oracle clean.
 */
import { expect, it } from 'vitest';
import { sleep } from './support/probe.js';
import { useProbe } from './support/use-probe.js';

const probe = useProbe({ name: 'cancel-races-sigterm', guests: [{ vmid: 100, name: 'web', status: 'running' }], workers: 1, shutdownGraceSeconds: 2 });

/** A backup whose task has run 2 s, then the worker's SIGTERM and the operator's cancel `cancelAfterMs` apart. */
async function cancelDuringShutdown(notes: string, cancelAfterMs: number): Promise<void> {
  const sim = probe().env.sims.lab;
  sim.faults.slowTasks(20_000, { method: 'POST', path: '/nodes/*/vzdump', times: 1 });
  const run = await probe().plan('vm.backup', 100, { storage: 'local', notes });
  await probe().apply(run);
  const req = await dispatchOf(notes);
  await sleep(req.time + 2000 - Date.now());
  const worker = probe().env.workers[0]!;
  probe().event('sigterm', worker.name, `the operator cancels ${cancelAfterMs} ms later`);
  const term = worker.term();
  await sleep(cancelAfterMs);
  await probe().cancel(run);
  await term;
  await worker.start();
  await probe().settle(run, 180_000);
  await probe().quiet();

  const { violations, text } = await probe().verdict();
  expect(violations.map((v) => v.rule), text).toEqual([]);
  expect(run.final?.result?.upid, text).toBe(req.upid);
}

/** The vzdump request of the backup with these notes, once it started its task. */
async function dispatchOf(notes: string) {
  for (;;) {
    const req = probe().env.sims.lab.requests.all().find((r) => r.upid && r.path.endsWith('/vzdump') && String(r.params?.['notes-template'] ?? '').startsWith(notes));
    if (req) return req;
    await sleep(250);
  }
}

it('a cancel sent with the worker\'s SIGTERM leaves a plan that names the task it started', () => cancelDuringShutdown('probe-cancel-sigterm-0', 0), 300_000);

it('a cancel sent during the worker\'s shutdown grace leaves a plan that names the task it started', () => cancelDuringShutdown('probe-cancel-sigterm-1', 1000), 300_000);
