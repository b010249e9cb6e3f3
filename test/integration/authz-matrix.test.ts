/**
 * The authorization matrix: every route the running service registers × every scope × every
 * environment grant × the resource's environment, against the real service (Temporal, worker,
 * simulator). Routes come from the app's own route table, so a new route cannot skip this: it must be
 * listed in src/api/route-scopes.ts (with who may call it) and get a request builder below.
 *
 * Expected statuses follow from the table alone: no token 401; a token without any of the route's
 * scopes 403; with the scope but not the environment, 403 when the request names the environment
 * (body) and 404 when it names a plan of another environment; lists are filtered; otherwise the
 * route's success status.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiPath, ROUTE_ACCESS, type RouteAccess } from '../../src/api/route-scopes.js';
import { SCOPES, type Scope } from '../../src/config/schema.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const ENVS = ['lab', 'prod'] as const;
type Env = (typeof ENVS)[number];
const GRANTS = [['lab'], ['prod'], ['*']] as const;

interface MatrixToken {
  secret: string;
  scope: Scope;
  grant: readonly string[];
}
const TOKENS_BY_KEY = new Map<string, MatrixToken>();
for (const scope of SCOPES)
  for (const grant of GRANTS) TOKENS_BY_KEY.set(`${scope}@${grant.join(',')}`, { secret: `matrix-${scope}-${grant.join('')}-token`, scope, grant });

let t: TestService;
let counter = 0;
/** An approver limited to snapshot actions (tokens[].actions). */
const SNAPSHOT_APPROVER = 'matrix-snapshot-approver-token';

