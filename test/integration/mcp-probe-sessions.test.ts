/**
 * Probe (guarantee 3): an MCP session cannot be hijacked or reused by another token; a token in the
 * URL counts for nothing; a browser Origin not allowed is refused; DNS-rebinding Host headers are
 * refused while the API listens on loopback (the test service does: 127.0.0.1). Raw HTTP (node:http,
 * to send any Host header) and the SDK's client; judged by the HTTP answers, the API's plan views and
 * the simulators' mutation logs.
 */
import { request as httpRequest } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idempotentPlanId } from '../../src/domain/plan-id.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
let port: number;
beforeAll(async () => {
  t = await startTestService();
  port = Number(new URL(t.url).port);
  expect(new URL(t.url).hostname).toBe('127.0.0.1');
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const PV = '2025-06-18';
const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PV, capabilities: {}, clientInfo: { name: 'probe', version: '0' } } };
const planCall = (key: string) => ({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'proxmox_plan_action', arguments: { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'probe', idempotencyKey: key } } });

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}
/** One raw HTTP request to the service, with exactly these headers (Host included); SSE answers are cut after 1.5 s. */
function raw(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, setHost: false, headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}), ...headers } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
        res.on('end', done);
        if (String(res.headers['content-type'] ?? '').includes('text/event-stream')) setTimeout(() => (res.destroy(), done()), 1500);
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}
const base = (token?: string, extra: Record<string, string> = {}) => ({ host: `127.0.0.1:${port}`, accept: 'application/json, text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra });

async function openSession(token: string): Promise<string> {
  const res = await raw('POST', '/mcp', base(token), init);
  expect(res.status, res.body).toBe(200);
  const id = res.headers['mcp-session-id'] as string;
  expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const ack = await raw('POST', '/mcp', base(token, { 'mcp-session-id': id, 'mcp-protocol-version': PV }), { jsonrpc: '2.0', method: 'notifications/initialized' });
  expect(ack.status).toBe(202);
  return id;
}
async function planExists(planId: string): Promise<boolean> {
  const res = await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.ops });
  expect([200, 404]).toContain(res.status);
  return res.status === 200;
}
const mutations = () => t.sim('lab').mutations.all().length + t.sim('prod').mutations.all().length;

describe('sessions belong to the token that opened them', () => {
  it('another token cannot call tools on, stream from, or close a session; the owner keeps it', async () => {
    const agentSession = await openSession(TOKENS.agent);
    const before = mutations();
    for (const other of [TOKENS.ops, TOKENS.labOnly, TOKENS.approver1]) {
      const post = await raw('POST', '/mcp', base(other, { 'mcp-session-id': agentSession, 'mcp-protocol-version': PV }), planCall('hijack-1'));
      expect(post.status, post.body).toBe(404);
      const list = await raw('POST', '/mcp', base(other, { 'mcp-session-id': agentSession, 'mcp-protocol-version': PV }), { jsonrpc: '2.0', id: 2, method: 'tools/list' });
      expect(list.status).toBe(404);
      const sse = await raw('GET', '/mcp', base(other, { 'mcp-session-id': agentSession, 'mcp-protocol-version': PV }));
      expect(sse.status).toBe(404);
      const del = await raw('DELETE', '/mcp', base(other, { 'mcp-session-id': agentSession, 'mcp-protocol-version': PV }));
      expect(del.status).toBe(404);
      // A re-initialize on someone else's session id is refused as well.
      const reinit = await raw('POST', '/mcp', base(other, { 'mcp-session-id': agentSession }), init);
      expect(reinit.status).toBe(404);
    }
    for (const principal of ['human:olivia', 'agent:lab-only', 'human:alice', 'agent:pi-demo']) expect(await planExists(idempotentPlanId(principal, 'hijack-1'))).toBe(false);
    // The owner's session survived the other tokens' DELETEs.
    const mine = await raw('POST', '/mcp', base(TOKENS.agent, { 'mcp-session-id': agentSession, 'mcp-protocol-version': PV }), { jsonrpc: '2.0', id: 3, method: 'tools/list' });
    expect(mine.status, mine.body).toBe(200);
    expect(mine.body).toContain('proxmox_plan_action');
    expect(mutations()).toBe(before);
  });

  it('a closed session id is dead, for its owner too', async () => {
    const id = await openSession(TOKENS.agent);
    expect((await raw('DELETE', '/mcp', base(TOKENS.agent, { 'mcp-session-id': id, 'mcp-protocol-version': PV }))).status).toBe(200);
    const again = await raw('POST', '/mcp', base(TOKENS.agent, { 'mcp-session-id': id, 'mcp-protocol-version': PV }), planCall('after-close'));
    expect(again.status).toBe(404);
    expect(await planExists(idempotentPlanId('agent:pi-demo', 'after-close'))).toBe(false);
  });

  it('a session id is no credential: with it and no (or a bad) token, 401', async () => {
    const id = await openSession(TOKENS.agent);
    for (const token of [undefined, 'garbage']) {
      const res = await raw('POST', `/mcp?access_token=${TOKENS.agent}`, base(token, { 'mcp-session-id': id, 'mcp-protocol-version': PV }), planCall('sid-only'));
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
    }
    expect(await planExists(idempotentPlanId('agent:pi-demo', 'sid-only'))).toBe(false);
  });

  it('a token in the URL opens nothing', async () => {
    for (const q of [`?access_token=${TOKENS.agent}`, `?token=${TOKENS.agent}`, `?authorization=Bearer%20${TOKENS.agent}`, `?bearer=${TOKENS.agent}`]) {
      const res = await raw('POST', `/mcp${q}`, base(undefined), init);
      expect(res.status, q).toBe(401);
      expect(res.headers['mcp-session-id']).toBeUndefined();
    }
    // The SDK client with the token only in the URL fails to connect.
    const client = new Client({ name: 'probe-url', version: '0' });
    await expect(client.connect(new StreamableHTTPClientTransport(new URL(`${t.url}/mcp?access_token=${TOKENS.agent}`)))).rejects.toThrow();
  });
});

