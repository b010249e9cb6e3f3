import type { Worker } from '@temporalio/worker';
import type { TemporalWatch } from '../temporal/watch.js';
import type { Probe } from '../worker/http.js';

/**
 * The worker process's `/healthz` and `/readyz` (src/worker/http.ts). Temporal's side comes from the
 * watch (this process's own probe of the frontend), the workers' from the SDK: healthy while every
 * worker runs and polls for activities. Ready is the same unless the process is shutting down.
 *
 * `workers` is read at each probe: the HTTP server starts before the workers exist, so that probes
 * and scrapes see the whole start and drain.
 */
export function workerProbes(workers: () => readonly Worker[], watch: Pick<TemporalWatch, 'status'>, stopping: () => boolean): { health: () => Probe; ready: () => Probe } {
  const health = (): Probe => {
    const all = workers();
    const idle = all.filter((w) => w.getState() !== 'RUNNING' || w.getStatus().activityPollerState !== 'POLLING');
    const polling = idle.length === 0 && all.length > 0;
    const checks = {
      ...watch.status().checks,
      workers: polling
        ? { ok: true, detail: `${all.length} worker(s) polling: ${all.map((w) => w.options.taskQueue).join(', ')}` }
        : { ok: false, detail: `not polling: ${idle.map((w) => `${w.options.taskQueue} (${w.getState()})`).join(', ') || 'no workers'}` },
    };
    const failing = Object.values(checks).filter((c) => !c.ok);
    return { ok: failing.length === 0, detail: failing.length === 0 ? checks.workers.detail : failing.map((c) => c.detail).join('; '), checks };
  };
  const ready = (): Probe => (stopping() ? { ok: false, detail: 'shutting down', checks: { process: { ok: false, detail: 'shutting down' } } } : health());
  return { health, ready };
}
