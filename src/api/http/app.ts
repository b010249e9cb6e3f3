import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import type { Context } from 'hono';
import { RequestValidationError } from '../../domain/request.js';
import { unknownSearchAttribute } from '../../temporal/watch.js';
import type { Logger } from '../../logging.js';
import type { ApiDeps, AppEnv } from './context.js';
import { registerDocsRoutes } from '../openapi/docs.js';
import { openApiDocument } from '../openapi/document.js';
import { registerOperationsRoutes, requestMetrics } from './operations.js';
import { ApiError, type ProblemCode } from './problems.js';
import { authenticateBearer, guardOpenApiRoutes } from '../access/route-guard.js';
import { assertEveryRouteHasAccess } from '../access/route-access.js';
import { registerActionRoutes } from '../routes/actions.js';
import { registerApprovalRoutes } from '../routes/approvals.js';
import { registerBudgetRoutes } from '../routes/budgets.js';
import { registerCatalogRoutes } from '../routes/catalog.js';
import { registerChannelRoutes } from '../routes/channels.js';
import { registerInventoryRoutes } from '../routes/inventory.js';
import { registerEventRoutes } from '../routes/events.js';
import { registerEvidenceRoutes } from '../routes/evidence.js';
import { registerDoctorRoutes } from '../routes/doctor.js';
import { registerHealthRoutes } from '../routes/health.js';
import { registerPolicyRoutes } from '../routes/policy.js';
import { registerFreezeRoutes } from '../routes/freezes.js';
import { registerUndoRoutes } from '../routes/undo.js';
import { registerMcpRoutes } from '../../mcp/http.js';

export const MAX_BODY_BYTES = 64 * 1024;

/** Builds the HTTP API over injected dependencies; listening is the entry point's job. */
export function createApp(deps: ApiDeps, log?: Logger) {
  const app = new OpenAPIHono<AppEnv>({
    // zod failures become one problem listing every bad field.
    defaultHook: (result, c) => {
      if (!result.success) {
        // GET /v1/actions/plan reaches GET /v1/actions/{planId} with planId "plan": a path that names
        // a fixed resource served under other methods is 405, not a bad parameter.
        const allow = result.target === 'param' ? allowedMethods(app.routes, c.req.path, { fixedOnly: true }) : [];
        if (allow.length > 0) throw methodNotAllowed(c.req.method, c.req.path, allow);
        throw new ApiError('validation-failed', 'the request does not match the schema', {
          errors: result.error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message })),
        });
      }
    },
  });

  if (deps.operations) app.use('*', requestMetrics(deps.operations.metrics));
  // CORS is off unless origins are configured: without these headers browsers refuse cross-origin calls.
  if (deps.cors) {
    app.use('/v1/*', cors({ origin: [...deps.cors.origins], allowMethods: ['GET', 'POST', 'DELETE'], allowHeaders: ['authorization', 'content-type', 'idempotency-key'], exposeHeaders: ['location', 'retry-after'], maxAge: 600 }));
  }
  app.use('/v1/*', bodyLimit({ maxSize: MAX_BODY_BYTES, onError: () => { throw new ApiError('payload-too-large', `at most ${MAX_BODY_BYTES} bytes`); } }));
  // Who needs a bearer token, and with which scope, is ROUTE_ACCESS's call (src/api/access/route-access.ts).
  app.use('/v1/*', authenticateBearer(deps.authenticate));
  app.use('/v1/*', async (c, next) => {
    const caller = c.get('caller');
    const verdict = caller && (await deps.rateLimit?.take(caller.tokenId));
    if (verdict && !verdict.ok) {
      const retry = String(verdict.retryAfterSeconds);
      throw new ApiError('rate-limited', `token '${caller.tokenId}' sent too many requests; retry in ${retry} s`, {}, { 'retry-after': retry });
    }
    await next();
  });

  guardOpenApiRoutes(app);
  registerHealthRoutes(app, deps);
  registerOperationsRoutes(app, deps);
  registerActionRoutes(app, deps);
  registerUndoRoutes(app, deps);
  registerCatalogRoutes(app);
  registerApprovalRoutes(app, deps);
  registerChannelRoutes(app, deps);
  registerPolicyRoutes(app, deps);
  registerFreezeRoutes(app, deps);
  registerBudgetRoutes(app, deps);
  registerInventoryRoutes(app, deps);
  registerEvidenceRoutes(app, deps);
  registerDoctorRoutes(app, deps);
  registerEventRoutes(app, deps);
  registerDocsRoutes(app);
  registerMcpRoutes(app, deps, log);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  // Generated once, on first request: every route is registered by then (src/api/openapi/document.ts).
  let doc: object | undefined;
  app.get('/v1/openapi.json', (c) => c.json((doc ??= openApiDocument(app))));
  assertEveryRouteHasAccess(app.routes);

  app.notFound((c) => {
    // A path that exists under other methods is 405 with Allow (RFC 9110 §15.5.6), not 404.
    const allow = allowedMethods(app.routes, c.req.path);
    if (allow.length > 0) return problem(c, methodNotAllowed(c.req.method, c.req.path, allow));
    return problem(c, new ApiError('not-found', `no route ${c.req.method} ${c.req.path}`));
  });
  app.onError((err, c) => {
    const apiError = toApiError(err, deps.temporal);
    if (apiError.status >= 500) log?.error({ err, path: c.req.path }, 'request failed');
    return problem(c, apiError);
  });
  return app;
}

