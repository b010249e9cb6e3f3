/**
 * /mcp through the real Hono app (a stand-in plan gateway, no Temporal), driven by the official SDK's
 * client and by raw requests: the transport's own rules (Origin, Host, the spec's 401 with
 * WWW-Authenticate, sessions bound to their token and capped per token), the tools' schemas and
 * annotations, and REST's authorization holding for every tool call.
 */
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { toJSONSchema, type z } from 'zod';
import { loadConfig } from '../../src/config/load.js';
import { serverConfigSchema } from '../../src/config/security.js';
import { applyRequestSchema, applyResponseSchema, planResponseSchema } from '../../src/api/openapi/schemas.js';
import { actionRequestSchema } from '../../src/domain/request.js';
import { riskMatrix } from '../../src/policy/matrix.js';
import { mcpHttpOptions } from '../../src/mcp/http.js';
import { INSTRUCTIONS } from '../../src/mcp/server.js';
import { bearer, connect, initialize, MCP_HEADERS, mcpApp } from './support.js';

const post = (headers: Record<string, string>, body: unknown = initialize()) => ({ method: 'POST', headers: { ...MCP_HEADERS, ...headers }, body: JSON.stringify(body) });

describe('/mcp tools', () => {
  it('lists the five tools and no approve tool, with annotations true to what each does', async () => {
    const { client } = await connect(mcpApp().app, 'agent');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['proxmox_action_status', 'proxmox_apply_action', 'proxmox_catalog', 'proxmox_inventory', 'proxmox_plan_action']);
    expect(tools.filter((t) => /approv/i.test(t.name))).toEqual([]);
    const hints = Object.fromEntries(tools.map((t) => [t.name, t.annotations]));
    // Reads only: catalog, inventory, status. Planning writes a plan and audit records but changes no guest.
    expect(hints.proxmox_catalog).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true });
    expect(hints.proxmox_inventory).toMatchObject({ readOnlyHint: true, idempotentHint: true, openWorldHint: true });
    expect(hints.proxmox_action_status).toMatchObject({ readOnlyHint: true, idempotentHint: true });
    expect(hints.proxmox_plan_action).toMatchObject({ readOnlyHint: false, destructiveHint: false, idempotentHint: false });
    // Applying may delete a guest; applying the same plan again is the same one apply.
    expect(hints.proxmox_apply_action).toMatchObject({ readOnlyHint: false, destructiveHint: true, idempotentHint: true });
    await client.close();
  });

  it("takes its input and output schemas from the REST API's zod schemas", async () => {
    const { client } = await connect(mcpApp().app, 'agent');
    const tools = Object.fromEntries((await client.listTools()).tools.map((t) => [t.name, t]));
    const rest = (schema: z.ZodType, io: 'input' | 'output') => toJSONSchema(schema, { target: 'draft-7', io }) as unknown as { properties: Record<string, unknown>; required?: string[] };

    const planInput = tools.proxmox_plan_action!.inputSchema as { properties: Record<string, unknown>; required: string[] };
    const planRequest = rest(actionRequestSchema, 'input');
    expect(planInput.properties).toMatchObject(planRequest.properties);
    expect(Object.keys(planInput.properties)).toEqual([...Object.keys(planRequest.properties), 'idempotencyKey']);
    expect(planInput.required).toEqual(planRequest.required);

    const applyInput = tools.proxmox_apply_action!.inputSchema;
    expect(applyInput).toMatchObject({ properties: rest(applyRequestSchema, 'input').properties, required: ['planId', 'requestHash'] });

    const plan = rest(planResponseSchema.extend({}), 'output');
    for (const name of ['proxmox_plan_action', 'proxmox_action_status']) {
      const out = tools[name]!.outputSchema as { type: string; properties: Record<string, unknown>; required: string[] };
      expect(out.type).toBe('object');
      expect(Object.keys(out.properties)).toEqual([...Object.keys(plan.properties), 'next']);
      expect(out.required).toEqual([...plan.required!, 'next']);
    }
    // Apply answers what REST's apply answers, with the plan when the token may read it.
    const applyOutput = tools.proxmox_apply_action!.outputSchema as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(applyOutput.properties)).toEqual([...Object.keys(rest(applyResponseSchema, 'output').properties), 'plan', 'next']);
    expect(applyOutput.required).toEqual([...rest(applyResponseSchema, 'output').required!, 'next']);
    await client.close();
  });

  it("carries SKILL.md's rules in the server's instructions and the tools' descriptions", async () => {
    const { client } = await connect(mcpApp().app, 'agent');
    const instructions = client.getInstructions()!;
    expect(instructions).toBe(INSTRUCTIONS);
    for (const rule of [
      /proxmox_plan_action/, // plan first
      /requires_approval: still go to step 3\. Apply now/,
      /who can approve/,
      /Never try to approve/,
      /Do not re-plan/,
      /denied: stop\. Do not plan the same thing again/,
    ])
      expect(instructions).toMatch(rule);
    const tools = Object.fromEntries((await client.listTools()).tools.map((t) => [t.name, t.description ?? '']));
    expect(tools.proxmox_plan_action).toMatch(/Step 1 of every Proxmox change/);
    expect(tools.proxmox_plan_action).toMatch(/requires_approval → call proxmox_apply_action right away too/);
    expect(tools.proxmox_plan_action).toMatch(/Never plan the same change twice to get around a pending approval or a denial/);
    expect(tools.proxmox_apply_action).toMatch(/tell the user who must approve; do not apply again, re-plan/);
    await client.close();
  });

  it('answers a plan with the plan, its approvals and what to do next, as text and as structured content', async () => {
    const { app, planned } = mcpApp();
    const { client } = await connect(app, 'agent');
    const res = await client.callTool({
      name: 'proxmox_plan_action',
      arguments: { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'Decommission db-prod (CHG-42)' },
    });
    expect(res.isError).toBeFalsy();
    expect(planned).toEqual(['vm.delete@prod']);
    const plan = res.structuredContent as { planId: string; requestHash: string; status: string; next: Record<string, unknown> };
    expect(plan.status).toBe('awaiting_approval');
    expect(Object.keys(plan).at(-1)).toBe('next');
    expect(plan.next).toMatchObject({ tool: 'proxmox_apply_action', arguments: { planId: plan.planId, requestHash: plan.requestHash }, done: false });
    expect(plan.next.tellUser).toMatch(new RegExp(`proxmox-agent approvals approve ${plan.planId}`));
    const text = (res.content as { text: string }[])[0]!.text;
    expect(text.split('\n').at(-1)).toMatch(/^next: needs approval\. Call proxmox_apply_action .* you cannot approve\.$/);
    await client.close();
  });
});

