/**
 * Probe (guarantee 2): no one can approve through MCP, and an agent never gets its own plan approved
 * or executed without the required humans. A token that may plan, apply AND approve (test-ops,
 * human:olivia) plans a critical prod delete through /mcp, applies it, and tries every way to get it
 * run: an approve tool that is not listed, JSON-RPC methods, approving its own plan over REST (as api
 * and as cli), re-planning with the same idempotency key. Judged by the plan view and the simulator's
 * mutation log.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

async function mcp(token: string): Promise<Client> {
  const client = new Client({ name: 'probe-sod', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${t.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}
type Res = Awaited<ReturnType<Client['callTool']>>;
const ok = (r: Res) => {
  expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
  return r.structuredContent as Record<string, any>;
};
const view = async (planId: string) => (await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.approver1 })).body;

describe('separation of duties through MCP', () => {
  it('no tool and no method approves', async () => {
    const c = await mcp(TOKENS.ops);
    const tools = (await c.listTools()).tools.map((x) => x.name);
    expect(tools.filter((n) => /approv|reject|decide/i.test(n))).toEqual([]);
    for (const name of ['proxmox_approve_action', 'proxmox_approve', 'approve', 'proxmox_reject_action']) {
      const res = await c.callTool({ name, arguments: { planId: 'plan_00000000000000000000000000', decision: 'approve' } }).catch((e: Error) => ({ isError: true, content: [{ type: 'text', text: e.message }] }));
      expect(res.isError, name).toBe(true);
    }
    await c.close();
  });

  it('a token that may plan, apply and approve cannot get its own critical plan run', async () => {
    const c = await mcp(TOKENS.ops);
    const plan = ok(
      await c.callTool({ name: 'proxmox_plan_action', arguments: { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'probe: self approval', idempotencyKey: 'sod-1' } }),
    );
    expect(plan).toMatchObject({ status: 'awaiting_approval', requester: { principal: 'human:olivia' }, approval: { required: 2, received: 0 } });
    ok(await c.callTool({ name: 'proxmox_apply_action', arguments: { planId: plan.planId, requestHash: plan.requestHash } }));

    // Its own approval, over REST as api and as cli, and as a JSON-RPC method on the MCP session.
    for (const channel of ['api', 'cli']) {
      const self = await t.call('POST', `/v1/actions/${plan.planId}/approvals`, { token: TOKENS.ops, headers: { 'x-proxmox-agent-channel': channel }, body: { decision: 'approve', requestHash: plan.requestHash } });
      expect(self.status, JSON.stringify(self.body)).toBeGreaterThanOrEqual(400);
    }
    const sessionId = (c.transport as StreamableHTTPClientTransport).sessionId!;
    for (const method of ['approvals/approve', 'proxmox/approve', 'tools/approve']) {
      const res = await fetch(`${t.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKENS.ops}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 5, method, params: { planId: plan.planId, decision: 'approve', requestHash: plan.requestHash } }),
      });
      expect(await res.text()).toMatch(/"error"/);
    }
    // Re-planning the same thing with the same key gives the same plan, not a fresh approved one.
    const again = ok(
      await c.callTool({ name: 'proxmox_plan_action', arguments: { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'probe: self approval', idempotencyKey: 'sod-1' } }),
    );
    expect(again.planId).toBe(plan.planId);

    // One human approves: still one short. Olivia approving again (same or other channel) must not count.
    const alice = await t.call('POST', `/v1/actions/${plan.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve', requestHash: plan.requestHash } });
    expect(alice.status, JSON.stringify(alice.body)).toBe(202);
    const selfAgain = await t.call('POST', `/v1/actions/${plan.planId}/approvals`, { token: TOKENS.ops, headers: { 'x-proxmox-agent-channel': 'cli' }, body: { decision: 'approve', requestHash: plan.requestHash } });
    expect(selfAgain.status).toBeGreaterThanOrEqual(400);
    // Alice approving twice does not count twice.
    const aliceAgain = await t.call('POST', `/v1/actions/${plan.planId}/approvals`, { token: TOKENS.approver1, headers: { 'x-proxmox-agent-channel': 'cli' }, body: { decision: 'approve', requestHash: plan.requestHash } });
    expect(aliceAgain.status === 202 || aliceAgain.status >= 400).toBe(true);

    const followed = ok(await c.callTool({ name: 'proxmox_action_status', arguments: { planId: plan.planId, waitSeconds: 3, status: 'awaiting_approval' } }));
    expect(followed.status).toBe('awaiting_approval');
    await new Promise((r) => setTimeout(r, 1500));
    const v = await view(plan.planId);
    expect(v.status).toBe('awaiting_approval');
    expect(v.approval.received).toBe(1);
    expect(v.approval.approvers.map((a: { principal: string }) => a.principal)).toEqual(['human:alice']);
    expect(t.sim('prod').mutations.countFor(201, 'destroy')).toBe(0);
    expect(t.sim('prod').model.guest(201)).toBeDefined();
    await c.close();
  }, 60_000);

  it('the agent cannot approve its own plan, nor have an approver token used through its MCP session', async () => {
    // A running container cannot be deleted: stop cache-prod first, on the simulator.
    const prod = t.service.environments.environments.get('prod')!.client;
    await prod.waitForTask('pve-prod', (await prod.request('POST', '/nodes/{node}/lxc/{vmid}/status/stop', { node: 'pve-prod', vmid: 400 })) as string);
    const agent = await mcp(TOKENS.agent);
    const plan = ok(await agent.callTool({ name: 'proxmox_plan_action', arguments: { action: 'ct.delete', environment: 'prod', target: { vmid: 400 }, params: { purge: true }, reason: 'probe: agent self approval' } }));
    expect(plan.status, JSON.stringify(plan)).toBe('awaiting_approval');
    ok(await agent.callTool({ name: 'proxmox_apply_action', arguments: { planId: plan.planId, requestHash: plan.requestHash } }));
    const self = await t.call('POST', `/v1/actions/${plan.planId}/approvals`, { token: TOKENS.agent, body: { decision: 'approve', requestHash: plan.requestHash } });
    expect(self.status).toBe(403);
    // An approver's token on the agent's session id: refused (the session is the agent's).
    const sessionId = (agent.transport as StreamableHTTPClientTransport).sessionId!;
    const res = await fetch(`${t.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKENS.approver1}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'proxmox_apply_action', arguments: { planId: plan.planId, requestHash: plan.requestHash } } }),
    });
    expect(res.status).toBe(404);
    await new Promise((r) => setTimeout(r, 1500));
    const v = await view(plan.planId);
    expect(v.status).toBe('awaiting_approval');
    expect(v.approval.received).toBe(0);
    expect(t.sim('prod').mutations.countFor(400, 'destroy')).toBe(0);
    await agent.close();
  }, 60_000);
});
