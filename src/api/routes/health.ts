import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { ApiDeps, AppEnv } from '../http/context.js';

export const healthSchema = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    checks: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.string() })),
  })
  .openapi('Health');

const healthRoute = createRoute({
  method: 'get',
  path: '/healthz',
  tags: ['operations'],
  summary: 'Healthy only when Temporal is reachable and a worker polls the task queue',
  responses: {
    200: { description: 'Healthy', content: { 'application/json': { schema: healthSchema } } },
    503: { description: 'Not healthy', content: { 'application/json': { schema: healthSchema } } },
  },
});

export function registerHealthRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  app.openapi(healthRoute, async (c) => {
    const report = await deps.health();
    return report.ok
      ? c.json({ status: 'ok' as const, checks: report.checks }, 200)
      : c.json({ status: 'unavailable' as const, checks: report.checks }, 503);
  });
}
