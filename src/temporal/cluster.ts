/**
 * A real Temporal cluster on this machine: the Temporal server 1.29.1 (`.temporal/bin/server`, all four
 * services in one process) on a private PostgreSQL cluster (local-postgres.ts) for persistence and SQL
 * visibility, loopback only, with the namespace and the project's search attributes in place. The
 * production shape the dev server is not: docs/temporal-server.md, "A real cluster on this machine".
 *
 * `startTemporalCluster()` gives a throw-away cluster (a temp directory, free ports, deleted by
 * `stop()`), for tests and the benchmark; `npm run temporal:cluster -- up` (cluster-cli.ts) keeps one
 * in `<repo>/.temporal/cluster`, detached, found again through its state file `cluster.json`.
 *
 * Layout of the directory: `cluster.json` (ports, namespace, server pid),
 * `config/production.yaml` (0600: holds the database password), `dynamicconfig.yaml`, `server.log`,
 * `postgres/` (PGDATA, its log, the superuser's password).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT, TEMPORAL_SERVER_VERSION } from './cli-locator.js';
import { CLUSTER_PORT_NAMES, overrideDynamicConfig, renderDynamicConfig, renderServerConfig, type ClusterPorts } from './cluster-config.js';
import { waitUntilUsable, type UsableTimings } from './cluster-ready.js';
import { setupSchemas } from './cluster-schema.js';
import { isOurServer, logTail, spawnServer, stopPid, type ServerProcess } from './cluster-server.js';
import { getFreePort, isPortOpen } from './dev-server.js';
import { openLocalPostgres, type LocalPostgres } from './local-postgres.js';
import { silentLog, type TemporalLog } from './log.js';
import { ensureTemporalServerBinaries } from './server-binaries.js';

/** Where `npm run temporal:cluster` keeps its cluster (git-ignored). */
export function defaultClusterDir(repoRoot: string = REPO_ROOT): string {
  return join(repoRoot, '.temporal', 'cluster');
}

export interface TemporalClusterOptions {
  /** State directory. Default: a fresh temp directory, deleted by `stop()`. The CLI uses `<repo>/.temporal/cluster`. */
  dir?: string;
  /** gRPC frontend port. Default: the one recorded in `dir`, else a free loopback port (the CLI defaults to 7233). */
  frontendPort?: number;
  /** Created with retention if missing; the project's search attributes are registered on it. Default `default`. */
  namespace?: string;
  log?: TemporalLog;
  repoRoot?: string;
  /** Leave the server and PostgreSQL running when this process exits (`temporal:cluster up`). Default false. */
  detached?: boolean;
  /** How long a start may take until the namespace is usable. Default 120 000 ms. */
  startupTimeoutMs?: number;
  /** Dynamic-config values in place of CLUSTER_DYNAMIC_CONFIG's, by key (for measurements; cluster-config.ts). */
  dynamicConfigOverrides?: Readonly<Record<string, number>>;
}

export interface ClusterTimings {
  /** ms, PostgreSQL started (initdb included on a fresh cluster). */
  postgres: number;
  /** ms, both schemas created or brought up to date. */
  schema: number;
  /** ms from spawning the server: the frontend answered, the namespace was described, the probe workflow started. */
  server: UsableTimings;
}

export interface TemporalCluster {
  /** `127.0.0.1:<port>` */
  address: string;
  namespace: string;
  dir: string;
  /** The server's output (JSON lines). */
  serverLog: string;
  ports: ClusterPorts;
  /** PGDATA of its PostgreSQL (`postmaster.pid` there names the postmaster). */
  postgresDataDir: string;
  /** The running server's pid; undefined while it is stopped. */
  readonly serverPid: number | undefined;
  /** How long the last start took, by phase. */
  readonly timings: ClusterTimings;
  /** The same PostgreSQL cluster Temporal uses; callers create their own databases with createDatabase. */
  postgresUrl(database?: string): string;
  /** Creates a database (default: a fresh random name) unless it exists; returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** The Temporal server down (SIGTERM, SIGKILL after 15 s; or SIGKILL at once); PostgreSQL stays. */
  stopServer(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Back up on the same ports and data; resolves when the frontend answers and the namespace is usable. */
  startServer(): Promise<void>;
  restartServer(): Promise<void>;
  /** `pg_ctl stop -m fast` then start (Temporal stays up and must recover by itself). */
  restartPostgres(): Promise<void>;
  /** Everything down; a throw-away directory is deleted. */
  stop(): Promise<void>;
}

export type TemporalClusterErrorCode = 'ALREADY_RUNNING' | 'PORT_IN_USE' | 'SERVER_EXITED' | 'STARTUP_TIMEOUT' | 'NOT_FOUND';

/** Thrown when the cluster cannot start; the message quotes the server log's tail where it helps. */
export class TemporalClusterError extends Error {
  override readonly name = 'TemporalClusterError';
  constructor(
    readonly code: TemporalClusterErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** `<dir>/cluster.json` (the ports are kept: the server records its addresses in the database). */
export interface ClusterState {
  host: string;
  ports: ClusterPorts;
  namespace: string;
  serverPid?: number;
  detached?: boolean;
}

export function readClusterState(dir: string): ClusterState | undefined {
  const file = join(dir, 'cluster.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ClusterState) : undefined;
}

function writeClusterState(dir: string, state: ClusterState): void {
  writeFileSync(join(dir, 'cluster.json'), `${JSON.stringify(state, null, 2)}\n`);
}

/** True if `port` can be bound on `host` now. */
function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolvePromise(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolvePromise(true)));
  });
}

