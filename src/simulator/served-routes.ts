/**
 * Every (method, path template) the simulator answers under /api2/json.
 *
 * This list is the single source of truth shared by the HTTP router (which must register a handler
 * for each entry) and by scripts/gen-simulator-schema.ts (which extracts exactly these parameter
 * schemas from the real apidata.js). Paths use apidata's own `{param}` template spelling so that the
 * schema-fidelity test can look each one up verbatim.
 */
export const SERVED_ROUTES = [
  'GET /version',
  'GET /access/permissions',
  'GET /nodes',
  'GET /cluster/resources',
  'GET /cluster/nextid',
  'GET /cluster/tasks',
  'GET /nodes/{node}/qemu',
  'GET /nodes/{node}/lxc',

  'GET /nodes/{node}/qemu/{vmid}/status/current',
  'POST /nodes/{node}/qemu/{vmid}/status/start',
  'POST /nodes/{node}/qemu/{vmid}/status/stop',
  'POST /nodes/{node}/qemu/{vmid}/status/shutdown',
  'POST /nodes/{node}/qemu/{vmid}/status/reboot',
  'POST /nodes/{node}/qemu/{vmid}/status/reset',
  'POST /nodes/{node}/qemu/{vmid}/status/suspend',
  'POST /nodes/{node}/qemu/{vmid}/status/resume',
  'GET /nodes/{node}/lxc/{vmid}/status/current',
  'POST /nodes/{node}/lxc/{vmid}/status/start',
  'POST /nodes/{node}/lxc/{vmid}/status/stop',
  'POST /nodes/{node}/lxc/{vmid}/status/shutdown',
  'POST /nodes/{node}/lxc/{vmid}/status/reboot',
  'POST /nodes/{node}/lxc/{vmid}/status/suspend',
  'POST /nodes/{node}/lxc/{vmid}/status/resume',

  'GET /nodes/{node}/qemu/{vmid}/config',
  'PUT /nodes/{node}/qemu/{vmid}/config',
  'POST /nodes/{node}/qemu/{vmid}/config',
  'GET /nodes/{node}/lxc/{vmid}/config',
  'PUT /nodes/{node}/lxc/{vmid}/config',
  'GET /nodes/{node}/qemu/{vmid}/pending',
  'GET /nodes/{node}/lxc/{vmid}/pending',

  'GET /nodes/{node}/qemu/{vmid}/snapshot',
  'POST /nodes/{node}/qemu/{vmid}/snapshot',
  'POST /nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback',
  'DELETE /nodes/{node}/qemu/{vmid}/snapshot/{snapname}',
  'GET /nodes/{node}/lxc/{vmid}/snapshot',
  'POST /nodes/{node}/lxc/{vmid}/snapshot',
  'POST /nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback',
  'DELETE /nodes/{node}/lxc/{vmid}/snapshot/{snapname}',

  'POST /nodes/{node}/qemu/{vmid}/clone',
  'POST /nodes/{node}/lxc/{vmid}/clone',
  'GET /nodes/{node}/qemu/{vmid}/migrate',
  'POST /nodes/{node}/qemu/{vmid}/migrate',
  'GET /nodes/{node}/lxc/{vmid}/migrate',
  'POST /nodes/{node}/lxc/{vmid}/migrate',
  'PUT /nodes/{node}/qemu/{vmid}/resize',
  'PUT /nodes/{node}/lxc/{vmid}/resize',
  'DELETE /nodes/{node}/qemu/{vmid}',
  'DELETE /nodes/{node}/lxc/{vmid}',
  'POST /nodes/{node}/qemu/{vmid}/template',
  'POST /nodes/{node}/lxc/{vmid}/template',

  'POST /nodes/{node}/vzdump',
  'GET /nodes/{node}/storage',
  'GET /nodes/{node}/storage/{storage}/content',

  'GET /nodes/{node}/tasks',
  'GET /nodes/{node}/tasks/{upid}/status',
  'GET /nodes/{node}/tasks/{upid}/log',
  'DELETE /nodes/{node}/tasks/{upid}',

  'GET /cluster/ha/resources',
  'GET /cluster/ha/resources/{sid}',
  'GET /cluster/ha/status/current',
  'GET /cluster/ha/groups',
  'POST /cluster/ha/groups',
  'GET /cluster/ha/groups/{group}',
  'PUT /cluster/ha/groups/{group}',
  'DELETE /cluster/ha/groups/{group}',
  'GET /cluster/ha/rules',
  'POST /cluster/ha/rules',
  'GET /cluster/ha/rules/{rule}',
  'PUT /cluster/ha/rules/{rule}',
  'DELETE /cluster/ha/rules/{rule}',
] as const;

export type RouteKey = (typeof SERVED_ROUTES)[number];

/**
 * Routes only one release has (SimulatorOptions.pve); on the other the path is unknown to pveproxy, so
 * it answers 501 `Method '…' not implemented` before any permission or parameter check. HA rules came
 * with pve-ha-manager 5.0 (PVE 9). HA groups are still routed on PVE 9 (apidata 9.1 lists them, marked
 * deprecated): there their handlers refuse, as the real ones do once the groups were migrated to rules.
 */
export const ROUTE_RELEASE: Partial<Record<RouteKey, 8 | 9>> = {
  'GET /cluster/ha/rules': 9,
  'POST /cluster/ha/rules': 9,
  'GET /cluster/ha/rules/{rule}': 9,
  'PUT /cluster/ha/rules/{rule}': 9,
  'DELETE /cluster/ha/rules/{rule}': 9,
};
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export function splitRouteKey(key: string): { method: HttpMethod; path: string } {
  const space = key.indexOf(' ');
  return { method: key.slice(0, space) as HttpMethod, path: key.slice(space + 1) };
}
