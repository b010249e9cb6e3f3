/**
 * API hardening through the real Hono app with a fake plan gateway: per-token action patterns, the
 * per-token rate limit (429 + Retry-After), CORS off by default and by allow-list, the body size limit,
 * and strict schemas (unknown fields rejected) on every route's JSON body, walked from the route table.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, MAX_BODY_BYTES } from '../../src/api/http/app.js';
import { createAuthenticator } from '../../src/api/access/auth.js';
import type { ApiDeps } from '../../src/api/http/context.js';
import type { PlanGateway } from '../../src/api/plans/plan-gateway.js';
import { ApiError } from '../../src/api/http/problems.js';
import { createRateLimiter } from '../../src/api/access/rate-limit.js';
import type { ApiTokenConfig } from '../../src/config/schema.js';
import { ACTIONS } from '../../src/domain/actions/catalog.js';
import { sha256Hex } from '../../src/domain/hashing.js';
import type { PlanView } from '../../src/domain/plan-view.js';
import { pendingPlan } from '../channels/helpers/fixtures.js';

const token = (id: string, over: Partial<ApiTokenConfig> = {}): ApiTokenConfig => ({
  id,
  principal: `agent:${id}`,
  secretSha256: sha256Hex(`${id}-secret`),
  scopes: ['plan', 'apply', 'read'],
  environments: ['*'],
  roles: [],
  ...over,
});

function appWith(over: Partial<ApiDeps> = {}, plans: Partial<PlanGateway> = {}) {
  const planned: string[] = [];
  /** principal/channel/decision of every decision sent to the run. */
  const decided: string[] = [];
  const stored = pendingPlan({ action: 'vm.delete', status: 'approved' });
  const gateway = {
    state: async (planId: string) => {
      if (planId !== stored.planId) throw new ApiError('plan-not-found', `no plan ${planId}`);
      return structuredClone(stored);
    },
    plan: async (input: { planId: string; request: { action: string } }) => {
      planned.push(input.request.action);
      return { ...structuredClone(stored), planId: input.planId, action: input.request.action } as PlanView;
    },
    apply: async (planId: string) => ({ planId, status: 'applying' as const }),
    approve: async (planId: string, args: { principal: string; channel: string; decision: string }) => {
      decided.push(`${args.principal}/${args.channel}/${args.decision}`);
      return { view: structuredClone(stored), recorded: true };
    },
    ...plans,
  } as unknown as PlanGateway;
  const deps: ApiDeps = {
    plans: gateway,
    authenticate: createAuthenticator([
      token('agent'),
      token('snapshotter', { actions: ['vm.snapshot.*'] }),
      token('starter', { actions: ['vm.start', 'vm.shutdown'] }),
      token('other'),
      token('approver', { principal: 'human:alice', scopes: ['approve', 'read'] }),
      token('snap-approver', { principal: 'human:sam', scopes: ['approve', 'read'], actions: ['vm.snapshot.*'] }),
      token('delete-approver', { principal: 'human:dan', scopes: ['approve', 'read'], actions: ['*.delete'] }),
      token('cli-approver', { principal: 'human:bob', scopes: ['approve', 'read'], channels: ['api', 'cli'] }),
      token('cli-only', { principal: 'human:carol', scopes: ['approve', 'read'], channels: ['cli'] }),
    ]),
    environments: new Set(['lab', 'prod']),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: async () => {
      throw new Error('not used');
    },
    ...over,
  };
  return { app: createApp(deps), planned, decided, stored };
}

