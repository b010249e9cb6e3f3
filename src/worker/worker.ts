import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Worker,
  type ActivityInterceptorsFactory,
  type InjectedSinks,
  type NativeConnection,
  type WorkerOptions as SdkWorkerOptions,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import type { Activities } from '../activities/index.js';
import type { WorkerConfig } from '../config/schema.js';
import { environmentTaskQueue } from '../temporal/task-queues.js';

/**
 * The workflow sources, bundled at start when no bundle is given (and always with tracing on, whose
 * interceptors go into the bundle): beside this module, or, from a built entry point (dist/bin/),
 * under the project's src/.
 */
export const WORKFLOWS_PATH =
  ['../workflows/index.ts', '../../src/workflows/index.ts'].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((p) => existsSync(p)) ??
  fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/** Where `npm run build` writes the workflow bundle, relative to the built entry points in dist/bin/ (never beside src/worker/). */
const BUILT_WORKFLOW_BUNDLE = fileURLToPath(new URL('../workflow-bundle.js', import.meta.url));

/**
 * `WORKFLOW_BUNDLE` names a workflow bundle built ahead (`npm run build` → dist/, done in the
 * Dockerfile): workers then skip bundling at start. Explicit on purpose: a stale bundle in a
 * checkout would run old workflow code.
 */
export function workflowBundleFromEnv(env: NodeJS.ProcessEnv = process.env): { codePath: string } | undefined {
  const path = env.WORKFLOW_BUNDLE?.trim();
  // A built worker (dist/bin/worker.mjs, npm run build) loads the bundle built with it.
  if (!path) return existsSync(BUILT_WORKFLOW_BUNDLE) ? { codePath: BUILT_WORKFLOW_BUNDLE } : undefined;
  const codePath = resolve(path);
  if (!existsSync(codePath)) throw new Error(`WORKFLOW_BUNDLE=${path}: no such file (build it with npm run build)`);
  return { codePath };
}

/**
 * Runs kept in memory between their workflow tasks. Most plans wait minutes or hours for apply and
 * approvals; kept in memory, each costs ~230 KB (the SDK default, ~600 per GB of heap, let 10,000
 * waiting plans grow a worker past 900 MB). Evicted, a waiting plan costs nothing until its next
 * message, which replays its few dozen events first: a few milliseconds (docs/benchmarks.md).
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 100;

/** The activities that call Proxmox to change (or stop) something: they run on the environment's task queue. */
export const PROXMOX_ACTIVITIES = ['executeAction', 'stopDispatch'] as const satisfies readonly (keyof Activities)[];

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: Activities;
  /** Environment name → its server-side activity rate limit (`maxTaskQueueActivitiesPerSecond`). */
  environments: Readonly<Record<string, { maxActivitiesPerSecond: number }>>;
  /** A prebuilt bundle (tests build it once; `dist/` in an image); otherwise the workflows are bundled from source. */
  workflowBundle?: WorkflowBundleOption;
  identity?: string;
  tuning?: Partial<Omit<WorkerConfig, 'host' | 'port'>>;
  activityInterceptors?: ActivityInterceptorsFactory[];
  /** Workflow interceptor modules (bundled from source; ignored with a prebuilt bundle). */
  workflowInterceptorModules?: string[];
  sinks?: InjectedSinks<Record<string, never>>;
}

/**
 * The workers of one process (docs/operations.md, "Scaling workers"):
 *  - the main worker polls `taskQueue` for workflow tasks, their local activities (assess, audit,
 *    the dispatch status) and the notifier;
 *  - one activity-only worker per environment polls `<taskQueue>-<environment>` for the Proxmox
 *    mutation, rate-limited server-side so that all workers together stay under the environment's
 *    `maxActivitiesPerSecond`.
 */
export async function createWorkers(opts: WorkerOptions): Promise<Worker[]> {
  const t = opts.tuning ?? {};
  const common = {
    connection: opts.connection,
    namespace: opts.namespace,
    ...(opts.identity ? { identity: opts.identity } : {}),
    // Let a running Proxmox task finish its wait before shutting down; one still running then is
    // left running on Proxmox, and the next attempt (another worker) follows it through the
    // dispatch journal.
    shutdownGraceTime: `${t.shutdownGraceSeconds ?? 30}s`,
    // Heartbeats reach the server at most a second apart (the SDK's default is 0.8 × the 10 s heartbeat
    // timeout): a run cancelled while its Proxmox task runs learns it, and stops the task, within ~1 s
    // instead of up to 8 s. One cheap call a second per running task.
    maxHeartbeatThrottleInterval: '1s',
    ...(opts.activityInterceptors ? { interceptors: { activity: opts.activityInterceptors } } : {}),
    ...(t.maxConcurrentActivityTaskExecutions ? { maxConcurrentActivityTaskExecutions: t.maxConcurrentActivityTaskExecutions } : {}),
  } satisfies Partial<SdkWorkerOptions>;

  const workers: Worker[] = [];
  try {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: opts.taskQueue,
        activities: Object.fromEntries(Object.entries(opts.activities).filter(([name]) => !(PROXMOX_ACTIVITIES as readonly string[]).includes(name))),
        ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
        interceptors: {
          ...common.interceptors,
          ...(opts.workflowInterceptorModules ? { workflowModules: opts.workflowInterceptorModules } : {}),
        },
        ...(opts.sinks ? { sinks: opts.sinks } : {}),
        ...(t.maxConcurrentWorkflowTaskExecutions ? { maxConcurrentWorkflowTaskExecutions: t.maxConcurrentWorkflowTaskExecutions } : {}),
        ...(t.maxConcurrentLocalActivityExecutions ? { maxConcurrentLocalActivityExecutions: t.maxConcurrentLocalActivityExecutions } : {}),
        maxCachedWorkflows: t.maxCachedWorkflows ?? DEFAULT_MAX_CACHED_WORKFLOWS,
      }),
    );
    const proxmoxActivities = Object.fromEntries(PROXMOX_ACTIVITIES.map((name) => [name, opts.activities[name]]));
    for (const [environment, { maxActivitiesPerSecond }] of Object.entries(opts.environments)) {
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: environmentTaskQueue(opts.taskQueue, environment),
          activities: proxmoxActivities,
          // Enforced by the server for the whole queue; every worker of the queue must send the same value.
          maxTaskQueueActivitiesPerSecond: maxActivitiesPerSecond,
        }),
      );
    }
  } catch (err) {
    // Workers that were created hold the connection: release them before reporting the failure.
    await Promise.allSettled(workers.map((w) => w.runUntil(Promise.resolve())));
    throw err;
  }
  return workers;
}
