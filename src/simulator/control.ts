/**
 * The out-of-band control API under /_sim/ (deliberately not under /api2/json), for tests that run
 * the simulator in another process. Guarded by the same API tokens; answers `{data}` JSON.
 *
 *   GET    /_sim/faults            list active fault rules
 *   POST   /_sim/faults            add a rule (JSON FaultSpec) → {data:{id}}
 *   DELETE /_sim/faults            remove all rules
 *   DELETE /_sim/faults/{id}       remove one rule
 *   POST   /_sim/faults/seed       {seed:number} reseed the fault RNG
 *   GET    /_sim/mutations         {data: Mutation[], duplicates: DuplicateGroup[]}
 *   GET    /_sim/requests          {data: RequestRecord[]}: routed requests, their params, faults and answers
 *   GET    /_sim/task-stops        {data: TaskStop[]}: every DELETE of a task, and whether it was running
 *   GET    /_sim/state             guests and tasks as the model sees them
 *   POST   /_sim/guests/{vmid}/move {node}: the guest is on that node now, as after PVE's load
 *                                   balancer or HA moved it (no task, no mutation)
 *   POST   /_sim/guests/{vmid}/ha-state {state: 'error'|'fence'|'freeze'|null}: the service state the
 *                                   HA manager reports for an HA guest (null clears it)
 *   POST   /_sim/reset             restore the seeded state, clear faults and mutations
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authenticate } from './auth.js';
import type { SimInternals } from './context.js';
import { ApiError } from './errors.js';
import type { FaultInjector, FaultSpec } from './faults.js';
import { sendEmpty, sendJson } from './http-response.js';
import type { MutationLog } from './mutation-log.js';
import type { RequestLog } from './request-log.js';
import { readBody } from './request-params.js';
import type { SimApiTokenSeed } from './types.js';

export interface ControlDeps {
  internals: () => SimInternals;
  faults: FaultInjector;
  mutations: MutationLog;
  requests: RequestLog;
  reset: () => void;
  tokens: SimApiTokenSeed[];
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw new ApiError(400, 'control API expects a JSON object body');
}

export async function handleControl(req: IncomingMessage, res: ServerResponse, url: URL, deps: ControlDeps): Promise<void> {
  const auth = authenticate({ authorization: req.headers.authorization, cookie: req.headers.cookie }, deps.tokens);
  if (!auth.ok) {
    sendEmpty(res, 401, auth.reason);
    return;
  }
  const method = (req.method ?? 'GET').toUpperCase();
  const path = url.pathname.replace(/\/+$/, '');
  const ok = (data: unknown, extra: Record<string, unknown> = {}): void => sendJson(req, res, 200, 'OK', { ...extra, data });

  if (path === '/_sim/faults' && method === 'GET') return ok(deps.faults.list());
  if (path === '/_sim/faults' && method === 'POST') {
    const spec = (await jsonBody(req)) as unknown as FaultSpec;
    try {
      return ok({ id: deps.faults.add(spec) });
    } catch (e) {
      throw new ApiError(400, (e as Error).message);
    }
  }
  if (path === '/_sim/faults' && method === 'DELETE') {
    deps.faults.clear();
    return ok(null);
  }
  if (path === '/_sim/faults/seed' && method === 'POST') {
    const { seed } = await jsonBody(req);
    if (typeof seed !== 'number') throw new ApiError(400, 'seed must be a number');
    deps.faults.seed(seed);
    return ok(null);
  }
  const one = /^\/_sim\/faults\/([^/]+)$/.exec(path);
  if (one && method === 'DELETE') return ok({ removed: deps.faults.remove(decodeURIComponent(one[1]!)) });
  if (path === '/_sim/mutations' && method === 'GET') return ok(deps.mutations.all(), { duplicates: deps.mutations.duplicates() });
  if (path === '/_sim/requests' && method === 'GET') return ok(deps.requests.all());
  if (path === '/_sim/task-stops' && method === 'GET') return ok(deps.internals().tasks.stopLog());
  if (path === '/_sim/state' && method === 'GET') {
    const { model } = deps.internals();
    return ok({ guests: model.guests(), tasks: model.tasks(), backups: model.backupVolumes() });
  }
  const move = /^\/_sim\/guests\/(\d+)\/move$/.exec(path);
  if (move && method === 'POST') {
    const { node } = await jsonBody(req);
    if (typeof node !== 'string') throw new ApiError(400, 'node must be a string');
    try {
      const g = deps.internals().model.moveGuest(Number(move[1]), node);
      return ok({ vmid: g.vmid, node: g.node });
    } catch (e) {
      throw new ApiError(400, (e as Error).message);
    }
  }
  const haState = /^\/_sim\/guests\/(\d+)\/ha-state$/.exec(path);
  if (haState && method === 'POST') {
    const { state } = await jsonBody(req);
    if (state !== null && state !== 'error' && state !== 'fence' && state !== 'freeze') {
      throw new ApiError(400, "state must be 'error', 'fence', 'freeze' or null");
    }
    try {
      const g = deps.internals().model.setHaServiceState(Number(haState[1]), state);
      return ok({ vmid: g.vmid, state: g.haCrmOverride ?? null });
    } catch (e) {
      throw new ApiError(400, (e as Error).message);
    }
  }
  if (path === '/_sim/reset' && method === 'POST') {
    deps.reset();
    return ok(null);
  }
  throw new ApiError(501, `Method '${method} ${path}' not implemented`);
}
