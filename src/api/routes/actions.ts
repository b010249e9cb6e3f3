import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { idempotentPlanId, randomPlanId } from '../../domain/plan-id.js';
import { requestHash } from '../../domain/hashing.js';
import { normalizeRequest } from '../../domain/request.js';
import type { PlanView } from '../../domain/plan-view.js';
import { requireAction, requireChannel, requireEnvironment } from '../access/auth.js';
import type { ApiDeps, AppEnv } from '../http/context.js';
import { parseWait, waitForChange } from '../plans/plan-watch.js';
import { ApiError, problemResponses } from '../http/problems.js';
import { withUndoLinks } from '../plans/undo-links.js';
import { readVisiblePlan } from '../plans/visibility.js';
import {
  applyRequestSchema,
  applyResponseSchema,
  approvalRequestSchema,
  approvalResponseSchema,
  channelHeaders,
  idempotencyHeaders,
  planIdParams,
  planRequestSchema,
  planResponseSchema,
  waitQuery,
} from '../openapi/schemas.js';

const json = <T>(schema: T) => ({ content: { 'application/json': { schema } } });
const security = [{ bearer: [] }];

const planRoute = createRoute({
  method: 'post',
  path: '/v1/actions/plan',
  tags: ['actions'],
  summary: 'Plan an action: policy decision, risk, approvals needed',
  description:
    'Validates the request, reads the target from Proxmox (preflight), evaluates policy, and starts the run that will wait for apply and approvals. Returns in one round trip.',
  security,
  request: { headers: idempotencyHeaders, body: { required: true, ...json(planRequestSchema) } },
  responses: {
    201: { description: 'The plan', ...json(planResponseSchema) },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'idempotency-key-reused', 'unknown-environment', 'unsupported-media-type', 'payload-too-large', 'temporal-unavailable', 'temporal-misconfigured'),
  },
});

const applyRoute = createRoute({
  method: 'post',
  path: '/v1/actions/apply',
  tags: ['actions'],
  summary: 'Apply a plan',
  description:
    'Asks the run to execute. Accepted before approval too: the run then executes as soon as the approvals arrive, unless the plan expires first.',
  security,
  request: { body: { required: true, ...json(applyRequestSchema) } },
  responses: {
    202: { description: 'Accepted: the run will execute (or is executing)', ...json(applyResponseSchema) },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'plan-not-found', 'request-hash-mismatch', 'plan-denied', 'plan-rejected', 'plan-finished', 'plan-stale', 'plan-not-ready', 'plan-expired', 'temporal-unavailable'),
  },
});

const approvalRoute = createRoute({
  method: 'post',
  path: '/v1/actions/{planId}/approvals',
  tags: ['approvals'],
  summary: 'Approve or reject a plan',
  description:
    "Sends the decision to the run. The requester cannot approve its own plan, and one identity counts once. A token limited to action patterns decides only on plans of those actions; the channel (X-Proxmox-Agent-Channel, default api) must be one the token's config allows.",
  security,
  request: { params: planIdParams, headers: channelHeaders, body: { required: true, ...json(approvalRequestSchema) } },
  responses: {
    202: { description: 'The decision, as the run recorded it (or, with recorded false, as predicted)', ...json(approvalResponseSchema) },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'channel-not-allowed', 'self-approval', 'plan-not-found', 'request-hash-mismatch', 'approval-not-counted', 'plan-denied', 'plan-rejected', 'plan-expired', 'temporal-unavailable'),
  },
});

const getRoute = createRoute({
  method: 'get',
  path: '/v1/actions/{planId}',
  tags: ['actions'],
  summary: 'Read a plan and its outcome',
  description:
    'With `wait` (a long poll), answers as soon as the status differs from `status` (default: the status at the time of the call) or is terminal, or when `wait` has passed (at most 60 s), with the plan as it is then. For a live feed use `/v1/actions/{planId}/events`.',
  security,
  request: { params: planIdParams, query: waitQuery },
  responses: {
    200: { description: 'The plan as the run sees it now', ...json(planResponseSchema) },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'plan-not-found', 'temporal-unavailable'),
  },
});

