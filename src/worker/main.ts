/**
 * `npm run worker`: a worker process on its own (no HTTP API), for deployments that scale workers
 * apart from the API. Several may poll the same task queues. It serves /metrics, /healthz and
 * /readyz on `worker.host:port` (WORKER_PORT), and on SIGTERM lets in-flight activities finish
 * (`worker.shutdownGraceSeconds`) before it exits.
 */
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger } from '../logging.js';
import { startService } from '../service.js';
import { temporalConnectionOptions, temporalUiUrl } from '../temporal/connection.js';
import { installTemporalRuntime, sdkMetricsAddress } from '../temporal/runtime.js';
import { workflowBundleFromEnv } from './worker.js';

const log = createLogger({ name: 'proxmox-agent-worker' });

async function main(): Promise<void> {
  const { config, path } = loadConfig();
  const simulated = Object.entries(config.environments).filter(([, e]) => 'simulator' in e.proxmox).map(([n]) => n);
  if (simulated.length > 0) {
    throw new ConfigError(
      `environments ${simulated.join(', ')} use the in-process simulator, which only the all-in-one 'npm start' runs; ` +
        "start 'npm run sim' and point those environments at its URLs to run API and worker apart",
    );
  }
  if (!process.env.TEMPORAL_ADDRESS) throw new ConfigError('TEMPORAL_ADDRESS must name the Temporal server a separate worker joins');
  const { sdkMetricsUrl } = installTemporalRuntime(log, { metricsAddress: await sdkMetricsAddress(config.worker.sdkMetricsAddress) });
  const bundle = workflowBundleFromEnv();
  const uiUrl = temporalUiUrl(); // links in approval notifications
  const service = await startService({
    config,
    configPath: path,
    temporal: { ...temporalConnectionOptions(), ...(uiUrl ? { uiUrl } : {}) },
    log,
    api: false,
    workerHttp: true,
    ...(bundle ? { workflowBundle: bundle } : {}),
    metrics: sdkMetricsUrl ? { sdkMetricsUrl } : {},
  });
  log.info({ taskQueue: config.temporal.taskQueue, environments: Object.keys(config.environments), http: service.workerUrl, pid: process.pid }, 'worker polling');
  const stop = async (signal: string) => {
    log.info({ signal }, 'worker shutting down: finishing in-flight activities');
    await service.stop();
    log.info('worker stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    console.error(`proxmox-agent worker: ${err.message}`);
    process.exit(2);
  }
  log.fatal({ err }, 'worker failed to start');
  process.exit(1);
});
