/**
 * Probe (guarantee 4): bad input through /mcp gets a clear error and changes nothing: no plan made
 * (the idempotent plan id each attempt would have is 404 through REST), no apply recorded, no
 * Proxmox mutation in the simulators' logs.
 */
import { request as httpRequest } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idempotentPlanId } from '../../src/domain/plan-id.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
let c: Client;
beforeAll(async () => {
  t = await startTestService();
  c = new Client({ name: 'probe-input', version: '0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${t.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${TOKENS.agent}` } } }));
}, 120_000);
afterAll(async () => {
  await c?.close();
  await t?.stop();
});

const mutations = () => t.sim('lab').mutations.all().length + t.sim('prod').mutations.all().length;
async function planExists(planId: string): Promise<boolean> {
  const res = await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.ops });
  expect([200, 404]).toContain(res.status);
  return res.status === 200;
}
/** A tool call's failure as text: a tool error (isError) or a JSON-RPC error; undefined when it succeeded. */
async function failure(name: string, args: Record<string, unknown>): Promise<string | undefined> {
  try {
    const r = await c.callTool({ name, arguments: args });
    if (!r.isError) return undefined;
    return (r.content as { text?: string }[]).map((x) => x.text ?? '').join('\n');
  } catch (err) {
    return (err as Error).message;
  }
}

const good = { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'input-probe' }, reason: 'probe' };

/** A raw POST to /mcp whose answer is read even when the server stops reading the body early. */
function post(headers: Record<string, string>, body: string | Buffer): Promise<{ status: number; session?: string; body: string }> {
  const u = new URL(`${t.url}/mcp`);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method: 'POST', path: '/mcp', agent: false, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, session: res.headers['mcp-session-id'] as string | undefined, body: text }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', (err) => (/EPIPE/.test(String((err as NodeJS.ErrnoException).code)) ? undefined : resolve({ status: -1, body: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` })));
    req.end(body);
  });
}

