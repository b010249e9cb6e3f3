/**
 * `npm run api`: the HTTP API on its own (no worker), talking to the Temporal server named by
 * TEMPORAL_ADDRESS. Workers run apart (`npm run worker`).
 */
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../logging.js';
import { assertSplitDeployment, runMain } from '../../process.js';
import { startService } from '../../service.js';
import { temporalConnectionOptions, temporalUiUrl } from '../../temporal/connection.js';

const log = createLogger({ name: 'proxmox-agent-api' });

runMain('proxmox-agent api', log, async () => {
  const { config, path } = loadConfig();
  assertSplitDeployment(config, 'API');
  const uiUrl = temporalUiUrl();
  // The namespace: TEMPORAL_NAMESPACE, else the config's temporal.namespace.
  const service = await startService({ config, configPath: path, temporal: { ...temporalConnectionOptions(process.env, config.temporal), ...(uiUrl ? { uiUrl } : {}) }, log, worker: false });
  log.info({ api: service.url }, 'API listening');
  return service;
}, 'shutting down: draining in-flight requests');
