// The Proxmox VE API client: one undici Pool per endpoint (= per environment), API-token auth,
// form-encoded bodies, typed errors. See docs/proxmox-client.md.

import { inspect } from 'node:util';
import { Pool } from 'undici';
import { mapHttpError, mapTransportError } from './error-map.js';
import { ProxmoxConfigError, ProxmoxError, ProxmoxInvalidParamError, ProxmoxInvalidPathParamError, ProxmoxPermanentError, ProxmoxProtocolError } from './errors.js';
import { decodeBody, readBody } from './body.js';
import { encodeParams, type ProxmoxParams } from './params.js';
import { fillPath, PROXMOX_ROUTES, type PathParams, type ProxmoxPathTemplate, type ProxmoxRouteMethod } from './paths.js';
import { assertTaskOnNode, type CallOptions, type TaskResult, waitForTask, type WaitForTaskOptions } from './tasks.js';
import { buildProxmoxConnector, type ProxmoxTlsOptions } from './tls.js';
import type {
  ClusterResource,
  ClusterResourceType,
  GuestConfig,
  PendingConfigEntry,
  GuestKind,
  GuestStatus,
  NodeListEntry,
  SnapshotEntry,
  TaskListEntry,
  TaskListFilters,
  TaskLogPage,
  TaskStatus,
  VersionInfo,
  EffectivePermissions,
} from './types.js';

export interface ProxmoxEndpointOptions {
  /** e.g. `https://pve.example:8006`; the client appends `/api2/json`. `http://` is allowed (the simulator). */
  baseUrl: string;
  /** `user@realm!tokenname` */
  tokenId: string;
  /** The token's UUID secret. Never logged, never in errors, never in inspect/JSON/toString of the client. */
  tokenSecret: string;
  tls?: ProxmoxTlsOptions;
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number };
  pool?: { connections?: number; keepAliveTimeoutMs?: number };
  /** Called once per API call, after it ends (metrics). Never sees parameters, bodies or credentials. */
  onCall?: (call: ProxmoxCallObservation) => void;
}

export interface ProxmoxCallObservation {
  method: string;
  /** The path template, e.g. `/nodes/{node}/qemu/{vmid}/status/start` (bounded, unlike the filled path). */
  route: string;
  durationMs: number;
  /** The HTTP status of a failed call, when Proxmox answered. */
  status?: number;
  /** The error class (`ProxmoxLockedError`, …) when the call failed. */
  error?: string;
}

export interface ProxmoxClient {
  readonly baseUrl: string;
  readonly tokenId: string;
  /** Any known path: validates and encodes path parameters, returns the unwrapped `data`. */
  request<T = unknown, P extends ProxmoxPathTemplate = ProxmoxPathTemplate>(
    method: ProxmoxRouteMethod<P>,
    path: P,
    pathParams: PathParams<P>,
    params?: ProxmoxParams,
    opts?: CallOptions,
  ): Promise<T>;
  version(opts?: CallOptions): Promise<VersionInfo>;
  /** The effective permissions of this token (or of `userid`, which needs Sys.Audit on /access), on every path or one. */
  permissions(query?: { path?: string; userid?: string }, opts?: CallOptions): Promise<EffectivePermissions>;
  nodes(opts?: CallOptions): Promise<NodeListEntry[]>;
  clusterResources(type?: ClusterResourceType, opts?: CallOptions): Promise<ClusterResource[]>;
  guestStatus(node: string, kind: GuestKind, vmid: number, opts?: CallOptions): Promise<GuestStatus>;
  guestConfig(node: string, kind: GuestKind, vmid: number, query?: { current?: boolean; snapshot?: string }, opts?: CallOptions): Promise<GuestConfig>;
  /** GET …/pending: the config key by key, with the changes that wait for a restart. */
  pendingConfig(node: string, kind: GuestKind, vmid: number, opts?: CallOptions): Promise<PendingConfigEntry[]>;
  snapshots(node: string, kind: GuestKind, vmid: number, opts?: CallOptions): Promise<SnapshotEntry[]>;
  taskStatus(node: string, upid: string, opts?: CallOptions): Promise<TaskStatus>;
  taskLog(node: string, upid: string, page?: { start?: number; limit?: number }, opts?: CallOptions): Promise<TaskLogPage>;
  listTasks(node: string, filters?: TaskListFilters, opts?: CallOptions): Promise<TaskListEntry[]>;
  stopTask(node: string, upid: string, opts?: CallOptions): Promise<void>;
  waitForTask(node: string, upid: string, opts?: WaitForTaskOptions): Promise<TaskResult>;
  /** Closes the connection pool; later calls fail with ProxmoxPermanentError. Idempotent. */
  close(): Promise<void>;
}