const bearer = (id: string) => ({ authorization: `Bearer ${id}-secret` });
const json = (id: string, body: unknown, extra: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { ...bearer(id), 'content-type': 'application/json', ...extra },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const planBody = (action: string, params: object = {}) => ({ action, environment: 'lab', target: { vmid: 100 }, params, reason: 'test' });

describe('per-token action patterns', () => {
  it('refuses to plan an action outside the token\'s patterns, with the reason', async () => {
    const { app, planned } = appWith();
    const res = await app.request('/v1/actions/plan', json('snapshotter', planBody('vm.start')));
    expect(res.status).toBe(403);
    const problem = (await res.json()) as { detail: string };
    expect(problem).toMatchObject({ type: '/problems/forbidden', code: 'forbidden' });
    expect(problem.detail).toBe("token 'snapshotter' may not plan or apply 'vm.start' (it is limited to actions vm.snapshot.*)");
    expect(planned).toEqual([]);
  });

  it('allows actions matching a glob or a listed name, and any action without patterns', async () => {
    const { app, planned } = appWith();
    expect((await app.request('/v1/actions/plan', json('snapshotter', planBody('vm.snapshot.create', { snapname: 'pre' })))).status).toBe(201);
    expect((await app.request('/v1/actions/plan', json('starter', planBody('vm.start')))).status).toBe(201);
    expect((await app.request('/v1/actions/plan', json('starter', planBody('vm.stop')))).status).toBe(403);
    expect((await app.request('/v1/actions/plan', json('agent', planBody('vm.stop')))).status).toBe(201);
    expect(planned).toEqual(['vm.snapshot.create', 'vm.start', 'vm.stop']);
  });

  it('refuses to apply a plan whose action is outside the token\'s patterns', async () => {
    let applied = 0;
    const { app, stored } = appWith({}, { apply: (async (planId: string) => ((applied += 1), { planId, status: 'applying' })) as never });
    const body = { planId: stored.planId, requestHash: stored.requestHash };
    const refused = await app.request('/v1/actions/apply', json('starter', body));
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/may not plan or apply 'vm.delete'/);
    expect(applied).toBe(0);
    expect((await app.request('/v1/actions/apply', json('agent', body))).status).toBe(202);
    expect(applied).toBe(1);
  });
});

describe('per-token action patterns on approvals (issue 12, item 9.3)', () => {
  const decide = (app: ReturnType<typeof appWith>['app'], id: string, planId: string, decision: 'approve' | 'reject') =>
    app.request(`/v1/actions/${planId}/approvals`, json(id, { decision }));

  it('refuses to approve or reject a plan whose action is outside the token\'s patterns, as plan and apply do', async () => {
    const { app, decided, stored } = appWith();
    for (const decision of ['approve', 'reject'] as const) {
      const res = await decide(app, 'snap-approver', stored.planId, decision);
      expect(res.status, decision).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = (await res.json()) as { type: string; detail: string };
      expect(problem).toMatchObject({ type: '/problems/forbidden', code: 'forbidden' });
      expect(problem.detail).toBe("token 'snap-approver' may not approve or reject 'vm.delete' (it is limited to actions vm.snapshot.*)");
    }
    expect(decided).toEqual([]);
  });

  it('lets a token decide on actions matching its patterns, and any action without patterns', async () => {
    const { app, decided, stored } = appWith();
    expect((await decide(app, 'delete-approver', stored.planId, 'approve')).status).toBe(202);
    expect((await decide(app, 'approver', stored.planId, 'reject')).status).toBe(202);
    expect(decided).toEqual(['human:dan/api/approve', 'human:alice/api/reject']);
  });

  it('still answers 404, not 403, for a plan in an environment the token may not see', async () => {
    const { app, stored } = appWith({
      authenticate: createAuthenticator([token('lab-snap', { scopes: ['approve'], environments: ['lab'], actions: ['vm.snapshot.*'] })]),
    });
    expect((await decide(app, 'lab-snap', stored.planId, 'approve')).status).toBe(404);
  });
});

describe('the approval channel is granted to the token, not claimed (issue 12, item 9.2)', () => {
  const approve = (app: ReturnType<typeof appWith>['app'], id: string, channel?: string) =>
    app.request(`/v1/actions/plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G/approvals`, json(id, { decision: 'approve' }, channel ? { 'x-proxmox-agent-channel': channel } : {}));

  it('refuses X-Proxmox-Agent-Channel: cli from a token not allowed to speak for the CLI (403 problem+json), and records nothing', async () => {
    const { app, decided } = appWith();
    const res = await approve(app, 'approver', 'cli');
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({
      type: '/problems/channel-not-allowed',
      code: 'channel-not-allowed',
      status: 403,
      detail: "token 'approver' may not approve through channel 'cli' (it may use: api)",
      errors: [{ path: 'header.x-proxmox-agent-channel', message: 'one of: api' }],
    });
    expect(decided).toEqual([]);
  });

  it('records api by default, and cli for a token whose config allows it', async () => {
    const { app, decided } = appWith();
    expect((await approve(app, 'approver')).status).toBe(202);
    expect((await approve(app, 'approver', 'api')).status).toBe(202);
    expect((await approve(app, 'cli-approver', 'cli')).status).toBe(202);
    expect((await approve(app, 'cli-approver')).status).toBe(202);
    expect(decided).toEqual(['human:alice/api/approve', 'human:alice/api/approve', 'human:bob/cli/approve', 'human:bob/api/approve']);
  });

  it('holds a token to its channels when the header is absent too (absent means api)', async () => {
    const { app, decided } = appWith();
    const res = await approve(app, 'cli-only');
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe('channel-not-allowed');
    expect((await approve(app, 'cli-only', 'cli')).status).toBe(202);
    expect(decided).toEqual(['human:carol/cli/approve']);
  });

  it('never lets a bearer token claim chat: 400 before anything else', async () => {
    const { app, decided } = appWith();
    expect((await approve(app, 'cli-approver', 'chat')).status).toBe(400);
    expect(decided).toEqual([]);
  });
});

