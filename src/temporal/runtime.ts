import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../logging.js';
import { getFreePort } from './dev-server.js';

let installed: { sdkMetricsUrl?: string } | undefined;

export interface TemporalRuntimeOptions {
  /** SDK log level (default WARN). */
  level?: LogLevel;
  /**
   * `host:port` for the SDK core's Prometheus endpoint (`temporal_*` series: task latencies, slots,
   * pollers, sticky cache…). Absent: no SDK metrics. `/metrics` of the process appends them.
   */
  metricsAddress?: string;
}

/**
 * Route the Temporal SDK's logs (worker state, workflow and activity loggers) into our pino logger,
 * with planId = workflowId on every line that belongs to a run, and optionally expose the SDK's
 * metrics. Installs once per process: the SDK allows one Runtime.
 */
export function installTemporalRuntime(log: Logger, opts: TemporalRuntimeOptions = {}): { sdkMetricsUrl?: string } {
  if (installed) return installed;
  const sdkLog = log.child({ component: 'temporal-sdk' });
  Runtime.install({
    logger: new DefaultLogger(opts.level ?? 'WARN', ({ level: l, message, meta }) => {
      const fields = { ...meta, ...(typeof meta?.workflowId === 'string' ? { planId: meta.workflowId } : {}) };
      // Activity-only workers (one per environment queue) have no workflows by design.
      const expected = message === 'No workflows registered, not polling for workflow tasks';
      const method = expected || l === 'DEBUG' ? 'debug' : l === 'TRACE' ? 'trace' : l === 'INFO' ? 'info' : l === 'WARN' ? 'warn' : 'error';
      sdkLog[method](fields, message);
    }),
    ...(opts.metricsAddress
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: opts.metricsAddress, countersTotalSuffix: true, useSecondsForDurations: true } } } }
      : {}),
  });
  installed = opts.metricsAddress ? { sdkMetricsUrl: `http://${opts.metricsAddress}/metrics` } : {};
  return installed;
}

/** The configured SDK metrics address, or a free loopback port (the SDK's endpoint stays private; /metrics relays it). */
export async function sdkMetricsAddress(configured?: string): Promise<string> {
  return configured ?? `127.0.0.1:${await getFreePort('127.0.0.1')}`;
}
