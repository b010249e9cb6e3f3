// CommonJS package: under Node's ESM loader only its default export is reliable.
import proto from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import type { TemporalWatch } from '../temporal/watch.js';
import { environmentTaskQueue } from '../workflows/messages.js';
import type { HealthReport } from './context.js';

/** A live worker re-polls at least every ~70 s (long poll); older last-access times are ghosts. */
const POLLER_FRESH_MS = 90_000;

/** How long the poller questions may take before `/healthz` answers without them. */
const POLLERS_DEADLINE_MS = 2_000;

/**
 * Healthy means: the Temporal frontend answers, the namespace knows the project's search attributes
 * (both from the watch, which never waits), some worker polled our task queue recently for both
 * workflow and activity tasks, and each environment's task queue (its Proxmox mutations) has an
 * activity poller. Anything missing means plans would hang, so we say so.
 *
 * "Recently" is within 90 s, as the server reports it or, when a restarted server has not heard from
 * the workers yet (they re-poll on their own, the SDK backing off up to 10 s), as it reported before.
 */
export function createHealthCheck(client: Client, watch: Pick<TemporalWatch, 'status'>, taskQueue: string, environments: readonly string[] = []): () => Promise<HealthReport> {
  const { TaskQueueType } = proto.temporal.api.enums.v1;
  const namespace = client.options.namespace;
  const lastSeen = new Map<string, number>();
  const pollers = async (taskQueueType: proto.temporal.api.enums.v1.TaskQueueType, name = taskQueue) => {
    const res = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name }, taskQueueType });
    const now = Date.now();
    const fresh = (res.pollers ?? []).map((p) => {
      const t = p.lastAccessTime;
      return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
    }).filter((ms) => now - ms < POLLER_FRESH_MS);
    const key = `${name}/${taskQueueType}`;
    if (fresh.length > 0) lastSeen.set(key, Math.max(...fresh));
    const seen = lastSeen.get(key);
    return { count: fresh.length, earlier: fresh.length === 0 && seen !== undefined && now - seen < POLLER_FRESH_MS ? Math.round((now - seen) / 1000) : undefined };
  };
  const describe = (p: { count: number; earlier: number | undefined }, kind: string) =>
    p.earlier === undefined ? `${p.count} ${kind} poller(s)` : `no ${kind} poller reported since the server restarted (one polled ${p.earlier} s ago)`;
  return async () => {
    const temporal = watch.status();
    const checks: HealthReport['checks'] = { ...temporal.checks };
    if (!temporal.reachable) {
      checks.worker = { ok: false, detail: 'unknown while Temporal is unreachable' };
      return { ok: false, checks };
    }
    try {
      const [workflow, activity, ...perEnvironment] = await client.connection.withDeadline(Date.now() + POLLERS_DEADLINE_MS, () =>
        Promise.all([
          pollers(TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
          pollers(TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
          ...environments.map((env) => pollers(TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, environmentTaskQueue(taskQueue, env))),
        ]),
      );
      const polled = (p: { count: number; earlier: number | undefined }) => p.count > 0 || p.earlier !== undefined;
      checks.worker = {
        ok: polled(workflow!) && polled(activity!),
        detail: `${describe(workflow!, 'workflow')} and ${describe(activity!, 'activity')} on task queue ${taskQueue}`,
      };
      environments.forEach((env, i) => {
        const p = perEnvironment[i] ?? { count: 0, earlier: undefined };
        checks[`worker.${env}`] = { ok: polled(p), detail: `${describe(p, 'activity')} on task queue ${environmentTaskQueue(taskQueue, env)}` };
      });
    } catch (err) {
      checks.worker = { ok: false, detail: `unknown: asking Temporal for the task queue's pollers failed: ${(err as Error).message}` };
    }
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  };
}

/**
 * Ready to serve (`/readyz`): the config loaded (or the process would not run), the Temporal
 * frontend answers for our namespace, which knows the project's search attributes, and the process
 * is not shutting down. Unlike `/healthz` it does not ask for workers: an API may take traffic
 * while workers restart (plans then wait). It reads the watch's verdict and never waits on Temporal.
 */
export function createReadinessCheck(watch: Pick<TemporalWatch, 'status'>, stopping: () => boolean): () => Promise<HealthReport> {
  return async () => {
    if (stopping()) return { ok: false, checks: { process: { ok: false, detail: 'shutting down' } } };
    const checks: HealthReport['checks'] = { process: { ok: true, detail: 'config loaded' }, ...watch.status().checks };
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  };
}
