import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiTokenConfig, Scope } from '../config/schema.js';
import { actionAllowed } from '../domain/action-patterns.js';
import { ApiError } from './problems.js';

export interface Caller {
  tokenId: string;
  principal: string;
  scopes: readonly Scope[];
  environments: readonly string[];
  roles: readonly string[];
  /** Action patterns the token is limited to (`vm.*`); undefined: any action. */
  actions?: readonly string[];
}

/**
 * Bearer-token authentication. Tokens are stored only as SHA-256 hashes; a presented token is
 * hashed and compared with every configured hash in constant time, without early exit. A token past
 * its `expiresAt` is refused like an unknown one, with its own message (its holder knows the secret
 * already, so saying it expired reveals nothing and tells them to get a new one).
 */
export function createAuthenticator(tokens: readonly ApiTokenConfig[], now: () => number = Date.now) {
  const entries = tokens.map((t) => ({ token: t, hash: Buffer.from(t.secretSha256, 'hex'), expiresMs: t.expiresAt ? Date.parse(t.expiresAt) : Infinity }));
  return (authorization: string | undefined): Caller => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) throw new ApiError('unauthenticated', 'send Authorization: Bearer <token>');
    const presented = createHash('sha256').update(match[1]!, 'utf8').digest();
    let hit: (typeof entries)[number] | undefined;
    for (const entry of entries) {
      if (timingSafeEqual(presented, entry.hash) && !hit) hit = entry;
    }
    if (!hit) throw new ApiError('unauthenticated', 'unknown or revoked token');
    if (now() >= hit.expiresMs) throw new ApiError('unauthenticated', `token '${hit.token.id}' expired at ${hit.token.expiresAt}`);
    const found = hit.token;
    return { tokenId: found.id, principal: found.principal, scopes: found.scopes, environments: found.environments, roles: found.roles, ...(found.actions ? { actions: found.actions } : {}) };
  };
}

export function mayActIn(caller: Caller, environment: string): boolean {
  return caller.environments.includes('*') || caller.environments.includes(environment);
}

/** Least privilege: a scope and, when known, the environment must both be granted. */
export function requireScope(caller: Caller, scope: Scope, environment?: string): void {
  // No scope implies another: admin manages the service, it does not approve or apply.
  if (!caller.scopes.includes(scope))
    throw new ApiError('forbidden', `token '${caller.tokenId}' lacks the '${scope}' scope`);
  if (environment !== undefined && !mayActIn(caller, environment))
    throw new ApiError('forbidden', `token '${caller.tokenId}' may not act in environment '${environment}'`);
}

/** A token limited to action patterns (`actions: ['vm.*']`) may plan and apply only those actions. */
export function requireAction(caller: Caller, action: string): void {
  if (!actionAllowed(caller.actions, action))
    throw new ApiError('forbidden', `token '${caller.tokenId}' may not plan or apply '${action}' (it is limited to actions ${caller.actions!.join(', ')})`);
}
