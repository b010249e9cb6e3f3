/**
 * The typed client through an injected fetch (as /mcp uses it, over `app.request`): answers,
 * problems, the long poll and the event stream arrive as they do over the network.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/http/app.js';
import { createAuthenticator } from '../../src/api/access/auth.js';
import type { PlanGateway } from '../../src/api/plans/plan-gateway.js';
import { ApiError } from '../../src/api/http/problems.js';
import { ApiProblemError, createApiClient } from '../../src/client/index.js';
import type { PlanView } from '../../src/domain/plan-view.js';
import { pendingPlan } from '../channels/helpers/fixtures.js';
import { testToken } from '../support/tokens.js';

function setup(view: PlanView = pendingPlan()) {
  const seen: string[] = [];
  const app = createApp({
    plans: {
      state: async (planId: string) => {
        if (planId !== view.planId) throw new ApiError('plan-not-found', `no plan ${planId}`);
        return structuredClone(view);
      },
    } as unknown as PlanGateway,
    authenticate: createAuthenticator([testToken('reader')]),
    environments: new Set(['lab', 'prod']),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: async () => {
      throw new Error('not used');
    },
  });
  const client = (token = 'reader-secret') =>
    createApiClient({
      baseUrl: 'http://in-process.internal',
      token,
      fetch: async (url, init) => {
        seen.push(`${init.method} ${url} ${new Headers(init.headers).get('authorization')}`);
        return app.request(url, init);
      },
    });
  return { client, seen, view };
}

describe('the API client over an injected fetch', () => {
  it('sends every call through it, with the token in the Authorization header only', async () => {
    const { client, seen } = setup();
    expect((await client().catalog()).actions).toHaveLength(31);
    expect(seen).toEqual(['GET http://in-process.internal/v1/catalog Bearer reader-secret']);
  });

  it('turns a problem into ApiProblemError', async () => {
    const { client } = setup();
    await expect(client('wrong').catalog()).rejects.toMatchObject({ name: 'ApiProblemError', status: 401, type: '/problems/unauthenticated' });
    const err = await client().get('plan_01J9ZQ4X3T5M8R2B6C7D9E0F1H').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiProblemError);
    expect(err).toMatchObject({ status: 404, code: 'plan-not-found' });
  });

  it('long-polls, and stops when its signal aborts', async () => {
    const { client, view } = setup();
    const started = Date.now();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    // In process, the route sees the abort as its caller going away and answers with the plan as it is.
    const answer = await client()
      .wait(view.planId, { waitSeconds: 30, status: 'awaiting_approval', signal: controller.signal })
      .then((p) => p.status, (err: Error) => err.name);
    expect(['awaiting_approval', 'AbortError']).toContain(answer);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(5_000);
    // A status other than the one known answers at once.
    expect((await client().wait(view.planId, { waitSeconds: 30, status: 'planned' })).status).toBe('awaiting_approval');
  });

  it('reads the event stream', async () => {
    const { client, view } = setup(pendingPlan({ status: 'succeeded' }));
    const events = [];
    for await (const p of client().events(view.planId)) events.push(p.status);
    expect(events).toEqual(['succeeded']);
  });
});
