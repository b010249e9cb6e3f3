/**
 * How the service reaches Temporal: connection options from the environment, client/worker connection
 * helpers, and `resolveTemporal()` which either uses `TEMPORAL_ADDRESS` or starts a local dev server.
 *
 * Environment variables:
 *   TEMPORAL_ADDRESS          host:port of the frontend (e.g. `temporal.example.com:7233`,
 *                             `<ns>.<acct>.tmprl.cloud:7233`). Unset → local dev server.
 *   TEMPORAL_NAMESPACE        namespace; overrides the config's `temporal.namespace` (default `default`).
 *   TEMPORAL_TLS              `true`/`false`: force TLS on/off (default: on if any TLS/API-key variable is set).
 *   TEMPORAL_TLS_CERT         client certificate file (PEM) for mTLS; needs TEMPORAL_TLS_KEY.
 *   TEMPORAL_TLS_KEY          client private key file (PEM) for mTLS; needs TEMPORAL_TLS_CERT.
 *   TEMPORAL_TLS_CA           CA certificate file (PEM) to verify the server (default: system roots).
 *   TEMPORAL_TLS_SERVER_NAME  override the TLS server name (SNI / hostname check).
 *   TEMPORAL_API_KEY          API key (Temporal Cloud); implies TLS.
 *   TEMPORAL_GRPC_META        extra gRPC headers: `key=value,key2=value2`.
 *   TEMPORAL_UI_URL           base URL of the Web UI, for `links.temporalUi` in API responses
 *                             (default: the dev server's UI; none for an external server).
 */
import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionOptions, type TLSConfig } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { z } from 'zod';
import { ensureTemporalCli } from './cli-locator.js';
import { startDevServer, type DevServerOptions } from './dev-server.js';
import { silentLog, type TemporalLog } from './log.js';
import { RECONNECT_CHANNEL_ARGS } from './watch.js';

export interface TemporalConnectionOptions {
  /** `host:port` of the Temporal frontend. */
  address: string;
  namespace: string;
  /** `undefined` = plain TCP; `true` = TLS with system roots; object = custom TLS / mTLS. */
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
}

/** Thrown for invalid Temporal environment variables; the message names the variable. */
export class TemporalConfigError extends Error {
  override readonly name = 'TemporalConfigError';
}

const optionalNonEmpty = z
  .string()
  .transform((s) => s.trim())
  .optional();

const addressSchema = z
  .string()
  .trim()
  .refine((s) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(s), 'must be host:port without a scheme (e.g. "localhost:7233", not "http://localhost:7233")')
  .refine((s) => !/\s|\//.test(s), 'must be host:port (no spaces or slashes)')
  .refine((s) => {
    const m = /^(?:\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d+))?$/.exec(s);
    if (!m) return false;
    return m[1] === undefined || (Number(m[1]) >= 1 && Number(m[1]) <= 65535);
  }, 'must be host:port with a port between 1 and 65535 (IPv6 as [addr]:port)');

const namespaceSchema = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/, 'must be a namespace name (letters, digits, ".", "_", "-"; e.g. "default" or "my-ns.acct123")');

const boolSchema = z
  .string()
  .trim()
  .toLowerCase()
  .refine((s) => ['true', 'false', '1', '0', 'yes', 'no'].includes(s), 'must be true or false')
  .transform((s) => ['true', '1', 'yes'].includes(s));

const metaSchema = z
  .string()
  .trim()
  .transform((s, ctx) => {
    const out: Record<string, string> = {};
    for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
      const eq = part.indexOf('=');
      const key = eq > 0 ? part.slice(0, eq).trim().toLowerCase() : '';
      if (!key || !/^[a-z0-9._-]+$/.test(key)) {
        ctx.addIssue({ code: 'custom', message: `entry "${part}" must be key=value with a header-safe key` });
        return z.NEVER;
      }
      out[key] = part.slice(eq + 1).trim();
    }
    return out;
  });

