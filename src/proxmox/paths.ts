// The API paths this project may call, each with the methods it may use, and the one function that
// fills a template. Every path parameter is checked against its Proxmox format and then
// percent-encoded, so a value can never add a segment, climb with `..`, start a query or fragment,
// or smuggle an encoded slash. test/proxmox/paths.test.ts checks every (template, method) against
// the published schema (apidata.js).

import { ProxmoxInvalidPathParamError } from './errors.js';
import { isUpid } from './upid.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * Known API paths (below /api2/json) and the methods this project may use on each. Adding a call
 * means adding its template here; the schema test then checks it exists in Proxmox's API.
 */
export const PROXMOX_ROUTES = {
  '/version': ['GET'],
  '/access/permissions': ['GET'],
  '/nodes': ['GET'],
  '/nodes/{node}/status': ['GET'],
  '/nodes/{node}/tasks': ['GET'],
  '/nodes/{node}/tasks/{upid}': ['GET', 'DELETE'],
  '/nodes/{node}/tasks/{upid}/status': ['GET'],
  '/nodes/{node}/tasks/{upid}/log': ['GET'],
  '/nodes/{node}/storage': ['GET'],
  '/nodes/{node}/storage/{storage}/status': ['GET'],
  '/nodes/{node}/storage/{storage}/content': ['GET'],
  '/nodes/{node}/vzdump': ['POST'],
  '/cluster/resources': ['GET'],
  '/cluster/tasks': ['GET'],
  '/cluster/nextid': ['GET'],
  '/cluster/status': ['GET'],
  '/nodes/{node}/qemu': ['GET'],
  '/nodes/{node}/qemu/{vmid}': ['GET', 'DELETE'],
  '/nodes/{node}/qemu/{vmid}/status/current': ['GET'],
  '/nodes/{node}/qemu/{vmid}/status/start': ['POST'],
  '/nodes/{node}/qemu/{vmid}/status/stop': ['POST'],
  '/nodes/{node}/qemu/{vmid}/status/shutdown': ['POST'],
  '/nodes/{node}/qemu/{vmid}/status/reboot': ['POST'],
  '/nodes/{node}/qemu/{vmid}/status/suspend': ['POST'],
  '/nodes/{node}/qemu/{vmid}/status/resume': ['POST'],
  '/nodes/{node}/qemu/{vmid}/status/reset': ['POST'],
  '/nodes/{node}/qemu/{vmid}/config': ['GET', 'PUT', 'POST'],
  '/nodes/{node}/qemu/{vmid}/pending': ['GET'],
  '/nodes/{node}/qemu/{vmid}/snapshot': ['GET', 'POST'],
  '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}': ['GET', 'DELETE'],
  '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config': ['GET', 'PUT'],
  '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback': ['POST'],
  '/nodes/{node}/qemu/{vmid}/clone': ['POST'],
  '/nodes/{node}/qemu/{vmid}/migrate': ['GET', 'POST'],
  '/nodes/{node}/qemu/{vmid}/resize': ['PUT'],
  '/nodes/{node}/lxc': ['GET'],
  '/nodes/{node}/lxc/{vmid}': ['GET', 'DELETE'],
  '/nodes/{node}/lxc/{vmid}/status/current': ['GET'],
  '/nodes/{node}/lxc/{vmid}/status/start': ['POST'],
  '/nodes/{node}/lxc/{vmid}/status/stop': ['POST'],
  '/nodes/{node}/lxc/{vmid}/status/shutdown': ['POST'],
  '/nodes/{node}/lxc/{vmid}/status/reboot': ['POST'],
  '/nodes/{node}/lxc/{vmid}/status/suspend': ['POST'],
  '/nodes/{node}/lxc/{vmid}/status/resume': ['POST'],
  '/nodes/{node}/lxc/{vmid}/config': ['GET', 'PUT'],
  '/nodes/{node}/lxc/{vmid}/pending': ['GET'],
  '/nodes/{node}/lxc/{vmid}/snapshot': ['GET', 'POST'],
  '/nodes/{node}/lxc/{vmid}/snapshot/{snapname}': ['GET', 'DELETE'],
  '/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/config': ['GET', 'PUT'],
  '/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback': ['POST'],
  '/nodes/{node}/lxc/{vmid}/clone': ['POST'],
  '/nodes/{node}/lxc/{vmid}/migrate': ['POST'],
  '/nodes/{node}/lxc/{vmid}/resize': ['PUT'],
} as const satisfies Record<string, readonly HttpMethod[]>;

