/**
 * Starts (or reuses) a local Temporal dev server: `temporal server start-dev` with a persistent SQLite file.
 *
 *  - waits until the frontend answers `GetSystemInfo` and the namespace is described (default 60 s:
 *    the first start on a fresh DB on 2 cores is slow);
 *  - registers the project's search attributes with the Operator API afterwards, because
 *    `--search-attribute` only applies when a namespace is first created (it is ignored on an existing DB);
 *  - if a Temporal server already answers on the port it is reused (and not stopped by `stop()`);
 *    if something else holds the port, a clear error is thrown;
 *  - the child never outlives this process: it is SIGKILLed on `process.on('exit')`, and on Linux it is
 *    started under `setpriv --pdeathsig SIGTERM` (when available) so even a SIGKILLed parent takes it down.
 *    Ctrl-C in a terminal reaches it directly (same process group).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { ensureTemporalCli, findOnPath, REPO_ROOT } from './cli-locator.js';
import { silentLog, type TemporalLog } from './log.js';
import { PROJECT_SEARCH_ATTRIBUTES, type SearchAttributeDef } from './search-attributes.js';
import { cliSearchAttributeArgs, ensureSearchAttributes } from './search-attributes-admin.js';

/**
 * Dynamic config the dev server always gets (`dynamicConfig` may override it). The history service
 * reads each of its task queues at most 20 times a second per shard (`history.*ProcessorMaxPollRPS`,
 * default 20). A cluster has hundreds of shards; the dev server has one, so once more than about 20
 * tasks a second are dispatched (a few plans a second), every workflow task and activity waited
 * ~40 ms for its turn: three quarters of a plan's latency (docs/benchmarks.md). Activities are
 * handed out eagerly, as on the cluster (EAGER_ACTIVITIES_WHY).
 */
export const DEV_SERVER_DYNAMIC_CONFIG: Readonly<Record<string, unknown>> = {
  'history.transferProcessorMaxPollRPS': 1000,
  'history.visibilityProcessorMaxPollRPS': 1000,
  'system.enableActivityEagerExecution': true,
};

/** Default persistent state of the local dev server. */
export const DEFAULT_DEV_DB_FILE: string = join(REPO_ROOT, '.data', 'temporal.sqlite');

export interface DevServerOptions {
  /** SQLite file (created with its directory if missing). Default `<repo>/.data/temporal.sqlite`. */
  dbFile?: string;
  /** gRPC frontend port. Default 7233. */
  port?: number;
  /** Web UI port. Default 8233. Ignored when `headless`. */
  uiPort?: number;
  /** Bind address. Default `127.0.0.1`. */
  ip?: string;
  /** Namespace the project uses (created at launch; search attributes ensured on it). Default `default`. */
  namespace?: string;
  /** More namespaces to create at launch (`--namespace`, repeatable). */
  extraNamespaces?: string[];
  /** No Web UI. Default false. */
  headless?: boolean;
  log?: TemporalLog;
  /** Temporal CLI binary. Default: `ensureTemporalCli()` (find or build). */
  cliPath?: string;
  /** Search attributes to register. Default: all project attributes. */
  searchAttributes?: readonly SearchAttributeDef[];
  /** Extra `--dynamic-config-value KEY=JSON` entries (on top of, or replacing, DEV_SERVER_DYNAMIC_CONFIG). */
  dynamicConfig?: Record<string, unknown>;
  /** Server log level (`--log-level`). Default `warn`. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Reuse a Temporal server already answering on `ip:port`. Default true; false → error instead. */
  reuseExisting?: boolean;
  /** How long to wait for the server to answer. Default 60 000 ms. */
  startupTimeoutMs?: number;
  /** Forward the server's own output lines to `log`. Default: only warnings/errors (stderr). */
  forwardOutput?: 'all' | 'stderr' | 'none';
}

export interface DevServerHandle {
  /** `ip:port`, ready for `Connection.connect({ address })`. */
  address: string;
  namespace: string;
  /** Web UI URL; undefined when headless or when an already-running server was reused. */
  uiUrl: string | undefined;
  /** PID of the server process we started; undefined when an existing server was reused. */
  pid: number | undefined;
  /** The SQLite file (of the server we started; undefined when reused). */
  dbFile: string | undefined;
  /** True if an already-running server was reused (then `stop()` is a no-op). */
  reused: boolean;
  /** Resolves when the server process we started exits (for any reason); undefined when reused. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  /** SIGTERM, wait (10 s), then SIGKILL. Idempotent. */
  stop(): Promise<void>;
}

export type DevServerErrorCode = 'PORT_IN_USE' | 'EXITED' | 'STARTUP_TIMEOUT' | 'NAMESPACE_MISSING';

