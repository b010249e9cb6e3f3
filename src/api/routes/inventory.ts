import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ENVIRONMENT_NAME_RE, vmid } from '../../domain/request.js';
import { parseUpid, ProxmoxError, ProxmoxNotFoundError, type ProxmoxClient } from '../../proxmox/index.js';
import { UPID_RE } from '../../proxmox/upid.js';
import { splitTags } from '../../activities/guest-reader.js';
import { requireEnvironment } from '../access/auth.js';
import type { ApiDeps, AppEnv } from '../http/context.js';
import { ApiError, problemResponses } from '../http/problems.js';

/**
 * Reads for an agent building requests: the guests of an environment, one guest's status and
 * config, its snapshots, and Proxmox tasks. Read scope, no approval; nothing is started or recorded.
 */
export interface InventoryDeps {
  proxmox: (environment: string) => ProxmoxClient | undefined;
}

const json = <T>(schema: T) => ({ content: { 'application/json': { schema } } });
const security = [{ bearer: [] }];
const readErrors = problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'not-found', 'proxmox-unavailable');

const guestSchema = z
  .object({
    node: z.string(),
    vmid: z.number().int(),
    type: z.enum(['qemu', 'lxc']).describe('qemu: use vm.* actions; lxc: use ct.* actions'),
    name: z.string().optional(),
    status: z.string().optional().describe('running, stopped, …'),
    lock: z.string().optional().describe('Set while Proxmox holds a lock (backup, snapshot, migrate, …)'),
    tags: z.array(z.string()),
    pool: z.string().optional(),
    template: z.boolean(),
    haState: z.string().optional(),
  })
  .openapi('InventoryGuest');

export const inventorySchema = z
  .object({
    environment: z.string(),
    nodes: z.array(z.object({ node: z.string(), status: z.string().optional() })),
    guests: z.array(guestSchema),
  })
  .openapi('Inventory');

export const guestDetailSchema = z
  .object({
    environment: z.string(),
    guest: guestSchema,
    status: z.record(z.string(), z.unknown()).describe('status/current as Proxmox reports it'),
    config: z.record(z.string(), z.unknown()).describe('The guest config, including its digest; secret-looking values are redacted'),
  })
  .openapi('InventoryGuestDetail');

export const snapshotsSchema = z
  .object({
    environment: z.string(),
    vmid: z.number().int(),
    snapshots: z.array(
      z.object({ name: z.string(), description: z.string().optional(), parent: z.string().optional(), snaptime: z.number().optional(), vmstate: z.boolean().optional() }),
    ),
  })
  .openapi('InventorySnapshots');

export const taskSchema = z
  .object({
    environment: z.string(),
    upid: z.string(),
    node: z.string(),
    type: z.string().optional(),
    id: z.string().optional(),
    user: z.string().optional(),
    status: z.string().describe('running or stopped'),
    exitstatus: z.string().optional().describe('OK, WARNINGS: n, or the error text once stopped'),
    starttime: z.number().optional(),
  })
  .openapi('InventoryTask');

export const taskLogSchema = z
  .object({ environment: z.string(), upid: z.string(), total: z.number().int().optional(), lines: z.array(z.object({ n: z.number().int(), t: z.string() })) })
  .openapi('InventoryTaskLog');

// The document shows each parameter's own constraints (pattern, integer range), so that every value
// it allows is one the route accepts (schemathesis: positive_data_acceptance).
const envString = () => z.string().regex(ENVIRONMENT_NAME_RE, 'must be lowercase letters, digits and "-", starting with a letter');
const envQuery = z.object({ environment: envString().openapi({ param: { name: 'environment', in: 'query' }, example: 'lab' }) });
const envParam = envString().openapi({ param: { name: 'environment', in: 'path' }, example: 'lab' });
const vmidParam = z.coerce
  .number()
  .int()
  .min(vmid.minValue!)
  .max(vmid.maxValue!)
  .openapi({ param: { name: 'vmid', in: 'path' }, example: 100 });
