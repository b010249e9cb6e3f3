/**
 * Everything the phases run against, started in order: Temporal, the Proxmox simulators, the two
 * worker processes, the HTTP API in this process (like `npm run api`) and a Temporal client for the
 * floor. Each piece registers its own stop with `defer`, so a failure part-way stops what started.
 */
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logging.js';
import { startService } from '../../src/service.js';
import { connectConnection } from '../../src/temporal/connection.js';
import { CpuMeter, httpClient } from '../harness.js';
import type { PhaseCpu } from '../result.js';
import type { BenchSettings } from '../settings.js';
import { startSimulators, type BenchSimulators } from './simulators.js';
import { writeServiceConfig } from './service-config.js';
import { startBenchTemporal, type BenchTemporal } from './temporal.js';
import { startWorkers, type BenchWorkers } from './workers.js';

export interface BenchEnvironment {
  settings: BenchSettings;
  log: (message: string) => void;
  /** Unique per run: names task queues and floor workflow ids. */
  tag: string;
  temporal: BenchTemporal;
  sims: BenchSimulators;
  workers: BenchWorkers;
  http: ReturnType<typeof httpClient>;
  client: Client;
  /** Run one phase and record its CPU, ours per process and everybody else's, in `interference`. */
  measure<T>(phase: string, fn: () => Promise<T>): Promise<T>;
  interference: PhaseCpu[];
}

export async function startEnvironment(opts: {
  settings: BenchSettings;
  log: (message: string) => void;
  tmp: string;
  tag: string;
  defer: (stop: () => Promise<unknown>) => void;
}): Promise<BenchEnvironment> {
  const { settings, log, tmp, tag, defer } = opts;
  // A dev server (fresh SQLite, headless, random port) or a throw-away cluster.
  const temporal = await startBenchTemporal(settings.temporal, tmp, log, settings.visibilityRps);
  defer(() => temporal.stop());
  const { address, namespace } = temporal;
  const sims = await startSimulators(tmp, settings.approvals, defer);
  const { configPath, env } = writeServiceConfig({ tmp, tag, temporal, sims, workerTuning: settings.workerTuning });
  const workers = await startWorkers({ settings, tmp, tag, env, defer });

  const { config } = loadConfig(env);
  const api = await startService({
    config,
    configPath,
    temporal: { address, namespace },
    log: createLogger({ level: env.LOG_LEVEL ?? 'info', destination: pino.destination({ dest: join(tmp, 'api.log'), sync: false }) }),
    worker: false,
    env,
  });
  defer(() => api.stop());
  const http = httpClient(api.url!, settings.concurrency * 2 + 8);
  defer(() => http.close());
  const connection = await connectConnection({ address, namespace });
  defer(() => connection.close());
  const client = new Client({ connection, namespace });

  const meter = new CpuMeter(() => ({ 'bench+API': process.pid, worker: workers.product.pid, 'floor worker': workers.floor.pid, simulator: sims.process.pid, ...temporal.processes() }));
  const interference: PhaseCpu[] = [];
  const measure = async <T>(phase: string, fn: () => Promise<T>): Promise<T> => {
    meter.start();
    const out = await fn();
    const m = meter.stop();
    interference.push({ phase, ...m, foreignCores: m.foreignCpuSeconds / m.wallSeconds });
    return out;
  };
  return { settings, log, tag, temporal, sims, workers, http, client, measure, interference };
}