export class DevServerError extends Error {
  override readonly name = 'DevServerError';
  constructor(
    readonly code: DevServerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function formatAddress(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Asks the OS for a free TCP port on `ip` (there is a small race between this and its use). */
export async function getFreePort(ip = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ host: ip, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not allocate a free port'))));
    });
  });
}

/** True if something accepts TCP connections on `ip:port`. */
export async function isPortOpen(ip: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: ip, port });
    const done = (open: boolean) => {
      sock.destroy();
      resolve(open);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export interface TemporalProbe {
  ok: boolean;
  serverVersion?: string;
  namespaceExists?: boolean;
  error?: string;
}

/**
 * One attempt to talk to a Temporal frontend: connect, `GetSystemInfo`, optionally `DescribeNamespace`.
 * Never throws.
 */
export async function probeTemporal(address: string, namespace?: string, timeoutMs = 3000): Promise<TemporalProbe> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: timeoutMs });
    const c = connection;
    const info = await c.withDeadline(Date.now() + timeoutMs, () => c.workflowService.getSystemInfo({}));
    const probe: TemporalProbe = { ok: true, serverVersion: info.serverVersion ?? undefined };
    if (namespace !== undefined) {
      try {
        await c.withDeadline(Date.now() + timeoutMs, () => c.workflowService.describeNamespace({ namespace }));
        probe.namespaceExists = true;
      } catch (err) {
        if ((err as { code?: number }).code === 5 /* NOT_FOUND */) probe.namespaceExists = false;
        else return { ok: false, error: `DescribeNamespace: ${(err as Error).message}` };
      }
    }
    return probe;
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  } finally {
    await connection?.close().catch(() => {});
  }
}

async function registerSearchAttributes(
  address: string,
  namespaces: string[],
  attrs: readonly SearchAttributeDef[],
  log: TemporalLog,
): Promise<void> {
  if (attrs.length === 0) return;
  const connection = await Connection.connect({ address, connectTimeout: 10_000 });
  try {
    for (const ns of namespaces) await ensureSearchAttributes(connection, ns, attrs, log);
  } finally {
    await connection.close();
  }
}

