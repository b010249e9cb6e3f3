/**
 * What a route handler gets: the simulator internals plus the parsed, validated request.
 */
import type { FaultInjector, TaskFaults } from './faults.js';
import type { MutationLog, MutationOp } from './mutation-log.js';
import type { StoredGuest } from './model-types.js';
import type { SimulatorModel } from './model.js';
import type { TaskManager, TaskSpec } from './tasks.js';
import type { RouteKey } from './served-routes.js';
import type { Params } from './validate.js';
import type { TokenAcl } from './acl.js';

export interface SimInternals {
  model: SimulatorModel;
  tasks: TaskManager;
  mutations: MutationLog;
  faults: FaultInjector;
  haDelayMs: number;
  /** The emulated Proxmox VE major release (SimulatorOptions.pve). */
  pve: 8 | 9;
}

export interface RequestContext {
  sim: SimInternals;
  route: RouteKey;
  method: string;
  /** path relative to /api2/json */
  relPath: string;
  /** path parameters merged with query/body parameters, all validated */
  params: Params;
  /** token user as it appears in UPIDs: user@realm!tokenid */
  user: string;
  /** sequence number of this HTTP request (for exactly-once accounting) */
  dispatch: number;
  taskFaults: TaskFaults;
  /** The calling token's ACLs (path-scoped privileges, privilege separation). */
  acl: TokenAcl;
  /** Every token of the cluster by id, with its ACLs (`GET /access/permissions?userid=`). */
  acls: ReadonlyMap<string, TokenAcl>;
}

/** A handler result with extra envelope attributes (e.g. `total` of task lists/logs). */
export class Envelope {
  constructor(
    readonly data: unknown,
    readonly extra: Record<string, unknown>,
  ) {}
}

export type Handler = (ctx: RequestContext) => unknown;

export function str(ctx: RequestContext, name: string): string | undefined {
  const v = ctx.params[name];
  return typeof v === 'string' ? v : undefined;
}

export function int(ctx: RequestContext, name: string): number | undefined {
  const v = str(ctx, name);
  return v === undefined ? undefined : Number(v);
}

/** Booleans arrive as '0'/'1' after validation. */
export function bool(ctx: RequestContext, name: string): boolean {
  return str(ctx, name) === '1';
}

/** Start a task on behalf of the request (UPID user, faults and dispatch id filled in). */
export function startTask(ctx: RequestContext, spec: Omit<TaskSpec, 'user' | 'faults'>): string {
  return ctx.sim.tasks.start({ ...spec, user: ctx.user, faults: ctx.taskFaults });
}

export function recordMutation(
  ctx: RequestContext,
  g: StoredGuest,
  op: MutationOp,
  opts: { upid?: string; key?: string; detail?: Record<string, unknown> } = {},
): void {
  ctx.sim.mutations.record({
    node: g.node,
    vmid: g.vmid,
    type: g.type,
    op,
    key: opts.key ?? '',
    dispatch: ctx.dispatch,
    detail: opts.detail ?? {},
    ...(opts.upid ? { upid: opts.upid } : {}),
  });
}