const upidParam = z
  .string()
  .regex(UPID_RE, 'a Proxmox task id (UPID:node:pid:pstart:starttime:type:id:user:)')
  .openapi({ param: { name: 'upid', in: 'path' }, example: 'UPID:pve-lab:000A1B2C:0012ABCD:6745F0A1:qmstart:100:proxmox-agent@pve!agent:' });

const routes = {
  list: createRoute({
    method: 'get',
    path: '/v1/inventory',
    tags: ['inventory'],
    summary: 'The guests of an environment',
    description: 'Every VM and container with node, vmid, type, name, status, lock and tags: what an agent needs to build a plan request.',
    security,
    request: { query: envQuery },
    responses: { 200: { description: 'The inventory', ...json(inventorySchema) }, ...readErrors },
  }),
  guest: createRoute({
    method: 'get',
    path: '/v1/inventory/{environment}/guests/{vmid}',
    tags: ['inventory'],
    summary: "One guest's status and config",
    security,
    request: { params: z.object({ environment: envParam, vmid: vmidParam }) },
    responses: { 200: { description: 'The guest', ...json(guestDetailSchema) }, ...readErrors },
  }),
  snapshots: createRoute({
    method: 'get',
    path: '/v1/inventory/{environment}/guests/{vmid}/snapshots',
    tags: ['inventory'],
    summary: "A guest's snapshots",
    security,
    request: { params: z.object({ environment: envParam, vmid: vmidParam }) },
    responses: { 200: { description: 'The snapshots (without the live "current" entry)', ...json(snapshotsSchema) }, ...readErrors },
  }),
  task: createRoute({
    method: 'get',
    path: '/v1/inventory/{environment}/tasks/{upid}',
    tags: ['inventory'],
    summary: 'A Proxmox task’s status',
    security,
    request: { params: z.object({ environment: envParam, upid: upidParam }) },
    responses: { 200: { description: 'The task', ...json(taskSchema) }, ...readErrors },
  }),
  taskLog: createRoute({
    method: 'get',
    path: '/v1/inventory/{environment}/tasks/{upid}/log',
    tags: ['inventory'],
    summary: 'A Proxmox task’s log',
    security,
    request: {
      params: z.object({ environment: envParam, upid: upidParam }),
      query: z.object({
        start: z.coerce.number().int().min(0).default(0).openapi({ param: { name: 'start', in: 'query' } }),
        limit: z.coerce.number().int().min(1).max(5000).default(500).openapi({ param: { name: 'limit', in: 'query' } }),
      }),
    },
    responses: { 200: { description: 'Log lines', ...json(taskLogSchema) }, ...readErrors },
  }),
};

