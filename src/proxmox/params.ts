// Encoding of request parameters: the query string for GET/DELETE, an
// application/x-www-form-urlencoded body for POST/PUT (as proxmoxer sends them).
//
// - booleans become 1/0 (Proxmox's JSONSchema booleans);
// - undefined, null and empty arrays are left out, so optional fields can be passed through as they are;
// - arrays become ONE comma-joined value. Every list this project sends is a `*-list` string format
//   (`delete` is `pve-configid-list`, vzdump `vmid` is `pve-vmid-list`), whose documented form is
//   `a,b`. The server's split_list also splits on `,;` and whitespace, so an element containing one
//   of those would silently become two: such elements are refused instead. (Proxmox's few real
//   `type: array` parameters, e.g. guest-agent `command`, are not used here.)

import { ProxmoxInvalidParamError } from './errors.js';

export type ProxmoxParamScalar = string | number | boolean;
export type ProxmoxParamValue = ProxmoxParamScalar | readonly (string | number)[] | null | undefined;
export type ProxmoxParams = Readonly<Record<string, ProxmoxParamValue>>;

const PARAM_NAME_RE = /^[a-zA-Z][a-zA-Z0-9_-]*$/;
const LIST_SEPARATOR_RE = /[,;\s\0]/;

interface Where {
  method: string;
  path: string;
}

function scalar(name: string, value: ProxmoxParamScalar, where: Where): string {
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw new ProxmoxInvalidParamError(`parameter ${name} must be a finite number, got ${value}`, { param: name, ...where });
    }
    return String(value);
  }
  if (typeof value === 'string') return value;
  throw new ProxmoxInvalidParamError(`parameter ${name} has unsupported type ${typeof value}`, { param: name, ...where });
}

/** Returns the parameters as URLSearchParams, or throws ProxmoxInvalidParamError. */
export function encodeParams(params: ProxmoxParams | undefined, where: Where): URLSearchParams {
  const out = new URLSearchParams();
  if (!params) return out;
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    if (!PARAM_NAME_RE.test(name)) {
      throw new ProxmoxInvalidParamError(`invalid parameter name ${JSON.stringify(name)}`, { param: name, ...where });
    }
    if (Array.isArray(value)) {
      if (value.length === 0) continue; // nothing to list; `delete=` would be a parameter error
      const items = (value as readonly (string | number)[]).map((item) => scalar(name, item, where));
      if (items.some((item) => item === '' || LIST_SEPARATOR_RE.test(item))) {
        throw new ProxmoxInvalidParamError(
          `parameter ${name}: list elements must be non-empty and contain no ',', ';', whitespace or NUL`,
          { param: name, ...where },
        );
      }
      out.append(name, items.join(','));
    } else {
      out.append(name, scalar(name, value as ProxmoxParamScalar, where));
    }
  }
  return out;
}
