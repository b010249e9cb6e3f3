/**
 * The operations the bench times: (a) and (a′) the floors, (b) a plan, (c) a plan and its apply until
 * the run succeeds; and the API calls the later phases make of plans.
 */
import { WithStartWorkflowOperation } from '@temporalio/client';
import { floorUpdate, type floorLocalWorkflow, type floorWorkflow } from './floor-workflow.js';
import { sleep } from './harness.js';
import { LAB } from './setup/simulators.js';
import type { BenchEnvironment } from './setup/environment.js';

export const TOKENS = { agent: 'demo-agent-token', approver: 'demo-approver-1-token' };
const TERMINAL = new Set(['succeeded', 'failed', 'rejected', 'expired', 'denied']);
/** Lanes of (c) mutate the lab's first half of guests, lane by lane; (b) plans on the second half. */
const HALF = LAB.count / 2;

export interface PlanReply {
  planId: string;
  requestHash: string;
}

export type BenchOperations = ReturnType<typeof benchOperations>;

export function benchOperations(bench: BenchEnvironment) {
  const { http, client, tag, workers } = bench;
  if (bench.settings.concurrency > HALF) throw new Error(`BENCH_CONCURRENCY may be at most ${HALF} (lanes need a guest each)`);

  const floorSeq = { floorWorkflow: 0, floorLocalWorkflow: 0 };
  const floorId = (type: keyof typeof floorSeq) => `${type === 'floorWorkflow' ? 'floor' : 'floor-local'}-${tag}-${floorSeq[type]}`;
  /** A bare Update-with-Start of either floor (bench/floor-workflow.ts), through the TypeScript client. */
  const floor = async (type: keyof typeof floorSeq) => {
    floorSeq[type]++;
    await client.workflow.executeUpdateWithStart(floorUpdate, {
      args: ['x'],
      startWorkflowOperation: new WithStartWorkflowOperation<typeof floorWorkflow | typeof floorLocalWorkflow>(type, {
        workflowId: floorId(type),
        taskQueue: workers.floorQueue,
        workflowIdConflictPolicy: 'FAIL',
      }),
    });
  };
  let snap = 0;
  const plan = async (vmid: number): Promise<PlanReply> => {
    const r = await http.call('POST', '/v1/actions/plan', TOKENS.agent, {
      action: 'vm.snapshot.create',
      environment: 'lab',
      target: { vmid },
      params: { snapname: `b${++snap}` },
      reason: 'benchmark',
    });
    if (r.status !== 201 || r.body.status !== 'planned') throw new Error(`plan: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as PlanReply;
  };
  const getPlan = async (planId: string, query = '') => {
    const r = await http.call('GET', `/v1/actions/${planId}${query}`, TOKENS.agent);
    if (r.status !== 200) throw new Error(`GET ${planId}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as { status: string };
  };
  /**
   * The end of a run, without loading the service with status queries: a run closes in the
   * workflow task that sets its terminal status, and no query can see that status before the task
   * completes; so the close (a history long poll) is the first moment a client could see it. One
   * GET then confirms it through the API.
   */
  const waitTerminal = async (planId: string, timeoutMs = 60_000) => {
    const timer = sleep(timeoutMs).then(() => {
      throw new Error(`plan ${planId} did not end within ${timeoutMs} ms`);
    });
    await Promise.race([client.workflow.getHandle(planId).result(), timer]);
    return getPlan(planId);
  };
  /** The same through the API only, as an agent would: the long poll, from status to status. */
  const waitTerminalLongPoll = async (planId: string, from: string) => {
    let status = from;
    for (let i = 0; i < 20 && !TERMINAL.has(status); i++) status = (await getPlan(planId, `?wait=30s&status=${status}`)).status;
    return { status };
  };
  /** The plans (c) applied, in order; a phase may empty it to collect its own. */
  const appliedPlans: string[] = [];
  const planAndApply = async (lane: number, longPoll: boolean) => {
    const p = await plan(LAB.first + (lane % HALF));
    const a = await http.call('POST', '/v1/actions/apply', TOKENS.agent, { planId: p.planId, requestHash: p.requestHash });
    if (a.status !== 202) throw new Error(`apply: ${a.status} ${JSON.stringify(a.body)}`);
    const end = longPoll ? await waitTerminalLongPoll(p.planId, a.body.status) : await waitTerminal(p.planId);
    if (end.status !== 'succeeded') throw new Error(`plan ${p.planId} ended ${JSON.stringify(end)}`);
    appliedPlans.push(p.planId);
  };
  /** A guest of the lab's second half, which (c) never mutates. */
  const spareGuest = (seq: number) => LAB.first + HALF + (seq % HALF);
  return {
    /** The cells' operations, as runLanes calls them. */
    cells: {
      /** (a): the update awaits one no-op activity. */
      a: () => floor('floorWorkflow'),
      /** (a′): the update awaits one no-op local activity, as a plan's awaits `assess`. */
      aLocal: () => floor('floorLocalWorkflow'),
      b: async (seq: number) => void (await plan(spareGuest(seq))),
      c: (_seq: number, lane: number) => planAndApply(lane, false),
    },
    /** (c′): plan + apply, its end seen through the long poll. */
    planAndApplyLongPoll: (_seq: number, lane: number) => planAndApply(lane, true),
    appliedPlans,
    /** The workflow id of the last run of (a), or of (a′). */
    lastFloorId: (local = false) => floorId(local ? 'floorLocalWorkflow' : 'floorWorkflow'),
    plan,
    spareGuest,
    getPlan,
    waitTerminal,
  };
}