const envSchema = z.object({
  TEMPORAL_ADDRESS: addressSchema.default('localhost:7233'),
  TEMPORAL_NAMESPACE: namespaceSchema.optional(),
  TEMPORAL_TLS: boolSchema.optional(),
  TEMPORAL_TLS_CERT: optionalNonEmpty,
  TEMPORAL_TLS_KEY: optionalNonEmpty,
  TEMPORAL_TLS_CA: optionalNonEmpty,
  TEMPORAL_TLS_SERVER_NAME: optionalNonEmpty,
  TEMPORAL_API_KEY: optionalNonEmpty,
  TEMPORAL_GRPC_META: metaSchema.optional(),
});

function readPemFile(variable: string, path: string): Buffer {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new TemporalConfigError(`${variable}=${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}). It must be the path of a PEM file.`);
  }
  if (!buf.toString('utf8').includes('-----BEGIN ')) {
    throw new TemporalConfigError(`${variable}=${path}: not a PEM file (no "-----BEGIN" line).`);
  }
  return buf;
}

/**
 * Builds connection options from the environment. Throws {@link TemporalConfigError} naming the
 * offending variable. Without `TEMPORAL_ADDRESS` the address defaults to `localhost:7233`.
 * The namespace: `TEMPORAL_NAMESPACE` when set, else `fallback.namespace` (the config's
 * `temporal.namespace`), else `default`.
 */
export function temporalConnectionOptions(env: NodeJS.ProcessEnv = process.env, fallback: { namespace?: string } = {}): TemporalConnectionOptions {
  const picked: Record<string, string | undefined> = {};
  // Empty (or blank) variables count as unset.
  for (const key of Object.keys(envSchema.shape)) picked[key] = env[key]?.trim() === '' ? undefined : env[key];
  const parsed = envSchema.safeParse(picked);
  if (!parsed.success) {
    const msgs = parsed.error.issues.map((i) => {
      const variable = String(i.path[0] ?? 'environment');
      const value = picked[variable];
      const shown = variable === 'TEMPORAL_API_KEY' || value === undefined ? '' : `=${JSON.stringify(value)}`;
      return `${variable}${shown}: ${i.message}`;
    });
    throw new TemporalConfigError(`Invalid Temporal configuration: ${msgs.join('; ')}`);
  }
  const e = parsed.data;

  if ((e.TEMPORAL_TLS_CERT === undefined) !== (e.TEMPORAL_TLS_KEY === undefined)) {
    const missing = e.TEMPORAL_TLS_CERT === undefined ? 'TEMPORAL_TLS_CERT' : 'TEMPORAL_TLS_KEY';
    const present = missing === 'TEMPORAL_TLS_CERT' ? 'TEMPORAL_TLS_KEY' : 'TEMPORAL_TLS_CERT';
    throw new TemporalConfigError(`${missing} must be set together with ${present} (mTLS needs both the client certificate and its key).`);
  }
  const wantsTlsDetail = e.TEMPORAL_TLS_CERT !== undefined || e.TEMPORAL_TLS_CA !== undefined || e.TEMPORAL_TLS_SERVER_NAME !== undefined;
  if (e.TEMPORAL_TLS === false && (wantsTlsDetail || e.TEMPORAL_API_KEY !== undefined)) {
    const culprit = e.TEMPORAL_API_KEY !== undefined ? 'TEMPORAL_API_KEY' : e.TEMPORAL_TLS_CERT !== undefined ? 'TEMPORAL_TLS_CERT' : e.TEMPORAL_TLS_CA !== undefined ? 'TEMPORAL_TLS_CA' : 'TEMPORAL_TLS_SERVER_NAME';
    throw new TemporalConfigError(`TEMPORAL_TLS=false contradicts ${culprit}, which needs TLS. Unset one of them.`);
  }
  if (e.TEMPORAL_API_KEY !== undefined && e.TEMPORAL_GRPC_META?.authorization !== undefined) {
    throw new TemporalConfigError('TEMPORAL_API_KEY and an "authorization" entry in TEMPORAL_GRPC_META are mutually exclusive.');
  }

  const opts: TemporalConnectionOptions = { address: e.TEMPORAL_ADDRESS, namespace: e.TEMPORAL_NAMESPACE ?? configNamespace(fallback.namespace) };
  const tlsOn = e.TEMPORAL_TLS ?? (wantsTlsDetail || e.TEMPORAL_API_KEY !== undefined);
  if (tlsOn) {
    const tls: TLSConfig = {};
    if (e.TEMPORAL_TLS_CERT !== undefined && e.TEMPORAL_TLS_KEY !== undefined) {
      tls.clientCertPair = {
        crt: readPemFile('TEMPORAL_TLS_CERT', e.TEMPORAL_TLS_CERT),
        key: readPemFile('TEMPORAL_TLS_KEY', e.TEMPORAL_TLS_KEY),
      };
    }
    if (e.TEMPORAL_TLS_CA !== undefined) tls.serverRootCACertificate = readPemFile('TEMPORAL_TLS_CA', e.TEMPORAL_TLS_CA);
    if (e.TEMPORAL_TLS_SERVER_NAME !== undefined) tls.serverNameOverride = e.TEMPORAL_TLS_SERVER_NAME;
    opts.tls = Object.keys(tls).length > 0 ? tls : true;
  }
  if (e.TEMPORAL_API_KEY !== undefined) opts.apiKey = e.TEMPORAL_API_KEY;
  if (e.TEMPORAL_GRPC_META !== undefined && Object.keys(e.TEMPORAL_GRPC_META).length > 0) opts.metadata = e.TEMPORAL_GRPC_META;
  return opts;
}

