/**
 * The node:http front end. node:http rather than a framework because the reason phrase of the
 * status line carries the Proxmox error message and must be set explicitly (writeHead with reason).
 *
 * Request pipeline, in the order pve-http-server and pve-manager's HTTPServer apply it:
 * auth (401 after a delay, empty body) → route lookup (501) → injected request faults → proxy to the
 * node (unknown node 500, unreachable 595/596/599) → permission check (403) → parameter verification
 * (400) → handler (sync result, UPID, or 500) → optional injected connection drop.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isUpid } from '../proxmox/upid.js';
import { authenticate } from './auth.js';
import { type RequestContext, type SimInternals, Envelope } from './context.js';
import { handleControl } from './control.js';
import { ApiError, paramError } from './errors.js';
import { FaultInjector } from './faults.js';
import { sendEmpty, sendError, sendJson, sendText } from './http-response.js';
import { MutationLog } from './mutation-log.js';
import { RequestLog, type RequestRecord } from './request-log.js';
import { SimulatorModel } from './model.js';
import { TokenAcl } from './acl.js';
import { evaluateCheck } from './permissions.js';
import { parseParams, readBody } from './request-params.js';
import { matchRoute } from './router.js';
import { routeSchema } from './schema.js';
import { TaskManager, type TaskStop } from './tasks.js';
import type { SimClusterSeed, SimulatorOptions } from './types.js';
import { validateParams } from './validate.js';

export interface ProxmoxSimulator {
  /** e.g. http://127.0.0.1:PORT (clients append /api2/json) */
  url: string;
  close(): Promise<void>;
  faults: FaultInjector;
  mutations: MutationLog;
  /** read access to state for tests (guests, tasks, snapshots, configs) */
  model: SimulatorModel;
  /** Restore the seeded state and clear faults and the mutation log (also `POST /_sim/reset`). */
  reset(): void;
  /** API requests routed so far (under /api2/json): with `faults.hits()`, the injected fault rate. */
  requestCount(): number;
  /** The routed requests (newest 100,000), with their parameters, the faults they met and what was answered. */
  requests: RequestLog;
  /** Every `DELETE /nodes/{node}/tasks/{upid}` of a known task: which task, when, and whether it was still running. */
  taskStops(): TaskStop[];
}

const API_PREFIX = '/api2/json';
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Default messages for injected error statuses. */
function injectedError(status: number, message: string | undefined, relPath: string): ApiError {
  if (status === 595 || status === 596 || status === 599) {
    const msg = message ?? { 595: 'No route to host', 596: 'Broken pipe', 599: 'Too many redirections' }[status];
    return new ApiError(status, msg, undefined, true);
  }
  if (status === 500 && !message) {
    const vmid = /\/(?:qemu|lxc)\/(\d+)/.exec(relPath)?.[1];
    // Without a guest in the path (vzdump), the handler's pre-fork failure: fork_worker found no worker.
    // Both are refusals before anything ran, as the fault promises ("without executing the request").
    return new ApiError(500, vmid ? `can't lock file '/var/lock/qemu-server/lock-${vmid}.conf' - got timeout` : 'got no worker upid - start worker failed');
  }
  return new ApiError(status, message ?? (status === 503 ? 'Service Unavailable' : 'Internal Server Error'));
}

function buildInternals(seed: SimClusterSeed, opts: SimulatorOptions, faults: FaultInjector, mutations: MutationLog): SimInternals {
  const model = new SimulatorModel(seed);
  const taskDurationMs = opts.taskDurationMs ?? 300;
  const tasks = new TaskManager({ durationMs: () => taskDurationMs, nextPid: () => model.nextPid(), bootTime: model.bootTime });
  model.taskManager = tasks;
  return { model, tasks, mutations, faults, haDelayMs: opts.haDelayMs ?? taskDurationMs, pve: opts.pve ?? 9 };
}