describe('bad input through MCP', () => {
  it('a bad plan request is a clear error and makes no plan', async () => {
    const before = mutations();
    const bad: [string, Record<string, unknown>, RegExp][] = [
      ['unknown top-level key', { ...good, dryRun: true }, /dryRun|unrecognized|unknown/i],
      ['requester smuggled', { ...good, requester: { principal: 'human:alice' } }, /requester|unrecognized/i],
      ['approvals smuggled', { ...good, approvals: [{ principal: 'human:alice' }] }, /approvals|unrecognized/i],
      ['unknown key in target', { ...good, target: { vmid: 100, cluster: 'x' } }, /cluster|unrecognized/i],
      ['vmid as string', { ...good, target: { vmid: '100' } }, /vmid/i],
      ['vmid out of range', { ...good, target: { vmid: 99 } }, /vmid/i],
      ['vmid fractional', { ...good, target: { vmid: 100.5 } }, /vmid/i],
      ['bad node', { ...good, target: { vmid: 100, node: '../pve' } }, /node/i],
      ['unknown action', { ...good, action: 'vm.format' }, /unknown action|action/i],
      ['uppercase environment', { ...good, environment: 'LAB' }, /environment/i],
      ['unknown environment', { ...good, environment: 'staging' }, /environment|staging/i],
      ['empty reason', { ...good, reason: '   ' }, /reason/i],
      ['huge reason', { ...good, reason: 'x'.repeat(2001) }, /reason/i],
      ['unknown param', { ...good, params: { snapname: 'x', vmstate: true, evil: 1 } }, /evil|unrecognized|params/i],
      ['bad param type', { ...good, params: { snapname: 42 } }, /snapname|params/i],
      ['params not an object', { ...good, params: 'snapname=x' }, /params/i],
      ['missing target', { action: good.action, environment: 'lab', params: good.params, reason: 'probe' }, /target/i],
      ['bad idempotency key', { ...good, idempotencyKey: 'has space' }, /idempotency/i],
      ['idempotency key with CRLF', { ...good, idempotencyKey: 'a\r\nx-proxmox-agent-channel: cli' }, /idempotency/i],
    ];
    for (const [i, [name, args, pattern]] of bad.entries()) {
      const key = `bad-${i}`;
      const withKey = name.startsWith('bad idempotency') || name.startsWith('idempotency') ? args : { ...args, idempotencyKey: key };
      const msg = await failure('proxmox_plan_action', withKey);
      expect(msg, `${name}: expected an error, got a plan`).toBeDefined();
      expect(msg, name).toMatch(pattern);
      expect(await planExists(idempotentPlanId('agent:pi-demo', key)), `${name}: a plan was made`).toBe(false);
    }
    expect(mutations()).toBe(before);
  }, 60_000);

  it('a bad apply is a clear error and applies nothing', async () => {
    const plan = (await c.callTool({ name: 'proxmox_plan_action', arguments: { ...good, params: { snapname: 'apply-probe' } } })).structuredContent as any;
    const other = (await c.callTool({ name: 'proxmox_plan_action', arguments: { ...good, params: { snapname: 'other-probe' } } })).structuredContent as any;
    expect(plan.status).toBe('planned');
    const before = mutations();
    const bad: [string, Record<string, unknown>][] = [
      ['no hash', { planId: plan.planId }],
      ['another plan’s hash', { planId: plan.planId, requestHash: other.requestHash }],
      ['hash upper case', { planId: plan.planId, requestHash: plan.requestHash.toUpperCase() }],
      ['hash with suffix', { planId: plan.planId, requestHash: `${plan.requestHash}0` }],
      ['planId traversal', { planId: `../actions/${plan.planId}`, requestHash: plan.requestHash }],
      ['planId lower case', { planId: plan.planId.toLowerCase(), requestHash: plan.requestHash }],
      ['unknown planId', { planId: 'plan_00000000000000000000000000', requestHash: plan.requestHash }],
      ['extra key', { planId: plan.planId, requestHash: plan.requestHash, force: true }],
    ];
    for (const [name, args] of bad) expect(await failure('proxmox_apply_action', args), name).toBeDefined();
    await new Promise((r) => setTimeout(r, 1500));
    const v = (await t.call('GET', `/v1/actions/${plan.planId}`, { token: TOKENS.ops })).body;
    expect(v.status).toBe('planned');
    expect(v.applyRequested ?? false).toBe(false);
    expect(mutations()).toBe(before);
    expect(t.sim('lab').model.guest(100)?.snapshots ?? []).not.toContain('apply-probe');
  }, 60_000);

  it('bad follow, resource and subscription input is an error', async () => {
    for (const args of [{ planId: 'nope' }, { planId: 'plan_00000000000000000000000000', waitSeconds: 0 }, { planId: 'plan_00000000000000000000000000', waitSeconds: 3600 }, { planId: 'plan_00000000000000000000000000', waitSeconds: -1 }, { planId: 'plan_00000000000000000000000000', until: 'forever' }]) {
      expect(await failure('proxmox_action_status', args), JSON.stringify(args)).toBeDefined();
    }
    for (const uri of ['proxmox-agent://plans/..%2Fapprovals', 'proxmox-agent://plans/plan_00000000000000000000000000', 'proxmox-agent://plans/plan_00000000000000000000000000%3Fwait%3D60s', 'file:///etc/passwd', 'proxmox-agent://secrets']) {
      await expect(c.readResource({ uri }), uri).rejects.toThrow();
    }
  }, 60_000);

  it('subscribing to a plan URI with a malformed plan id, or to a resource that does not exist, is an error', async () => {
    // Expected: an error like reading it gives. Not a silent {} that leaves the client waiting for updates that never come.
    for (const uri of ['proxmox-agent://plans/nope', 'proxmox-agent://plans/plan_00000000000000000000000000/../x', 'file:///etc/passwd']) {
      await expect(c.readResource({ uri }), `read ${uri}`).rejects.toThrow();
      await expect.soft(c.subscribeResource({ uri }), `subscribe ${uri}`).rejects.toThrow();
    }
  });

  it('malformed HTTP bodies at /mcp are refused and open nothing', async () => {
    const h = { authorization: `Bearer ${TOKENS.agent}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const cases: [string, string | Buffer, number[]][] = [
      ['not JSON', '{"jsonrpc":', [400]],
      ['too large', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x'.repeat(300 * 1024), version: '0' } } }), [413]],
      ['not initialize, no session', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'proxmox_plan_action', arguments: { ...good, idempotencyKey: 'no-session' } } }), [400]],
      ['batch with a tools/call, no session', JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'proxmox_plan_action', arguments: { ...good, idempotencyKey: 'batch' } } }]), [400]],
    ];
    for (const [name, body, statuses] of cases) {
      const res = await post(h, body);
      expect.soft(statuses, `${name}: ${res.status} ${res.body.slice(0, 200)}`).toContain(res.status);
      expect(res.session, name).toBeUndefined();
    }
    for (const key of ['no-session', 'batch']) expect(await planExists(idempotentPlanId('agent:pi-demo', key))).toBe(false);
  });
});
