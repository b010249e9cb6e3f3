/**
 * Enforces ROUTE_ACCESS (route-access.ts) for the HTTP app: authentication by what the table says a
 * path needs, and the scope of every OpenAPI route by its entry. Handlers hold no scope of their own;
 * what they still check is what only they can see (the environment a body names, the plan's).
 */
import type { MiddlewareHandler } from 'hono';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../http/context.js';
import { requireScopes, type Caller } from './auth.js';
import { bearerRequired, ROUTE_ACCESS } from './route-access.js';

/** Sets the caller on /v1 requests whose path needs a bearer token (401 otherwise); signed and public paths pass. */
export function authenticateBearer(authenticate: (authorization: string | undefined) => Caller): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (bearerRequired(c.req.path)) c.set('caller', authenticate(c.req.header('authorization')));
    await next();
  };
}

/**
 * From here on, every `app.openapi(route, handler)` checks the caller's scope against the route's
 * entry before its handler runs, and refuses to register a route that has none. The check sits
 * between the route's validators and its handler (not in an `app.use` before them), so a malformed
 * request is 400 before a token lacking the scope is 403: the order the API has always answered in.
 */
export function guardOpenApiRoutes(app: OpenAPIHono<AppEnv>): void {
  const register = app.openapi;
  app.openapi = ((route, handler, hook) => {
    const key = `${route.method.toUpperCase()} ${route.path}`;
    const access = ROUTE_ACCESS[key];
    if (!access) throw new Error(`${key}: no entry in ROUTE_ACCESS (src/api/access/route-access.ts); say who may call it there`);
    if (access.auth !== 'bearer') return register(route, handler, hook);
    const guarded: typeof handler = (c, next) => {
      requireScopes(c.get('caller'), access.scopes);
      return handler(c, next);
    };
    return register(route, guarded, hook);
  }) as typeof register;
}
