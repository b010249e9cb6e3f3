import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { planViewSchema } from '../../domain/plan-view.js';
import type { PlanView } from '../../domain/plan-view.js';
import { CURSOR_PATTERN, decodeCursor, encodeCursor } from '../plans/approval-queue.js';
import type { ApiDeps, AppEnv } from '../http/context.js';
import { ApiError, problemResponses } from '../http/problems.js';

const json = <T>(schema: T) => ({ content: { 'application/json': { schema } } });

export const approvalSummarySchema = planViewSchema
  .pick({
    planId: true,
    requestHash: true,
    action: true,
    environment: true,
    target: true,
    reason: true,
    requester: true,
    status: true,
    risk: true,
    decision: true,
    reasons: true,
    applyRequested: true,
    createdAt: true,
    expiresAt: true,
  })
  .extend({
    approval: planViewSchema.shape.approval.pick({ required: true, received: true, requirements: true, approvers: true }),
    links: z.object({ self: z.string(), temporalUi: z.string().optional() }),
  })
  .meta({ id: 'ApprovalSummary' });

export const approvalListSchema = z
  .object({
    items: z.array(approvalSummarySchema),
    nextCursor: z
      .string()
      .regex(CURSOR_PATTERN)
      .optional()
      .describe('Pass as `cursor` for the next page; absent on the last page'),
  })
  .meta({ id: 'ApprovalList' });

const listRoute = createRoute({
  method: 'get',
  path: '/v1/approvals',
  tags: ['approvals'],
  summary: 'Plans waiting for approval',
  description:
    'Runs awaiting approval in the environments the token may act in, oldest first (by start time, then plan id), in pages: `nextCursor` names where the next page starts. Found through Temporal visibility (eventually consistent: a plan made a moment ago may appear a moment later); a plan that moved on since visibility listed it is left out, so a page may hold fewer than `limit` items. Needs the approve or read scope.',
  security: [{ bearer: [] }],
  request: {
    query: z.object({
      status: z.enum(['pending']).default('pending').describe('Only pending (awaiting approval) for now'),
      limit: z.coerce.number().int().min(1).max(200).default(50),
      cursor: z
        .string()
        .regex(CURSOR_PATTERN)
        .optional()
        .describe("The previous page's `nextCursor`: only plans after that one")
        .meta({ example: '1795667400123.plan_01JD5Q8V2M3N4P5R6S7T8V9W0X' }),
    }),
  },
  responses: {
    200: { description: 'The pending plans', ...json(approvalListSchema) },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'temporal-unavailable', 'temporal-misconfigured'),
  },
});

export function registerApprovalRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  app.openapi(listRoute, async (c) => {
    const caller = c.get('caller');
    if (!deps.approvals) throw new ApiError('not-found', 'approval listing is not configured');
    const { limit, cursor } = c.req.valid('query');
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const page = await deps.approvals.pending({ environments: caller.environments, limit, ...(after ? { after } : {}) });
    return c.json({ items: page.items.map((v) => summary(v, deps)), ...(page.next ? { nextCursor: encodeCursor(page.next) } : {}) }, 200);
  });
}

function summary(v: PlanView, deps: ApiDeps): z.infer<typeof approvalSummarySchema> {
  const { required, received, requirements, approvers } = v.approval;
  return {
    planId: v.planId,
    requestHash: v.requestHash,
    action: v.action,
    environment: v.environment,
    target: v.target,
    reason: v.reason,
    requester: v.requester,
    status: v.status,
    risk: v.risk,
    decision: v.decision,
    reasons: v.reasons,
    applyRequested: v.applyRequested,
    createdAt: v.createdAt,
    expiresAt: v.expiresAt,
    approval: { required, received, requirements, approvers },
    links: {
      self: `/v1/actions/${v.planId}`,
      ...(deps.temporalUi
        ? { temporalUi: `${deps.temporalUi.baseUrl}/namespaces/${encodeURIComponent(deps.temporalUi.namespace)}/workflows/${v.planId}` }
        : {}),
    },
  };
}

export type ApprovalList = z.infer<typeof approvalListSchema>;
