import type { Worker, WorkflowBundleOption } from '@temporalio/worker';
import type { Activities } from '../activities/index.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../logging.js';
import { activityObservability } from '../observability/activity-interceptor.js';
import type { Metrics } from '../observability/metrics.js';
import { OTEL_WORKFLOW_INTERCEPTORS, tracingActivityInterceptors, tracingSinks, type Tracing } from '../observability/tracing.js';
import { connectPatiently, connectWorkerConnection, type TemporalConnectionOptions } from '../temporal/connection.js';
import { createWorkers } from '../worker/worker.js';

export interface WorkerParts {
  temporal: TemporalConnectionOptions;
  namespace: string;
  taskQueue: string;
  activities: Activities;
  config: Config;
  metrics: Metrics;
  log: Logger;
  tracing?: Tracing | undefined;
  /** Prebuilt workflow code; otherwise bundled from source here. */
  workflowBundle?: WorkflowBundleOption | undefined;
  /** Logs a retry of the connection while Temporal is not reachable yet, saying what waits. */
  waiting: (what: string) => (err: Error, waitMs: number) => void;
  /** Registers a stop; the service runs them in reverse order. */
  defer: (stop: () => Promise<void>) => void;
}

/**
 * Connects the workers (main queue and one per environment, src/worker/worker.ts) and runs them.
 * Both steps wait for a Temporal that is not reachable yet instead of the process exiting.
 */
export async function startWorkers(p: WorkerParts): Promise<Worker[]> {
  const { tracing } = p;
  const connection = await connectPatiently(() => connectWorkerConnection(p.temporal), { onRetry: p.waiting('worker') });
  p.defer(() => connection.close());
  // Workflow interceptors live in the bundle: with tracing on, the workflows are bundled here.
  const bundle = tracing ? undefined : p.workflowBundle;
  // Worker.create describes the namespace: a Temporal that went down after the connection was
  // made (a restart) is waited for here too.
  const workers = await connectPatiently(() => createWorkers({
    connection,
    namespace: p.namespace,
    taskQueue: p.taskQueue,
    activities: p.activities,
    environments: p.config.environments,
    tuning: p.config.worker,
    activityInterceptors: [activityObservability({ metrics: p.metrics, log: p.log }), ...(tracing ? [tracingActivityInterceptors(tracing)] : [])],
    ...(bundle ? { workflowBundle: bundle } : {}),
    ...(tracing ? { workflowInterceptorModules: [OTEL_WORKFLOW_INTERCEPTORS], sinks: tracingSinks(tracing) } : {}),
  }), { onRetry: p.waiting('worker start') });
  p.defer(runWorkers(workers, p.log));
  return workers;
}

/**
 * Runs the workers and returns their stop. A worker that stops with an error is logged (the others
 * keep running). The stop shuts them all down at once: each waits up to shutdownGraceSeconds for
 * its in-flight activities.
 */
function runWorkers(workers: readonly Worker[], log: Logger): () => Promise<void> {
  const running = workers.map((worker) => {
    const run = worker.run();
    run.catch((err) => log.error({ err, taskQueue: worker.options.taskQueue }, 'worker stopped with an error'));
    return run;
  });
  return async () => {
    for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    await Promise.allSettled(running);
  };
}
