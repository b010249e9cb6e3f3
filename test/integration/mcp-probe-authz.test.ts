/**
 * Probe (guarantee 1): through /mcp a token's scopes, environments and action limits hold exactly as
 * through REST, and a missing, unknown, malformed or expired token gets 401 with WWW-Authenticate and
 * nothing happens. Judged from outside: tool answers, HTTP answers, the API's plan views (GET
 * /v1/actions/{id}, the pending approvals) and the simulators' mutation logs.
 */
import { createHash } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idempotentPlanId } from '../../src/domain/plan-id.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const P = {
  readonly: 'probe-readonly-token',
  vmOnly: 'probe-vm-only-token',
  planOnly: 'probe-plan-only-token',
  expired: 'probe-expired-token',
  expiring: 'probe-expiring-token',
};
// Long enough for the tests before it on a loaded 2-core machine (25 s ran out once with other suites running).
const EXPIRING_MS = 60_000;

let t: TestService;
let expiringAt = 0;
beforeAll(async () => {
  expiringAt = Date.now() + EXPIRING_MS;
  t = await startTestService((config) => {
    config.tokens.push(
      { id: 'probe-readonly', principal: 'agent:probe-ro', secretSha256: sha(P.readonly), scopes: ['read'], environments: ['*'], roles: [] },
      { id: 'probe-vm-only', principal: 'agent:probe-vm', secretSha256: sha(P.vmOnly), scopes: ['plan', 'apply', 'read'], environments: ['*'], roles: [], actions: ['vm.*'] },
      { id: 'probe-plan-only', principal: 'agent:probe-plan', secretSha256: sha(P.planOnly), scopes: ['plan', 'read'], environments: ['*'], roles: [] },
      { id: 'probe-expired', principal: 'agent:probe-exp', secretSha256: sha(P.expired), scopes: ['plan', 'apply', 'read'], environments: ['*'], roles: [], expiresAt: new Date(Date.now() - 60_000).toISOString() },
      { id: 'probe-expiring', principal: 'agent:probe-expiring', secretSha256: sha(P.expiring), scopes: ['plan', 'apply', 'read'], environments: ['*'], roles: [], expiresAt: new Date(expiringAt).toISOString() },
    );
  });
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

async function mcp(token: string): Promise<Client> {
  const client = new Client({ name: 'probe-authz', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${t.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}
type Res = Awaited<ReturnType<Client['callTool']>>;
const text = (r: Res) => (r.content as { type: string; text?: string }[]).map((c) => c.text ?? '').join('\n');
const ok = (r: Res) => {
  expect(r.isError, text(r)).toBeFalsy();
  return r.structuredContent as Record<string, any>;
};
const refused = (r: Res, pattern: RegExp) => {
  expect(r.isError, JSON.stringify(r.structuredContent)).toBe(true);
  expect(text(r)).toMatch(pattern);
};

/** Whether a plan exists, as the ops token (every environment, read) sees it through REST. */
async function planExists(planId: string): Promise<boolean> {
  const res = await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.ops });
  expect([200, 404]).toContain(res.status);
  return res.status === 200;
}
const mutations = () => t.sim('lab').mutations.all().length + t.sim('prod').mutations.all().length;

const prodDelete = { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'probe' };

describe('scopes, environments and action limits through /mcp', () => {
  it('a read-only token can read but cannot plan or apply', async () => {
    const agent = await mcp(TOKENS.agent);
    const theirs = ok(await agent.callTool({ name: 'proxmox_plan_action', arguments: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'ro-probe' }, reason: 'probe' } }));
    expect(theirs.status).toBe('planned');
    const before = mutations();

    const ro = await mcp(P.readonly);
    ok(await ro.callTool({ name: 'proxmox_inventory', arguments: { environment: 'lab' } }));
    refused(await ro.callTool({ name: 'proxmox_plan_action', arguments: { ...prodDelete, idempotencyKey: 'ro-1' } }), /forbidden|lacks the 'plan' scope/i);
    expect(await planExists(idempotentPlanId('agent:probe-ro', 'ro-1'))).toBe(false);
    refused(await ro.callTool({ name: 'proxmox_apply_action', arguments: { planId: theirs.planId, requestHash: theirs.requestHash } }), /lacks the 'apply' scope/);
    await new Promise((r) => setTimeout(r, 1500));
    const after = (await t.call('GET', `/v1/actions/${theirs.planId}`, { token: TOKENS.ops })).body;
    expect(after.status).toBe('planned');
    expect(after.applyRequested ?? false).toBe(false);
    expect(mutations()).toBe(before);
    expect(t.sim('lab').model.guest(100)?.snapshots ?? []).not.toContain('ro-probe');
    await ro.close();
    await agent.close();
  }, 60_000);

  it('a token with plan but not apply cannot apply, even its own plan', async () => {
    const c = await mcp(P.planOnly);
    const plan = ok(await c.callTool({ name: 'proxmox_plan_action', arguments: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'plan-only' }, reason: 'probe' } }));
    const before = mutations();
    refused(await c.callTool({ name: 'proxmox_apply_action', arguments: { planId: plan.planId, requestHash: plan.requestHash } }), /lacks the 'apply' scope/);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await t.call('GET', `/v1/actions/${plan.planId}`, { token: TOKENS.ops })).body.status).toBe('planned');
    expect(mutations()).toBe(before);
    await c.close();
  }, 60_000);

  it('a token limited to vm.* cannot plan ct.*, nor apply a ct.* plan someone else made', async () => {
    const vm = await mcp(P.vmOnly);
    refused(await vm.callTool({ name: 'proxmox_plan_action', arguments: { action: 'ct.stop', environment: 'lab', target: { vmid: 300 }, reason: 'probe', idempotencyKey: 'vm-ct-1' } }), /may not plan or apply 'ct\.stop'/);
    expect(await planExists(idempotentPlanId('agent:probe-vm', 'vm-ct-1'))).toBe(false);
    // vm.* on a container target: the action is vm.*, so the pattern admits it; the API must still refuse a qemu action on an lxc guest.
    const cross = await vm.callTool({ name: 'proxmox_plan_action', arguments: { action: 'vm.stop', environment: 'lab', target: { vmid: 300 }, reason: 'probe', idempotencyKey: 'vm-ct-2' } });
    if (!cross.isError) {
      const p = cross.structuredContent as any;
      // If a plan exists it must be denied (never applied to the container).
      expect(p.decision, JSON.stringify(p)).toBe('denied');
    }

    const agent = await mcp(TOKENS.agent);
    const ct = ok(await agent.callTool({ name: 'proxmox_plan_action', arguments: { action: 'ct.snapshot.create', environment: 'lab', target: { vmid: 300 }, params: { snapname: 'vm-only-probe' }, reason: 'probe' } }));
    const before = mutations();
    refused(await vm.callTool({ name: 'proxmox_apply_action', arguments: { planId: ct.planId, requestHash: ct.requestHash } }), /may not plan or apply 'ct\.snapshot\.create'/);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await t.call('GET', `/v1/actions/${ct.planId}`, { token: TOKENS.ops })).body.status).toBe('planned');
    expect(mutations()).toBe(before);
    await vm.close();
    await agent.close();
  }, 60_000);

  it('a token limited to lab cannot plan, apply, read, follow or subscribe to prod', async () => {
    const lab = await mcp(TOKENS.labOnly);
    refused(await lab.callTool({ name: 'proxmox_plan_action', arguments: { ...prodDelete, idempotencyKey: 'lab-prod-1' } }), /may not act in environment 'prod'/);
    expect(await planExists(idempotentPlanId('agent:lab-only', 'lab-prod-1'))).toBe(false);
    refused(await lab.callTool({ name: 'proxmox_inventory', arguments: { environment: 'prod' } }), /prod/);

    // The agent plans a prod change that needs no approval (a snapshot is allowed? use stop of web-prod: whatever the policy says).
    const agent = await mcp(TOKENS.agent);
    const prod = ok(await agent.callTool({ name: 'proxmox_plan_action', arguments: prodDelete }));
    const before = mutations();
    refused(await lab.callTool({ name: 'proxmox_apply_action', arguments: { planId: prod.planId, requestHash: prod.requestHash } }), /no plan|not found/i);
    refused(await lab.callTool({ name: 'proxmox_action_status', arguments: { planId: prod.planId, waitSeconds: 0 } }), /no plan|not found/i);
    await expect(lab.readResource({ uri: `proxmox-agent://plans/${prod.planId}` })).rejects.toThrow(/no plan|not found/i);
    await expect(lab.subscribeResource({ uri: `proxmox-agent://plans/${prod.planId}` })).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 1500));
    const view = (await t.call('GET', `/v1/actions/${prod.planId}`, { token: TOKENS.ops })).body;
    expect(view.applyRequested ?? false).toBe(false);
    expect(mutations()).toBe(before);
    // The risk matrix resource shows only lab.
    const risk = JSON.parse(((await lab.readResource({ uri: 'proxmox-agent://policy/risk-matrix' })).contents[0] as { text: string }).text);
    expect(risk.environments.map((e: { environment: string }) => e.environment)).toEqual(['lab']);
    await lab.close();
    await agent.close();
  }, 60_000);
});

