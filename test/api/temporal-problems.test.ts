/**
 * How Temporal's own failures reach a client (src/api/http/app.ts, toApiError): a namespace without a
 * search attribute is 503 `/problems/temporal-misconfigured` naming it and the command that registers
 * them; an unreachable Temporal is 503 `/problems/temporal-unavailable` with Retry-After, saying what
 * the watch knows. Through the real app, with a gateway that fails as the SDK does.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/http/app.js';
import { createAuthenticator } from '../../src/api/access/auth.js';
import type { ApiDeps } from '../../src/api/http/context.js';
import type { PlanGateway } from '../../src/api/plans/plan-gateway.js';
import { sha256Hex } from '../../src/domain/hashing.js';
import type { TemporalStatus } from '../../src/temporal/watch.js';

/** As the SDK throws a failed gRPC call: a ServiceError over the gRPC status. */
const serviceError = (code: number, details: string) =>
  Object.assign(new Error('Failed to start Workflow'), { name: 'ServiceError', cause: Object.assign(new Error(`${code} ${details}`), { code, details }) });

const COMMAND = 'npm run temporal:search-attributes -- --address temporal.internal:7233 --namespace ops';

function request(failure: Error, status: Partial<TemporalStatus> = {}) {
  const rechecks: number[] = [];
  const deps: ApiDeps = {
    plans: { plan: async () => Promise.reject(failure) } as unknown as PlanGateway,
    authenticate: createAuthenticator([{ id: 'agent', principal: 'agent:a', secretSha256: sha256Hex('agent-secret'), scopes: ['plan', 'read'], environments: ['*'], roles: [] }]),
    environments: new Set(['lab']),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: async () => Promise.reject(new Error('not used')),
    temporal: {
      registerCommand: COMMAND,
      recheck: () => rechecks.push(Date.now()),
      status: () => ({
        ok: false,
        reachable: true,
        missingAttributes: [],
        checks: { temporal: { ok: true, detail: 'namespace ops reachable' }, searchAttributes: { ok: false, detail: '' } },
        ...status,
      }),
    },
  };
  const body = { action: 'vm.start', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'test' };
  const res = createApp(deps).request('/v1/actions/plan', {
    method: 'POST',
    headers: { authorization: 'Bearer agent-secret', 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { res, rechecks };
}

describe('Temporal failures as problems', () => {
  it('a start on an unknown search attribute: 503 temporal-misconfigured, naming it, the others missing and the command', async () => {
    const { res, rechecks } = request(serviceError(3, 'Namespace ops has no mapping defined for search attribute ProxmoxPlanId'), { missingAttributes: ['ProxmoxPlanId', 'ProxmoxVmid'] });
    const r = await res;
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(r.headers.get('retry-after')).toBe('5');
    const problem = (await r.json()) as { type: string; detail: string };
    expect(problem.type).toBe('/problems/temporal-misconfigured');
    expect(problem.detail).toContain('search attribute ProxmoxPlanId (nor ProxmoxVmid)');
    expect(problem.detail).toContain(COMMAND);
    // The watch looks again at once, so readiness says so too.
    expect(rechecks).toHaveLength(1);
  });

  it('Temporal down: 503 temporal-unavailable with Retry-After and what the watch saw', async () => {
    const detail = 'Temporal at temporal.internal:7233 is not reachable: 14 UNAVAILABLE: No connection established';
    const r = await request(serviceError(14, 'No connection established'), { reachable: false, checks: { temporal: { ok: false, detail }, searchAttributes: { ok: false, detail: '' } } }).res;
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('2');
    expect(await r.json()).toMatchObject({ type: '/problems/temporal-unavailable', detail: `${detail}; retry shortly` });
  });

  it('any other failed call is still internal', async () => {
    const r = await request(new Error('boom')).res;
    expect(r.status).toBe(500);
  });
});
