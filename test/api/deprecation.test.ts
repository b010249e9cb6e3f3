/**
 * Marking an operation deprecated: the document says so (`deprecated: true`, the dates in its
 * description) and every answer carries Deprecation (RFC 9745), Sunset (RFC 8594) and Link headers,
 * errors included; a sunset inside the policy's window is refused at boot.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../../src/api/http/context.js';
import { deprecate, deprecationHeaders, DEPRECATION_WINDOW_DAYS } from '../../src/api/openapi/deprecation.js';

const since = '2026-01-01T00:00:00Z';
const sunset = '2026-07-15T00:00:00Z';

function appWithDeprecatedRoute() {
  const app = new OpenAPIHono<AppEnv>();
  const old = createRoute({
    method: 'get',
    path: '/v1/things/{id}',
    summary: 'Read a thing (old)',
    description: 'The old way.',
    request: { params: z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) }) },
    responses: { 200: { description: 'ok', content: { 'application/json': { schema: z.object({ id: z.string() }) } } } },
  });
  const current = createRoute({
    method: 'get',
    path: '/v1/things',
    summary: 'List things',
    responses: { 200: { description: 'ok', content: { 'application/json': { schema: z.object({ n: z.number() }) } } } },
  });
  app.openapi(deprecate(app, old, { since, sunset, successor: '/v1/stuff/{id}' }), (c) => {
    const { id } = c.req.valid('param');
    if (id === 'boom') throw new Error('boom');
    return c.json({ id }, 200);
  });
  app.openapi(current, (c) => c.json({ n: 1 }, 200));
  app.onError((_err, c) => c.json({ error: true }, 500));
  return app;
}

describe('deprecate()', () => {
  it('marks the operation deprecated in the document, with its dates and successor', () => {
    const doc = appWithDeprecatedRoute().getOpenAPI31Document({ openapi: '3.1.0', info: { title: 't', version: '1' } }) as any;
    const op = doc.paths['/v1/things/{id}'].get;
    expect(op.deprecated).toBe(true);
    expect(op.description).toMatch(/^\*\*Deprecated\*\* since 2026-01-01; it may be removed after 2026-07-15\. Use `\/v1\/stuff\/\{id\}` instead\./);
    expect(op.description).toContain('The old way.');
    expect(doc.paths['/v1/things'].get.deprecated).toBeUndefined();
  });

  it('sends Deprecation, Sunset and Link on every answer of that operation only, errors included', async () => {
    const app = appWithDeprecatedRoute();
    for (const path of ['/v1/things/a', '/v1/things/boom']) {
      const res = await app.request(path);
      expect(res.headers.get('deprecation')).toBe(`@${Date.parse(since) / 1000}`);
      expect(res.headers.get('sunset')).toBe('Wed, 15 Jul 2026 00:00:00 GMT');
      expect(res.headers.get('link')).toBe('</docs/api-versioning-policy>; rel="deprecation"; type="text/markdown", </v1/stuff/{id}>; rel="successor-version"');
    }
    expect((await app.request('/v1/things/boom')).status).toBe(500);
    const other = await app.request('/v1/things');
    expect(other.headers.get('deprecation')).toBeNull();
    expect(other.headers.get('sunset')).toBeNull();
  });

  it(`refuses a sunset less than ${DEPRECATION_WINDOW_DAYS} days after the announcement`, () => {
    expect(() => deprecationHeaders({ since, sunset: '2026-03-01T00:00:00Z' })).toThrow(/at least 180/);
    expect(() => deprecationHeaders({ since: 'soon', sunset })).toThrow(TypeError);
    expect(deprecationHeaders({ since, sunset: '2026-06-30T00:00:00Z' }).sunset).toBe('Tue, 30 Jun 2026 00:00:00 GMT');
  });
});
