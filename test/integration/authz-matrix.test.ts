/**
 * The authorization matrix: every route the running service registers × every scope × every
 * environment grant × the resource's environment, against the real service (Temporal, worker,
 * simulator). Routes come from the app's own route table, so a new route cannot skip this: it must be
 * listed in src/api/access/route-access.ts (with who may call it; the app refuses to build otherwise)
 * and get a request builder below.
 *
 * Expected statuses follow from the table alone: no token 401; a token without any of the route's
 * scopes 403; with the scope but not the environment, 403 when the request names the environment
 * (body) and 404 when it names a plan of another environment; lists are filtered; otherwise the
 * route's success status.
 */
import { createHash } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiPath, ROUTE_ACCESS, type RouteAccess } from '../../src/api/access/route-access.js';
import { SCOPES, type Scope } from '../../src/config/schema.js';
import { ProxmoxAction } from '../../src/temporal/search-attributes.js';
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
/** An agent limited to QEMU VMs (tokens[].actions: ['vm.*']), and one whose token expired. */
const VM_AGENT = 'matrix-vm-agent-token';
const EXPIRED_AGENT = 'matrix-expired-agent-token';

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
    const limited: [string, string, { actions?: string[]; expiresAt?: string }][] = [
      ['m-vm-agent', VM_AGENT, { actions: ['vm.*'] }],
      ['m-expired-agent', EXPIRED_AGENT, { expiresAt: '2020-01-01T00:00:00Z' }],
    ];
    for (const [id, secret, extra] of limited)
      config.tokens.push({ id, principal: `matrix:${id}`, secretSha256: createHash('sha256').update(secret).digest('hex'), scopes: ['plan', 'apply', 'read'], environments: ['*'], roles: [], ...extra });
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

/** A plan that succeeded (a snapshot taken), so it can be undone: one per call expected to undo it. */
async function succeededPlan(env: Env) {
  const p = await plan(env);
  const applied = await t.call('POST', '/v1/actions/apply', { token: TOKENS.ops, body: { planId: p.planId, requestHash: p.requestHash } });
  expect(applied.status, JSON.stringify(applied.body)).toBe(202);
  await t.waitForStatus(p.planId, ['succeeded']);
  return p;
}

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

/** A freeze of `env`, made by the all-environments admin (lifting it is what the DELETE case does). */
const ADMIN_ALL = () => TOKENS_BY_KEY.get('admin@*')!.secret;
async function freezeIn(env: Env): Promise<string> {
  const res = await t.call('POST', '/v1/freezes', { token: ADMIN_ALL(), body: { environment: env, reason: 'authz matrix fixture' } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}
async function liftAllFreezes(): Promise<void> {
  const { freezes: active } = (await t.call('GET', '/v1/freezes', { token: TOKENS_BY_KEY.get('read@*')!.secret })).body as { freezes: { id: string }[] };
  for (const f of active) expect((await t.call('DELETE', `/v1/freezes/${f.id}`, { token: ADMIN_ALL() })).status).toBe(200);
}

interface Built {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** An event stream that stays open: read the status, then hang up. */
  stream?: boolean;
}

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const MCP_INITIALIZE = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'authz-matrix', version: '0' } } };

/** A new MCP session of the token with this secret (the ops token's when there is none: the caller then sends no token). */
async function mcpSession(secret: string | undefined): Promise<string> {
  const res = await fetch(`${t.url}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${secret ?? TOKENS.ops}` }, body: JSON.stringify(MCP_INITIALIZE) });
  await res.body?.cancel();
  expect(res.status).toBe(200);
  return res.headers.get('mcp-session-id')!;
}

/**
 * How to call each route for a resource in `env`; `fresh` asks for a resource no other case touched
 * (a call that is expected to succeed changes it). A route without a builder fails the test.
 */
