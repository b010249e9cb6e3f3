/**
 * Entry-point plumbing shared by `npm start`, `npm run api` and `npm run worker`: one way to stop on
 * SIGINT/SIGTERM, one mapping of start-up failures to exit codes (2: configuration, 1: anything else).
 */
import { ConfigError } from './config/load.js';
import type { Config } from './config/schema.js';
import type { Logger } from './logging.js';

export interface Running {
  /** Stops everything the process started, in order. */
  stop(): Promise<void>;
}

export function runMain(name: string, log: Logger, main: () => Promise<Running>, stopping = 'shutting down'): void {
  main().then(
    (running) => {
      let once = false;
      const stop = async (signal: string) => {
        if (once) return;
        once = true;
        log.info({ signal }, `${name} ${stopping}`);
        await running.stop();
        log.info(`${name} stopped`);
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    },
    (err: unknown) => {
      if (err instanceof ConfigError) {
        console.error(`${name}: ${err.message}`);
        process.exit(2);
      }
      log.fatal({ err }, `${name} failed to start`);
      process.exit(1);
    },
  );
}

/**
 * API and worker run apart only against a shared Temporal server and real (or `npm run sim`)
 * Proxmox endpoints: the in-process demo simulator would give each process a cluster of its own.
 */
export function assertSplitDeployment(config: Config, role: string, env: NodeJS.ProcessEnv = process.env): void {
  const simulated = Object.entries(config.environments).filter(([, e]) => 'simulator' in e.proxmox).map(([n]) => n);
  if (simulated.length > 0) {
    throw new ConfigError(
      `environments ${simulated.join(', ')} use the in-process simulator, which only the all-in-one 'npm start' runs; ` +
        "start 'npm run sim' and point those environments at its URLs to run API and worker apart",
    );
  }
  if (!env.TEMPORAL_ADDRESS) throw new ConfigError(`TEMPORAL_ADDRESS must name the Temporal server the ${role} joins`);
}