/**
 * A free port for a membership (ringpop) listener: below 32768, since the server stores it in a
 * PostgreSQL smallint (cluster_membership.rpc_port) and fails to start with an ephemeral port above it.
 */
async function freeMembershipPort(host: string, taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 20_000 + Math.floor(Math.random() * 12_000);
    if (!taken.has(p) && (await canBind(host, p))) return p;
  }
  throw new TemporalClusterError('PORT_IN_USE', `no free port between 20000 and 32000 on ${host} for the server's membership listeners`);
}

const isMembership = (name: keyof ClusterPorts) => name.endsWith('Membership');

async function choosePorts(host: string, recorded: ClusterPorts | undefined, frontend: number | undefined, log: TemporalLog): Promise<ClusterPorts> {
  const ports = { ...recorded } as Partial<ClusterPorts>;
  if (frontend !== undefined) ports.frontend = frontend;
  const taken = new Set<number>();
  for (const name of CLUSTER_PORT_NAMES) {
    let p = ports[name];
    if (p !== undefined && (taken.has(p) || (await isPortOpen(host, p, 300)))) {
      if (name === 'frontend') {
        throw new TemporalClusterError(
          'PORT_IN_USE',
          `Port ${p} on ${host} is in use (a dev server? npm start?). Stop that program, or choose another port (npm run temporal:cluster -- up --port 7244).`,
        );
      }
      log(`port ${p} (${name}) is taken now; using another`);
      p = undefined;
    }
    while (p === undefined || taken.has(p)) p = isMembership(name) ? await freeMembershipPort(host, taken) : await getFreePort(host);
    ports[name] = p;
    taken.add(p);
  }
  return ports as ClusterPorts;
}

