/**
 * Operator endpoints beside the product API: `/readyz` (load balancers, orchestrators) and
 * `/metrics` (Prometheus), plus the middleware that measures every request. They are plain routes,
 * not in the OpenAPI document: they serve probes and scrapers, not API clients.
 */
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Metrics } from '../../observability/metrics.js';
import type { ApiDeps, AppEnv, HealthReport } from './context.js';

export interface OperationsDeps {
  /** Ready to serve: Temporal reachable and the process not shutting down. */
  ready: () => Promise<HealthReport>;
  metrics: Metrics;
  /** The `/metrics` exposition (ours plus, in the all-in-one process, the Temporal SDK's). */
  render: () => Promise<{ contentType: string; body: string }>;
}

export function registerOperationsRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  const ops = deps.operations;
  if (!ops) return;
  app.get('/readyz', async (c) => {
    const report = await ops.ready();
    return c.json({ status: report.ok ? 'ready' : 'not_ready', checks: report.checks }, report.ok ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    const { contentType, body } = await ops.render();
    return c.body(body, 200, { 'content-type': contentType, 'cache-control': 'no-store' });
  });
}

/**
 * Counts and times every request by method, route template (`/v1/actions/:planId`, never the
 * filled path: bounded label values) and status; counts plan decisions by risk and outcome.
 */
export function requestMetrics(metrics: Metrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const handler = matchedRoutes(c).filter((r) => r.method !== 'ALL').at(-1);
    const labels = { method: c.req.method, route: handler?.path ?? 'unmatched', status: String(c.res.status) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, (performance.now() - started) / 1000);
    if (labels.route === '/v1/actions/plan' && c.res.status === 201) {
      const plan = (await c.res.clone().json().catch(() => undefined)) as { environment?: string; risk?: string; decision?: string } | undefined;
      if (plan?.decision) metrics.planDecisions.inc({ environment: plan.environment ?? '', risk: plan.risk ?? '', decision: plan.decision });
    }
  };
}