type Routes = typeof PROXMOX_ROUTES;

/**
 * Methods allowed on template P. A path typed `never` (a cast) allows any method: the runtime
 * check in `request` still refuses a method the route table does not list.
 */
export type ProxmoxRouteMethod<P extends ProxmoxPathTemplate> = [P] extends [never] ? HttpMethod : Routes[P][number];

export type ProxmoxPathTemplate = keyof Routes & string;

/** The TypeScript type of each path parameter, by name. */
interface PathParamTypes {
  node: string;
  vmid: number;
  snapname: string;
  storage: string;
  upid: string;
}

type ParamNames<P extends string> = P extends `${string}{${infer K}}${infer Rest}` ? K | ParamNames<Rest> : never;

/**
 * `{ node: string; vmid: number }` for `/nodes/{node}/qemu/{vmid}`; `{}` for `/version`. For a
 * union of templates it is the union of their parameter objects.
 */
export type PathParams<P extends string> = P extends string
  ? { [K in ParamNames<P>]: K extends keyof PathParamTypes ? PathParamTypes[K] : never }
  : never;

// Formats from pve-common src/PVE/JSONSchema.pm. JS `$` (no `m` flag) does not match before a
// trailing newline, so these are, if anything, stricter than Perl's.
const NODE_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/; // pve-node
const CONFIGID_RE = /^[a-zA-Z][a-zA-Z0-9_-]+$/; // pve-configid ($CONFIGID_RE); snapshots add maxLength 40
const STORAGE_RE = /^[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]$/; // pve-storage-id (parse_id)
const VMID_MIN = 100;
const VMID_MAX = 999_999_999;

const validators: { [K in keyof PathParamTypes]: (v: unknown) => string | undefined } = {
  node: (v) => (typeof v === 'string' && NODE_RE.test(v) ? v : undefined),
  vmid: (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= VMID_MIN && v <= VMID_MAX ? String(v) : undefined,
  snapname: (v) => (typeof v === 'string' && v.length <= 40 && CONFIGID_RE.test(v) ? v : undefined),
  storage: (v) => (typeof v === 'string' && STORAGE_RE.test(v) ? v : undefined),
  upid: (v) => (isUpid(v) ? v : undefined),
};

const expectations: Record<keyof PathParamTypes, string> = {
  node: 'a pve-node name (letters, digits, inner hyphens)',
  vmid: `an integer ${VMID_MIN}..${VMID_MAX}`,
  snapname: 'a pve-configid of 2..40 characters ([a-zA-Z][a-zA-Z0-9_-]+)',
  storage: 'a pve-storage-id ([a-zA-Z][a-zA-Z0-9-_.]*[a-zA-Z0-9])',
  upid: 'a UPID (UPID:node:pid:pstart:starttime:type:id:user:)',
};

function describe(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * Fills `template` from `params`. Throws ProxmoxInvalidPathParamError for a missing, extra or
 * malformed parameter, before anything is sent.
 */
export function fillPath<P extends ProxmoxPathTemplate>(template: P, params: PathParams<P>, method = ''): string {
  const given = params as Record<string, unknown>;
  const used = new Set<string>();
  const filled = template.replace(/\{([a-z]+)\}/g, (_match, name: string) => {
    used.add(name);
    const validate = validators[name as keyof PathParamTypes];
    if (!validate) {
      throw new ProxmoxInvalidPathParamError(`path template ${template} has an unknown parameter {${name}}`, {
        param: name, method, path: template,
      });
    }
    const value = given[name];
    const ok = validate(value);
    if (ok === undefined) {
      throw new ProxmoxInvalidPathParamError(
        `invalid path parameter ${name} for ${template}: expected ${expectations[name as keyof PathParamTypes]}, got ${describe(value)}`,
        { param: name, method, path: template },
      );
    }
    return encodeURIComponent(ok);
  });
  for (const name of Object.keys(given)) {
    if (!used.has(name)) {
      throw new ProxmoxInvalidPathParamError(`path template ${template} has no parameter {${name}}`, {
        param: name, method, path: template,
      });
    }
  }
  return filled;
}
