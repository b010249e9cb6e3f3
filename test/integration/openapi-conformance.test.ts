/**
 * Real responses conform to the OpenAPI document. A representative flow runs against the real
 * service (Temporal dev server, worker, simulator): plan, apply, long poll, event stream, two
 * approvals, reads, policy evaluation, the approval queue, evidence, and the usual errors. Every
 * answer is checked against the schema the document declares for its route, status and content
 * type (Ajv, JSON Schema 2020-12, `$ref`s resolved in the document), and every problem's `code`
 * must be one the document lists for that route and status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenApiValidator, type OpenApiValidator } from '../api/support/openapi-validator.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
let v: OpenApiValidator;
const checked: string[] = [];

beforeAll(async () => {
  t = await startTestService();
  const doc = (await (await fetch(`${t.url}/v1/openapi.json`)).json()) as Record<string, any>;
  v = createOpenApiValidator(doc);
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

/** Calls the API and checks the answer against the document; returns it for the flow to go on. */
async function call(method: string, template: string, opts: { params?: Record<string, string>; query?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const path = template.replace(/\{(\w+)\}/g, (_, k: string) => opts.params?.[k] ?? `{${k}}`) + (opts.query ? `?${opts.query}` : '');
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: {
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    },
    ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}),
  });
  const contentType = res.headers.get('content-type') ?? '';
  const text = await res.text();
  const body = contentType.includes('json') && text ? JSON.parse(text) : text;
  const errors = v.checkResponse(method, template, res.status, contentType, body);
  expect(errors, `${method} ${path} → ${res.status}: ${text.slice(0, 400)}`).toEqual([]);
  if (contentType.startsWith('application/problem+json')) {
    const documented = Object.keys(v.response(method, template, res.status)?.content?.['application/problem+json']?.examples ?? {});
    expect(documented, `${method} ${template} ${res.status} does not list problem ${body.code}`).toContain(body.code);
  }
  checked.push(`${method} ${template} ${res.status}`);
  return { status: res.status, body, headers: res.headers, text };
}