describe('rate limit per token', () => {
  it('answers 429 problem+json with Retry-After once a token\'s bucket is empty, without touching other tokens', async () => {
    let now = 0;
    const { app } = appWith({ rateLimit: createRateLimiter({ requestsPerSecond: 0.5, burst: 3, now: () => now }) });
    const get = (id: string) => app.request('/v1/actions/plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G', { headers: bearer(id) });
    for (let i = 0; i < 3; i++) expect((await get('agent')).status).toBe(200);
    const limited = await get('agent');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toBe('application/problem+json');
    expect(limited.headers.get('retry-after')).toBe('2');
    expect(await limited.json()).toMatchObject({ type: '/problems/rate-limited', status: 429 });
    expect((await get('other')).status).toBe(200);
    now += 2000; // one token refilled at 0.5/s
    expect((await get('agent')).status).toBe(200);
    expect((await get('agent')).status).toBe(429);
  });

  it('counts requests that fail validation too (no free probing)', async () => {
    const { app } = appWith({ rateLimit: createRateLimiter({ requestsPerSecond: 0.001, burst: 2, now: () => 0 }) });
    expect((await app.request('/v1/actions/plan', json('agent', { nope: 1 }))).status).toBe(400);
    expect((await app.request('/v1/actions/plan', json('agent', { nope: 1 }))).status).toBe(400);
    expect((await app.request('/v1/actions/plan', json('agent', { nope: 1 }))).status).toBe(429);
  });

  it('does not limit unauthenticated paths (health, OpenAPI)', async () => {
    const { app } = appWith({ rateLimit: createRateLimiter({ requestsPerSecond: 0.001, burst: 1, now: () => 0 }) });
    for (let i = 0; i < 5; i++) expect((await app.request('/v1/openapi.json')).status).toBe(200);
  });
});

describe('token expiry', () => {
  it('answers an expired token 401 problem+json naming the expiry, and plans nothing', async () => {
    const { app, planned } = appWith({
      authenticate: createAuthenticator([token('agent', { expiresAt: '2026-01-01T00:00:00Z' })], () => Date.parse('2026-06-01T00:00:00Z')),
    });
    const res = await app.request('/v1/actions/plan', json('agent', planBody('vm.start')));
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 401, detail: "token 'agent' expired at 2026-01-01T00:00:00Z" });
    expect(planned).toEqual([]);
  });
});

