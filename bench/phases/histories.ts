/**
 * History events of each kind of run: five low-risk plan + apply runs, a run of each floor and a plan alone,
 * made one at a time on a quiet system, so that their timelines show where a run's time goes.
 */
import type { Client } from '@temporalio/client';
import { describeEvent, eventMs } from '../history-events.js';
import { runLanes } from '../harness.js';
import type { BenchOperations } from '../operations.js';
import type { HistoryLengths } from '../result.js';

export interface HistoryReader {
  /** The events of a run; with `kind`, its timeline is kept in `eventTypes[kind]` (the last one read). */
  length(workflowId: string, kind?: string): Promise<number>;
  eventTypes: Record<string, string[]>;
}

export function historyReader(client: Client): HistoryReader {
  const eventTypes: Record<string, string[]> = {};
  return {
    eventTypes,
    async length(workflowId, kind) {
      const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
      if (kind) {
        const t0 = eventMs(events[0]);
        eventTypes[kind] = events.map((e) => `+${String(Math.round(eventMs(e) - t0)).padStart(5)} ms  ${describeEvent(e)}`);
      }
      return events.length;
    },
  };
}

/** Every k-th of `xs`, at most k of them, spread over the whole. */
export const sample = <T>(xs: T[], k: number) => xs.filter((_, i) => i % Math.max(1, Math.floor(xs.length / k)) === 0).slice(0, k);

/** All but `highRiskApproved`, which the approvals phase reads. */
export async function sampleHistories(ops: BenchOperations, reader: HistoryReader): Promise<Omit<HistoryLengths, 'highRiskApproved'>> {
  ops.appliedPlans.length = 0;
  await runLanes(1, 5, ops.cells.c);
  const lowRiskPlanApply = await Promise.all(ops.appliedPlans.map((id) => reader.length(id, 'lowRiskPlanApply')));
  await ops.cells.a();
  const floor = [await reader.length(ops.lastFloorId(), 'floor')];
  await ops.cells.aLocal();
  const floorLocal = [await reader.length(ops.lastFloorId(true), 'floorLocal')];
  const lone = await ops.plan(ops.spareGuest(0));
  const planOnly = [await reader.length(lone.planId, 'planOnly')];
  return { lowRiskPlanApply, floor, floorLocal, planOnly };
}
