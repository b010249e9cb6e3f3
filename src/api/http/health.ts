// CommonJS package: under Node's ESM loader only its default export is reliable.
import proto from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import type { TemporalWatch } from '../../temporal/watch.js';
import type { HealthReport } from './context.js';
import { environmentTaskQueue } from '../../temporal/task-queues.js';

/** A live worker re-polls at least every ~70 s (long poll); older last-access times are ghosts. */
const POLLER_FRESH_MS = 90_000;

/** Deadline of the poller questions (they run on in the background past what `/healthz` waits). */
const POLLERS_DEADLINE_MS = 2_000;

/**
 * How long `/healthz` waits for the poller answers before it answers with the last ones it had. It
 * also stops waiting as soon as the watch says Temporal is down (checked every 50 ms): a hung
 * frontend must not hold the endpoint past the watch's verdict (issue 13: 503 within 3 s).
 */
const POLLERS_WAIT_MS = 800;
const WATCH_EVERY_MS = 50;

/**
 * Healthy means: the Temporal frontend answers, the namespace knows the project's search attributes
 * (both from the watch, which never waits), some worker polled our task queue recently for both
 * workflow and activity tasks, and each environment's task queue (its Proxmox mutations) has an
 * activity poller. Anything missing means plans would hang, so we say so.
 *
 * "Recently" is within 90 s, as the server reports it or, when a restarted server has not heard from
 * the workers yet (they re-poll on their own, the SDK backing off up to 10 s), as it reported before.
 *
 * Never waits long on Temporal: one poller question at a time (callers meanwhile share it), answered
 * from the watch at once while it says down, and after `POLLERS_WAIT_MS`, or as soon as the watch turns
 * to down, from the last answer the question had (or "unknown" when there is none).
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
  type Workers = HealthReport['checks'];
  /** The last poller answer, and the question now running (at most one). */
  let last: Workers | undefined;
  let asking: Promise<Workers> | undefined;
  const askWorkers = async (): Promise<Workers> => {
    const checks: Workers = {};
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
    last = checks;
    return checks;
  };
  /** The poller answer, or undefined once `POLLERS_WAIT_MS` passed or the watch said down first. */
  const workersWithin = (): Promise<Workers | undefined> => {
    asking ??= askWorkers().finally(() => (asking = undefined));
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<undefined>((resolve) => {
      const started = Date.now();
      const look = () => (!watch.status().reachable || Date.now() - started >= POLLERS_WAIT_MS ? resolve(undefined) : (timer = setTimeout(look, WATCH_EVERY_MS)));
      timer = setTimeout(look, WATCH_EVERY_MS);
    });
    return Promise.race([asking, gaveUp]).finally(() => clearTimeout(timer));
  };
  const unreachable = (checks: HealthReport['checks']) => {
    checks.worker = { ok: false, detail: 'unknown while Temporal is unreachable' };
    return { ok: false, checks };
  };
  return async () => {
    const temporal = watch.status();
    if (!temporal.reachable) return unreachable({ ...temporal.checks });
    const workers = await workersWithin();
    // The watch may have turned while the question ran: its verdict, not a stale 200.
    const now = watch.status();
    if (!now.reachable) return unreachable({ ...now.checks });
    const checks: HealthReport['checks'] = {
      ...now.checks,
      ...(workers ?? last ?? { worker: { ok: false, detail: `unknown: Temporal did not say within ${POLLERS_WAIT_MS} ms which workers poll task queue ${taskQueue}` } }),
    };
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  };
}

/**
 * Ready to serve (`/readyz`): the config loaded (or the process would not run), the Temporal
 * frontend answers for our namespace, which knows the project's search attributes, and the process
 * is not shutting down. Unlike `/healthz` it does not ask for workers: an API may take traffic
 * while workers restart (plans then wait). It reads the watch's verdict and never waits on Temporal.
 */
export function createReadinessCheck(
  watch: Pick<TemporalWatch, 'status'>,
  stopping: () => boolean,
  /**
   * Checks shown beside the verdict but not part of it: the connection doctor's last result per
   * environment (`doctor.<env>`, ok when it found no blocker). A missing Proxmox privilege or an
   * unreachable cluster is no reason to take this process out of a load balancer: another replica
   * has the same config and token, the other environments and every read still work, and plans
   * there say what Proxmox refused. Alert on these details (or `proxmox-agent doctor`) instead.
   */
  details: () => HealthReport['checks'] = () => ({}),
): () => Promise<HealthReport> {
  return async () => {
    if (stopping()) return { ok: false, checks: { process: { ok: false, detail: 'shutting down' } } };
    const checks: HealthReport['checks'] = { process: { ok: true, detail: 'config loaded' }, ...watch.status().checks };
    return { ok: Object.values(checks).every((c) => c.ok), checks: { ...checks, ...details() } };
  };
}