describe('CORS', () => {
  const preflight = { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } };

  it('is off by default: no Access-Control-Allow-Origin, preflights are not answered', async () => {
    const { app } = appWith();
    const res = await app.request('/v1/actions/plan', preflight);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(res.status).toBe(401);
    const get = await app.request('/v1/actions/plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G', { headers: { ...bearer('agent'), origin: 'https://evil.example' } });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows exactly the configured origins', async () => {
    const { app } = appWith({ cors: { origins: ['https://console.example'] } });
    const ok = await app.request('/v1/actions/plan', { ...preflight, headers: { ...preflight.headers, origin: 'https://console.example' } });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://console.example');
    expect(ok.headers.get('access-control-allow-headers')).toContain('authorization');
    const get = await app.request('/v1/actions/plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G', { headers: { ...bearer('agent'), origin: 'https://console.example' } });
    expect(get.headers.get('access-control-allow-origin')).toBe('https://console.example');
    expect(get.headers.get('access-control-expose-headers')).toContain('retry-after');
    const evil = await app.request('/v1/actions/plan', preflight);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('body size limit', () => {
  it(`refuses bodies over ${MAX_BODY_BYTES} bytes with 413 before parsing`, async () => {
    const { app, planned } = appWith();
    const big = JSON.stringify(planBody('vm.start')).replace('"test"', `"${'x'.repeat(MAX_BODY_BYTES)}"`);
    const res = await app.request('/v1/actions/plan', json('agent', big));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ type: '/problems/payload-too-large' });
    expect(planned).toEqual([]);
  });
});

/** True if every object in the schema (nested too) rejects unknown keys; records are maps, not objects. */
function strictEverywhere(schema: z.ZodType, path = '(body)'): string[] {
  const def = (schema as unknown as { _zod: { def: Record<string, any> } })._zod.def;
  switch (def.type) {
    case 'object': {
      const loose = def.catchall?._zod?.def?.type !== 'never' ? [`${path}: unknown keys are accepted`] : [];
      return [...loose, ...Object.entries(def.shape as Record<string, z.ZodType>).flatMap(([k, v]) => strictEverywhere(v, `${path}.${k}`))];
    }
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'nonoptional':
      return strictEverywhere(def.innerType, path);
    case 'pipe':
      return strictEverywhere(def.in, path);
    case 'array':
      return strictEverywhere(def.element, `${path}[]`);
    case 'union':
      return (def.options as z.ZodType[]).flatMap((o, i) => strictEverywhere(o, `${path}|${i}`));
    default:
      return [];
  }
}

describe('strict schemas', () => {
  it('the checker itself finds loose objects, nested ones too', () => {
    expect(strictEverywhere(z.strictObject({ a: z.strictObject({ b: z.string() }).optional() }))).toEqual([]);
    expect(strictEverywhere(z.strictObject({ a: z.array(z.object({ b: z.string() })) }))).toEqual(['(body).a[]: unknown keys are accepted']);
    expect(strictEverywhere(z.object({}).default({}))).toHaveLength(1);
  });

  it('every JSON request body in the route table rejects unknown fields, nested objects included', () => {
    const { app } = appWith();
    const bodies = app.openAPIRegistry.definitions
      .filter((d): d is Extract<typeof d, { type: 'route' }> => d.type === 'route')
      .flatMap((d) => {
        const schema = (d.route.request?.body?.content as Record<string, { schema?: z.ZodType }> | undefined)?.['application/json']?.schema;
        return schema ? [{ route: `${d.route.method.toUpperCase()} ${d.route.path}`, schema }] : [];
      });
    expect(bodies.map((b) => b.route)).toEqual(expect.arrayContaining(['POST /v1/actions/plan', 'POST /v1/actions/apply', 'POST /v1/actions/{planId}/approvals']));
    // Except a document another party defines: a Teams activity carries many fields proxmox-agent does not
    // read, and refusing them would refuse every real request (the signature covers them all anyway).
    const theirs = new Set(['POST /v1/channels/teams/messages']);
    expect(bodies.filter((b) => !theirs.has(b.route)).flatMap((b) => strictEverywhere(b.schema).map((p) => `${b.route} ${p}`))).toEqual([]);
  });

  it("every catalog action's params reject unknown fields (plan's params are checked against them)", () => {
    expect(ACTIONS.flatMap((a) => strictEverywhere(a.params, `${a.name} params`))).toEqual([]);
  });

  it('answers an unknown field with 400 naming it, on each JSON route', async () => {
    const { app, stored, planned } = appWith();
    const cases: [string, string, object][] = [
      ['agent', '/v1/actions/plan', { ...planBody('vm.start'), extra: true }],
      ['agent', '/v1/actions/plan', { ...planBody('vm.start'), target: { vmid: 100, cluster: 'x' } }],
      ['agent', '/v1/actions/plan', planBody('vm.start', { timeout: 5, force: true })],
      ['agent', '/v1/actions/apply', { planId: stored.planId, requestHash: stored.requestHash, force: true }],
    ];
    for (const [id, path, body] of cases) {
      const res = await app.request(path, json(id, body));
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(JSON.stringify(await res.json())).toMatch(/extra|cluster|force|nrecognized/);
    }
    expect(planned).toEqual([]);
  });
});