describe('/mcp following a plan', () => {
  const PLAN = 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G';
  const later = (ms: number, fn: () => void) => setTimeout(fn, ms);

  it('sends notifications/resources/updated to a subscriber at every change until the plan is final', async () => {
    const { app, stored } = mcpApp();
    const { client } = await connect(app, 'agent');
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(`${n.params.uri} ${stored.status}`);
    });
    await client.subscribeResource({ uri: `proxmox-agent://plans/${PLAN}` });
    // A resource that does not change can be subscribed to; it never sends anything.
    await client.subscribeResource({ uri: 'proxmox-agent://catalog' });
    later(200, () => Object.assign(stored, { status: 'approved', updatedAt: '2026-03-01T12:01:00.000Z' }));
    later(900, () => Object.assign(stored, { status: 'succeeded', updatedAt: '2026-03-01T12:02:00.000Z' }));
    for (let i = 0; i < 50 && updates.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(updates).toEqual([`proxmox-agent://plans/${PLAN} approved`, `proxmox-agent://plans/${PLAN} succeeded`]);
    await client.close();
  });

  it('reports each change of a followed plan as a progress notification, then answers with the final plan', async () => {
    const { app, stored } = mcpApp();
    const { client } = await connect(app, 'agent');
    const progress: { progress: number; message?: string }[] = [];
    later(200, () => Object.assign(stored, { status: 'applying', updatedAt: '2026-03-01T12:01:00.000Z' }));
    later(800, () => Object.assign(stored, { status: 'succeeded', updatedAt: '2026-03-01T12:02:00.000Z', result: { outcome: 'applied', upid: 'UPID:pve-prod:1:2:3:qmdestroy:201:a@pve!b:', finishedAt: 'x' } }));
    const res = await client.callTool({ name: 'proxmox_action_status', arguments: { planId: PLAN, until: 'end', waitSeconds: 10 } }, undefined, { onprogress: (p) => progress.push(p) });
    expect((res.structuredContent as { status: string }).status).toBe('succeeded');
    expect(progress.map((p) => p.message)).toEqual([
      `${PLAN}: awaiting_approval; 0 of 2 approvals; following for up to 10 s`,
      `${PLAN}: applying; 0 of 2 approvals`,
      `${PLAN}: succeeded; 0 of 2 approvals; Proxmox task UPID:pve-prod:1:2:3:qmdestroy:201:a@pve!b:`,
    ]);
    expect(progress.map((p) => p.progress)).toEqual([1, 2, 3]);
    // Without until "end", the first status change answers; waitSeconds 0 answers at once.
    Object.assign(stored, { status: 'awaiting_approval' });
    expect(((await client.callTool({ name: 'proxmox_action_status', arguments: { planId: PLAN, waitSeconds: 0 } })).structuredContent as { status: string }).status).toBe('awaiting_approval');
    later(200, () => Object.assign(stored, { status: 'approved', updatedAt: '2026-03-01T12:03:00.000Z' }));
    const changed = await client.callTool({ name: 'proxmox_action_status', arguments: { planId: PLAN, waitSeconds: 10 } });
    expect(changed.structuredContent).toMatchObject({ status: 'approved', next: { tool: 'proxmox_action_status' } });
    await client.close();
  });
});

