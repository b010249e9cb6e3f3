/**
 * Plans awaiting approval: a fresh worker process, then `waiting` high-risk plans (`vm.delete` on
 * the bulk cluster) made at high concurrency and left waiting; the worker's RSS along the way and
 * once it is quiet. Some of them, spread over the whole queue, are kept for the approvals phase.
 */
import { readRss, runLanes, sleep, waitQuiet } from '../harness.js';
import { TOKENS } from '../operations.js';
import type { BenchEnvironment } from '../setup/environment.js';
import { BULK } from '../setup/simulators.js';
import { fmt, mergeRounds, type CellResult } from '../stats.js';

export interface WaitingPlan {
  planId: string;
  requestHash: string;
  createdAt: string;
}

export interface CreatedWaitingPlans {
  /** The plans kept for approval (`settings.approvals`), in the order they were made. */
  sampled: WaitingPlan[];
  create: CellResult;
  idleRss: { rssMiB: number; hwmMiB: number };
  waitingRss: { rssMiB: number; hwmMiB: number };
  rssCurve: { plans: number; rssMiB: number }[];
}

export async function createWaitingPlans(bench: BenchEnvironment): Promise<CreatedWaitingPlans> {
  const { settings, log, http, workers } = bench;
  log('restarting the worker for the waiting-plans phase');
  await workers.restart();
  await sleep(2000);
  const idleRss = readRss(workers.product.pid);
  const every = Math.max(1, Math.floor(settings.waiting / settings.approvals));
  const sampled: WaitingPlan[] = [];
  const deletePlan = async (seq: number) => {
    const isSample = seq % every === 0 && seq / every < settings.approvals;
    const vmid = isSample ? BULK.first + seq / every : BULK.first + settings.approvals + (seq % BULK.spread);
    const r = await http.call('POST', '/v1/actions/plan', TOKENS.agent, {
      action: 'vm.delete',
      environment: 'bulk',
      target: { vmid },
      params: {},
      reason: 'benchmark: waits for approval',
    });
    if (r.status !== 201 || r.body.status !== 'awaiting_approval') throw new Error(`plan: ${r.status} ${JSON.stringify(r.body)}`);
    if (isSample) sampled.push({ planId: r.body.planId, requestHash: r.body.requestHash, createdAt: r.body.createdAt });
  };
  log(`creating ${settings.waiting} plans that wait for approval`);
  const rssCurve: { plans: number; rssMiB: number }[] = [{ plans: 0, rssMiB: idleRss.rssMiB }];
  const step = Math.max(1, Math.ceil(settings.waiting / 10));
  let done = 0;
  const created = await bench.measure('waiting plans: create', () =>
    runLanes(settings.concurrency, settings.waiting, async (seq) => {
      await deletePlan(seq);
      if (++done % step === 0) rssCurve.push({ plans: done, rssMiB: readRss(workers.product.pid).rssMiB });
    }),
  );
  const create = mergeRounds([created]);
  await waitQuiet(workers.product.pid);
  const waitingRss = readRss(workers.product.pid);
  log(`worker RSS with ${settings.waiting} waiting: ${fmt(waitingRss.rssMiB)} MiB; listing them for approvers`);
  return { sampled, create, idleRss, waitingRss, rssCurve };
}