// pveproxy closes a connection after 5 s without traffic (AnyEvent.pm `timeout`), and sends no
// Keep-Alive hint: reusing an idle socket later than that races the server's close. 3 s leaves margin.
const DEFAULTS = { connectMs: 5_000, headersMs: 30_000, bodyMs: 30_000, connections: 4, keepAliveTimeoutMs: 3_000 };
/** pveproxy refuses larger form bodies with `501 for data too large` ($limit_max_post). */
const MAX_POST_BYTES = 64 * 1024;

// Token IDs are `user@realm!token` (pve-access-control). `;` and `%` are refused on top: pveproxy
// cuts the header value at `;` and URI-unescapes it.
const TOKEN_ID_RE = /^[^\s:/;%]+@[A-Za-z][A-Za-z0-9._-]+![A-Za-z][A-Za-z0-9._-]+$/;
// The server splits the value at its last `=`, so a secret may not contain one.
const TOKEN_SECRET_RE = /^[\x21-\x7e]+$/;

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new ProxmoxConfigError(`${name} must be a positive number of milliseconds/connections`);
  return value;
}

function parseBaseUrl(raw: string): { origin: string; prefix: string; https: boolean } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ProxmoxConfigError(`baseUrl is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ProxmoxConfigError('baseUrl must be http:// or https://');
  if (url.username || url.password) throw new ProxmoxConfigError('baseUrl must not contain credentials');
  if (url.search || url.hash) throw new ProxmoxConfigError('baseUrl must not contain a query or fragment');
  const prefix = url.pathname.replace(/\/+$/, '');
  if (/\/api2\/json$/.test(prefix)) throw new ProxmoxConfigError('baseUrl must not include /api2/json; the client appends it');
  return { origin: url.origin, prefix: `${prefix}/api2/json`, https: url.protocol === 'https:' };
}

function guestPath<S extends '/status/current' | '/config' | '/pending' | '/snapshot'>(kind: GuestKind, suffix: S): `/nodes/{node}/${GuestKind}/{vmid}${S}` {
  if (kind !== 'qemu' && kind !== 'lxc') {
    throw new ProxmoxInvalidPathParamError(`guest kind must be 'qemu' or 'lxc', got ${JSON.stringify(kind)}`, { param: 'kind' });
  }
  return `/nodes/{node}/${kind}/{vmid}${suffix}`;
}

class ProxmoxHttpClient implements ProxmoxClient {
  readonly baseUrl: string;
  readonly tokenId: string;
  readonly #authorization: string;
  readonly #pool: Pool;
  readonly #prefix: string;
  readonly #onCall: ((call: ProxmoxCallObservation) => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(opts: ProxmoxEndpointOptions) {
    const { origin, prefix, https } = parseBaseUrl(opts.baseUrl);
    if (typeof opts.tokenId !== 'string' || !TOKEN_ID_RE.test(opts.tokenId)) {
      throw new ProxmoxConfigError('tokenId must look like user@realm!tokenname');
    }
    // Deliberately vague: the message must not echo any part of the secret.
    if (typeof opts.tokenSecret !== 'string' || !TOKEN_SECRET_RE.test(opts.tokenSecret) || /[;=%]/.test(opts.tokenSecret)) {
      throw new ProxmoxConfigError('tokenSecret must be non-empty printable ASCII without spaces, ";", "=" or "%"');
    }
    const t = opts.timeouts ?? {};
    const p = opts.pool ?? {};
    this.baseUrl = `${origin}${prefix.replace(/\/api2\/json$/, '')}`;
    this.tokenId = opts.tokenId;
    this.#prefix = prefix;
    this.#authorization = `PVEAPIToken=${opts.tokenId}=${opts.tokenSecret}`;
    this.#onCall = opts.onCall;
    this.#pool = new Pool(origin, {
      connect: buildProxmoxConnector({ https, tls: opts.tls, connectTimeoutMs: positive('timeouts.connectMs', t.connectMs, DEFAULTS.connectMs) }),
      headersTimeout: positive('timeouts.headersMs', t.headersMs, DEFAULTS.headersMs),
      bodyTimeout: positive('timeouts.bodyMs', t.bodyMs, DEFAULTS.bodyMs),
      connections: positive('pool.connections', p.connections, DEFAULTS.connections),
      keepAliveTimeout: positive('pool.keepAliveTimeoutMs', p.keepAliveTimeoutMs, DEFAULTS.keepAliveTimeoutMs),
    });
  }

  async request<T = unknown, P extends ProxmoxPathTemplate = ProxmoxPathTemplate>(
    method: ProxmoxRouteMethod<P>,
    path: P,
    pathParams: PathParams<P>,
    params?: ProxmoxParams,
    opts?: CallOptions,
  ): Promise<T> {
    const envelope = await this.#exchange(method, path, pathParams, params, opts);
    return envelope.data as T;
  }

  async #exchange<P extends ProxmoxPathTemplate>(
    method: string,
    template: P,
    pathParams: PathParams<P>,
    params: ProxmoxParams | undefined,
    opts: CallOptions | undefined,
  ): Promise<{ data: unknown; total?: unknown }> {
    if (!this.#onCall) return this.#exchangeOnce(method, template, pathParams, params, opts);
    const started = performance.now();
    const observe = (status: number | undefined, error?: unknown) => {
      try {
        this.#onCall!({
          method,
          route: template,
          durationMs: performance.now() - started,
          ...(status === undefined ? {} : { status }),
          ...(error === undefined ? {} : { error: error instanceof Error ? error.name : 'Unknown' }),
        });
      } catch {
        // An observer never breaks a call.
      }
    };
    try {
      const envelope = await this.#exchangeOnce(method, template, pathParams, params, opts);
      observe(undefined);
      return envelope;
    } catch (err) {
      observe(err instanceof ProxmoxError ? err.status : undefined, err);
      throw err;
    }
  }

  async #exchangeOnce<P extends ProxmoxPathTemplate>(
    method: string,
    template: P,
    pathParams: PathParams<P>,
    params: ProxmoxParams | undefined,
    opts: CallOptions | undefined,
  ): Promise<{ data: unknown; total?: unknown }> {
    const allowed: readonly string[] | undefined = (PROXMOX_ROUTES as Record<string, readonly string[]>)[template];
    if (!allowed) throw new ProxmoxInvalidParamError(`unknown API path template ${template}`, { param: 'path', method, path: template });
    if (!allowed.includes(method)) {
      throw new ProxmoxInvalidParamError(`${method} is not allowed on ${template}`, { param: 'method', method, path: template });
    }
    const path = fillPath(template, pathParams, method);
    const where = { method, path };
    const encoded = encodeParams(params, where).toString();
    const hasBody = method === 'POST' || method === 'PUT';
    if (hasBody && Buffer.byteLength(encoded) > MAX_POST_BYTES) {
      throw new ProxmoxInvalidParamError(`request body for ${method} ${path} exceeds pveproxy's ${MAX_POST_BYTES}-byte limit`, { param: 'body', ...where });
    }
    if (this.#closing) throw new ProxmoxPermanentError(`Proxmox ${method} ${path} failed: the Proxmox client was closed`, where);

    const signal = opts?.signal;
    let status: number;
    let reason: string;
    let headers: Record<string, string | string[] | undefined>;
    let raw: Buffer;
    try {
      const res = await this.#pool.request({
        method,
        path: `${this.#prefix}${path}${!hasBody && encoded ? `?${encoded}` : ''}`,
        headers: {
          authorization: this.#authorization,
          accept: 'application/json',
          'accept-encoding': 'gzip, deflate',
          'user-agent': 'proxmox-agent',
          ...(hasBody ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        ...(hasBody ? { body: encoded } : {}),
        ...(signal ? { signal } : {}),
      });
      status = res.statusCode;
      reason = res.statusText ?? '';
      headers = res.headers;
      raw = await readBody(res.body);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw mapTransportError(err, where);
    }

    let text: string;
    try {
      text = await decodeBody(raw, headers['content-encoding']);
    } catch (err) {
      if (status < 200 || status >= 300) text = ''; // an undecodable error body still has its status line
      else throw mapTransportError(err, where);
    }
    if (status < 200 || status >= 300) {
      const retryAfter = headers['retry-after'];
      const server = headers['server'];
      throw mapHttpError({ ...where, status, reason, body: text, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, server: Array.isArray(server) ? server[0] : server });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ProxmoxProtocolError(`Proxmox ${method} ${path}: HTTP ${status} with a body that is not JSON`, { ...where, status, reason, outcomeUnknown: method !== 'GET' });
    }
    if (typeof json !== 'object' || json === null || !('data' in json)) {
      throw new ProxmoxProtocolError(`Proxmox ${method} ${path}: HTTP ${status} without a {"data": ...} envelope`, { ...where, status, reason, outcomeUnknown: method !== 'GET' });
    }
    return json as { data: unknown; total?: unknown };
  }

  async version(opts?: CallOptions): Promise<VersionInfo> {
    return this.request<VersionInfo, '/version'>('GET', '/version', {}, undefined, opts);
  }

  async permissions(query: { path?: string; userid?: string } = {}, opts?: CallOptions): Promise<EffectivePermissions> {
    return this.request<EffectivePermissions, '/access/permissions'>('GET', '/access/permissions', {}, { path: query.path, userid: query.userid }, opts);
  }

  async nodes(opts?: CallOptions): Promise<NodeListEntry[]> {
    return this.request<NodeListEntry[], '/nodes'>('GET', '/nodes', {}, undefined, opts);
  }

  async clusterResources(type?: ClusterResourceType, opts?: CallOptions): Promise<ClusterResource[]> {
    return this.request<ClusterResource[], '/cluster/resources'>('GET', '/cluster/resources', {}, { type }, opts);
  }

  async guestStatus(node: string, kind: GuestKind, vmid: number, opts?: CallOptions): Promise<GuestStatus> {
    const path = guestPath(kind, '/status/current');
    return this.request<GuestStatus, typeof path>('GET', path, { node, vmid }, undefined, opts);
  }

  async guestConfig(node: string, kind: GuestKind, vmid: number, query: { current?: boolean; snapshot?: string } = {}, opts?: CallOptions): Promise<GuestConfig> {
    const path = guestPath(kind, '/config');
    return this.request<GuestConfig, typeof path>('GET', path, { node, vmid }, { current: query.current, snapshot: query.snapshot }, opts);
  }

  async pendingConfig(node: string, kind: GuestKind, vmid: number, opts?: CallOptions): Promise<PendingConfigEntry[]> {
    const path = guestPath(kind, '/pending');
    return this.request<PendingConfigEntry[], typeof path>('GET', path, { node, vmid }, undefined, opts);
  }

  async snapshots(node: string, kind: GuestKind, vmid: number, opts?: CallOptions): Promise<SnapshotEntry[]> {
    const path = guestPath(kind, '/snapshot');
    return this.request<SnapshotEntry[], typeof path>('GET', path, { node, vmid }, undefined, opts);
  }

  async taskStatus(node: string, upid: string, opts?: CallOptions): Promise<TaskStatus> {
    assertTaskOnNode(node, upid);
    return this.request<TaskStatus, '/nodes/{node}/tasks/{upid}/status'>('GET', '/nodes/{node}/tasks/{upid}/status', { node, upid }, undefined, opts);
  }

  async taskLog(node: string, upid: string, page: { start?: number; limit?: number } = {}, opts?: CallOptions): Promise<TaskLogPage> {
    assertTaskOnNode(node, upid);
    const envelope = await this.#exchange('GET', '/nodes/{node}/tasks/{upid}/log', { node, upid }, { start: page.start, limit: page.limit }, opts);
    const lines = Array.isArray(envelope.data) ? (envelope.data as TaskLogPage['lines']) : [];
    // Perl's JSON encoder may send the count as a string.
    const total = typeof envelope.total === 'number' || typeof envelope.total === 'string' ? Number(envelope.total) : Number.NaN;
    return { lines, total: Number.isFinite(total) ? total : undefined };
  }

  async listTasks(node: string, filters: TaskListFilters = {}, opts?: CallOptions): Promise<TaskListEntry[]> {
    return this.request<TaskListEntry[], '/nodes/{node}/tasks'>('GET', '/nodes/{node}/tasks', { node }, { ...filters }, opts);
  }

  async stopTask(node: string, upid: string, opts?: CallOptions): Promise<void> {
    assertTaskOnNode(node, upid, 'DELETE');
    await this.request<null, '/nodes/{node}/tasks/{upid}'>('DELETE', '/nodes/{node}/tasks/{upid}', { node, upid }, undefined, opts);
  }

  async waitForTask(node: string, upid: string, opts?: WaitForTaskOptions): Promise<TaskResult> {
    return waitForTask(this, node, upid, opts);
  }

  close(): Promise<void> {
    this.#closing ??= this.#pool.close();
    return this.#closing;
  }

  // Secrets live only in private fields, which none of these show.
  toString(): string {
    return `ProxmoxClient(${this.baseUrl}, ${this.tokenId})`;
  }

  toJSON(): { baseUrl: string; tokenId: string } {
    return { baseUrl: this.baseUrl, tokenId: this.tokenId };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** One client per Proxmox endpoint; throws ProxmoxConfigError for unusable options. */
export function createProxmoxClient(opts: ProxmoxEndpointOptions): ProxmoxClient {
  return new ProxmoxHttpClient(opts);
}
