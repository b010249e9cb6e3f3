import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { requestHash } from '../../domain/hashing.js';
import { actionRequestVariants, normalizeRequest } from '../../domain/request.js';
import { approvalRequirementSchema, preflightSchema, reasonSchema } from '../../domain/plan-view.js';
import { DECISIONS } from '../../domain/lifecycle.js';
import { RISKS } from '../../domain/risk.js';
import { mayActIn, requireEnvironment } from '../access/auth.js';
import type { ApiDeps, AppEnv } from '../http/context.js';
import { ApiError, problemResponses } from '../http/problems.js';

export const evaluateRequestSchema = actionRequestVariants({
  at: z.iso.datetime({ offset: true }).optional().describe('Evaluate as if at this instant (to test time windows); default now'),
}).meta({ id: 'PolicyEvaluateRequest' });

export const evaluateResponseSchema = z
  .object({
    requestHash: z.string(),
    risk: z.enum(RISKS),
    decision: z.enum(DECISIONS),
    approvalsRequired: z.number().int(),
    requirements: z.array(approvalRequirementSchema),
    reasons: z.array(reasonSchema),
    policyVersion: z.string(),
    evaluatedAt: z.string(),
    safeguard: z
      .object({ kind: z.literal('snapshot'), name: z.string().optional() })
      .optional()
      .describe('A rule asks for a snapshot before the action (docs/policy.md, "Safeguards"); named once a plan is made'),
    preflight: preflightSchema,
  })
  .openapi('PolicyEvaluation');

const evaluateRoute = createRoute({
  method: 'post',
  path: '/v1/policy/evaluate',
  tags: ['policy'],
  summary: 'Evaluate a request against the policy without starting a run',
  description:
    'Reads the target from Proxmox and returns the decision a plan would get now (or at `at`), with reasons and hints. Nothing is started, recorded or changed.',
  security: [{ bearer: [] }],
  request: { body: { required: true, content: { 'application/json': { schema: evaluateRequestSchema } } } },
  responses: {
    200: { description: 'The decision', content: { 'application/json': { schema: evaluateResponseSchema } } },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'unknown-environment'),
  },
});

const matrixCellSchema = z.object({
  action: z.string(),
  risk: z.enum(RISKS),
  decision: z.enum(DECISIONS),
  approvalsRequired: z.number().int(),
  requirements: z.array(approvalRequirementSchema),
});

export const riskMatrixSchema = z
  .object({
    environments: z
      .array(z.object({ environment: z.string(), tier: z.enum(['nonprod', 'prod']), actions: z.array(matrixCellSchema) }))
      .describe("The token's environments, each with every catalog action's default decision there"),
    approvalsByRisk: z.record(z.string(), z.number().int()).describe('Distinct approvers each risk level needs'),
    planTtlSeconds: z.number().int(),
    rules: z
      .array(z.object({ id: z.string(), description: z.string().optional(), match: z.record(z.string(), z.unknown()) }))
      .describe('Rules that can make a cell stricter for particular guests (tags, pools, vmids) or times'),
  })
  .openapi('PolicyRiskMatrix');

const matrixRoute = createRoute({
  method: 'get',
  path: '/v1/policy/matrix',
  tags: ['policy'],
  summary: "The policy's risk matrix: each action's default risk and approvals per environment",
  description:
    'For every catalog action in every environment of the token: the risk, decision and approvals a plan gets by default, for a guest that no tag, pool, vmid or time-window rule singles out. Rules only ever make a cell stricter; they are listed. The same table as docs/policy-risk-matrix.md, for the running policy.',
  security: [{ bearer: [] }],
  responses: {
    200: { description: 'The matrix', content: { 'application/json': { schema: riskMatrixSchema } } },
    ...problemResponses('unauthenticated', 'forbidden', 'not-found'),
  },
});

export function registerPolicyRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  app.openapi(matrixRoute, (c) => {
    const caller = c.get('caller');
    if (!deps.riskMatrix) throw new ApiError('not-found', 'this service does not publish its risk matrix');
    const matrix = deps.riskMatrix();
    return c.json({ ...matrix, environments: matrix.environments.filter((e) => mayActIn(caller, e.environment)) }, 200);
  });

  app.openapi(evaluateRoute, async (c) => {
    const { at, ...body } = c.req.valid('json');
    requireEnvironment(c.get('caller'), body.environment);
    if (!deps.environments.has(body.environment)) {
      // Well formed (the schema holds) but naming nothing here: 422, not 400 (found by schemathesis).
      throw new ApiError('unknown-environment', `no environment '${body.environment}'; configured: ${[...deps.environments].join(', ')}`, {
        errors: [{ path: 'environment', message: `one of: ${[...deps.environments].join(', ')}` }],
      });
    }
    const request = normalizeRequest(body);
    const { preflight, decision } = await deps.evaluate(request, at ? new Date(at) : new Date());
    return c.json({ requestHash: requestHash(request), ...decision, preflight }, 200);
  });
}
