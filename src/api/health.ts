// CommonJS package: under Node's ESM loader only its default export is reliable.
import proto from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import { environmentTaskQueue } from '../workflows/messages.js';
import type { HealthReport } from './context.js';

/** A live worker re-polls at least every ~70 s (long poll); older last-access times are ghosts. */
const POLLER_FRESH_MS = 90_000;

/**
 * Healthy means: the Temporal frontend answers, some worker polled our task queue recently for both
 * workflow and activity tasks, and each environment's task queue (its Proxmox mutations) has an
 * activity poller. Anything missing means plans would hang, so we say so.
 */
export function createHealthCheck(client: Client, namespace: string, taskQueue: string, environments: readonly string[] = []): () => Promise<HealthReport> {
  const { TaskQueueType } = proto.temporal.api.enums.v1;
  const pollers = async (taskQueueType: proto.temporal.api.enums.v1.TaskQueueType, name = taskQueue) => {
    const res = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name }, taskQueueType });
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
      const [workflow, activity, ...perEnvironment] = await Promise.all([
        pollers(TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        pollers(TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        ...environments.map((env) => pollers(TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, environmentTaskQueue(taskQueue, env))),
      ]);
      checks.temporal = { ok: true, detail: `namespace ${namespace} reachable` };
      checks.worker = {
        ok: workflow > 0 && activity > 0,
        detail: `${workflow} workflow and ${activity} activity poller(s) on task queue ${taskQueue}`,
      };
      environments.forEach((env, i) => {
        const n = perEnvironment[i] ?? 0;
        checks[`worker.${env}`] = { ok: n > 0, detail: `${n} activity poller(s) on task queue ${environmentTaskQueue(taskQueue, env)}` };
      });
    } catch (err) {
      checks.temporal = { ok: false, detail: `Temporal unreachable: ${(err as Error).message}` };
      checks.worker = { ok: false, detail: 'unknown while Temporal is unreachable' };
    }
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  };
}

/**
 * Ready to serve (`/readyz`): the config loaded (or the process would not run), the Temporal
 * frontend answers for our namespace, and the process is not shutting down. Unlike `/healthz` it
 * does not ask for workers: an API may take traffic while workers restart (plans then wait).
 */
export function createReadinessCheck(client: Client, namespace: string, stopping: () => boolean): () => Promise<HealthReport> {
  return async () => {
    if (stopping()) return { ok: false, checks: { process: { ok: false, detail: 'shutting down' } } };
    const checks: HealthReport['checks'] = { process: { ok: true, detail: 'config loaded' } };
    try {
      await client.connection.withDeadline(Date.now() + 5000, () => client.workflowService.describeNamespace({ namespace }));
      checks.temporal = { ok: true, detail: `namespace ${namespace} reachable` };
    } catch (err) {
      checks.temporal = { ok: false, detail: `Temporal unreachable: ${(err as Error).message}` };
    }
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  };
}