export function registerInventoryRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  const client = (caller: AppEnv['Variables']['caller'], environment: string): ProxmoxClient => {
    requireEnvironment(caller, environment);
    const found = deps.inventory?.proxmox(environment);
    // A well-formed name that is not configured names no resource: 404 (the request itself is valid).
    if (!deps.environments.has(environment) || !found) throw new ApiError('not-found', `no environment '${environment}'; configured: ${[...deps.environments].join(', ')}`);
    return found;
  };

  app.openapi(routes.list, async (c) => {
    const { environment } = c.req.valid('query');
    const proxmox = client(c.get('caller'), environment);
    const resources = await read(() => proxmox.clusterResources());
    return c.json(
      {
        environment,
        nodes: resources.filter((r) => r.type === 'node').map((r) => ({ node: r.node ?? '', ...(r.status ? { status: r.status } : {}) })),
        guests: resources.filter((r) => r.type === 'qemu' || r.type === 'lxc').map(toGuest).sort((a, b) => a.vmid - b.vmid),
      },
      200,
    );
  });

  app.openapi(routes.guest, async (c) => {
    const { environment, vmid: id } = c.req.valid('param');
    const proxmox = client(c.get('caller'), environment);
    const guest = await findGuest(proxmox, environment, id);
    const [status, config] = await Promise.all([
      read(() => proxmox.guestStatus(guest.node, guest.type, id)),
      read(() => proxmox.guestConfig(guest.node, guest.type, id)),
    ]);
    return c.json({ environment, guest, status: { ...status }, config: redact(config) }, 200);
  });

  app.openapi(routes.snapshots, async (c) => {
    const { environment, vmid: id } = c.req.valid('param');
    const proxmox = client(c.get('caller'), environment);
    const guest = await findGuest(proxmox, environment, id);
    const list = await read(() => proxmox.snapshots(guest.node, guest.type, id));
    const snapshots = list
      .filter((s) => s.name !== 'current')
      .map((s) => ({
        name: s.name,
        ...(s.description ? { description: String(s.description) } : {}),
        ...(s.parent ? { parent: String(s.parent) } : {}),
        ...(typeof s.snaptime === 'number' ? { snaptime: s.snaptime } : {}),
        ...(s.vmstate !== undefined ? { vmstate: Boolean(Number(s.vmstate)) } : {}),
      }));
    return c.json({ environment, vmid: id, snapshots }, 200);
  });

  app.openapi(routes.task, async (c) => {
    const { environment, upid } = c.req.valid('param');
    const proxmox = client(c.get('caller'), environment);
    const node = parseUpid(upid)!.node;
    const t = await read(() => proxmox.taskStatus(node, upid));
    return c.json(
      {
        environment,
        upid,
        node,
        status: String(t.status),
        ...(t.type ? { type: String(t.type) } : {}),
        ...(t.id !== undefined ? { id: String(t.id) } : {}),
        ...(t.user ? { user: String(t.user) } : {}),
        ...(t.exitstatus ? { exitstatus: String(t.exitstatus) } : {}),
        ...(typeof t.starttime === 'number' ? { starttime: t.starttime } : {}),
      },
      200,
    );
  });

  app.openapi(routes.taskLog, async (c) => {
    const { environment, upid } = c.req.valid('param');
    const { start, limit } = c.req.valid('query');
    const proxmox = client(c.get('caller'), environment);
    const page = await read(() => proxmox.taskLog(parseUpid(upid)!.node, upid, { start, limit }));
    return c.json({ environment, upid, ...(page.total !== undefined ? { total: Number(page.total) } : {}), lines: page.lines }, 200);
  });
}

function toGuest(r: { node?: string; vmid?: number; type: string; name?: string; status?: string; lock?: string; tags?: string; pool?: string; template?: number; hastate?: string }) {
  return {
    node: r.node ?? '',
    vmid: r.vmid ?? 0,
    type: r.type as 'qemu' | 'lxc',
    ...(r.name ? { name: r.name } : {}),
    ...(r.status ? { status: r.status } : {}),
    ...(r.lock ? { lock: r.lock } : {}),
    tags: splitTags(r.tags),
    ...(r.pool ? { pool: r.pool } : {}),
    template: Number(r.template ?? 0) === 1,
    ...(r.hastate ? { haState: r.hastate } : {}),
  };
}

async function findGuest(proxmox: ProxmoxClient, environment: string, id: number) {
  const resources = await read(() => proxmox.clusterResources('vm'));
  const found = resources.find((r) => r.vmid === id && (r.type === 'qemu' || r.type === 'lxc'));
  if (!found) throw new ApiError('not-found', `no guest ${id} in environment '${environment}'`);
  return toGuest(found);
}

/** Proxmox errors become problems here: a missing thing is a 404, anything else a 502 in Proxmox's words. */
async function read<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ProxmoxNotFoundError) throw new ApiError('not-found', err.message);
    // A UPID naming a node outside this environment's cluster: Proxmox cannot resolve the node.
    if (err instanceof ProxmoxError && (err.status === 400 || /no such task|hostname lookup '[^']*' failed/i.test(err.message)))
      throw new ApiError('not-found', err.message);
    if (err instanceof ProxmoxError) throw new ApiError('proxmox-unavailable', err.message);
    throw err;
  }
}

/** Config values that look like credentials (cloud-init passwords, tokens) never leave the service. */
function redact(config: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, /pass|secret|token|key/i.test(k) && k !== 'digest' ? '[redacted]' : v]));
}
