import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { BUDGET_NAMES } from '../../budgets/schema.js';
import type { ApiDeps, AppEnv } from '../http/context.js';
import { ApiError, problemResponses } from '../http/problems.js';

export const budgetsReportSchema = z
  .object({
    at: z.string().describe('When the usage was read (the ledger\'s clock)'),
    windowSeconds: z.number().int().describe('The sliding window of the hourly budgets'),
    budgets: z.array(
      z.object({
        principal: z.string(),
        budget: z.enum(BUDGET_NAMES),
        limit: z.number().int(),
        used: z.number().int().describe('What counts against the budget now'),
        freesAt: z.string().optional().describe('When a full budget has room again (ISO 8601); at the latest (for concurrent: the earliest expiry of the plans holding it, or the lapse of one applying; sooner if one ends, later if one begins applying before then)'),
        heldBy: z.array(z.string()).optional().describe('For concurrent: the plans holding its slots'),
      }),
    ),
  })
  .openapi('BudgetsReport');

const budgetsRoute = createRoute({
  method: 'get',
  path: '/v1/budgets',
  tags: ['policy'],
  summary: 'Budget usage: how much of its budgets a principal has used, and when a full one frees',
  description:
    "The caller's own principal's budgets (docs/policy.md, \"Budgets\"); a token with the `admin` scope sees every configured principal's. A principal without budgets gets an empty list.",
  security: [{ bearer: [] }],
  responses: {
    200: { description: 'Usage per principal and budget', content: { 'application/json': { schema: budgetsReportSchema } } },
    ...problemResponses('unauthenticated', 'forbidden', 'not-found'),
  },
});

export function registerBudgetRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  app.openapi(budgetsRoute, async (c) => {
    const caller = c.get('caller');
    if (!deps.budgets) throw new ApiError('not-found', 'this service keeps no budgets');
    // Least privilege: an agent sees its own usage, not other principals'.
    const report = await deps.budgets.read(caller.scopes.includes('admin') ? undefined : [caller.principal]);
    return c.json(report, 200);
  });
}
