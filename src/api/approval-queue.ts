/**
 * What waits for a human: runs whose `ProxmoxStatus` search attribute is `awaiting_approval`, found
 * through Temporal visibility and then read through each run's `state` query, which is authoritative
 * (visibility is eventually consistent, so a run that moved on since is dropped).
 *
 * Oldest first, in pages. Visibility lists newest first and (on SQL stores) cannot sort, so a page
 * lists the pending ids from the cursor on, sorts them by (start time, plan id) and reads the first
 * `limit`: the plans closest to expiry are never hidden behind newer ones.
 */
import type { Client } from '@temporalio/client';
import { PLAN_ID_PATTERN } from '../domain/plan-id.js';
import type { PlanView } from '../domain/plan-view.js';
import { ProxmoxEnvironment, ProxmoxStatus } from '../temporal/search-attributes.js';
import type { PlanGateway } from './plan-gateway.js';
import { ApiError } from './problems.js';

export interface ApprovalQueueOptions {
  client: Client;
  taskQueue: string;
  plans: Pick<PlanGateway, 'state'>;
  /** Parallel state queries (default 8). */
  concurrency?: number;
}

/** A position in the queue: the start time (ms) and plan id of the last plan a page held. */
export interface PendingCursor {
  startMs: number;
  planId: string;
}

export interface PendingFilter {
  /** The caller's environments; '*' for all. */
  environments: readonly string[];
  limit: number;
  /** Only plans after this position. */
  after?: PendingCursor;
}

export interface PendingPage {
  items: PlanView[];
  /** Where the next page starts; absent on the last page. */
  next?: PendingCursor;
}

/**
 * The cursor's wire form, `<start ms>.<plan id>`: every string matching it is a valid position (so a
 * well-formed cursor never fails), and the OpenAPI document states the pattern.
 */
export const CURSOR_PATTERN = new RegExp(`^([0-9]{1,13})\\.(${PLAN_ID_PATTERN.source.slice(1, -1)})$`);

export function encodeCursor(c: PendingCursor): string {
  return `${c.startMs}.${c.planId}`;
}

export function decodeCursor(s: string): PendingCursor | undefined {
  const m = CURSOR_PATTERN.exec(s);
  return m ? { startMs: Number(m[1]), planId: m[2]! } : undefined;
}

/** Queue order: start time, then plan id (two plans may start in the same millisecond). */
function compareKeys(a: PendingCursor, b: PendingCursor): number {
  return a.startMs - b.startMs || (a.planId < b.planId ? -1 : a.planId > b.planId ? 1 : 0);
}

/** The visibility query: this deployment's task queue, open runs, awaiting approval, the caller's environments. */
export function pendingQuery(taskQueue: string, environments: readonly string[], after?: PendingCursor): string {
  const q = (v: string) => {
    if (/["'\\]/.test(v)) throw new ApiError('internal', 'a visibility query value contains a quote');
    return `"${v}"`;
  };
  const clauses = [
    `WorkflowType = "actionWorkflow"`,
    `TaskQueue = ${q(taskQueue)}`,
    `ExecutionStatus = "Running"`,
    `${ProxmoxStatus.name} = "awaiting_approval"`,
  ];
  if (!environments.includes('*')) clauses.push(`${ProxmoxEnvironment.name} IN (${environments.map(q).join(', ')})`);
  // >= and the millisecond floor: visibility keeps microseconds, the cursor milliseconds; the plans of
  // that millisecond up to the cursor's plan id are skipped after sorting.
  if (after) clauses.push(`StartTime >= ${q(new Date(after.startMs).toISOString())}`);
  return clauses.join(' AND ');
}

export function createApprovalQueue({ client, taskQueue, plans, concurrency = 8 }: ApprovalQueueOptions) {
  return {
    async pending({ environments, limit, after }: PendingFilter): Promise<PendingPage> {
      if (environments.length === 0) return { items: [] };
      const keys: PendingCursor[] = [];
      for await (const run of client.workflow.list({ query: pendingQuery(taskQueue, environments, after), pageSize: 1000 })) {
        const key = { startMs: run.startTime.getTime(), planId: run.workflowId };
        if (!after || compareKeys(key, after) > 0) keys.push(key);
      }
      keys.sort(compareKeys);
      const page = keys.slice(0, limit);
      const views = await mapLimit(page, concurrency, async ({ planId }) => {
        try {
          return await plans.state(planId);
        } catch (err) {
          if (err instanceof ApiError && (err.code === 'plan-not-found' || err.code === 'plan-not-ready')) return undefined;
          throw err;
        }
      });
      const visible = (v: PlanView) => environments.includes('*') || environments.includes(v.environment);
      return {
        // A plan that moved on since visibility saw it is left out: a page may hold fewer than `limit`.
        items: views.filter((v): v is PlanView => v !== undefined && v.status === 'awaiting_approval' && visible(v)),
        ...(keys.length > limit ? { next: page[page.length - 1]! } : {}),
      };
    },
  };
}

export type ApprovalQueue = ReturnType<typeof createApprovalQueue>;

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
