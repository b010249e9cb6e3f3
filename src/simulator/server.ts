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
import { authenticate } from './auth.js';
import { type RequestContext, type SimInternals, Envelope } from './context.js';
import { handleControl } from './control.js';
import { ApiError, paramError } from './errors.js';
import { FaultInjector } from './faults.js';
import { sendEmpty, sendError, sendJson } from './http-response.js';
import { MutationLog } from './mutation-log.js';
import { SimulatorModel } from './model.js';
import { evaluateCheck } from './permissions.js';
import { parseParams, readBody } from './request-params.js';
import { matchRoute } from './router.js';
import { routeSchema } from './schema.js';
import { TaskManager } from './tasks.js';
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
    return new ApiError(500, vmid ? `can't lock file '/var/lock/qemu-server/lock-${vmid}.conf' - got timeout` : 'got timeout');
  }
  return new ApiError(status, message ?? (status === 503 ? 'Service Unavailable' : 'Internal Server Error'));
}

function buildInternals(seed: SimClusterSeed, opts: SimulatorOptions, faults: FaultInjector, mutations: MutationLog): SimInternals {
  const model = new SimulatorModel(seed);
  const taskDurationMs = opts.taskDurationMs ?? 300;
  const tasks = new TaskManager({ durationMs: () => taskDurationMs, nextPid: () => model.nextPid(), bootTime: model.bootTime });
  model.taskManager = tasks;
  return { model, tasks, mutations, faults, haDelayMs: opts.haDelayMs ?? taskDurationMs };
}

export async function startSimulator(opts: SimulatorOptions): Promise<ProxmoxSimulator> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK.test(host)) throw new Error(`the simulator only binds loopback addresses, not '${host}'`);
  const seed = structuredClone(opts.cluster);
  const faults = new FaultInjector(opts.faultSeed ?? 1);
  const mutations = new MutationLog(seed.name);
  let sim = buildInternals(seed, opts, faults, mutations);
  const authDelay = opts.authFailureDelayMs ?? 3000;
  const legacy = Boolean(opts.legacyErrors);
  let dispatchSeq = 0;

  const reset = (): void => {
    sim.tasks.shutdown();
    faults.clear();
    mutations.clear();
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
    const route = matchRoute(method, relPath);
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

    const early = faults.requestError(method, decodedPath);
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

    const denied = evaluateCheck(schema.permissionCheck, auth.token.privileges, params);
    if (denied) throw new ApiError(403, `Permission check failed (${denied})`);
    if (route.key === 'POST /nodes/{node}/vzdump' && auth.token.privileges && !auth.token.privileges.includes('VM.Backup')) {
      const first = String(params.vmid ?? '').split(/[,;\s\0]+/)[0] || '*';
      throw new ApiError(403, `Permission check failed (/vms/${first}, VM.Backup)`);
    }

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
    };
    // One injected fault per request: a request already answering an after-dispatch error is not also dropped
    // (nor is the drop rule consumed or counted), so the fault counts say what the client really saw.
    const drop = !early && faults.dropConnection(method, decodedPath);
    let result: unknown;
    let failure: unknown;
    try {
      result = await route.handler(ctx);
    } catch (e) {
      failure = e;
    }
    if (drop) {
      // The work is done (task forked, state changed) but the client never learns the outcome.
      req.socket.destroy();
      return;
    }
    if (early?.afterDispatch) throw injectedError(early.status, early.message, decodedPath);
    if (failure !== undefined) throw failure;
    if (result instanceof Envelope) sendJson(req, res, 200, 'OK', { ...result.extra, data: result.data });
    else sendJson(req, res, 200, 'OK', { data: result ?? null });
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const work =
      url.pathname === '/_sim' || url.pathname.startsWith('/_sim/')
        ? handleControl(req, res, url, { internals: () => sim, faults, mutations, reset, tokens: seed.apiTokens })
        : url.pathname === API_PREFIX || url.pathname.startsWith(`${API_PREFIX}/`)
          ? handleApi(req, res, url)
          : Promise.reject(new ApiError(501, `Method '${req.method ?? 'GET'} ${url.pathname}' not implemented`));
    work.catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return;
      const apiErr = err instanceof ApiError ? err : new ApiError(500, `internal simulator error: ${(err as Error).message}`);
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
    close: async () => {
      sim.tasks.shutdown();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
