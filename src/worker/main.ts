/**
 * `npm run worker`: a worker process on its own (no HTTP API), for deployments that scale workers
 * apart from the API. Several may poll the same task queues. It serves /metrics, /healthz and
 * /readyz on `worker.host:port` (WORKER_PORT), and on SIGTERM lets in-flight activities finish
 * (`worker.shutdownGraceSeconds`) before it exits.
 */
import { loadConfig } from '../config/load.js';
import { createLogger } from '../logging.js';
import { assertSplitDeployment, runMain } from '../process.js';
import { startService } from '../service.js';
import { temporalConnectionOptions, temporalUiUrl } from '../temporal/connection.js';
import { installTemporalRuntime, sdkMetricsAddress } from '../temporal/runtime.js';
import { workflowBundleFromEnv } from './worker.js';

const log = createLogger({ name: 'proxmox-agent-worker' });

runMain('proxmox-agent worker', log, async () => {
  const { config, path } = loadConfig();
  assertSplitDeployment(config, 'worker');
  const { sdkMetricsUrl } = installTemporalRuntime(log, { metricsAddress: await sdkMetricsAddress(config.worker.sdkMetricsAddress) });
  const bundle = workflowBundleFromEnv();
  const uiUrl = temporalUiUrl(); // links in approval notifications
  const service = await startService({
    config,
    configPath: path,
    // TEMPORAL_NAMESPACE, else the config's temporal.namespace.
    temporal: { ...temporalConnectionOptions(process.env, config.temporal), ...(uiUrl ? { uiUrl } : {}) },
    log,
    api: false,
    workerHttp: true,
    ...(bundle ? { workflowBundle: bundle } : {}),
    metrics: sdkMetricsUrl ? { sdkMetricsUrl } : {},
  });
  log.info({ taskQueue: config.temporal.taskQueue, environments: Object.keys(config.environments), http: service.workerUrl, pid: process.pid }, 'worker polling');
  return service;
}, 'shutting down: finishing in-flight activities');
