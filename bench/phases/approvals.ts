/**
 * The sampled waiting plans applied and approved, one at a time by default, with the others still
 * waiting: each timed from the approval's POST to the run's close (`succeeded`).
 */
import { readRss, runLanes } from '../harness.js';
import { TOKENS, type BenchOperations } from '../operations.js';
import type { WaitingPlans } from '../result.js';
import type { BenchEnvironment } from '../setup/environment.js';
import { percentile } from '../stats.js';
import { sample, type HistoryReader } from './histories.js';
import type { WaitingPlan } from './waiting-plans.js';

export interface Approvals {
  approvalToSucceeded: WaitingPlans['approvalToSucceeded'];
  /** The worker's RSS after the approvals. */
  afterRss: { rssMiB: number; hwmMiB: number };
  /** History events of five of the approved runs. */
  highRiskApproved: number[];
}

export async function measureApprovals(bench: BenchEnvironment, ops: BenchOperations, reader: HistoryReader, sampled: WaitingPlan[]): Promise<Approvals> {
  const { settings, http, workers } = bench;
  bench.log(`approving ${sampled.length}`);
  const latencies: number[] = [];
  await bench.measure('waiting plans: approvals', () =>
    runLanes(settings.approvalConcurrency, sampled.length, async (seq) => {
      const p = sampled[seq]!;
      const a = await http.call('POST', '/v1/actions/apply', TOKENS.agent, { planId: p.planId, requestHash: p.requestHash });
      if (a.status !== 202 || a.body.status !== 'awaiting_approval') throw new Error(`apply: ${a.status} ${JSON.stringify(a.body)}`);
      const t0 = performance.now();
      const r = await http.call('POST', `/v1/actions/${p.planId}/approvals`, TOKENS.approver, { decision: 'approve' });
      if (r.status !== 202) throw new Error(`approve: ${r.status} ${JSON.stringify(r.body)}`);
      const end = await ops.waitTerminal(p.planId);
      if (end.status !== 'succeeded') throw new Error(`plan ${p.planId} ended ${JSON.stringify(end)}`);
      latencies.push(performance.now() - t0);
    }),
  );
  const afterRss = readRss(workers.product.pid);
  const highRiskApproved = await Promise.all(sample(sampled.map((s) => s.planId), 5).map((id) => reader.length(id, 'highRiskApproved')));
  return {
    approvalToSucceeded: { n: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies) },
    afterRss,
    highRiskApproved,
  };
}
