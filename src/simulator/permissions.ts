/**
 * Evaluates apidata `permissions.check` expressions against a token's effective privileges on the
 * checked path (acl.ts: path-scoped ACLs, privilege separation), producing the real 403 shape
 * `Permission check failed (/vms/100, VM.PowerMgmt)`.
 */
import type { Params } from './validate.js';

/** Whether the token holds `privilege` on `path`. */
export type HasPrivilege = (path: string, privilege: string) => boolean;

type Check = unknown[];

/** Returns undefined when allowed, else the `what` of the real message (`/vms/100, VM.PowerMgmt`). */
export function evaluateCheck(check: unknown, has: HasPrivilege, params: Params): string | undefined {
  if (!Array.isArray(check)) return undefined;
  const c = check as Check;
  const op = c[0];
  if (op === 'and') {
    for (const sub of c.slice(1)) {
      const fail = evaluateCheck(sub, has, params);
      if (fail) return fail;
    }
    return undefined;
  }
  if (op === 'or') {
    let first: string | undefined;
    for (const sub of c.slice(1)) {
      const fail = evaluateCheck(sub, has, params);
      if (!fail) return undefined;
      first ??= fail;
    }
    return first;
  }
  if (op !== 'perm') return undefined; // userid-group, userid-param...: not modelled, allowed
  const path = String(c[1]).replace(/\{([^}]+)\}/g, (_, name: string) => String(params[name] ?? ''));
  const privs = (c[2] as string[]) ?? [];
  const opts = c.slice(3);
  const requireParam = opts.indexOf('require_param');
  if (requireParam >= 0 && params[String(opts[requireParam + 1])] === undefined) return `${path}, ${privs.join('|')}`;
  if (opts.includes('any')) {
    return privs.some((p) => has(path, p)) ? undefined : `${path}, ${privs.join('|')}`;
  }
  const missing = privs.find((p) => !has(path, p));
  return missing ? `${path}, ${missing}` : undefined;
}