export async function startSimulator(opts: SimulatorOptions): Promise<ProxmoxSimulator> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK.test(host)) throw new Error(`the simulator only binds loopback addresses, not '${host}'`);
  const seed = structuredClone(opts.cluster);
  const faults = new FaultInjector(opts.faultSeed ?? 1);
  const mutations = new MutationLog(seed.name);
  const requests = new RequestLog();
  /** The request record of each response still to be written (for the status of error answers). */
  const answering = new WeakMap<ServerResponse, RequestRecord>();
  let sim = buildInternals(seed, opts, faults, mutations);
  // Built once: a seed naming a privilege the emulated release lacks fails here, at start.
  const acls = new Map(seed.apiTokens.map((t) => [t.tokenId, new TokenAcl(t, opts.pve ?? 9)]));
  const authDelay = opts.authFailureDelayMs ?? 3000;
  const legacy = Boolean(opts.legacyErrors);
  let dispatchSeq = 0;

  const reset = (): void => {
    sim.tasks.shutdown();
    faults.clear();
    mutations.clear();
    requests.clear();
    sim = buildInternals(seed, opts, faults, mutations);
  };

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const relPath = url.pathname.slice(API_PREFIX.length) || '/';

    const auth = authenticate({ authorization: req.headers.authorization, cookie: req.headers.cookie }, seed.apiTokens);
    if (!auth.ok) {
      // pve-http-server delays every 401 (~3 s) to slow down brute force; the body is empty for /api2/json.
      if (authDelay > 0) await new Promise((r) => setTimeout(r, authDelay));
      sendEmpty(res, 401, auth.reason);
      return;
    }
    if (method === 'HEAD') throw new ApiError(501, "method 'HEAD' not available");
    const route = matchRoute(method, relPath, opts.pve ?? 9);
    let decodedPath = relPath;
    try {
      decodedPath = decodeURIComponent(relPath);
    } catch {
      /* keep raw */
    }
    if (!route) throw new ApiError(501, `Method '${method} ${decodedPath}' not implemented`);

    const body = await readBody(req);
    const schema = routeSchema(route.key);
    const dispatch = ++dispatchSeq;
    const entry = requests.open({ seq: dispatch, method, path: decodedPath });
    answering.set(res, entry);

    // A slow answer holds back whatever goes out (answer, error or drop); before dispatch, the work too.
    const delay = faults.responseDelay(method, decodedPath);
    if (delay) entry.faults.push('slow-response');
    let heldBack = false;
    const holdBack = async (): Promise<void> => {
      if (!delay || heldBack) return;
      heldBack = true;
      await new Promise((r) => setTimeout(r, delay.delayMs));
    };
    if (delay?.beforeDispatch) await holdBack();
    try {
      await dispatchApi(req, res, { method, decodedPath, route, body, schema, dispatch, entry, url, auth: auth.token, holdBack });
    } catch (err) {
      await holdBack();
      throw err;
    }
  }

  async function dispatchApi(
    req: IncomingMessage,
    res: ServerResponse,
    r: {
      method: string;
      decodedPath: string;
      route: NonNullable<ReturnType<typeof matchRoute>>;
      body: string;
      schema: ReturnType<typeof routeSchema>;
      dispatch: number;
      entry: RequestRecord;
      url: URL;
      auth: Extract<ReturnType<typeof authenticate>, { ok: true }>['token'];
      holdBack: () => Promise<void>;
    },
  ): Promise<void> {
    const { method, decodedPath, route, body, schema, dispatch, entry, url, holdBack } = r;
    const auth = { token: r.auth };
    const early = faults.requestError(method, decodedPath);
    if (early) entry.faults.push(early.afterDispatch ? 'error-after-dispatch' : 'error');
    if (early && !early.afterDispatch) throw injectedError(early.status, early.message, decodedPath);

    const node = route.pathParams.node;
    if (schema.proxyto === 'node' && node !== undefined) {
      if (!sim.model.nodes.includes(node)) {
        throw new ApiError(500, `hostname lookup '${node}' failed - failed to get address info for: ${node}: Name or service not known`);
      }
      const nf = faults.nodeFault(node);
      if (nf) throw new ApiError(nf.status, nf.message, undefined, true);
    }

    const bodyParams = parseParams(req.headers['content-type'], body, url.searchParams);
    const params = { ...route.pathParams };
    for (const [k, v] of Object.entries(bodyParams)) {
      if (k in route.pathParams) paramError({ [k]: 'duplicate parameter (already defined in URI)' });
      params[k] = v as string;
    }

    const acl = acls.get(auth.token.tokenId)!;
    const denied = evaluateCheck(schema.permissionCheck, (path, priv) => acl.has(path, priv), params);
    if (denied) throw new ApiError(403, `Permission check failed (${denied})`);
    if (route.key === 'POST /nodes/{node}/vzdump') {
      const first = String(params.vmid ?? '').split(/[,;\s\0]+/)[0] || '*';
      if (!acl.has(`/vms/${first}`, 'VM.Backup')) throw new ApiError(403, `Permission check failed (/vms/${first}, VM.Backup)`);
    }

    entry.params = { ...(params as Record<string, string>) };
    const errors = validateParams(schema, params);
    if (errors) paramError(errors);
    // skiplock is root@pam only; an API token never qualifies.
    if (params.skiplock !== undefined) paramError({ skiplock: 'Only root may use this option.' });

    const ctx: RequestContext = {
      sim,
      route: route.key,
      method,
      relPath: decodedPath,
      params,
      user: auth.token.tokenId,
      dispatch,
      taskFaults: faults.taskFaults(method, decodedPath),
      acl,
      acls,
    };
    // One injected fault per request: a request already answering an after-dispatch error is not also dropped
    // (nor is the drop rule consumed or counted), so the fault counts say what the client really saw.
    const drop = !early && faults.dropConnection(method, decodedPath);
    let result: unknown;
    let failure: unknown;
    entry.executed = true;
    try {
      result = await route.handler(ctx);
    } catch (e) {
      failure = e;
    }
    if (typeof result === 'string' && isUpid(result)) {
      entry.upid = result;
      if (ctx.taskFaults.durationMs !== undefined) entry.faults.push('slow-task');
    }
    if (drop) {
      // The work is done (task forked, state changed) but the client never learns the outcome.
      entry.faults.push('drop-after-dispatch');
      await holdBack();
      entry.answer = { kind: 'dropped' };
      entry.answeredAt = Date.now();
      req.socket.destroy();
      return;
    }
    // pveproxy answers an error only before it runs a handler, or with the handler's own error: an
    // error after the work was done is what a reverse proxy in front of it sends (it lost the answer).
    if (early?.afterDispatch) {
      const e = injectedError(early.status, early.message, decodedPath);
      throw new ApiError(e.status, e.message, e.errors, e.emptyBody, true);
    }
    if (failure !== undefined) throw failure;
    const payload = result instanceof Envelope ? { ...result.extra, data: result.data } : { data: result ?? null };
    // One fault per request: only an answer that would have been a clean 2xx is garbled.
    const garbled = faults.garble(method, decodedPath);
    await holdBack();
    if (garbled) {
      const json = JSON.stringify(payload);
      const text = garbled.body ?? json.slice(0, Math.max(1, Math.floor(json.length * 0.6)));
      entry.faults.push('garbled-after-dispatch');
      entry.answer = { kind: 'garbled', status: 200, body: text };
      entry.answeredAt = Date.now();
      sendText(res, 200, 'OK', text);
      return;
    }
    entry.answer = { kind: 'answered', status: 200 };
    entry.answeredAt = Date.now();
    sendJson(req, res, 200, 'OK', payload);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const work =
      url.pathname === '/_sim' || url.pathname.startsWith('/_sim/')
        ? handleControl(req, res, url, { internals: () => sim, faults, mutations, requests, reset, tokens: seed.apiTokens })
        : url.pathname === API_PREFIX || url.pathname.startsWith(`${API_PREFIX}/`)
          ? handleApi(req, res, url)
          : Promise.reject(new ApiError(501, `Method '${req.method ?? 'GET'} ${url.pathname}' not implemented`));
    work.catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return;
      const apiErr = err instanceof ApiError ? err : new ApiError(500, `internal simulator error: ${(err as Error).message}`);
      const entry = answering.get(res);
      if (entry && !entry.answer) {
        entry.answer = { kind: 'answered', status: apiErr.status };
        entry.answeredAt = Date.now();
      }
      sendError(req, res, apiErr, legacy);
    });
  });

  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  return {
    url: `http://${urlHost}:${addr.port}`,
    faults,
    mutations,
    get model() {
      return sim.model;
    },
    reset,
    requestCount: () => dispatchSeq,
    requests,
    taskStops: () => sim.tasks.stopLog(),
    close: async () => {
      sim.tasks.shutdown();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
