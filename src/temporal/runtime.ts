import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../logging.js';

let installed = false;

/**
 * Route the Temporal SDK's logs (worker state, workflow and activity loggers) into our pino logger,
 * with planId = workflowId on every line that belongs to a run. Installs once per process: the SDK
 * allows one Runtime.
 */
export function installTemporalRuntime(log: Logger, level: LogLevel = 'WARN'): void {
  if (installed) return;
  installed = true;
  const sdkLog = log.child({ component: 'temporal-sdk' });
  Runtime.install({
    logger: new DefaultLogger(level, ({ level: l, message, meta }) => {
      const fields = { ...meta, ...(typeof meta?.workflowId === 'string' ? { planId: meta.workflowId } : {}) };
      const method = l === 'TRACE' ? 'trace' : l === 'DEBUG' ? 'debug' : l === 'INFO' ? 'info' : l === 'WARN' ? 'warn' : 'error';
      sdkLog[method](fields, message);
    }),
  });
}