describe('responses conform to the OpenAPI document', () => {
  it('health and catalog', async () => {
    let health = await call('GET', '/healthz');
    for (let i = 0; i < 50 && health.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      health = await call('GET', '/healthz');
    }
    expect(health.status).toBe(200);
    expect((await call('GET', '/v1/catalog', { token: TOKENS.agent })).status).toBe(200);
  });

  it('inventory reads', async () => {
    expect((await call('GET', '/v1/inventory', { query: 'environment=prod', token: TOKENS.agent })).status).toBe(200);
    expect((await call('GET', '/v1/inventory/{environment}/guests/{vmid}', { params: { environment: 'prod', vmid: '201' }, token: TOKENS.agent })).status).toBe(200);
    const snaps = await call('GET', '/v1/inventory/{environment}/guests/{vmid}/snapshots', { params: { environment: 'prod', vmid: '201' }, token: TOKENS.agent });
    expect(snaps.status).toBe(200);
    expect((await call('GET', '/v1/inventory/{environment}/guests/{vmid}', { params: { environment: 'lab', vmid: '999' }, token: TOKENS.agent })).status).toBe(404);
    const client = t.service.environments.environments.get('lab')!.client;
    const upid = (await client.request('POST', '/nodes/{node}/qemu/{vmid}/status/stop', { node: 'pve-lab', vmid: 101 })) as string;
    await client.waitForTask('pve-lab', upid, { intervalMs: 20 });
    const params = { environment: 'lab', upid: encodeURIComponent(upid) };
    expect((await call('GET', '/v1/inventory/{environment}/tasks/{upid}', { params, token: TOKENS.agent })).status).toBe(200);
    expect((await call('GET', '/v1/inventory/{environment}/tasks/{upid}/log', { params, token: TOKENS.agent })).status).toBe(200);
  });

  it('plan, apply, long poll and the event stream of a low-risk action', async () => {
    const p = await call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'conformance: start db-lab' },
    });
    expect(p.status).toBe(201);
    const planId: string = p.body.planId;
    const a = await call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash: p.body.requestHash } });
    expect(a.status).toBe(202);

    const polled = await call('GET', '/v1/actions/{planId}', { params: { planId }, query: 'wait=20s&status=planned', token: TOKENS.agent });
    expect(polled.status).toBe(200);
    expect(polled.body.status).not.toBe('planned');

    const stream = await call('GET', '/v1/actions/{planId}/events', { params: { planId }, token: TOKENS.agent });
    expect(stream.status).toBe(200);
    const events = stream.text.split('\n\n').filter((block) => block.includes('event: status'));
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      const data = JSON.parse(e.split('\n').find((l) => l.startsWith('data: '))!.slice(6));
      expect(v.checkAt(['components', 'schemas', 'Plan'], data)).toEqual([]);
    }
    const last = JSON.parse(events.at(-1)!.split('\n').find((l) => l.startsWith('data: '))!.slice(6));
    expect(last.status).toBe('succeeded');

    const read = await call('GET', '/v1/actions/{planId}', { params: { planId }, token: TOKENS.agent });
    expect(read.body.result.outcome).toBe('applied');
    // Apply is idempotent: again on a finished plan, it reports the outcome.
    const again = await call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash: p.body.requestHash } });
    expect(again).toMatchObject({ status: 202, body: { status: 'succeeded' } });
    expect((await call('GET', '/v1/actions/{planId}/evidence', { params: { planId }, token: TOKENS.agent })).status).toBe(200);
  });

  it('a prod delete through two approvals, with the approval queue and refusals on the way', async () => {
    const body = { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'conformance: decommission db-prod' };
    expect((await call('POST', '/v1/policy/evaluate', { token: TOKENS.agent, body })).status).toBe(200);
    expect((await call('GET', '/v1/policy/matrix', { token: TOKENS.agent })).status).toBe(200);
    const p = await call('POST', '/v1/actions/plan', { token: TOKENS.agent, body, headers: { 'idempotency-key': 'conformance-delete-201' } });
    expect(p.status).toBe(201);
    const planId: string = p.body.planId;
    expect(p.body.status).toBe('awaiting_approval');
    // The same key for another request.
    expect((await call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { ...body, reason: 'other' }, headers: { 'idempotency-key': 'conformance-delete-201' } })).status).toBe(422);

    expect((await call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash: `sha256:${'0'.repeat(64)}` } })).status).toBe(409);
    expect((await call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash: p.body.requestHash } })).status).toBe(202);
    // The long poll ends at the deadline with the unchanged plan.
    const waited = await call('GET', '/v1/actions/{planId}', { params: { planId }, query: 'wait=1s', token: TOKENS.agent });
    expect(waited.body.status).toBe('awaiting_approval');

    expect((await call('GET', '/v1/approvals', { query: 'status=pending', token: TOKENS.approver1 })).status).toBe(200);
    // The agent has no approve scope; a token that planned cannot approve its own plan.
    expect((await call('POST', '/v1/actions/{planId}/approvals', { params: { planId }, token: TOKENS.agent, body: { decision: 'approve' } })).status).toBe(403);
    expect((await call('POST', '/v1/actions/{planId}/approvals', { params: { planId }, token: TOKENS.approver1, body: { decision: 'approve', comment: 'ok', requestHash: p.body.requestHash } })).status).toBe(202);
    expect((await call('POST', '/v1/actions/{planId}/approvals', { params: { planId }, token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(409);
    expect((await call('POST', '/v1/actions/{planId}/approvals', { params: { planId }, token: TOKENS.approver2, body: { decision: 'approve' } })).status).toBe(202);
    const done = await call('GET', '/v1/actions/{planId}', { params: { planId }, query: 'wait=20s&status=awaiting_approval', token: TOKENS.agent });
    expect(['approved', 'applying', 'succeeded']).toContain(done.body.status);
    expect((await t.waitForStatus(planId, ['succeeded'])).status).toBe('succeeded');
  });

  it('self-approval and rejection', async () => {
    const p = await call('POST', '/v1/actions/plan', {
      token: TOKENS.ops,
      body: { action: 'vm.stop', environment: 'prod', target: { vmid: 200 }, params: {}, reason: 'conformance: stop web-prod' },
    });
    expect(p.status).toBe(201);
    const planId: string = p.body.planId;
    expect((await call('POST', '/v1/actions/{planId}/approvals', { params: { planId }, token: TOKENS.ops, body: { decision: 'approve' } })).status).toBe(403);
    expect((await call('POST', '/v1/actions/{planId}/approvals', { params: { planId }, token: TOKENS.approver1, body: { decision: 'reject', comment: 'not now' } })).status).toBe(202);
    await t.waitForStatus(planId, ['rejected'], 20_000);
    expect((await call('POST', '/v1/actions/apply', { token: TOKENS.ops, body: { planId, requestHash: p.body.requestHash } })).status).toBe(409);
  });

  it('client errors: schema, authentication, media type, unknown plans and routes', async () => {
    expect((await call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { action: 'vm.start' } })).status).toBe(400);
    expect((await call('POST', '/v1/actions/plan', { body: { action: 'vm.start' } })).status).toBe(401);
    expect((await call('POST', '/v1/actions/plan', { token: 'not-a-token', body: {} })).status).toBe(401);
    expect((await call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: 'x=1', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { pad: 'x'.repeat(70_000) } })).status).toBe(413);
    expect((await call('GET', '/v1/actions/{planId}', { params: { planId: 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G' }, token: TOKENS.agent })).status).toBe(404);
    expect((await call('GET', '/v1/actions/{planId}', { params: { planId: 'nope' }, token: TOKENS.agent })).status).toBe(400);
    expect((await call('GET', '/v1/actions/{planId}/events', { params: { planId: 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G' }, token: TOKENS.agent })).status).toBe(404);
    expect((await call('GET', '/v1/approvals', { token: TOKENS.agent, query: 'limit=0' })).status).toBe(400);
    expect((await call('GET', '/problems/{code}', { params: { code: 'plan-stale' } })).status).toBe(200);
  });

  it('covered the flow', () => {
    // A guard against this file silently checking less: every kind of answer above was validated.
    for (const k of ['POST /v1/actions/plan 201', 'POST /v1/actions/apply 202', 'GET /v1/actions/{planId} 200', 'GET /v1/actions/{planId}/events 200', 'POST /v1/actions/{planId}/approvals 202', 'POST /v1/actions/{planId}/approvals 403', 'POST /v1/actions/{planId}/approvals 409', 'POST /v1/actions/apply 409', 'POST /v1/actions/plan 400', 'POST /v1/actions/plan 401', 'POST /v1/actions/plan 413', 'POST /v1/actions/plan 415', 'POST /v1/actions/plan 422', 'GET /v1/actions/{planId} 404', 'GET /v1/approvals 200', 'POST /v1/policy/evaluate 200', 'GET /v1/policy/matrix 200', 'GET /v1/catalog 200', 'GET /healthz 200', 'GET /v1/actions/{planId}/evidence 200'])
      expect(checked).toContain(k);
    expect(checked.length).toBeGreaterThanOrEqual(30);
  });
});
