import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { FREEZE_ID_PATTERN } from '../../domain/freeze.js';
import { freezeSchema } from '../../domain/plan-view.js';
import { mayActIn, requireEnvironment } from '../access/auth.js';
import type { ApiDeps, AppEnv } from '../http/context.js';
import { ApiError, problemResponses } from '../http/problems.js';

const json = <T>(schema: T) => ({ content: { 'application/json': { schema } } });
const security = [{ bearer: [] }];

export const freezeRequestSchema = z
  .object({
    environment: z.string().min(1).max(64).describe('The environment to freeze'),
    reason: z.string().trim().min(3).max(500).describe('Why, for the audit log and everyone reading the plans it holds (e.g. an incident number)'),
  })
  .strict()
  .openapi('FreezeRequest', { example: { environment: 'prod', reason: 'incident 123' } });

export const freezeViewSchema = z.object(freezeSchema.shape).openapi('Freeze');

export const createdFreezeSchema = freezeViewSchema
  .extend({
    stillSending: z
      .array(z.string())
      .describe('Plans whose request was already on its way to Proxmox when the freeze was written and still unanswered when it answered (normally empty: the answer waits for them)'),
  })
  .openapi('CreatedFreeze');

const freezeIdParams = z.object({
  id: z.string().regex(FREEZE_ID_PATTERN, 'a freeze id: frz_ followed by 20 hex digits').openapi({ param: { name: 'id', in: 'path' }, example: 'frz_5c1e0b7d2a9f4e6c8b30' }),
});

const listQuery = z.object({
  environment: z.string().optional().describe('Only this environment'),
  includeLifted: z.enum(['true', 'false']).optional().describe('Also freezes already lifted (default false)'),
});

const createRouteDef = createRoute({
  method: 'post',
  path: '/v1/freezes',
  tags: ['freezes'],
  summary: 'Freeze an environment: from the answer on, no apply starts there (kill switch)',
  description:
    'Admin scope. From the moment this answers, no Proxmox mutation of this service starts in the environment, on any worker: each dispatch is ordered before or after the freeze, and the answer waits for requests already on their way. Running Proxmox tasks are left alone. New plans are still made and say they are frozen; approved runs wait durably and go on when the freeze is lifted, or expire. Audited as freeze.created.',
  security,
  request: { body: { required: true, ...json(freezeRequestSchema) } },
  responses: {
    201: { description: 'The freeze, in force', ...json(createdFreezeSchema) },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'unknown-environment', 'freezes-unavailable'),
  },
});

const listRouteDef = createRoute({
  method: 'get',
  path: '/v1/freezes',
  tags: ['freezes'],
  summary: 'Freezes in force (and, with includeLifted, those lifted), newest first',
  security,
  request: { query: listQuery },
  responses: {
    200: { description: "The freezes of the token's environments", ...json(z.object({ freezes: z.array(freezeViewSchema) }).openapi('FreezeList')) },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'freezes-unavailable'),
  },
});

const liftRouteDef = createRoute({
  method: 'delete',
  path: '/v1/freezes/{id}',
  tags: ['freezes'],
  summary: 'Lift a freeze: held runs go on (each re-checked first)',
  description: 'Admin scope. Audited as freeze.lifted. Lifting a freeze already lifted changes nothing and returns it as it was lifted.',
  security,
  request: { params: freezeIdParams },
  responses: {
    200: { description: 'The freeze, lifted', ...json(freezeViewSchema) },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'not-found', 'freezes-unavailable'),
  },
});

export function registerFreezeRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  const service = () => {
    if (!deps.freezes)
      throw new ApiError('freezes-unavailable', 'this API process cannot reach the dispatch journal that keeps freezes: run it with the worker (the file store), or with the PostgreSQL audit store');
    return deps.freezes;
  };

  app.openapi(createRouteDef, async (c) => {
    const caller = c.get('caller');
    const { environment, reason } = c.req.valid('json');
    requireEnvironment(caller, environment);
    if (!deps.environments.has(environment)) throw new ApiError('unknown-environment', `no environment '${environment}' is configured`);
    const created = await service().freeze({ environment, reason, by: caller.principal });
    return c.json(created, 201, { location: `/v1/freezes/${created.id}` });
  });

  app.openapi(listRouteDef, async (c) => {
    const caller = c.get('caller');
    const { environment, includeLifted } = c.req.valid('query');
    const all = await service().list({ ...(environment ? { environment } : {}), includeLifted: includeLifted === 'true' });
    return c.json({ freezes: all.filter((f) => mayActIn(caller, f.environment)) }, 200);
  });

  app.openapi(liftRouteDef, async (c) => {
    const caller = c.get('caller');
    const { id } = c.req.valid('param');
    const svc = service();
    const found = await svc.get(id);
    // A freeze of an environment the token may not see does not exist for it.
    if (!found || !mayActIn(caller, found.environment)) throw new ApiError('not-found', `no freeze ${id}`);
    const lifted = await svc.lift(id, caller.principal);
    if (!lifted) throw new ApiError('not-found', `no freeze ${id}`);
    return c.json(lifted.freeze, 200);
  });
}
