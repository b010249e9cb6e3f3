/**
 * What waits for a human: runs whose `ProxmoxStatus` search attribute is `awaiting_approval`, found
 * through Temporal visibility and then read through each run's `state` query, which is authoritative
 * (visibility is eventually consistent, so a run that moved on since is dropped).
 */
import type { Client } from '@temporalio/client';
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

export interface PendingFilter {
  /** The caller's environments; '*' for all. */
  environments: readonly string[];
  limit: number;
}

/** The visibility query: this deployment's task queue, open runs, awaiting approval, the caller's environments. */
export function pendingQuery(taskQueue: string, environments: readonly string[]): string {
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
  return clauses.join(' AND ');
}

export function createApprovalQueue({ client, taskQueue, plans, concurrency = 8 }: ApprovalQueueOptions) {
  return {
    async pending({ environments, limit }: PendingFilter): Promise<PlanView[]> {
      if (environments.length === 0) return [];
      const ids: string[] = [];
      for await (const run of client.workflow.list({ query: pendingQuery(taskQueue, environments), pageSize: Math.min(limit, 100) })) {
        ids.push(run.workflowId);
        if (ids.length >= limit) break;
      }
      const views = await mapLimit(ids, concurrency, async (id) => {
        try {
          return await plans.state(id);
        } catch (err) {
          if (err instanceof ApiError && (err.code === 'plan-not-found' || err.code === 'plan-not-ready')) return undefined;
          throw err;
        }
      });
      const visible = (v: PlanView) => environments.includes('*') || environments.includes(v.environment);
      return views
        .filter((v): v is PlanView => v !== undefined && v.status === 'awaiting_approval' && visible(v))
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
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
