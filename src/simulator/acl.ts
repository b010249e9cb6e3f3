/**
 * Path-scoped ACLs and API-token privilege separation, as pve-access-control computes them
 * (RPCEnvironment `permissions`, `get_effective_permissions`), reduced to what a token needs:
 *
 * - An ACL entry grants privileges on a path; with `propagate` (the default) also below it.
 * - For one path, the deepest path with an applicable entry decides (a deeper ACL replaces, it does
 *   not add to, what is inherited); entries on that same path add up. The value of a privilege is its
 *   propagate flag (1 or 0), as `GET /access/permissions` shows it.
 * - A token without privilege separation (`privsep` 0) has its user's permissions. A separated token
 *   (`privsep` 1, the Proxmox default for new tokens) has the intersection of its user's and its own ACLs.
 *
 * Seeds may keep the older shorthand `privileges`: that list on every path, for user and token.
 * A token with neither ACLs nor `privileges` belongs to an administrator: every privilege on `/`.
 */
import { PVE_PRIVILEGES, type PveMajor } from '../proxmox/privileges.js';
import type { SimAclEntry, SimApiTokenSeed } from './types.js';

export type PathPermissions = Record<string, 0 | 1>;

/** The paths `GET /access/permissions` always considers (get_effective_permissions). */
const TOP_PATHS = ['/', '/access', '/access/groups', '/nodes', '/pool', '/sdn', '/storage', '/vms'];

function normalize(path: string): string {
  const p = `/${path.split('/').filter(Boolean).join('/')}`;
  return p;
}

function isAncestor(ancestor: string, path: string): boolean {
  return ancestor === '/' || path === ancestor || path.startsWith(`${ancestor}/`);
}

/** The permissions one ACL list gives on `path`. */
function aclPermissions(acl: readonly SimAclEntry[], path: string): PathPermissions {
  const target = normalize(path);
  let depth = -1;
  let out: PathPermissions = {};
  for (const e of acl) {
    const at = normalize(e.path);
    if (!isAncestor(at, target)) continue;
    const exact = at === target;
    const propagate = e.propagate ?? true;
    if (!exact && !propagate) continue;
    const d = at === '/' ? 0 : at.split('/').length - 1;
    if (d > depth) {
      depth = d;
      out = {};
    }
    if (d < depth) continue;
    for (const p of e.privileges) out[p] = propagate || out[p] === 1 ? 1 : 0;
  }
  return out;
}

export class TokenAcl {
  readonly privsep: boolean;
  readonly #user: readonly SimAclEntry[];
  readonly #token: readonly SimAclEntry[];

  constructor(seed: SimApiTokenSeed, pve: PveMajor) {
    const known = new Set(PVE_PRIVILEGES[pve]);
    const everything: SimAclEntry[] = [{ path: '/', privileges: [...PVE_PRIVILEGES[pve]] }];
    const shorthand: SimAclEntry[] | undefined = seed.privileges ? [{ path: '/', privileges: seed.privileges }] : undefined;
    this.#user = seed.userAcl ?? shorthand ?? everything;
    this.#token = seed.acl ?? shorthand ?? everything;
    this.privsep = seed.privsep ?? false;
    // `pveum role add` refuses a privilege the release does not know; so does the simulator's seed.
    for (const e of [...this.#user, ...this.#token]) {
      for (const p of e.privileges) if (!known.has(p)) throw new Error(`simulator seed for ${seed.tokenId}: invalid privilege '${p}' on PVE ${pve}`);
    }
  }

  /** The user's own permissions on `path`. */
  userPermissions(path: string): PathPermissions {
    return aclPermissions(this.#user, path);
  }

  /** The token's effective permissions on `path`. */
  permissions(path: string): PathPermissions {
    const user = this.userPermissions(path);
    if (!this.privsep) return user;
    const own = aclPermissions(this.#token, path);
    const out: PathPermissions = {};
    for (const [p, v] of Object.entries(user)) if (p in own) out[p] = v && own[p] ? 1 : 0;
    return out;
  }

  has(path: string, privilege: string): boolean {
    return privilege in this.permissions(path);
  }

  /** `GET /access/permissions` without `path`: every considered path where anything is granted. */
  effective(which: 'token' | 'user'): Record<string, PathPermissions> {
    const paths = new Set(TOP_PATHS);
    for (const e of [...this.#user, ...(which === 'token' && this.privsep ? this.#token : [])]) paths.add(normalize(e.path));
    const out: Record<string, PathPermissions> = {};
    for (const path of [...paths].sort()) {
      const perms = which === 'token' ? this.permissions(path) : this.userPermissions(path);
      if (Object.keys(perms).length > 0) out[path] = perms;
    }
    return out;
  }
}
