/**
 * What an approver's `approvals list` costs with the plans waiting: the first page, and a page from
 * the middle of the queue; one call at a time, then ten at once.
 */
import { TOKENS } from '../operations.js';
import type { ParallelListing, WaitingPlans } from '../result.js';
import type { BenchEnvironment } from '../setup/environment.js';
import { fmt, percentile } from '../stats.js';
import type { WaitingPlan } from './waiting-plans.js';

export async function measureApprovalLists(bench: BenchEnvironment, sampled: WaitingPlan[]): Promise<Pick<WaitingPlans, 'approvalList' | 'approvalListParallel'>> {
  const { settings, log, http } = bench;
  // The middle page's cursor is built from the middle sampled plan (the samples are spread over the
  // whole queue); its createdAt trails its start by the first workflow task, which makes it a valid
  // position all the same.
  const listLatencies: number[] = [];
  const mid = sampled[Math.floor(sampled.length / 2)];
  const middle = mid ? `${Date.parse(mid.createdAt)}.${mid.planId}` : undefined;
  for (let i = 0; i < 10; i++) {
    const query = i % 2 === 1 && middle ? `&cursor=${middle}` : '';
    const t0 = performance.now();
    const r = await http.call('GET', `/v1/approvals?limit=50${query}`, TOKENS.approver);
    listLatencies.push(performance.now() - t0);
    if (r.status !== 200) throw new Error(`approvals list: ${r.status} ${JSON.stringify(r.body)}`);
  }
  // Ten approvers listing at once (issue 13 item 1): what the visibility rate limit costs.
  const parallelList = async (query: string): Promise<ParallelListing> => {
    const all: number[] = [];
    const rounds: number[] = [];
    for (let round = 0; round < settings.listRounds; round++) {
      const times = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const t0 = performance.now();
          const r = await http.call('GET', `/v1/approvals${query}`, TOKENS.approver);
          if (r.status !== 200) throw new Error(`approvals list: ${r.status} ${JSON.stringify(r.body)}`);
          return performance.now() - t0;
        }),
      );
      all.push(...times);
      rounds.push(Math.max(...times));
      log(`ten parallel GET /v1/approvals${query.slice(0, 12)}: p50 ${fmt(percentile(times, 50), 0)} ms, max ${fmt(Math.max(...times), 0)} ms`);
    }
    return { n: all.length, p50: percentile(all, 50), max: Math.max(...all), rounds };
  };
  const approvalListParallel = { first: await parallelList(''), middle: await parallelList(middle ? `?cursor=${middle}` : '') };
  return {
    approvalList: { n: listLatencies.length, p50: percentile(listLatencies, 50), max: Math.max(...listLatencies) },
    approvalListParallel,
  };
}