describe('authentication at /mcp: 401 with WWW-Authenticate, and nothing happens', () => {
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'p', version: '0' } } };
  const post = (headers: Record<string, string>, body: unknown = init, query = '') =>
    fetch(`${t.url}/mcp${query}`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body: JSON.stringify(body) });

  it('missing, unknown, malformed, expired tokens and tokens in the URL are 401 on every method', async () => {
    const cases: [string, Record<string, string>, string, RegExp][] = [
      ['missing', {}, '', /^Bearer realm="proxmox-agent"$/],
      ['unknown', { authorization: 'Bearer not-a-token' }, '', /invalid_token/],
      ['expired', { authorization: `Bearer ${P.expired}` }, '', /invalid_token/],
      ['basic', { authorization: `Basic ${Buffer.from(`x:${TOKENS.agent}`).toString('base64')}` }, '', /Bearer/],
      ['two tokens', { authorization: `Bearer ${TOKENS.agent} ${TOKENS.agent}` }, '', /Bearer/],
      ['query access_token', {}, `?access_token=${TOKENS.agent}`, /Bearer/],
      ['query token', {}, `?token=${TOKENS.agent}&authorization=Bearer%20${TOKENS.agent}`, /Bearer/],
      ['empty bearer', { authorization: 'Bearer ' }, '', /Bearer/],
    ];
    for (const [name, headers, query, challenge] of cases) {
      for (const method of ['POST', 'GET', 'DELETE']) {
        const res =
          method === 'POST'
            ? await post(headers, init, query)
            : await fetch(`${t.url}/mcp${query}`, { method, headers: { accept: 'application/json, text/event-stream', 'mcp-session-id': 'x', ...headers } });
        expect(res.status, `${name} ${method}`).toBe(401);
        expect(res.headers.get('www-authenticate'), `${name} ${method}`).toMatch(challenge);
        expect(res.headers.get('mcp-session-id'), `${name} ${method}`).toBeNull();
        await res.text();
      }
    }
  }, 60_000);

  it('a tools/call with a bad token on a live session of a good token does nothing', async () => {
    const agent = await mcp(TOKENS.agent);
    const sessionId = (agent.transport as StreamableHTTPClientTransport).sessionId!;
    const before = mutations();
    for (const authorization of [undefined, 'Bearer not-a-token', `Bearer ${P.expired}`]) {
      const res = await post(
        { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18', ...(authorization ? { authorization } : {}) },
        { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'proxmox_plan_action', arguments: { ...prodDelete, idempotencyKey: 'hijack-401' } } },
      );
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      await res.text();
    }
    expect(await planExists(idempotentPlanId('agent:pi-demo', 'hijack-401'))).toBe(false);
    expect(mutations()).toBe(before);
    await agent.close();
  });

  it('a session whose token expires stops working at once: 401, and no plan is made', async () => {
    expect(Date.now(), 'the expiring token expired before the test began: raise EXPIRING_MS').toBeLessThan(expiringAt - 2000);
    const c = await mcp(P.expiring);
    ok(await c.callTool({ name: 'proxmox_catalog', arguments: {} }));
    const sessionId = (c.transport as StreamableHTTPClientTransport).sessionId!;
    await new Promise((r) => setTimeout(r, Math.max(0, expiringAt - Date.now()) + 500));
    const res = await post(
      { authorization: `Bearer ${P.expiring}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
      { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'proxmox_plan_action', arguments: { ...prodDelete, idempotencyKey: 'expiring-1' } } },
    );
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/invalid_token/);
    await res.text();
    expect(await planExists(idempotentPlanId('agent:probe-expiring', 'expiring-1'))).toBe(false);
  }, 150_000);
});