/** Starts `temporal server start-dev` (or reuses a running server) and waits until it is usable. */
export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServerHandle> {
  const log = opts.log ?? silentLog;
  const ip = opts.ip ?? '127.0.0.1';
  const port = opts.port ?? 7233;
  const uiPort = opts.uiPort ?? 8233;
  const namespace = opts.namespace ?? 'default';
  const headless = opts.headless ?? false;
  const dbFile = resolvePath(opts.dbFile ?? DEFAULT_DEV_DB_FILE);
  const attrs = opts.searchAttributes ?? PROJECT_SEARCH_ATTRIBUTES;
  const timeoutMs = opts.startupTimeoutMs ?? 60_000;
  const forward = opts.forwardOutput ?? 'stderr';
  const address = formatAddress(ip, port);
  const namespaces = [namespace, ...(opts.extraNamespaces ?? [])].filter((ns, i, all) => all.indexOf(ns) === i);

  // 1. Is the port taken?
  if (await isPortOpen(ip, port)) {
    const probe = await probeTemporal(address, namespace, 5000);
    if (!probe.ok) {
      throw new DevServerError(
        'PORT_IN_USE',
        `Port ${port} on ${ip} is in use by something that is not a Temporal server (${probe.error ?? 'no answer'}). ` +
          'Stop that program, or use another port (e.g. `npm run temporal:start -- --port 7244`), or set TEMPORAL_ADDRESS to an existing Temporal server.',
      );
    }
    if (opts.reuseExisting === false) {
      throw new DevServerError('PORT_IN_USE', `A Temporal server (${probe.serverVersion ?? 'unknown version'}) is already listening on ${address}; refusing to reuse it (reuseExisting: false).`);
    }
    if (probe.namespaceExists === false) {
      throw new DevServerError(
        'NAMESPACE_MISSING',
        `The Temporal server already running on ${address} has no namespace "${namespace}". Create it (temporal operator namespace create --namespace ${namespace} --address ${address}) or stop that server.`,
      );
    }
    log(`A Temporal server (${probe.serverVersion ?? 'unknown version'}) is already running on ${address}: reusing it (not started by this process, so it will be left running).`);
    await registerSearchAttributes(address, namespaces, attrs, log);
    return { address, namespace, uiUrl: undefined, pid: undefined, dbFile: undefined, reused: true, exited: undefined, stop: async () => {} };
  }

  // 2. Spawn it.
  const cliPath = opts.cliPath ?? (await ensureTemporalCli({ log }));
  mkdirSync(dirname(dbFile), { recursive: true });
  const args = ['server', 'start-dev', '--db-filename', dbFile, '--port', String(port), '--ip', ip];
  for (const ns of namespaces) if (ns !== 'default') args.push('--namespace', ns);
  for (const sa of cliSearchAttributeArgs(attrs)) args.push('--search-attribute', sa);
  for (const [k, v] of Object.entries({ ...DEV_SERVER_DYNAMIC_CONFIG, ...opts.dynamicConfig })) args.push('--dynamic-config-value', `${k}=${JSON.stringify(v)}`);
  args.push('--log-level', opts.logLevel ?? 'warn');
  if (headless) args.push('--headless');
  else args.push('--ui-port', String(uiPort));

  // Linux: make the kernel SIGTERM the server if this process dies without running exit handlers.
  const setpriv = process.platform === 'linux' ? findOnPath('setpriv') : undefined;
  const [cmd, cmdArgs] = setpriv ? [setpriv, ['--pdeathsig', 'SIGTERM', '--', cliPath, ...args]] : [cliPath, args];

  log(`Starting Temporal dev server: ${cliPath} ${args.join(' ')}`);
  const started = Date.now();
  const child: ChildProcess = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = () => {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  };
  process.on('exit', killOnExit);

  const tail: string[] = [];
  let stopRequested = false;
  const remember = (line: string, stream: 'stdout' | 'stderr') => {
    if (!line.trim()) return;
    tail.push(line);
    if (tail.length > 40) tail.shift();
    // Shutdown always produces a burst of harmless WARN/ERROR lines (pollers cut off): not forwarded.
    if (stopRequested) return;
    if (forward === 'all' || (forward === 'stderr' && stream === 'stderr')) log(`[temporal] ${line}`);
  };
  if (child.stdout) createInterface({ input: child.stdout }).on('line', (l) => remember(l, 'stdout'));
  if (child.stderr) createInterface({ input: child.stderr }).on('line', (l) => remember(l, 'stderr'));

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      process.removeListener('exit', killOnExit);
      resolve();
    });
    child.once('error', (err) => {
      spawnError = err;
      exited ??= { code: null, signal: null };
      process.removeListener('exit', killOnExit);
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      stopRequested = true;
      if (exited) return;
      child.kill('SIGTERM');
      const graceful = await Promise.race([exitPromise.then(() => true), sleep(10_000, undefined, { ref: false }).then(() => false)]);
      if (!graceful && !exited) {
        log(`Temporal dev server (pid ${child.pid}) did not stop within 10 s of SIGTERM; sending SIGKILL`);
        child.kill('SIGKILL');
        await exitPromise;
      }
    })();
    return stopping;
  };

  const describeExit = () =>
    `${spawnError ? `could not run ${cmd}: ${spawnError.message}` : `exited with ${exited?.code ?? exited?.signal}`}` +
    `\nLast lines of its output:\n${tail.map((l) => `  | ${l}`).join('\n') || '  (none)'}`;

  // 3. Wait until the frontend answers and the namespace exists.
  let lastError = 'no answer yet';
  for (;;) {
    if (exited) {
      const portClash = tail.some((l) => /can't (set|use)[^:]*port|address already in use/i.test(l));
      throw new DevServerError(portClash ? 'PORT_IN_USE' : 'EXITED', `Temporal dev server on ${address} ${describeExit()}`);
    }
    if (Date.now() - started > timeoutMs) {
      await stop();
      throw new DevServerError(
        'STARTUP_TIMEOUT',
        `Temporal dev server on ${address} did not become ready within ${Math.round(timeoutMs / 1000)} s (last error: ${lastError}); it was stopped.` +
          `\nLast lines of its output:\n${tail.map((l) => `  | ${l}`).join('\n') || '  (none)'}`,
      );
    }
    if (await isPortOpen(ip, port, 500)) {
      const probe = await probeTemporal(address, namespace, 3000);
      if (probe.ok && probe.namespaceExists) {
        log(`Temporal dev server ${probe.serverVersion ?? ''} ready on ${address} after ${((Date.now() - started) / 1000).toFixed(1)} s (pid ${child.pid}, db ${dbFile})`);
        break;
      }
      lastError = probe.error ?? (probe.namespaceExists === false ? `namespace "${namespace}" not there yet` : 'unknown');
    }
    await sleep(250);
  }

  // 4. --search-attribute is ignored for namespaces that already exist in the DB file: ensure them now.
  try {
    await registerSearchAttributes(address, namespaces, attrs, log);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    address,
    namespace,
    uiUrl: headless ? undefined : `http://${formatAddress(ip, uiPort)}`,
    pid: child.pid,
    dbFile,
    reused: false,
    exited: exitPromise.then(() => exited ?? { code: null, signal: null }),
    stop,
  };
}
