/**
 * ROUTE_ACCESS is the one place route access is decided: a route without an entry cannot be
 * registered, authentication asks the table which paths need a token, and an OpenAPI route's scope
 * is checked from its entry after validation (400 before 403, as the handlers used to).
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../src/api/access/auth.js';
import { assertEveryRouteHasAccess, bearerRequired } from '../../src/api/access/route-access.js';
import { guardOpenApiRoutes } from '../../src/api/access/route-guard.js';
import type { AppEnv } from '../../src/api/http/context.js';
import { ApiError } from '../../src/api/http/problems.js';

const ok = { 200: { description: 'ok', content: { 'application/json': { schema: z.object({ ok: z.boolean() }) } } } };

function guardedApp(scopes: Caller['scopes']) {
  const app = new OpenAPIHono<AppEnv>();
  const caller: Caller = { tokenId: 't', principal: 'p', scopes, environments: ['*'], roles: [], channels: ['api'] };
  app.use('*', async (c, next) => {
    c.set('caller', caller);
    await next();
  });
  app.onError((err, c) => (err instanceof ApiError ? c.json({ code: err.code }, err.status as 403) : c.json({ code: 'internal' }, 500)));
  guardOpenApiRoutes(app);
  return app;
}

describe('route access', () => {
  it('refuses to register an OpenAPI route that has no entry, naming it', () => {
    const app = guardedApp(['read']);
    const route = createRoute({ method: 'get', path: '/v1/unlisted/{id}', request: { params: z.object({ id: z.string() }) }, responses: ok });
    expect(() => app.openapi(route, (c) => c.json({ ok: true }, 200))).toThrow(/GET \/v1\/unlisted\/\{id\}: no entry in ROUTE_ACCESS/);
  });

  it('refuses an app whose plain routes include one without an entry, naming it', () => {
    const app = new OpenAPIHono<AppEnv>();
    app.use('/v1/*', async (_c, next) => next());
    app.get('/healthz', (c) => c.text('ok'));
    expect(() => assertEveryRouteHasAccess(app.routes)).not.toThrow();
    app.post('/v1/things/:id', (c) => c.text('ok'));
    expect(() => assertEveryRouteHasAccess(app.routes)).toThrow(/POST \/v1\/things\/\{id\}: no entry in ROUTE_ACCESS/);
  });

  it("checks the entry's scope after validation: 400 for a malformed request, then 403 without the scope", async () => {
    const route = createRoute({
      method: 'get',
      path: '/v1/doctor',
      request: { query: z.object({ n: z.coerce.number().int().optional() }) },
      responses: ok,
    });
    const without = guardedApp(['plan']);
    without.openapi(route, (c) => c.json({ ok: true }, 200));
    expect((await without.request('/v1/doctor?n=x')).status).toBe(400);
    const refused = await without.request('/v1/doctor?n=1');
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ code: 'forbidden' });

    const withRead = guardedApp(['read']);
    withRead.openapi(route, (c) => c.json({ ok: true }, 200));
    expect((await withRead.request('/v1/doctor?n=1')).status).toBe(200);
  });

  it('needs a bearer token on every /v1 path but the public document and the signed chat channels', () => {
    expect(bearerRequired('/v1/catalog')).toBe(true);
    expect(bearerRequired('/v1/actions/plan_1/events')).toBe(true);
    expect(bearerRequired('/v1/no-such-route')).toBe(true);
    expect(bearerRequired('/v1/openapi.json')).toBe(false);
    expect(bearerRequired('/v1/channels/slack/interactions')).toBe(false);
    expect(bearerRequired('/v1/channels/no-such-channel')).toBe(false);
  });
});