const BUILDERS: Record<string, (env: Env, fresh: boolean, secret?: string) => Promise<Built>> = {
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
  'POST /v1/actions/{planId}/undo': async (env, fresh) => {
    const p = fresh ? await succeededPlan(env) : await sharedPlan(env);
    return { method: 'POST', path: `/v1/actions/${p.planId}/undo`, body: { reason: 'matrix' } };
  },
  'GET /v1/approvals': async () => ({ method: 'GET', path: '/v1/approvals' }),
  'POST /v1/policy/evaluate': async (env) => ({
    method: 'POST',
    path: '/v1/policy/evaluate',
    body: { action: 'vm.start', environment: env, target: target(env), params: {}, reason: 'matrix' },
  }),
  'GET /v1/policy/matrix': async () => ({ method: 'GET', path: '/v1/policy/matrix' }),
  // Freezes are lifted again right after the matrix (below), so they hold no later case.
  'POST /v1/freezes': async (env) => ({ method: 'POST', path: '/v1/freezes', body: { environment: env, reason: 'authz matrix' } }),
  'GET /v1/freezes': async () => ({ method: 'GET', path: '/v1/freezes' }),
  // A refused lift never reaches the freeze (403 before, 404 for another environment): a freeze that
  // does not exist answers the same, and no freeze is left standing in the way of later cases.
  'DELETE /v1/freezes/{id}': async (env, fresh) => ({ method: 'DELETE', path: `/v1/freezes/${fresh ? await freezeIn(env) : 'frz_00000000000000000000'}` }),
  'GET /v1/budgets': async () => ({ method: 'GET', path: '/v1/budgets' }),
  'GET /v1/doctor': async () => ({ method: 'GET', path: '/v1/doctor' }),
  'POST /mcp': async () => ({ method: 'POST', path: '/mcp', headers: MCP_HEADERS, body: MCP_INITIALIZE }),
  'GET /mcp': async (_env, _fresh, secret) => ({
    method: 'GET',
    path: '/mcp',
    headers: { accept: 'text/event-stream', 'mcp-session-id': await mcpSession(secret), 'mcp-protocol-version': '2025-11-25' },
    stream: true,
  }),
  'DELETE /mcp': async (_env, _fresh, secret) => ({ method: 'DELETE', path: '/mcp', headers: { 'mcp-session-id': await mcpSession(secret), 'mcp-protocol-version': '2025-11-25' } }),
  'POST /v1/channels/slack/interactions': async () => ({ method: 'POST', path: '/v1/channels/slack/interactions', body: { payload: '{}' } }),
  'POST /v1/channels/webhook/approvals': async () => ({ method: 'POST', path: '/v1/channels/webhook/approvals', body: {} }),
  'POST /v1/channels/teams/messages': async () => ({ method: 'POST', path: '/v1/channels/teams/messages', body: { type: 'message' } }),
};