export type App = ReturnType<typeof createApp>;

const methodNotAllowed = (method: string, path: string, allow: string[]) =>
  new ApiError('method-not-allowed', `${method} is not allowed on ${path}; allowed: ${allow.join(', ')}`, {}, { allow: allow.join(', ') });

/**
 * The methods the app's own routes (not middleware) serve on this concrete path; HEAD with GET.
 * `fixedOnly`: only routes without path parameters.
 */
function allowedMethods(routes: readonly { method: string; path: string }[], path: string, opts: { fixedOnly?: boolean } = {}): string[] {
  const methods = new Set<string>();
  for (const r of routes) {
    if (r.method === 'ALL' || r.path.includes('*') || (opts.fixedOnly && r.path.includes(':'))) continue;
    const pattern = r.path
      .split('/')
      .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('/');
    if (new RegExp(`^${pattern}$`).test(path)) methods.add(r.method);
  }
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}

function problem(c: Context, error: ApiError) {
  return c.body(JSON.stringify(error.toProblem(c.req.path)), error.status as 400, {
    ...error.headers,
    'content-type': 'application/problem+json',
  });
}

const HTTP_STATUS_PROBLEMS: Record<number, ProblemCode> = {
  400: 'validation-failed',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not-found',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
};

/** Every error becomes an ApiError here, once. */
function toApiError(err: unknown, temporal: ApiDeps['temporal']): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof RequestValidationError) return new ApiError('validation-failed', err.message, { errors: err.issues });
  if (err instanceof HTTPException) {
    const code = HTTP_STATUS_PROBLEMS[err.status];
    return code ? new ApiError(code, err.message) : new ApiError('internal');
  }
  const attribute = unknownSearchAttribute(err);
  if (attribute !== undefined) {
    temporal?.recheck();
    const register = temporal ? `register the project's search attributes with: ${temporal.registerCommand}` : "register the project's search attributes (npm run temporal:search-attributes)";
    const others = temporal?.status().missingAttributes.filter((a) => a !== attribute) ?? [];
    return new ApiError(
      'temporal-misconfigured',
      `the Temporal namespace does not know the search attribute ${attribute}${others.length > 0 ? ` (nor ${others.join(', ')})` : ''}; ${register}`,
      {},
      { 'retry-after': '5' },
    );
  }
  if (isTemporalUnavailable(err)) {
    const down = temporal?.status();
    const detail = down && !down.reachable ? `${down.checks.temporal.detail}; retry shortly` : 'Temporal is not reachable; retry shortly';
    return new ApiError('temporal-unavailable', detail, {}, { 'retry-after': '2' });
  }
  return new ApiError('internal', 'unexpected error; see the service log');
}

function isTemporalUnavailable(err: unknown): boolean {
  const e = err as { name?: string; code?: number; cause?: { code?: number } } | undefined;
  // gRPC UNAVAILABLE (14) and DEADLINE_EXCEEDED (4), directly or wrapped in a ServiceError.
  return e?.name === 'ServiceError' || [14, 4].includes(e?.code ?? -1) || [14, 4].includes(e?.cause?.code ?? -1);
}
