import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { Logger } from '../logging.js';
import type { Metrics } from './metrics.js';

/**
 * Every activity attempt, counted and logged with the run it belongs to: `planId` (= workflowId),
 * `workflowId`, `runId`, activity type, attempt and task queue on every line. Inputs are never
 * logged (a request's params are the caller's business, and the audit log already has them); a
 * failure is logged by its class and message only.
 */
export function activityObservability(deps: { metrics?: Metrics; log: Logger }): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const info = ctx.info;
        const run = info.workflowExecution;
        const log = deps.log.child({
          ...(run ? { planId: run.workflowId, workflowId: run.workflowId, runId: run.runId } : {}),
          activity: info.activityType,
          attempt: info.attempt,
          taskQueue: info.taskQueue,
        });
        const started = performance.now();
        const record = (outcome: string, error: string) => {
          const seconds = (performance.now() - started) / 1000;
          deps.metrics?.activityExecutions.inc({ activity: info.activityType, task_queue: info.taskQueue, outcome, error });
          deps.metrics?.activityDuration.observe({ activity: info.activityType, outcome }, seconds);
          return Math.round(seconds * 1000);
        };
        try {
          const result = await next(input);
          const ms = record('completed', '');
          // Local activities (reads, policy, audit appends) are many and short: debug level.
          log[info.isLocal ? 'debug' : 'info']({ ms }, 'activity completed');
          return result;
        } catch (err) {
          const type = errorClass(err);
          const outcome = type === 'CancelledFailure' || type === 'AbortError' ? 'cancelled' : 'failed';
          const ms = record(outcome, type);
          log.warn({ ms, error: { type, message: (err as Error)?.message ?? String(err) } }, `activity ${outcome}`);
          throw err;
        }
      },
    },
  });
}

/** An ApplicationFailure's type (what retry policies match), else the error's class name. */
function errorClass(err: unknown): string {
  const e = err as { name?: unknown; type?: unknown } | undefined;
  if (e?.name === 'ApplicationFailure' && typeof e.type === 'string' && e.type) return e.type;
  return typeof e?.name === 'string' && e.name ? e.name : 'Unknown';
}
