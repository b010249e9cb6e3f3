import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { requestHash } from '../../domain/hashing.js';
import { undoPlanId } from '../../domain/plan-id.js';
import { normalizeRequest, RequestValidationError } from '../../domain/request.js';
import { planUndo } from '../../domain/undo.js';
import { requireAction } from '../access/auth.js';
import type { ApiDeps, AppEnv } from '../http/context.js';
import { ApiError, problemResponses } from '../http/problems.js';
import { idempotencyHeaders, planIdParams, planResponseSchema, undoRequestSchema } from '../openapi/schemas.js';
import { readVisiblePlan } from '../plans/visibility.js';
import { planResponse } from './actions.js';

const json = <T>(schema: T) => ({ content: { 'application/json': { schema } } });

const undoRoute = createRoute({
  method: 'post',
  path: '/v1/actions/{planId}/undo',
  tags: ['actions'],
  summary: 'Plan the undo of a plan that succeeded',
  description:
    "Plans the plan's inverse (`undo.inverse` on the plan) as a new plan, requested by the caller and under policy and approvals like any plan; apply it with POST /v1/actions/apply. A plan has at most one undo: its id follows from the plan's, so a repeat of the same request (same caller, same reason) answers the same undo plan, and any other is refused (409 plan-already-undone). The undo is built from what the plan recorded: a config update is set back only on the config the plan left (changed since: the undo plan is denied, rule undo.stale). Idempotency-Key is accepted and changes nothing: the undo's id is already fixed by the plan's.",
  security: [{ bearer: [] }],
  request: { params: planIdParams, headers: idempotencyHeaders, body: { required: true, ...json(undoRequestSchema) } },
  responses: {
    201: { description: 'The undo plan (`undoes` names the plan it takes back)', ...json(planResponseSchema) },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'plan-not-found', 'plan-not-undoable', 'plan-already-undone', 'plan-not-ready', 'unsupported-media-type', 'temporal-unavailable'),
  },
});

export function registerUndoRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  app.openapi(undoRoute, async (c) => {
    const caller = c.get('caller');
    const { planId } = c.req.valid('param');
    const { reason } = c.req.valid('json');
    const original = await readVisiblePlan(deps.plans, planId, caller);
    const decided = planUndo(original, reason);
    if (decided.kind === 'refused') throw new ApiError('plan-not-undoable', decided.message, { planId });
    requireAction(caller, decided.request.action);
    const request = normalizeUndo(decided.request, planId);
    const undoId = undoPlanId(planId);
    const view = await deps.plans
      .plan({
        planId: undoId,
        request,
        requestHash: requestHash(request),
        requester: { principal: caller.principal, tokenId: caller.tokenId, channel: 'api' },
        undoes: decided.undoes,
      })
      .catch((err: unknown) => {
        throw err instanceof ApiError && err.code === 'idempotency-key-reused' ? alreadyUndone(planId, undoId) : err;
      });
    // The same request again from someone else is not theirs to have: the plan has its one undo.
    if (view.requester.principal !== caller.principal) throw alreadyUndone(planId, undoId);
    c.header('Location', `/v1/actions/${undoId}`);
    return c.json(await planResponse(deps, view), 201);
  });
}

const alreadyUndone = (planId: string, undoId: string) =>
  new ApiError('plan-already-undone', `plan ${planId} is already undone by plan ${undoId}`, { planId });

/** The inverse as a request; one the catalog refuses (a value it no longer accepts) cannot be undone. */
function normalizeUndo(request: Parameters<typeof normalizeRequest>[0], planId: string) {
  try {
    return normalizeRequest(request);
  } catch (err) {
    if (err instanceof RequestValidationError) throw new ApiError('plan-not-undoable', `plan ${planId} cannot be undone: its inverse is not a valid request (${err.message})`, { planId });
    throw err;
  }
}