beforeAll(async () => {
  t = await startTestService((config) => {
    for (const [key, tok] of TOKENS_BY_KEY) {
      config.tokens.push({
        id: `m-${key.replace(/[@,*]/g, (c) => ({ '@': '-', ',': '-', '*': 'all' })[c]!)}`,
        principal: `matrix:${key}`,
        secretSha256: createHash('sha256').update(tok.secret).digest('hex'),
        scopes: [tok.scope],
        environments: [...tok.grant],
        roles: [],
      });
    }
    config.tokens.push({
      id: 'm-snapshot-approver',
      principal: 'matrix:snapshot-approver',
      secretSha256: createHash('sha256').update(SNAPSHOT_APPROVER).digest('hex'),
      scopes: ['approve', 'read'],
      environments: ['*'],
      roles: [],
      actions: ['vm.snapshot.*'],
    });
  });
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

/** The routes the running app serves: its OpenAPI registry plus Hono's own table (for routes registered without OpenAPI). */
function registeredRoutes(): string[] {
  const app = t.service.app!;
  const fromRegistry = app.openAPIRegistry.definitions.flatMap((d) => (d.type === 'route' ? [`${d.route.method.toUpperCase()} ${d.route.path}`] : []));
  const fromHono = app.routes.filter((r) => r.method !== 'ALL' && !r.path.includes('*')).map((r) => `${r.method} ${openApiPath(r.path)}`);
  return [...new Set([...fromRegistry, ...fromHono])].sort();
}

// --- fixtures ------------------------------------------------------------------------------------

const target = (env: Env) => (env === 'lab' ? { vmid: 100 } : { vmid: 200 });

async function plan(env: Env, body: Partial<{ action: string; target: object; params: object }> = {}) {
  const res = await t.call('POST', '/v1/actions/plan', {
    token: TOKENS.ops,
    body: { action: 'vm.snapshot.create', environment: env, target: target(env), params: { snapname: `m${++counter}` }, reason: 'authz matrix', ...body },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { planId: string; requestHash: string; status: string };
}

/** A plan waiting for one approval, made by the ops token (so no matrix token is its requester). */
const awaitingApproval = (env: Env) =>
  env === 'lab'
    ? plan(env, { action: 'vm.delete', target: { vmid: 101 }, params: {} })
    : plan(env, { action: 'vm.stop', target: { vmid: 200 }, params: {} });

const shared = new Map<Env, Promise<{ planId: string; requestHash: string }>>();
const sharedPlan = (env: Env) => {
  if (!shared.has(env)) shared.set(env, plan(env));
  return shared.get(env)!;
};

/** A Proxmox task in `env`, started on the simulator directly (reading it changes nothing). */
const tasks = new Map<Env, Promise<string>>();
const taskIn = (env: Env) => {
  if (!tasks.has(env)) {
    const node = env === 'lab' ? 'pve-lab' : 'pve-prod';
    const client = t.service.environments.environments.get(env)!.client;
    // Stopping a stopped QEMU VM is a real task that ends OK and changes nothing.
    tasks.set(env, client.request('POST', '/nodes/{node}/qemu/{vmid}/status/stop', { node, vmid: env === 'lab' ? 101 : 201 }) as Promise<string>);
  }
  return tasks.get(env)!;
};

/** Deleting a running guest: Proxmox would refuse, so policy denies it at once (a terminal plan). */
const denied = new Map<Env, Promise<{ planId: string }>>();
const deniedPlan = (env: Env) => {
  if (!denied.has(env)) denied.set(env, plan(env, { action: 'vm.delete', target: env === 'lab' ? { vmid: 100 } : { vmid: 200 }, params: {} }));
  return denied.get(env)!;
};

interface Built {
  method: string;
  path: string;
  body?: unknown;
}

/**
 * How to call each route for a resource in `env`; `fresh` asks for a resource no other case touched
 * (a call that is expected to succeed changes it). A route without a builder fails the test.
 */
const BUILDERS: Record<string, (env: Env, fresh: boolean) => Promise<Built>> = {
  'GET /healthz': async () => ({ method: 'GET', path: '/healthz' }),
  'GET /readyz': async () => ({ method: 'GET', path: '/readyz' }),
  'GET /metrics': async () => ({ method: 'GET', path: '/metrics' }),
  'GET /v1/openapi.json': async () => ({ method: 'GET', path: '/v1/openapi.json' }),
  'GET /docs': async () => ({ method: 'GET', path: '/docs' }),
  'GET /docs/scalar.js': async () => ({ method: 'GET', path: '/docs/scalar.js' }),
  'GET /docs/api-versioning-policy': async () => ({ method: 'GET', path: '/docs/api-versioning-policy' }),
  'GET /problems': async () => ({ method: 'GET', path: '/problems' }),
  'GET /problems/{code}': async () => ({ method: 'GET', path: '/problems/plan-stale' }),
  'GET /v1/catalog': async () => ({ method: 'GET', path: '/v1/catalog' }),
  'GET /v1/inventory': async (env) => ({ method: 'GET', path: `/v1/inventory?environment=${env}` }),
  'GET /v1/inventory/{environment}/guests/{vmid}': async (env) => ({ method: 'GET', path: `/v1/inventory/${env}/guests/${target(env).vmid}` }),
  'GET /v1/inventory/{environment}/guests/{vmid}/snapshots': async (env) => ({ method: 'GET', path: `/v1/inventory/${env}/guests/${target(env).vmid}/snapshots` }),
  'GET /v1/inventory/{environment}/tasks/{upid}': async (env) => ({ method: 'GET', path: `/v1/inventory/${env}/tasks/${encodeURIComponent(await taskIn(env))}` }),
  'GET /v1/inventory/{environment}/tasks/{upid}/log': async (env) => ({ method: 'GET', path: `/v1/inventory/${env}/tasks/${encodeURIComponent(await taskIn(env))}/log` }),
  'POST /v1/actions/plan': async (env) => ({
    method: 'POST',
    path: '/v1/actions/plan',
    body: { action: 'vm.snapshot.create', environment: env, target: target(env), params: { snapname: `m${++counter}` }, reason: 'matrix' },
  }),
  'POST /v1/actions/apply': async (env, fresh) => {
    // A plan waiting for approval: the apply is accepted (202) and nothing runs on Proxmox.
    const p = fresh ? await awaitingApproval(env) : await sharedPlan(env);
    return { method: 'POST', path: '/v1/actions/apply', body: { planId: p.planId, requestHash: p.requestHash } };
  },
  'GET /v1/actions/{planId}': async (env) => ({ method: 'GET', path: `/v1/actions/${(await sharedPlan(env)).planId}` }),
  'GET /v1/actions/{planId}/evidence': async (env) => ({ method: 'GET', path: `/v1/actions/${(await sharedPlan(env)).planId}/evidence` }),
  // A finished (denied) plan, so the stream sends its one event and closes.
  'GET /v1/actions/{planId}/events': async (env) => ({ method: 'GET', path: `/v1/actions/${(await deniedPlan(env)).planId}/events` }),
  'POST /v1/actions/{planId}/approvals': async (env, fresh) => {
    const p = fresh ? await awaitingApproval(env) : await sharedPlan(env);
    return { method: 'POST', path: `/v1/actions/${p.planId}/approvals`, body: { decision: 'approve' } };
  },
  'GET /v1/approvals': async () => ({ method: 'GET', path: '/v1/approvals' }),
  'POST /v1/policy/evaluate': async (env) => ({
    method: 'POST',
    path: '/v1/policy/evaluate',
    body: { action: 'vm.start', environment: env, target: target(env), params: {}, reason: 'matrix' },
  }),
  'GET /v1/policy/matrix': async () => ({ method: 'GET', path: '/v1/policy/matrix' }),
  'POST /v1/channels/slack/interactions': async () => ({ method: 'POST', path: '/v1/channels/slack/interactions', body: { payload: '{}' } }),
  'POST /v1/channels/webhook/approvals': async () => ({ method: 'POST', path: '/v1/channels/webhook/approvals', body: {} }),
};

const SUCCESS: Record<string, number> = {
  'POST /v1/actions/plan': 201,
  'POST /v1/actions/apply': 202,
  'POST /v1/actions/{planId}/approvals': 202,
};

type Caller = { key: string; token?: MatrixToken };
const CALLERS: Caller[] = [{ key: 'no token' }, ...[...TOKENS_BY_KEY].map(([key, token]) => ({ key, token }))];

function expected(route: string, access: Extract<RouteAccess, { auth: 'bearer' }>, caller: Caller, env: Env): number {
  if (!caller.token) return 401;
  if (!access.scopes.includes(caller.token.scope)) return 403;
  const inEnv = caller.token.grant.includes('*') || caller.token.grant.includes(env);
  if (!inEnv && access.environment === 'body') return 403;
  if (!inEnv && access.environment === 'plan') return 404;
  return SUCCESS[route] ?? 200;
}

describe('authorization matrix', () => {
  it('lists every registered route in src/api/route-scopes.ts, with a request builder here', async () => {
    // Healthy first: /healthz answers 503 until the worker polls.
    for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
    const routes = registeredRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(8);
    expect(routes.filter((r) => !(r in ROUTE_ACCESS)), 'routes missing from ROUTE_ACCESS in src/api/route-scopes.ts').toEqual([]);
    expect(routes.filter((r) => !(r in BUILDERS)), 'routes without a request builder in this test').toEqual([]);
  });

  it('gives every (route, scope, environment grant, resource environment) the status the table says', async () => {
    const mismatches: string[] = [];
    let calls = 0;
    for (const route of registeredRoutes()) {
      const access = ROUTE_ACCESS[route];
      const build = BUILDERS[route];
      if (!access || !build) continue; // reported by the test above
      for (const env of ENVS) {
        const seen = new Map<string, number>();
        for (const caller of CALLERS) {
          const want = access.auth === 'bearer' ? expected(route, access, caller, env) : undefined;
          const req = await build(env, want !== undefined && want < 300);
          const res = await t.call(req.method, req.path, {
            ...(caller.token ? { token: caller.token.secret } : {}),
            ...(req.body !== undefined ? { body: req.body } : {}),
          });
          calls++;
          seen.set(caller.key, res.status);
          if (want !== undefined && res.status !== want)
            mismatches.push(`${route} [${env}] as ${caller.key}: expected ${want}, got ${res.status} ${JSON.stringify(res.body?.detail ?? '')}`);
          if (access.auth === 'bearer' && access.environment === 'list' && res.status === 200 && caller.token && !caller.token.grant.includes('*')) {
            const foreign = ((res.body.items ?? res.body.environments) as { environment: string }[]).filter((i) => !caller.token!.grant.includes(i.environment));
            if (foreign.length) mismatches.push(`${route} as ${caller.key}: lists plans of ${[...new Set(foreign.map((f) => f.environment))].join(', ')}`);
          }
        }
        const statuses = new Set(seen.values());
        if (access.auth === 'public' && (statuses.size !== 1 || !statuses.has(200)))
          mismatches.push(`${route}: public, but answered ${JSON.stringify(Object.fromEntries(seen))}`);
        if (access.auth === 'signature') {
          // A bearer token grants nothing here: every caller gets what an anonymous one gets, never a success.
          const anonymous = seen.get('no token')!;
          if (statuses.size !== 1 || anonymous < 400)
            mismatches.push(`${route}: signature-authenticated, but answered ${JSON.stringify(Object.fromEntries(seen))}`);
        }
      }
    }
    console.log(`[authz-matrix] ${calls} calls over ${registeredRoutes().length} routes × ${CALLERS.length} callers × ${ENVS.length} environments`);
    expect(mismatches).toEqual([]);
  }, 300_000);

  it("holds an approval to the token's action patterns and to the channels its config grants (issue 12, item 9)", async () => {
    const p = await awaitingApproval('prod'); // vm.stop in prod: one approval
    const approve = (token: string, headers: Record<string, string> = {}) =>
      t.call('POST', `/v1/actions/${p.planId}/approvals`, { token, headers, body: { decision: 'approve', requestHash: p.requestHash } });

    const limited = await approve(SNAPSHOT_APPROVER);
    expect(limited.status).toBe(403);
    expect(limited.body).toMatchObject({ type: '/problems/forbidden', detail: expect.stringContaining("may not approve or reject 'vm.stop'") });

    // The matrix tokens name no channels: api only. Claiming cli does not make it so.
    const claimed = await approve(TOKENS_BY_KEY.get('approve@*')!.secret, { 'x-proxmox-agent-channel': 'cli' });
    expect(claimed.status).toBe(403);
    expect(claimed.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(claimed.body).toMatchObject({ type: '/problems/channel-not-allowed', errors: [{ path: 'header.x-proxmox-agent-channel', message: 'one of: api' }] });
    expect((await t.call('GET', `/v1/actions/${p.planId}`, { token: TOKENS.agent })).body.approval.approvers).toEqual([]);

    // The demo approver is granted cli (config/demo.yaml): recorded as cli.
    const granted = await approve(TOKENS.approver1, { 'x-proxmox-agent-channel': 'cli' });
    expect(granted.status, JSON.stringify(granted.body)).toBe(202);
    const view = await t.waitForStatus(p.planId, ['approved']);
    expect(view.approval.approvers.map((a: { principal: string; channel: string }) => `${a.principal}/${a.channel}`)).toEqual(['human:alice/cli']);
  });

  it('never lets an approver count on its own plan, whatever scopes it holds', async () => {
    const p = await awaitingApproval('prod');
    const self = await t.call('POST', `/v1/actions/${p.planId}/approvals`, { token: TOKENS.ops, body: { decision: 'approve' } });
    expect(self.status).toBe(403);
    expect(self.body.type).toBe('/problems/self-approval');
  });
});
