/**
 * `npm start`: the whole service in one process — Temporal dev server (unless TEMPORAL_ADDRESS),
 * worker, HTTP API, and in demo mode the Proxmox simulator.
 */
import { loadConfig } from './config/load.js';
import { createLogger } from './logging.js';
import { runMain } from './process.js';
import { startService } from './service.js';
import { resolveTemporal } from './temporal/connection.js';
import { installTemporalRuntime, sdkMetricsAddress } from './temporal/runtime.js';
import { workflowBundleFromEnv } from './worker/worker.js';

const log = createLogger();

runMain('proxmox-agent', log, async () => {
  const { config, path, demo } = loadConfig();
  const simulated = Object.entries(config.environments).filter(([, e]) => 'simulator' in e.proxmox).map(([n]) => n);
  const { sdkMetricsUrl } = installTemporalRuntime(log, { metricsAddress: await sdkMetricsAddress(config.worker.sdkMetricsAddress) });
  // TEMPORAL_NAMESPACE, else the config's temporal.namespace (the dev server creates it).
  const temporal = await resolveTemporal({ log: (m) => log.info(m), namespace: config.temporal.namespace });
  const bundle = workflowBundleFromEnv();
  const service = await startService({
    config,
    configPath: path,
    temporal: { ...temporal.connectionOptions, ...(temporal.uiUrl ? { uiUrl: temporal.uiUrl } : {}) },
    log,
    ...(bundle ? { workflowBundle: bundle } : {}),
    // One process, one /metrics: the API's series, the worker's, and the Temporal SDK's.
    metrics: sdkMetricsUrl ? { sdkMetricsUrl } : {},
  });

  if (simulated.length > 0) {
    console.error(banner([
      'DEMO MODE: no real Proxmox is configured.',
      `Environments ${simulated.join(', ')} run against the built-in Proxmox SIMULATOR.`,
      'Nothing you do here touches a real cluster. Set PROXMOX_AGENT_CONFIG to use your own.',
    ]));
  }
  log.info(
    { api: service.url, temporal: temporal.address, ui: temporal.uiUrl, config: demo ? 'demo' : path, environments: Object.keys(config.environments) },
    'proxmox-agent is up',
  );
  console.error(
    `\n  API        ${service.url}\n  Temporal   ${temporal.address} (namespace ${temporal.namespace})\n  Web UI     ${temporal.uiUrl ?? '(external server: set TEMPORAL_UI_URL for links)'}\n  Health     ${service.url}/healthz  ${service.url}/readyz\n  Metrics    ${service.url}/metrics\n`,
  );

  return {
    async stop() {
      await service.stop();
      await temporal.stop();
    },
  };
});

function banner(lines: string[]): string {
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const bar = '#'.repeat(width);
  return ['', bar, ...lines.map((l) => `# ${l.padEnd(width - 4)} #`), bar, ''].join('\n');
}