/** The config's `temporal.namespace`, checked as TEMPORAL_NAMESPACE is. */
function configNamespace(namespace: string | undefined): string {
  if (namespace === undefined) return 'default';
  const parsed = namespaceSchema.safeParse(namespace);
  if (!parsed.success) throw new TemporalConfigError(`temporal.namespace=${JSON.stringify(namespace)}: ${parsed.error.issues[0]?.message ?? 'not a namespace name'}`);
  return parsed.data;
}

/**
 * `TEMPORAL_UI_URL` (e.g. `https://temporal.example.com`, or `https://cloud.temporal.io` for Temporal
 * Cloud), without a trailing slash; undefined when unset.
 */
export function temporalUiUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env.TEMPORAL_UI_URL?.trim();
  if (!raw) return undefined;
  const parsed = z.url({ protocol: /^https?$/ }).safeParse(raw);
  if (!parsed.success) throw new TemporalConfigError(`TEMPORAL_UI_URL=${JSON.stringify(raw)}: must be an http(s) URL, e.g. "http://localhost:8233"`);
  return raw.replace(/\/+$/, '');
}

function transportOptions(opts: TemporalConnectionOptions) {
  return {
    address: opts.address,
    ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
    ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}),
    ...(opts.metadata !== undefined ? { metadata: opts.metadata } : {}),
  };
}

/**
 * Connects, trying again while Temporal cannot be reached (1 s, doubling, at most 5 s apart) for up
 * to `timeoutMs`: a process started while its server restarts (a rolling deploy, a worker respawned
 * during an outage) waits for it instead of exiting. Other errors (TLS, auth) fail at once.
 */
