/**
 * `GET /access/permissions`: the effective permissions of the caller (or, with `userid`, of a user
 * or token), as pve-access-control's API2/AccessControl.pm `permissions` answers: a map of path to
 * `{privilege: propagate}`. A caller may always read its own; another user's or token's needs
 * `Sys.Audit` on `/access` (an API token is not its user: reading the user needs it too).
 */
import { type Handler, str } from '../context.js';
import { ApiError, die } from '../errors.js';
import type { RouteKey } from '../served-routes.js';

const permissions: Handler = (ctx) => {
  const userid = str(ctx, 'userid') ?? ctx.user;
  const path = str(ctx, 'path');
  if (userid !== ctx.user && !ctx.acl.has('/access', 'Sys.Audit')) throw new ApiError(403, 'Permission check failed (/access, Sys.Audit)');
  let view: (p: string | undefined) => Record<string, unknown>;
  if (userid.includes('!')) {
    const acl = ctx.acls.get(userid);
    if (!acl) die(`no such token '${userid.split('!')[1]}' for user '${userid.split('!')[0]}'`);
    view = (p) => (p === undefined ? acl.effective('token') : { [p]: acl.permissions(p) });
  } else {
    // Every token of a user shares the user's ACLs: any of them tells them.
    const acl = [...ctx.acls.entries()].find(([id]) => id.split('!')[0] === userid)?.[1];
    if (!acl) die(`no such user ('${userid}')`);
    view = (p) => (p === undefined ? acl.effective('user') : { [p]: acl.userPermissions(p) });
  }
  return view(path);
};

export const accessRoutes: Partial<Record<RouteKey, Handler>> = {
  'GET /access/permissions': permissions,
};