/** A plan as the API answers it: its undo links (undo-links.ts) and where to find it. */
export async function planResponse(deps: ApiDeps, view: PlanView) {
  return {
    ...(await withUndoLinks(deps.plans, view)),
    links: {
      self: `/v1/actions/${view.planId}`,
      ...(deps.temporalUi
        ? { temporalUi: `${deps.temporalUi.baseUrl}/namespaces/${encodeURIComponent(deps.temporalUi.namespace)}/workflows/${view.planId}` }
        : {}),
    },
  };
}

export function registerActionRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  const withLinks = (view: PlanView) => planResponse(deps, view);

  app.openapi(planRoute, async (c) => {
    const caller = c.get('caller');
    const body = c.req.valid('json');
    requireEnvironment(caller, body.environment);
    requireAction(caller, body.action);
    if (!deps.environments.has(body.environment)) {
      // Well formed (the schema holds) but naming nothing here: 422, not 400 (found by schemathesis).
      throw new ApiError('unknown-environment', `no environment '${body.environment}'; configured: ${[...deps.environments].join(', ')}`, {
        errors: [{ path: 'environment', message: `one of: ${[...deps.environments].join(', ')}` }],
      });
    }
    const request = normalizeRequest(body);
    const key = c.req.valid('header')['idempotency-key'];
    const planId = key ? idempotentPlanId(caller.principal, key) : randomPlanId();
    const view = await deps.plans.plan({
      planId,
      request,
      requestHash: requestHash(request),
      requester: { principal: caller.principal, tokenId: caller.tokenId, channel: 'api' },
    });
    c.header('Location', `/v1/actions/${planId}`);
    return c.json(await withLinks(view), 201);
  });

  app.openapi(applyRoute, async (c) => {
    const caller = c.get('caller');
    const { planId, requestHash: hash } = c.req.valid('json');
    // Read for this call (concurrent applies of one plan share the query); the gateway checks this
    // caller against it, so every caller is authorized, whichever caller's Update reaches the run.
    const current = await readVisiblePlan({ state: (id) => deps.plans.state(id, { patient: true }) }, planId, caller);
    requireAction(caller, current.action);
    const accepted = await deps.plans.apply(
      planId,
      {
        requestHash: hash,
        actor: { principal: caller.principal, tokenId: caller.tokenId, channel: 'api' },
        actorEnvironments: [...caller.environments],
      },
      current,
    );
    return c.json({ ...accepted, links: { self: `/v1/actions/${planId}` } }, 202);
  });

  app.openapi(approvalRoute, async (c) => {
    const caller = c.get('caller');
    const channel = c.req.valid('header')['x-proxmox-agent-channel'] ?? 'api';
    requireChannel(caller, channel);
    const { planId } = c.req.valid('param');
    const body = c.req.valid('json');
    const current = await readVisible(planId, caller);
    requireAction(caller, current.action, 'approve or reject');
    const { view: decided, recorded } = await deps.plans.approve(planId, {
      principal: caller.principal,
      tokenId: caller.tokenId,
      roles: [...caller.roles],
      channel,
      decision: body.decision,
      ...(body.comment === undefined ? {} : { comment: body.comment }),
      ...(body.requestHash === undefined ? {} : { requestHash: body.requestHash }),
    });
    const { required, received, approvers } = decided.approval;
    return c.json({ planId, status: decided.status, approval: { required, received, approvers }, recorded }, 202);
  });

  app.openapi(getRoute, async (c) => {
    const caller = c.get('caller');
    const { planId } = c.req.valid('param');
    const { wait, status } = c.req.valid('query');
    const view = wait
      ? await waitForChange(() => readVisible(planId, caller), { timeoutMs: parseWait(wait), ...(status ? { from: status } : {}), signal: c.req.raw.signal })
      : await readVisible(planId, caller);
    return c.json(await withLinks(view), 200);
  });

  /** A plan in an environment the caller may not see does not exist, as far as the caller knows. */
  async function readVisible(planId: string, caller: AppEnv['Variables']['caller']): Promise<PlanView> {
    return readVisiblePlan(deps.plans, planId, caller);
  }
}
