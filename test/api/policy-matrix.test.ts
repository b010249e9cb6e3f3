/**
 * GET /v1/policy/matrix through the real Hono app: the running policy's default decision for every
 * action in each of the token's environments, the same table as docs/policy-risk-matrix.md.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/http/app.js';
import { createAuthenticator } from '../../src/api/access/auth.js';
import type { ApiDeps } from '../../src/api/http/context.js';
import type { PlanGateway } from '../../src/api/plans/plan-gateway.js';
import { loadConfig } from '../../src/config/load.js';
import { riskMatrix, type RiskMatrix } from '../../src/policy/matrix.js';
import { bearer, testToken as token } from '../support/tokens.js';

function app(over: Partial<ApiDeps> = {}) {
  const config = loadConfig({}).config;
  return createApp({
    plans: {} as PlanGateway,
    authenticate: createAuthenticator([token('reader'), token('lab-reader', { environments: ['lab'] }), token('planner', { scopes: ['plan'] })]),
    environments: new Set(['lab', 'prod']),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: async () => {
      throw new Error('not used');
    },
    riskMatrix: () => riskMatrix(config),
    ...over,
  });
}

const get = async (a: ReturnType<typeof app>, id?: string) => {
  const res = await a.request('/v1/policy/matrix', id ? { headers: bearer(id) } : {});
  return { status: res.status, body: (await res.json()) as RiskMatrix & { type?: string } };
};

describe('GET /v1/policy/matrix', () => {
  it("answers each action's default risk, decision and approvals per environment, with the rules that can make a cell stricter", async () => {
    const { status, body } = await get(app(), 'reader');
    expect(status).toBe(200);
    expect(body.environments.map((e) => `${e.environment}/${e.tier}`)).toEqual(['lab/nonprod', 'prod/prod']);
    const cell = (env: number, action: string) => body.environments[env]!.actions.find((a) => a.action === action);
    expect(cell(0, 'vm.start')).toEqual({ action: 'vm.start', risk: 'low', decision: 'allowed', approvalsRequired: 0, requirements: [] });
    expect(cell(1, 'vm.delete')).toMatchObject({
      risk: 'critical',
      decision: 'requires_approval',
      approvalsRequired: 2,
      requirements: [{ id: 'risk.critical', count: 2 }, { id: 'policy.prod-delete-step-up', count: 1, channels: ['api', 'cli'] }],
    });
    expect(body.environments[1]!.actions).toHaveLength(31);
    expect(body.approvalsByRisk).toEqual({ low: 0, medium: 0, high: 1, critical: 2 });
    expect(body.planTtlSeconds).toBe(3600);
    expect(body.rules.map((r) => r.id)).toEqual(['do-not-touch', 'prod-db-needs-dba', 'prod-delete-step-up']);
  });

  it("lists only the token's environments, needs the read scope and a token", async () => {
    expect((await get(app(), 'lab-reader')).body.environments.map((e) => e.environment)).toEqual(['lab']);
    expect(await get(app(), 'planner')).toMatchObject({ status: 403, body: { type: '/problems/forbidden' } });
    expect((await get(app())).status).toBe(401);
  });

  it('answers 404 where the service does not publish it', async () => {
    expect(await get(app({ riskMatrix: undefined }), 'reader')).toMatchObject({ status: 404, body: { type: '/problems/not-found' } });
  });
});