describe('browser Origin and DNS rebinding', () => {
  it('a browser Origin not allowed is refused on every method, before anything happens', async () => {
    const id = await openSession(TOKENS.agent);
    const before = mutations();
    const origins = ['http://evil.example', 'null', '', `http://127.0.0.1:${port}.evil.example`, 'http://localhost.evil.example', `http://127.0.0.1:${port}`, `http://localhost:${port}`];
    for (const [i, origin] of origins.entries()) {
      const opened = await raw('POST', '/mcp', base(TOKENS.agent, { origin }), init);
      expect(opened.status, `initialize from Origin '${origin}'`).toBe(403);
      expect(opened.headers['mcp-session-id']).toBeUndefined();
      expect(opened.headers['access-control-allow-origin']).toBeUndefined();
      const call = await raw('POST', '/mcp', base(TOKENS.agent, { origin, 'mcp-session-id': id, 'mcp-protocol-version': PV }), planCall(`origin-${i}`));
      expect(call.status, `tools/call from Origin '${origin}'`).toBe(403);
      expect((await raw('GET', '/mcp', base(TOKENS.agent, { origin, 'mcp-session-id': id, 'mcp-protocol-version': PV }))).status).toBe(403);
      expect((await raw('DELETE', '/mcp', base(TOKENS.agent, { origin, 'mcp-session-id': id, 'mcp-protocol-version': PV }))).status).toBe(403);
      // A preflight from it is not granted.
      const pre = await raw('OPTIONS', '/mcp', { host: `127.0.0.1:${port}`, origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' });
      expect(pre.headers['access-control-allow-origin'], `preflight from '${origin}'`).toBeUndefined();
    }
    for (let i = 0; i < origins.length; i++) expect(await planExists(idempotentPlanId('agent:pi-demo', `origin-${i}`))).toBe(false);
    // The session is still there (the refused DELETEs closed nothing).
    expect((await raw('POST', '/mcp', base(TOKENS.agent, { 'mcp-session-id': id, 'mcp-protocol-version': PV }), { jsonrpc: '2.0', id: 3, method: 'tools/list' })).status).toBe(200);
    expect(mutations()).toBe(before);
  });

  it('DNS-rebinding Host headers are refused on loopback; the loopback names are served', async () => {
    const id = await openSession(TOKENS.agent);
    const before = mutations();
    const bad = [
      'evil.example',
      `evil.example:${port}`,
      `localhost.evil.example:${port}`,
      `127.0.0.1.nip.io:${port}`,
      `127.0.0.2:${port}`,
      `0.0.0.0:${port}`,
      `localhost.:${port}`,
      `[::ffff:127.0.0.1]:${port}`,
      `127.1:${port}`,
      `2130706433:${port}`,
      `localhost:${port}@evil.example`,
      `evil.example#localhost`,
      '',
    ];
    for (const host of bad) {
      const opened = await raw('POST', '/mcp', { ...base(TOKENS.agent), host }, init);
      expect([400, 403], `initialize with Host '${host}': ${opened.status} ${opened.body}`).toContain(opened.status);
      expect(opened.headers['mcp-session-id']).toBeUndefined();
      const call = await raw('POST', '/mcp', { ...base(TOKENS.agent, { 'mcp-session-id': id, 'mcp-protocol-version': PV }), host }, planCall(`host-${bad.indexOf(host)}`));
      expect([400, 403], `tools/call with Host '${host}'`).toContain(call.status);
      expect([400, 403], `GET with Host '${host}'`).toContain((await raw('GET', '/mcp', { ...base(TOKENS.agent, { 'mcp-session-id': id, 'mcp-protocol-version': PV }), host })).status);
    }
    for (let i = 0; i < bad.length; i++) expect(await planExists(idempotentPlanId('agent:pi-demo', `host-${i}`))).toBe(false);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, 'localhost']) {
      const ok = await raw('POST', '/mcp', { ...base(TOKENS.agent), host }, init);
      expect(ok.status, `Host '${host}'`).toBe(200);
      await raw('DELETE', '/mcp', { ...base(TOKENS.agent, { 'mcp-session-id': ok.headers['mcp-session-id'] as string, 'mcp-protocol-version': PV }), host });
    }
    expect(mutations()).toBe(before);
  });
});
