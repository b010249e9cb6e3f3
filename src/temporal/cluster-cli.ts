/**
 * `npm run temporal:cluster -- up|down|restart|status|build` (cli.ts registers it): the real cluster of
 * cluster.ts kept in `<repo>/.temporal/cluster`, detached, so `up` returns and a later `down` finds the
 * server and the postmaster through the directory's state (cluster.json, postgres/postgres.json).
 */
import { existsSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { REPO_ROOT, TEMPORAL_SERVER_VERSION } from './cli-locator.js';
import { defaultClusterDir, readClusterState, startTemporalCluster } from './cluster.js';
import { isOurServer, stopPid } from './cluster-server.js';
import { probeTemporal } from './dev-server.js';
import { openLocalPostgres, type LocalPostgres } from './local-postgres.js';
import type { TemporalLog } from './log.js';
import { ensureTemporalServerBinaries } from './server-binaries.js';

/** The database `up` creates for the audit store. */
export const CLUSTER_AUDIT_DATABASE = 'proxmox_audit';

export interface ClusterStatus {
  dir: string;
  exists: boolean;
  address?: string;
  namespace?: string;
  serverPid?: number;
  serverRunning: boolean;
  frontendAnswers: boolean;
  postgresRunning: boolean;
  auditUrl?: string;
}

async function openPostgres(dir: string): Promise<LocalPostgres | undefined> {
  // Only an initialised cluster: openLocalPostgres would run initdb on an empty directory.
  if (!existsSync(join(dir, 'postgres', 'data', 'PG_VERSION'))) return undefined;
  return openLocalPostgres({ dir: join(dir, 'postgres') });
}

export async function clusterStatus(dir: string): Promise<ClusterStatus> {
  const state = readClusterState(dir);
  const pg = await openPostgres(dir);
  if (!state || !pg) return { dir, exists: false, serverRunning: false, frontendAnswers: false, postgresRunning: pg ? await pg.isRunning() : false };
  const address = `${state.host}:${state.ports.frontend}`;
  const serverRunning = state.serverPid !== undefined && isOurServer(state.serverPid, dir);
  return {
    dir,
    exists: true,
    address,
    namespace: state.namespace,
    serverPid: serverRunning ? state.serverPid : undefined,
    serverRunning,
    frontendAnswers: serverRunning && (await probeTemporal(address, state.namespace, 3000)).ok,
    postgresRunning: await pg.isRunning(),
    auditUrl: pg.url(CLUSTER_AUDIT_DATABASE),
  };
}

/** Stops the server (by its recorded pid) and PostgreSQL; keeps the data. */
export async function stopClusterDir(dir: string, log: TemporalLog): Promise<void> {
  const state = readClusterState(dir);
  if (state?.serverPid !== undefined && isOurServer(state.serverPid, dir)) {
    const t = Date.now();
    await stopPid(state.serverPid, 'SIGTERM');
    log(`Temporal server (pid ${state.serverPid}) stopped in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  const pg = await openPostgres(dir);
  if (pg && (await pg.isRunning())) {
    await pg.stop('fast');
    log('PostgreSQL stopped');
  }
}

function printUp(s: ClusterStatus, tookMs: number | undefined): void {
  const rel = relative(process.cwd(), s.dir) || '.';
  const line = '─'.repeat(72);
  console.log(
    [
      line,
      ` Temporal cluster ${tookMs === undefined ? 'already running' : `up in ${(tookMs / 1000).toFixed(1)} s`} (server ${TEMPORAL_SERVER_VERSION}, PostgreSQL persistence and visibility)`,
      `  address    : ${s.address}`,
      `  namespace  : ${s.namespace}`,
      `  state      : ${rel}  (server log ${join(rel, 'server.log')})`,
      ' Point the service at it:',
      `  export TEMPORAL_ADDRESS=${s.address} TEMPORAL_NAMESPACE=${s.namespace}`,
      ` The audit store may use the same PostgreSQL (audit.postgres.url: { env: PA_AUDIT_DATABASE_URL }):`,
      `  export PA_AUDIT_DATABASE_URL='${s.auditUrl}'`,
      ' No Web UI (the server has none; the dev server embeds one). Stop: npm run temporal:cluster -- down',
      line,
    ].join('\n'),
  );
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number (1-65535)');
  return n;
}

interface UpOptions {
  dir: string;
  port: number;
  namespace: string;
}

async function up(o: UpOptions, log: TemporalLog): Promise<void> {
  const before = await clusterStatus(o.dir);
  if (before.serverRunning && before.postgresRunning) {
    printUp(before, undefined);
    return;
  }
  const started = Date.now();
  const cluster = await startTemporalCluster({ dir: o.dir, frontendPort: o.port, namespace: o.namespace, detached: true, log });
  await cluster.createDatabase(CLUSTER_AUDIT_DATABASE);
  const t = cluster.timings;
  log(`timings: PostgreSQL ${t.postgres} ms, schema ${t.schema} ms, server: frontend ${t.server.frontend} ms, namespace ${t.server.namespace} ms, probe workflow ${t.server.probe} ms`);
  printUp(await clusterStatus(o.dir), Date.now() - started);
}

/** Adds `cluster` and its subcommands to the `temporal-cli` program. */
export function registerClusterCommand(program: Command, log: TemporalLog): void {
  const cluster = program.command('cluster').description('a real Temporal cluster on PostgreSQL in .temporal/cluster (docs/temporal-server.md)');
  const dirOption = ['--dir <dir>', 'state directory', defaultClusterDir()] as const;
  const withUpOptions = (c: Command) =>
    c
      .option(...dirOption)
      .option('--port <port>', 'gRPC frontend port (kept for the cluster once chosen)', parsePort, 7233)
      .option('--namespace <ns>', 'namespace to create and register the search attributes on', process.env.TEMPORAL_NAMESPACE || 'default');

  withUpOptions(cluster.command('up').description('build if needed, start PostgreSQL and the server in the background, create the namespace and search attributes')).action(
    async (o: UpOptions) => {
      await up(o, log);
      process.exit(0);
    },
  );

  cluster
    .command('down')
    .description('stop the server and PostgreSQL (the data stays)')
    .option(...dirOption)
    .option('--purge', 'also delete the state directory (all workflows and databases)')
    .action(async (o: { dir: string; purge?: boolean }) => {
      await stopClusterDir(o.dir, log);
      if (o.purge) {
        rmSync(o.dir, { recursive: true, force: true });
        log(`deleted ${o.dir}`);
      }
    });

  withUpOptions(cluster.command('restart').description('down, then up (same data)')).action(async (o: UpOptions) => {
    await stopClusterDir(o.dir, log);
    await up(o, log);
    process.exit(0);
  });

  cluster
    .command('status')
    .description('is it running? (exit 0 when the frontend answers, 3 otherwise)')
    .option(...dirOption)
    .option('--json', 'print JSON')
    .action(async (o: { dir: string; json?: boolean }) => {
      const { auditUrl: _secret, ...s } = await clusterStatus(o.dir);
      if (o.json) console.log(JSON.stringify(s, null, 2));
      else if (!s.exists) console.log(`no cluster in ${o.dir} (npm run temporal:cluster -- up)`);
      else {
        console.log(`server     : ${s.serverRunning ? `running, pid ${s.serverPid}, ${s.frontendAnswers ? `answering on ${s.address}` : `not answering on ${s.address}`}` : 'stopped'}`);
        console.log(`namespace  : ${s.namespace}`);
        console.log(`PostgreSQL : ${s.postgresRunning ? 'running' : 'stopped'}`);
      }
      process.exitCode = s.frontendAnswers ? 0 : 3;
    });

  cluster
    .command('build')
    .description(`build .temporal/bin/server and .temporal/bin/sql (${TEMPORAL_SERVER_VERSION}) and copy the PostgreSQL schema, if missing (for CI)`)
    .option('--force', 'rebuild even if up to date')
    .action(async (o: { force?: boolean }) => {
      const b = await ensureTemporalServerBinaries({ log, force: o.force ?? false, repoRoot: REPO_ROOT });
      console.log([b.server, b.sqlTool, b.postgresSchemaDir].join('\n'));
    });
}
