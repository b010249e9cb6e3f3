/** The Temporal server the bench runs against, started here and thrown away after. */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTemporalCli, readTemporalCliVersion, TEMPORAL_SERVER_VERSION } from '../../src/temporal/cli-locator.js';
import { startTemporalCluster } from '../../src/temporal/cluster.js';
import { CLUSTER_HISTORY_SHARDS } from '../../src/temporal/cluster-config.js';
import { DevServerError, getFreePort, startDevServer, type DevServerHandle } from '../../src/temporal/dev-server.js';
import { processTree } from '../harness.js';
import type { BenchTemporalKind } from '../settings.js';

export interface BenchTemporal {
  address: string;
  namespace: string;
  /** For the machine line, e.g. `temporal version … (Server 1.29.1, UI 2.42.1)`. */
  version: string;
  /** Processes to meter: name → pid(s). */
  processes(): Record<string, number | readonly number[]>;
  stop(): Promise<unknown>;
}

/** The dev server on a fresh SQLite file, or a throw-away real cluster (temp directory, free ports). */
export async function startBenchTemporal(kind: BenchTemporalKind, tmp: string, log: (message: string) => void, visibilityRps?: number): Promise<BenchTemporal> {
  if (visibilityRps !== undefined && kind !== 'cluster') throw new Error('BENCH_VISIBILITY_RPS needs --temporal cluster');
  if (kind === 'cluster') {
    const cluster = await startTemporalCluster({ log, ...(visibilityRps !== undefined ? { dynamicConfigOverrides: { 'frontend.namespaceRPS.visibility': visibilityRps } } : {}) });
    const postmaster = () => Number(readFileSync(join(cluster.postgresDataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    log(`Temporal cluster ${cluster.address} (server pid ${cluster.serverPid}, ${cluster.dir})`);
    return {
      address: cluster.address,
      namespace: cluster.namespace,
      version: `Temporal server ${TEMPORAL_SERVER_VERSION} on PostgreSQL (${CLUSTER_HISTORY_SHARDS} history shards)`,
      processes: () => ({ ...(cluster.serverPid ? { temporal: cluster.serverPid } : {}), postgres: processTree(postmaster()) }),
      // The server's log beside the others (kept with BENCH_KEEP=1): the cluster deletes its own directory.
      stop: async () => {
        try {
          copyFileSync(cluster.serverLog, join(tmp, 'temporal-server.log'));
        } finally {
          await cluster.stop();
        }
      },
    };
  }
  const cliPath = await ensureTemporalCli({ log });
  let server: DevServerHandle | undefined;
  for (let attempt = 1; !server; attempt++) {
    try {
      server = await startDevServer({ cliPath, port: await getFreePort(), dbFile: join(tmp, 'temporal.sqlite'), headless: true, reuseExisting: false, log });
    } catch (err) {
      if (!(err instanceof DevServerError && err.code === 'PORT_IN_USE' && attempt < 3)) throw err;
    }
  }
  const dev = server;
  log(`dev server ${dev.address} (pid ${dev.pid})`);
  return {
    address: dev.address,
    namespace: dev.namespace,
    version: readTemporalCliVersion(cliPath)?.raw ?? 'unknown',
    processes: (): Record<string, number> => (dev.pid ? { temporal: dev.pid } : {}),
    stop: () => dev.stop(),
  };
}