const SUCCESS: Record<string, number> = {
  'POST /v1/actions/plan': 201,
  'POST /v1/actions/apply': 202,
  'POST /v1/actions/{planId}/approvals': 202,
  'POST /v1/freezes': 201,
  'POST /v1/actions/{planId}/undo': 201,
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

/** An event stream's status and headers; the stream itself is hung up on at once. */
async function openStream(req: Built, secret: string | undefined) {
  const res = await fetch(`${t.url}${req.path}`, { method: req.method, headers: { ...req.headers, ...(secret ? { authorization: `Bearer ${secret}` } : {}) } });
  const json = /json/.test(res.headers.get('content-type') ?? '');
  const body = json ? await res.json() : await res.body?.cancel();
  return { status: res.status, body, headers: res.headers };
}

describe('authorization matrix', () => {
  it('lists every registered route in src/api/access/route-access.ts, with a request builder here', async () => {
    // Healthy first: /healthz answers 503 until the worker polls.
    for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
    const routes = registeredRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(8);
    expect(routes.filter((r) => !(r in ROUTE_ACCESS)), 'routes missing from ROUTE_ACCESS in src/api/access/route-access.ts').toEqual([]);
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
          const req = await build(env, want !== undefined && want < 300, caller.token?.secret);
          const res = req.stream
            ? await openStream(req, caller.token?.secret)
            : await t.call(req.method, req.path, {
                ...(caller.token ? { token: caller.token.secret } : {}),
                ...(req.body !== undefined ? { body: req.body } : {}),
                ...(req.headers ? { headers: req.headers } : {}),
              });
          calls++;
          seen.set(caller.key, res.status);
          if (want !== undefined && res.status !== want)
            mismatches.push(`${route} [${env}] as ${caller.key}: expected ${want}, got ${res.status} ${JSON.stringify(res.body?.detail ?? '')}`);
          if (access.auth === 'bearer' && access.environment === 'list' && res.status === 200 && caller.token && !caller.token.grant.includes('*')) {
            const foreign = ((res.body.items ?? res.body.environments ?? res.body.freezes) as { environment: string }[]).filter((i) => !caller.token!.grant.includes(i.environment));
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
    await liftAllFreezes();
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

// --- the same matrix through MCP ------------------------------------------------------------------

/** An MCP client from the official SDK, over HTTP to /mcp with this token. */
async function mcpClient(secret: string): Promise<Client> {
  const client = new Client({ name: 'authz-matrix', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${t.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${secret}` } } }));
  return client;
}

type ToolResult = Awaited<ReturnType<Client['callTool']>>;
const problemOf = (res: ToolResult) => res._meta?.['proxmox-agent/problem'] as { status: number; type: string; detail: string } | undefined;
/** The HTTP status of the REST call behind a tool's answer: its problem's, or 2xx. */
const statusOf = (res: ToolResult) => (res.isError ? (problemOf(res)?.status ?? 500) : 200);

/** Each tool, the REST route it calls (whose access it must have), and its arguments for a resource in `env`. */
const TOOLS: Record<string, { route: string; args: (env: Env, fresh: boolean) => Promise<Record<string, unknown>> }> = {
  proxmox_catalog: { route: 'GET /v1/catalog', args: async () => ({}) },
  proxmox_inventory: { route: 'GET /v1/inventory', args: async (env) => ({ environment: env }) },
  proxmox_plan_action: {
    route: 'POST /v1/actions/plan',
    args: async (env) => ({ action: 'vm.snapshot.create', environment: env, target: target(env), params: { snapname: `m${++counter}` }, reason: 'authz matrix via MCP' }),
  },
  proxmox_apply_action: {
    route: 'POST /v1/actions/apply',
    args: async (env, fresh) => {
      const p = fresh ? await awaitingApproval(env) : await sharedPlan(env);
      return { planId: p.planId, requestHash: p.requestHash };
    },
  },
  proxmox_action_status: { route: 'GET /v1/actions/{planId}', args: async (env) => ({ planId: (await sharedPlan(env)).planId, waitSeconds: 0 }) },
};

describe('authorization matrix through /mcp', () => {
  it('holds every tool call to the access of the REST route it makes, for every scope, environment grant and resource environment', async () => {
    const mismatches: string[] = [];
    let calls = 0;
    for (const [key, token] of TOKENS_BY_KEY) {
      const client = await mcpClient(token.secret);
      expect((await client.listTools()).tools.map((tool) => tool.name).sort()).toEqual(Object.keys(TOOLS).sort());
      for (const env of ENVS)
        for (const [name, tool] of Object.entries(TOOLS)) {
          const access = ROUTE_ACCESS[tool.route] as Extract<RouteAccess, { auth: 'bearer' }>;
          const want = expected(tool.route, access, { key, token }, env);
          const res = await client.callTool({ name, arguments: await tool.args(env, want < 300) });
          calls++;
          const got = statusOf(res);
          if (want < 300 ? got >= 300 : got !== want) mismatches.push(`${name} [${env}] as ${key}: expected ${want}, got ${got} ${problemOf(res)?.detail ?? ''}`);
          if (name === 'proxmox_inventory' && got < 300 && (res.structuredContent as { environment: string }).environment !== env) mismatches.push(`${name} [${env}] as ${key}: answered for another environment`);
        }
      await client.close();
    }
    console.log(`[authz-matrix] ${calls} MCP tool calls over ${Object.keys(TOOLS).length} tools × ${TOKENS_BY_KEY.size} tokens × ${ENVS.length} environments`);
    expect(mismatches).toEqual([]);
  }, 300_000);

  it('a read-only token cannot plan through MCP, and a token limited to vm.* cannot plan ct.*', async () => {
    const reader = await mcpClient(TOKENS_BY_KEY.get('read@*')!.secret);
    const refused = await reader.callTool({ name: 'proxmox_plan_action', arguments: { action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'read-only' } });
    expect(refused.isError).toBe(true);
    expect(problemOf(refused)).toMatchObject({ status: 403, type: '/problems/forbidden', detail: expect.stringContaining("lacks the 'plan' scope") });
    await reader.close();

    const vmAgent = await mcpClient(VM_AGENT);
    const ct = await vmAgent.callTool({ name: 'proxmox_plan_action', arguments: { action: 'ct.snapshot.create', environment: 'lab', target: { vmid: 300 }, params: { snapname: 'ct-no' }, reason: 'vm.* only' } });
    expect(problemOf(ct)).toMatchObject({ status: 403, type: '/problems/forbidden', detail: expect.stringContaining("may not plan or apply 'ct.snapshot.create' (it is limited to actions vm.*)") });
    const vm = await vmAgent.callTool({ name: 'proxmox_plan_action', arguments: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'vm-yes' }, reason: 'vm.* only' } });
    expect(vm.isError, JSON.stringify(vm.content)).toBeFalsy();
    expect((vm.structuredContent as { action: string }).action).toBe('vm.snapshot.create');
    // Only the VM plan was started: once it is visible, Temporal lists no other run of this requester.
    const query = `TaskQueue = "${t.config.temporal.taskQueue}" AND ProxmoxRequester = "matrix:m-vm-agent"`;
    let runs: string[] = [];
    for (let i = 0; i < 100 && runs.length === 0; i++) {
      runs = [];
      for await (const run of t.service.client.workflow.list({ query })) runs.push(String(run.typedSearchAttributes.get(ProxmoxAction)));
      if (runs.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(runs).toEqual(['vm.snapshot.create']);
    await vmAgent.close();
  });

  it("a missing or expired token gets the spec's 401 with WWW-Authenticate, before any session", async () => {
    for (const [authorization, challenge] of [
      [undefined, /^Bearer realm="proxmox-agent"$/],
      [`Bearer ${EXPIRED_AGENT}`, /^Bearer realm="proxmox-agent", error="invalid_token", error_description="token 'm-expired-agent' expired at 2020-01-01T00:00:00Z"$/],
      ['Bearer not-a-token', /error="invalid_token", error_description="unknown or revoked token"/],
    ] as const) {
      const res = await fetch(`${t.url}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, ...(authorization ? { authorization } : {}) }, body: JSON.stringify(MCP_INITIALIZE) });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(challenge);
      expect(res.headers.get('mcp-session-id')).toBeNull();
      expect(await res.json()).toMatchObject({ type: '/problems/unauthenticated' });
    }
    await expect(mcpClient(EXPIRED_AGENT)).rejects.toThrow(/401/);
  });
});
