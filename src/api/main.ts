/**
 * `npm run api`: the HTTP API on its own (no worker), talking to the Temporal server named by
 * TEMPORAL_ADDRESS. Workers run apart (`npm run worker`).
 */
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger } from '../logging.js';
import { startService } from '../service.js';
import { temporalConnectionOptions, temporalUiUrl } from '../temporal/connection.js';

const log = createLogger({ name: 'proxmox-agent-api' });

async function main(): Promise<void> {
  const { config, path } = loadConfig();
  if (Object.values(config.environments).some((e) => 'simulator' in e.proxmox)) {
    throw new ConfigError("the in-process simulator runs only with the all-in-one 'npm start'; point environments at 'npm run sim' URLs");
  }
  if (!process.env.TEMPORAL_ADDRESS) throw new ConfigError('TEMPORAL_ADDRESS must name the Temporal server the API uses');
  const uiUrl = temporalUiUrl();
  const service = await startService({ config, configPath: path, temporal: { ...temporalConnectionOptions(), ...(uiUrl ? { uiUrl } : {}) }, log, worker: false });
  log.info({ api: service.url }, 'API listening');
  const stop = async (signal: string) => {
    log.info({ signal }, 'API shutting down: draining in-flight requests');
    await service.stop();
    log.info('API stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    console.error(`proxmox-agent api: ${err.message}`);
    process.exit(2);
  }
  log.fatal({ err }, 'API failed to start');
  process.exit(1);
});