describe('/mcp authorization: what REST allows, no more', () => {
  const plan = (action: string, environment = 'lab') => ({ name: 'proxmox_plan_action', arguments: { action, environment, target: { vmid: 100 }, params: {}, reason: 'authz' } });
  const problem = (res: { _meta?: Record<string, unknown> }) => res._meta?.['proxmox-agent/problem'] as { status: number; type: string; detail: string };

  it('a read-only token cannot plan; a vm.* token cannot plan ct.*; a lab token cannot plan in prod; each refusal is REST’s problem', async () => {
    const { app, planned } = mcpApp();
    const reader = (await connect(app, 'reader')).client;
    const refused = await reader.callTool(plan('vm.start'));
    expect(refused.isError).toBe(true);
    expect(problem(refused)).toMatchObject({ status: 403, type: '/problems/forbidden', detail: "token 'reader' lacks the 'plan' scope" });
    expect((refused.content as { text: string }[])[0]!.text).toMatch(/^proxmox-agent refused \(HTTP 403, \/problems\/forbidden\)[^]*\nnext: this token may not do it: tell the user\./);
    // The same token reads.
    expect((await reader.callTool({ name: 'proxmox_catalog', arguments: {} })).isError).toBeFalsy();

    const vmOnly = (await connect(app, 'vm-only')).client;
    expect(problem(await vmOnly.callTool(plan('ct.start')))).toMatchObject({ status: 403, detail: expect.stringContaining("may not plan or apply 'ct.start' (it is limited to actions vm.*)") });
    expect((await vmOnly.callTool(plan('vm.start'))).isError).toBeFalsy();

    const labOnly = (await connect(app, 'lab-only')).client;
    expect(problem(await labOnly.callTool(plan('vm.start', 'prod')))).toMatchObject({ status: 403, detail: "token 'lab-only' may not act in environment 'prod'" });
    // A prod plan is not found for it, as through REST (404, not 403: its id leaks nothing).
    expect(problem(await labOnly.callTool({ name: 'proxmox_action_status', arguments: { planId: 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G', waitSeconds: 0 } }))).toMatchObject({ status: 404, type: '/problems/plan-not-found' });
    await expect(labOnly.readResource({ uri: 'proxmox-agent://plans/plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G' })).rejects.toMatchObject({ code: -32002 });
    await expect(labOnly.subscribeResource({ uri: 'proxmox-agent://plans/plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G' })).rejects.toMatchObject({ code: -32002 });

    expect(planned).toEqual(['vm.start@lab']);
    for (const c of [reader, vmOnly, labOnly]) await c.close();
  });

  it('a missing, unknown or expired token gets 401 with WWW-Authenticate (RFC 6750), and a token in the URL counts for nothing', async () => {
    const { app } = mcpApp();
    const missing = await app.request('/mcp', post({}));
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="proxmox-agent"');
    expect(await missing.json()).toMatchObject({ type: '/problems/unauthenticated' });

    const unknown = await app.request('/mcp', post({ authorization: 'Bearer not-a-token' }));
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get('www-authenticate')).toBe('Bearer realm="proxmox-agent", error="invalid_token", error_description="unknown or revoked token"');

    const expired = await app.request('/mcp', post(bearer('expired')));
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toMatch(/^Bearer realm="proxmox-agent", error="invalid_token", error_description="token 'expired' expired at 2020-01-01T00:00:00Z"$/);

    for (const query of ['?access_token=agent-secret', '?token=agent-secret', '?authorization=Bearer%20agent-secret'])
      expect((await app.request(`/mcp${query}`, post({}))).status).toBe(401);
    // The SDK's client sees the 401 too.
    await expect(connect(app, 'expired')).rejects.toThrow(/401|Unauthorized/i);
  });

  it("binds a session to the token that opened it: another token's request on it is 'not found'", async () => {
    const { app } = mcpApp();
    const { client, transport } = await connect(app, 'agent');
    const sessionId = transport.sessionId!;
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    const theirs = await app.request('/mcp', post({ ...bearer('other'), 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }, list));
    expect(theirs.status).toBe(404);
    const mine = await app.request('/mcp', post({ ...bearer('agent'), 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }, list));
    expect(mine.status).toBe(200);
    await mine.body?.cancel();
    // Without a session, only initialize is accepted.
    expect((await app.request('/mcp', post(bearer('agent'), list))).status).toBe(400);
    expect((await app.request('/mcp', { method: 'GET', headers: { ...bearer('agent'), accept: 'text/event-stream' } })).status).toBe(400);
    await client.close();
  });

  it('keeps at most maxSessionsPerToken sessions per token: opening one more closes the least recently used', async () => {
    const { app } = mcpApp(); // maxSessionsPerToken: 3
    const first = await connect(app, 'agent');
    const others = [await connect(app, 'agent'), await connect(app, 'agent')];
    await first.client.listTools(); // first is now the most recently used; others[0] the least
    const fourth = await connect(app, 'agent');
    await expect(others[0]!.client.listTools()).rejects.toThrow(/404|Session not found/);
    await first.client.listTools();
    await others[1]!.client.listTools();
    // Another token's sessions are its own.
    const theirs = await connect(app, 'other');
    await theirs.client.listTools();
    for (const c of [first, others[1]!, fourth, theirs]) await c.client.close();
  });
});

describe('/mcp exposure', () => {
  it('refuses a browser Origin that server.cors does not allow (403), and answers an allowed one with CORS headers', async () => {
    const closed = mcpApp().app;
    const evil = await closed.request('/mcp', post({ ...bearer('agent'), origin: 'http://evil.example' }));
    expect(evil.status).toBe(403);
    expect(await evil.json()).toMatchObject({ type: '/problems/forbidden', detail: expect.stringContaining('Origin http://evil.example may not call /mcp') });

    const open = mcpApp({ cors: { origins: ['http://localhost:6274'] } }).app;
    expect((await open.request('/mcp', post({ ...bearer('agent'), origin: 'http://evil.example' }))).status).toBe(403);
    const inspector = await open.request('/mcp', post({ ...bearer('agent'), origin: 'http://localhost:6274' }));
    expect(inspector.status).toBe(200);
    expect(inspector.headers.get('access-control-allow-origin')).toBe('http://localhost:6274');
    expect(inspector.headers.get('access-control-expose-headers')).toMatch(/mcp-session-id/);
    await inspector.body?.cancel();
  });

  it('answers only the allowed Host names (a DNS-rebinding page names its own)', async () => {
    const { app } = mcpApp({ mcp: { maxSessionsPerToken: 3, allowedHosts: ['localhost', '127.0.0.1', '[::1]'] } });
    expect((await app.request('/mcp', post({ ...bearer('agent'), host: 'rebound.evil.example:8787' }))).status).toBe(403);
    for (const host of ['localhost:8787', '127.0.0.1:8787', '[::1]:8787', 'LOCALHOST']) {
      const res = await app.request('/mcp', post({ ...bearer('agent'), host }));
      expect(res.status, host).toBe(200);
      await res.body?.cancel();
    }
  });

  it('defaults from the server config: loopback names when the API listens on loopback, any host otherwise', () => {
    const server = (over: object) => serverConfigSchema.parse({ host: '127.0.0.1', ...over });
    expect(mcpHttpOptions(server({}))).toEqual({ maxSessionsPerToken: 8, allowedHosts: ['localhost', '127.0.0.1', '[::1]'] });
    expect(mcpHttpOptions(server({ host: '0.0.0.0' }))).toEqual({ maxSessionsPerToken: 8 });
    expect(mcpHttpOptions(server({ host: '0.0.0.0', mcp: { allowedHosts: ['agent.example.com'], maxSessionsPerToken: 2 } }))).toEqual({ maxSessionsPerToken: 2, allowedHosts: ['agent.example.com'] });
    expect(mcpHttpOptions(server({ mcp: { enabled: false } }))).toBeUndefined();
    expect(() => server({ mcp: { allowedHosts: ['agent.example.com:443'] } })).toThrow(/without port/);
  });

  it('is not served when server.mcp.enabled is false', async () => {
    const { app } = mcpApp({ mcp: undefined });
    expect((await app.request('/mcp', post(bearer('agent')))).status).toBe(404);
  });
});

describe('the risk matrix', () => {
  const matrix = () => riskMatrix(loadConfig({}).config);

  it('is the resource proxmox-agent://policy/risk-matrix, next to the catalog', async () => {
    const { app } = mcpApp({ riskMatrix: matrix });
    const { client } = await connect(app, 'lab-only');
    expect((await client.listResources()).resources.map((r) => r.uri).sort()).toEqual(['proxmox-agent://catalog', 'proxmox-agent://policy/risk-matrix']);
    const read = await client.readResource({ uri: 'proxmox-agent://policy/risk-matrix' });
    const body = JSON.parse((read.contents[0] as { text: string }).text);
    expect(body.environments.map((e: { environment: string }) => e.environment)).toEqual(['lab']);
    const catalog = JSON.parse(((await client.readResource({ uri: 'proxmox-agent://catalog' })).contents[0] as { text: string }).text);
    expect(catalog.actions).toHaveLength(31);
    await client.close();
  });
});
