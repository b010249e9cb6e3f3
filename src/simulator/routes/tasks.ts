/** Node task routes: list, status, log and stop (pve-manager PVE/API2/Tasks.pm). */
import { parseUpid } from '../../proxmox/upid.js';
import { type Handler, type RequestContext, Envelope, bool, int, str } from '../context.js';
import { paramError } from '../errors.js';
import type { RouteKey } from '../served-routes.js';
import type { TaskView } from '../tasks.js';
import { splitList } from '../validate.js';

/** Resolves the {upid} path parameter the way read_task_status does. */
function findTask(ctx: RequestContext): TaskView {
  const upid = str(ctx, 'upid')!;
  if (!parseUpid(upid)) paramError({ upid: 'unable to parse worker upid' });
  const task = ctx.sim.tasks.find(upid);
  // A task lives in its node's log directory; a freshly forked worker may not be visible yet.
  if (!task || task.node !== str(ctx, 'node') || ctx.sim.tasks.ageMs(upid) < ctx.sim.faults.taskInvisibleMs()) {
    paramError({ upid: 'no such task' });
  }
  return task;
}

function taskFields(t: TaskView): Record<string, unknown> {
  return {
    upid: t.upid,
    node: t.node,
    pid: t.pid,
    pstart: t.pstart,
    starttime: t.starttime,
    type: t.type,
    id: t.id,
    user: t.user,
    ...(t.tokenid ? { tokenid: t.tokenid } : {}),
  };
}

function statusClass(exit: string): 'ok' | 'warning' | 'error' {
  if (exit === 'OK') return 'ok';
  return exit.startsWith('WARNINGS') ? 'warning' : 'error';
}

const list: Handler = (ctx) => {
  const node = str(ctx, 'node')!;
  const source = str(ctx, 'source') ?? 'archive';
  const typefilter = str(ctx, 'typefilter');
  const vmid = int(ctx, 'vmid');
  const userfilter = str(ctx, 'userfilter');
  const since = int(ctx, 'since');
  const until = int(ctx, 'until');
  const errorsOnly = bool(ctx, 'errors');
  const statusfilter = str(ctx, 'statusfilter');
  const wanted = statusfilter ? new Set(splitList(statusfilter).map((s) => s.toLowerCase())) : undefined;
  const start = int(ctx, 'start') ?? 0;
  const limit = int(ctx, 'limit') ?? 50;

  const matching = ctx.sim.tasks
    .list()
    .filter((t) => t.node === node)
    .filter((t) => (source === 'all' ? true : source === 'active' ? t.status === 'running' : t.status === 'stopped'))
    .filter((t) => !typefilter || t.type === typefilter)
    .filter((t) => vmid === undefined || t.id === String(vmid))
    .filter((t) => !userfilter || `${t.user}${t.tokenid ? `!${t.tokenid}` : ''}`.toLowerCase().includes(userfilter.toLowerCase()))
    .filter((t) => since === undefined || t.starttime >= since)
    .filter((t) => until === undefined || t.starttime <= until)
    .filter((t) => !errorsOnly || (t.exitstatus !== undefined && t.exitstatus !== 'OK'))
    .filter((t) => !wanted || (t.exitstatus !== undefined && wanted.has(statusClass(t.exitstatus))))
    .sort((a, b) => b.starttime - a.starttime || b.pid - a.pid);

  const page = matching.slice(start, start + limit).map((t) => ({
    ...taskFields(t),
    // Tasks.pm gives an active task without a status `status: 'RUNNING'` (source=active|all).
    status: t.exitstatus ?? 'RUNNING',
    ...(t.endtime !== undefined ? { endtime: t.endtime } : {}),
  }));
  return new Envelope(page, { total: matching.length });
};

/** How many tasks a node keeps in its `active` file: every running one, then finished ones up to 25. */
const MAX_ACTIVE_FINISHED = 25;

/**
 * GET /cluster/tasks: the `active` worker lists every node broadcasts (RESTEnvironment
 * active_workers), concatenated per node. Running tasks keep `pid`; finished ones lose it and carry
 * `endtime`, `status` (the exit status) and `saved`. `pstart` is never there. No filters, no total.
 */
const clusterTasks: Handler = (ctx) => {
  const all = ctx.sim.tasks.list();
  const out: Record<string, unknown>[] = [];
  for (const node of ctx.sim.model.nodes) {
    const mine = all.filter((t) => t.node === node).sort((a, b) => b.starttime - a.starttime || b.pid - a.pid);
    const running = mine.filter((t) => t.status === 'running');
    const finished = mine.filter((t) => t.status === 'stopped').slice(0, Math.max(0, MAX_ACTIVE_FINISHED - running.length));
    for (const t of running) {
      const { pstart: _pstart, ...fields } = taskFields(t);
      out.push({ ...fields, saved: '0' });
    }
    for (const t of finished) {
      const { pstart: _pstart, pid: _pid, ...fields } = taskFields(t);
      out.push({ ...fields, saved: '1', endtime: t.endtime, status: t.exitstatus });
    }
  }
  return out;
};

const status: Handler = (ctx) => {
  const t = findTask(ctx);
  return { ...taskFields(t), status: t.status, ...(t.exitstatus !== undefined ? { exitstatus: t.exitstatus } : {}) };
};

const log: Handler = (ctx) => {
  const t = findTask(ctx);
  const start = int(ctx, 'start') ?? 0;
  const limit = int(ctx, 'limit') ?? 50;
  const lines = t.log.map((text, i) => ({ n: i + 1, t: text }));
  return new Envelope(lines.slice(start, start + limit), { total: lines.length });
};

const stop: Handler = (ctx) => {
  const t = findTask(ctx);
  ctx.sim.tasks.stop(t.upid, ctx.dispatch);
  return null;
};

export const taskRoutes: Partial<Record<RouteKey, Handler>> = {
  'GET /cluster/tasks': clusterTasks,
  'GET /nodes/{node}/tasks': list,
  'GET /nodes/{node}/tasks/{upid}/status': status,
  'GET /nodes/{node}/tasks/{upid}/log': log,
  'DELETE /nodes/{node}/tasks/{upid}': stop,
};