/** Starts (or, with a `dir` that holds one, resumes) a cluster and resolves when its namespace is usable. */
export async function startTemporalCluster(opts: TemporalClusterOptions = {}): Promise<TemporalCluster> {
  const log = opts.log ?? silentLog;
  const host = '127.0.0.1';
  const throwAway = opts.dir === undefined;
  const dir = throwAway ? mkdtempSync(join(tmpdir(), 'pa-temporal-cluster-')) : resolve(opts.dir!);
  const detached = opts.detached ?? false;
  const timeoutMs = opts.startupTimeoutMs ?? 120_000;
  mkdirSync(dir, { recursive: true });
  // PostgreSQL runs as its own user when this process is root: it must be able to reach postgres/.
  chmodSync(dir, 0o711);

  const recorded = readClusterState(dir);
  if (recorded?.serverPid !== undefined && isOurServer(recorded.serverPid, dir)) {
    throw new TemporalClusterError('ALREADY_RUNNING', `A Temporal server (pid ${recorded.serverPid}) already runs from ${dir} on ${host}:${recorded.ports.frontend}; stop it first (npm run temporal:cluster -- down).`);
  }
  const namespace = opts.namespace ?? recorded?.namespace ?? 'default';
  const bins = await ensureTemporalServerBinaries({ repoRoot: opts.repoRoot, log });

  let pg: LocalPostgres | undefined;
  let proc: ServerProcess | undefined;
  let disarm = () => {};
  let stopped = false;
  const onExit = () => {
    // The server has its own exit hook (cluster-server.ts); PostgreSQL and the temp directory are ours.
    pg?.stopSync('immediate');
    if (throwAway) rmSync(dir, { recursive: true, force: true });
  };
  if (!detached) process.on('exit', onExit);

  const serverLog = join(dir, 'server.log');
  const timings: ClusterTimings = { postgres: 0, schema: 0, server: { frontend: 0, namespace: 0, probe: 0 } };
  let state: ClusterState;

  const stopServer = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
    const pid = proc?.pid ?? state.serverPid;
    if (pid !== undefined && (proc ? proc.alive() : isOurServer(pid, dir))) await stopPid(pid, signal);
    proc = undefined;
    state = { ...state, serverPid: undefined };
    writeClusterState(dir, state);
  };

  const startServer = async () => {
    if (proc?.alive()) return;
    const started = Date.now();
    proc = spawnServer({ bin: bins.server, root: dir, logFile: serverLog, detached });
    state = { ...state, serverPid: proc.pid, detached };
    writeClusterState(dir, state);
    const p = proc;
    const checkAlive = () => {
      if (!p.alive()) {
        throw new TemporalClusterError('SERVER_EXITED', `The Temporal server ${p.exitDescription() ?? 'exited'} before it was usable. Last lines of ${serverLog}:\n${logTail(serverLog)}`);
      }
    };
    try {
      timings.server = await waitUntilUsable({ address: `${host}:${state.ports.frontend}`, namespace, deadline: started + timeoutMs, checkAlive, log });
    } catch (err) {
      await stopServer('SIGKILL');
      if (err instanceof TemporalClusterError) throw err;
      throw new TemporalClusterError('STARTUP_TIMEOUT', `The Temporal server on ${host}:${state.ports.frontend} was not usable within ${timeoutMs / 1000} s (${(err as Error).message}); it was stopped. Last lines of ${serverLog}:\n${logTail(serverLog)}`);
    }
    log(`Temporal server ${TEMPORAL_SERVER_VERSION} usable on ${host}:${state.ports.frontend} (namespace ${namespace}) ${((Date.now() - started) / 1000).toFixed(1)} s after start (pid ${p.pid}, log ${serverLog})`);
  };

  try {
    let t = Date.now();
    pg = await openLocalPostgres({ dir: join(dir, 'postgres'), maxConnections: 200, log });
    if (!detached) disarm = pg.stopWhenProcessDies();
    await pg.start();
    timings.postgres = Date.now() - t;

    const ports = await choosePorts(host, recorded?.ports, opts.frontendPort, log);
    state = { ...recorded, host, ports, namespace, serverPid: undefined, detached };
    writeClusterState(dir, state);

    t = Date.now();
    const postgres = { host: pg.host, port: pg.port, user: pg.user, password: pg.password };
    await setupSchemas({ sqlTool: bins.sqlTool, schemaDir: bins.postgresSchemaDir, postgres }, log);
    timings.schema = Date.now() - t;

    mkdirSync(join(dir, 'config'), { recursive: true });
    const dynamicConfigFile = join(dir, 'dynamicconfig.yaml');
    writeFileSync(dynamicConfigFile, renderDynamicConfig(overrideDynamicConfig(opts.dynamicConfigOverrides ?? {})));
    writeFileSync(join(dir, 'config', 'production.yaml'), renderServerConfig({ ports, host, postgres, dynamicConfigFile }), { mode: 0o600 });
    chmodSync(join(dir, 'config', 'production.yaml'), 0o600);

    await startServer();
  } catch (err) {
    if (proc) await stopPid(proc.pid, 'SIGKILL');
    disarm();
    await pg?.stop('fast').catch(() => {});
    if (!detached) process.removeListener('exit', onExit);
    if (throwAway) rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const db = pg;
  return {
    address: `${host}:${state.ports.frontend}`,
    namespace,
    dir,
    serverLog,
    ports: state.ports,
    postgresDataDir: db.dataDir,
    get serverPid() {
      return proc?.alive() ? proc.pid : undefined;
    },
    timings,
    postgresUrl: (database) => db.url(database),
    createDatabase: (name = `db_${randomBytes(4).toString('hex')}`) => db.createDatabase(name),
    stopServer,
    startServer,
    async restartServer() {
      await stopServer();
      await startServer();
    },
    restartPostgres: () => db.restart(),
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopServer();
      disarm();
      await db.stop('fast');
      if (!detached) process.removeListener('exit', onExit);
      if (throwAway) rmSync(dir, { recursive: true, force: true });
    },
  };
}
