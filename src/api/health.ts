// CommonJS package: under Node's ESM loader only its default export is reliable.
import proto from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import type { HealthReport } from './context.js';

/** A live worker re-polls at least every ~70 s (long poll); older last-access times are ghosts. */
const POLLER_FRESH_MS = 90_000;

/**
 * Healthy means: the Temporal frontend answers, and some worker polled our task queue recently
 * for both workflow and activity tasks. Either missing means plans would hang, so we say so.
 */
export function createHealthCheck(client: Client, namespace: string, taskQueue: string): () => Promise<HealthReport> {
  const { TaskQueueType } = proto.temporal.api.enums.v1;
  const pollers = async (taskQueueType: proto.temporal.api.enums.v1.TaskQueueType) => {
    const res = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: taskQueue }, taskQueueType });
    const now = Date.now();
    return (res.pollers ?? []).filter((p) => {
      const t = p.lastAccessTime;
      const ms = t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
      return now - ms < POLLER_FRESH_MS;
    }).length;
  };
  return async () => {
    const checks: HealthReport['checks'] = {};
    try {
      const [workflow, activity] = await Promise.all([
        pollers(TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        pollers(TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
      ]);
      checks.temporal = { ok: true, detail: `namespace ${namespace} reachable` };
      checks.worker = {
        ok: workflow > 0 && activity > 0,
        detail: `${workflow} workflow and ${activity} activity poller(s) on task queue ${taskQueue}`,
      };
    } catch (err) {
      checks.temporal = { ok: false, detail: `Temporal unreachable: ${(err as Error).message}` };
      checks.worker = { ok: false, detail: 'unknown while Temporal is unreachable' };
    }
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  };
}
