/**
 * Evaluates apidata `permissions.check` expressions against a token's optional privilege list.
 * Tokens without a list are "full" admin tokens and pass everything. Paths are not ACL-scoped: a
 * privilege in the list is granted on every path, which is all the simulator needs to produce the
 * real 403 shape `Permission check failed (/vms/100, VM.PowerMgmt)`.
 */
import type { Params } from './validate.js';

type Check = unknown[];

/** Returns undefined when allowed, else the `what` of the real message (`/vms/100, VM.PowerMgmt`). */
export function evaluateCheck(check: unknown, privileges: string[] | undefined, params: Params): string | undefined {
  if (privileges === undefined || !Array.isArray(check)) return undefined;
  const c = check as Check;
  const op = c[0];
  if (op === 'and') {
    for (const sub of c.slice(1)) {
      const fail = evaluateCheck(sub, privileges, params);
      if (fail) return fail;
    }
    return undefined;
  }
  if (op === 'or') {
    let first: string | undefined;
    for (const sub of c.slice(1)) {
      const fail = evaluateCheck(sub, privileges, params);
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
    return privs.some((p) => privileges.includes(p)) ? undefined : `${path}, ${privs.join('|')}`;
  }
  const missing = privs.find((p) => !privileges.includes(p));
  return missing ? `${path}, ${missing}` : undefined;
}
