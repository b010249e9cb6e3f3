import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiTokenConfig, Scope } from '../../config/schema.js';
import { DEFAULT_TOKEN_CHANNELS, type TokenChannel } from '../../config/security.js';
import { actionAllowed } from '../../domain/action-patterns.js';
import { ApiError } from '../http/problems.js';

export interface Caller {
  tokenId: string;
  principal: string;
  scopes: readonly Scope[];
  environments: readonly string[];
  roles: readonly string[];
  /** Action patterns the token is limited to (`vm.*`); undefined: any action. */
  actions?: readonly string[];
  /** The clients the token may approve through (`api`, `cli`): granted in the config, never claimed. */
  channels: readonly TokenChannel[];
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
    return {
      tokenId: found.id,
      principal: found.principal,
      scopes: found.scopes,
      environments: found.environments,
      roles: found.roles,
      channels: found.channels ?? DEFAULT_TOKEN_CHANNELS,
      ...(found.actions ? { actions: found.actions } : {}),
    };
  };
}

export function mayActIn(caller: Caller, environment: string): boolean {
  return caller.environments.includes('*') || caller.environments.includes(environment);
}

/**
 * The token holds one of `scopes` (a route's ROUTE_ACCESS entry; route-guard.ts calls this for every
 * OpenAPI route). No scope implies another: admin manages the service, it does not approve or apply.
 */
export function requireScopes(caller: Caller, scopes: readonly Scope[]): void {
  if (scopes.some((s) => caller.scopes.includes(s))) return;
  throw new ApiError(
    'forbidden',
    scopes.length === 1 ? `token '${caller.tokenId}' lacks the '${scopes[0]}' scope` : `token '${caller.tokenId}' needs the ${scopes.join(' or ')} scope`,
  );
}

/** Least privilege: the environment a request names (`environment: body` in ROUTE_ACCESS) must be granted too. */
export function requireEnvironment(caller: Caller, environment: string): void {
  if (!mayActIn(caller, environment))
    throw new ApiError('forbidden', `token '${caller.tokenId}' may not act in environment '${environment}'`);
}

/**
 * A token limited to action patterns (`actions: ['vm.*']`) may plan, apply, approve and reject only
 * plans of those actions. `doing` names what was refused, for the problem's detail.
 */
export function requireAction(caller: Caller, action: string, doing: 'plan or apply' | 'approve or reject' = 'plan or apply'): void {
  if (!actionAllowed(caller.actions, action))
    throw new ApiError('forbidden', `token '${caller.tokenId}' may not ${doing} '${action}' (it is limited to actions ${caller.actions!.join(', ')})`);
}

/**
 * The channel an approval is recorded under is one the token is allowed to speak for
 * (`tokens[].channels`, default `api` only), not whatever the request claims: otherwise any caller
 * could meet a `channels: [cli]` requirement by sending the header.
 */
export function requireChannel(caller: Caller, channel: TokenChannel): void {
  if (!caller.channels.includes(channel))
    throw new ApiError('channel-not-allowed', `token '${caller.tokenId}' may not approve through channel '${channel}' (it may use: ${caller.channels.join(', ')})`, {
      errors: [{ path: 'header.x-proxmox-agent-channel', message: `one of: ${caller.channels.join(', ')}` }],
    });
}