export async function connectPatiently<T>(connect: () => Promise<T>, opts: { timeoutMs?: number; onRetry?: (err: Error, waitMs: number) => void } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (let wait = 1000; ; wait = Math.min(wait * 2, 5000)) {
    try {
      return await connect();
    } catch (err) {
      const unreachable = (err as Error)?.name === 'TransportError' || /failed to connect|connection refused|unavailable|ECONNREFUSED/i.test((err as Error)?.message ?? '');
      if (!unreachable || Date.now() + wait > deadline) throw err;
      opts.onRetry?.(err as Error, wait);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/**
 * A client-side gRPC `Connection` (workflow client, operator service). Close it with `connection.close()`.
 * It reconnects at most a second apart (`RECONNECT_CHANNEL_ARGS`); `interceptors` replace the SDK's
 * default retry interceptor (a TemporalWatch's keep it, and stop retrying while Temporal is down).
 */
export async function connectConnection(opts: TemporalConnectionOptions = temporalConnectionOptions(), extra: Pick<ConnectionOptions, 'interceptors'> = {}): Promise<Connection> {
  return Connection.connect({ ...transportOptions(opts), channelArgs: { ...RECONNECT_CHANNEL_ARGS }, ...extra });
}

/** A `Client` bound to `opts.namespace`. Close with `client.connection.close()`. */
export async function connectClient(opts: TemporalConnectionOptions = temporalConnectionOptions()): Promise<Client> {
  const connection = await connectConnection(opts);
  return new Client({ connection, namespace: opts.namespace });
}

/** A worker `NativeConnection`. Close it after the worker's `run()` promise settled. */
export async function connectWorkerConnection(opts: TemporalConnectionOptions = temporalConnectionOptions()): Promise<NativeConnection> {
  // Imported lazily so that client-only processes (API) do not load the worker's native bridge.
  const { NativeConnection } = await import('@temporalio/worker');
  return NativeConnection.connect(transportOptions(opts));
}

export interface ResolvedTemporal {
  address: string;
  namespace: string;
  /**
   * Web UI for links: TEMPORAL_UI_URL, else the dev server's (started, or reused on its default UI
   * port); absent for an external server without TEMPORAL_UI_URL, and for a headless dev server.
   */
  uiUrl?: string;
  /** Full options to pass to {@link connectClient} / {@link connectWorkerConnection}. */
  connectionOptions: TemporalConnectionOptions;
  /** `true` if this call started a dev server (which `stop()` stops). */
  startedDevServer: boolean;
  /** Stops the dev server this call started; no-op otherwise. */
  stop(): Promise<void>;
}

export interface ResolveTemporalOptions {
  log?: TemporalLog;
  env?: NodeJS.ProcessEnv;
  /** The config's `temporal.namespace`: used unless TEMPORAL_NAMESPACE is set (default `default`). */
  namespace?: string;
  /** Overrides for the local dev server (port, DB file, …) when TEMPORAL_ADDRESS is unset. */
  devServer?: Omit<DevServerOptions, 'log'>;
}

/**
 * If `TEMPORAL_ADDRESS` is set: starts nothing, returns its options (validated; TLS/API key included).
 * Otherwise: finds or builds the Temporal CLI and starts (or reuses) the local dev server
 * (`.data/temporal.sqlite`, port 7233, UI 8233).
 */
export async function resolveTemporal(opts: ResolveTemporalOptions = {}): Promise<ResolvedTemporal> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? silentLog;
  const uiUrl = temporalUiUrl(env);
  if (env.TEMPORAL_ADDRESS !== undefined && env.TEMPORAL_ADDRESS.trim() !== '') {
    const connectionOptions = temporalConnectionOptions(env, { namespace: opts.namespace });
    log(`Using the Temporal server at ${connectionOptions.address} (namespace "${connectionOptions.namespace}") from TEMPORAL_ADDRESS`);
    return {
      address: connectionOptions.address,
      namespace: connectionOptions.namespace,
      ...(uiUrl ? { uiUrl } : {}),
      connectionOptions,
      startedDevServer: false,
      stop: async () => {},
    };
  }
  // Validate the rest of the environment (e.g. TEMPORAL_NAMESPACE) even when using the dev server.
  const envOpts = temporalConnectionOptions(env, { namespace: opts.namespace });
  const cliPath = opts.devServer?.cliPath ?? (await ensureTemporalCli({ env, log }));
  const server = await startDevServer({ namespace: envOpts.namespace, ...opts.devServer, cliPath, log });
  // A reused dev server (e.g. `npm run temporal:start` in another terminal) serves its UI on the default port, unless headless.
  const devUi = server.uiUrl ?? (server.reused && !opts.devServer?.headless ? `http://localhost:${opts.devServer?.uiPort ?? 8233}` : undefined);
  const ui = uiUrl ?? devUi;
  return {
    address: server.address,
    namespace: server.namespace,
    ...(ui !== undefined ? { uiUrl: ui } : {}),
    connectionOptions: { address: server.address, namespace: server.namespace },
    startedDevServer: server.pid !== undefined,
    stop: () => server.stop(),
  };
}
