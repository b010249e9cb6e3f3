import type { Worker } from '@temporalio/worker';
import type { Logger } from '../logging.js';

/**
 * Runs the workers and returns their stop. A worker that stops with an error is logged (the others
 * keep running). The stop shuts them all down at once: each waits up to shutdownGraceSeconds for
 * its in-flight activities.
 */
export function runWorkers(workers: readonly Worker[], log: Logger): () => Promise<void> {
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
