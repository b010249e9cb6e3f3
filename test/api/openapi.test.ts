/**
 * The OpenAPI document as a product: every operation described, every JSON body with an example
 * that validates against its own schema, every problem type documented and served as a page, and
 * the /docs reference page working offline (only local URLs).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { PROBLEMS, type ProblemCode } from '../../src/api/http/problems.js';
import { currentDocument } from '../../scripts/openapi-compat.js';
import { createApp } from '../../src/api/http/app.js';
import type { ApiDeps } from '../../src/api/http/context.js';
import { createOpenApiValidator } from './support/openapi-validator.js';

type Json = Record<string, any>;
let doc: Json;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

function operations(d: Json): { key: string; path: string; method: string; op: Json }[] {
  return Object.entries<Json>(d.paths).flatMap(([path, item]) =>
    Object.entries<Json>(item)
      .filter(([m]) => METHODS.includes(m))
      .map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, path, method, op })),
  );
}

const deps = (): ApiDeps => ({
  plans: {} as ApiDeps['plans'],
  authenticate: () => {
    throw new Error('unused');
  },
  environments: new Set(),
  health: async () => ({ ok: true, checks: {} }),
  evaluate: async () => {
    throw new Error('unused');
  },
});

const app = () => createApp(deps());

beforeAll(async () => {
  doc = await currentDocument();
});

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 and covers every route the app serves', () => {
    expect(doc.openapi).toBe('3.1.0');
    const documented = new Set(operations(doc).map((o) => o.key));
    const served = app()
      .routes.filter((r) => r.method !== 'ALL' && !r.path.includes('*'))
      .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z_]\w*)/g, '{$1}')}`);
    // The document itself, its reference page's script, the problem index and the policy text are not API operations.
    const undocumented = [...new Set(served)].filter((k) => !documented.has(k) && !['GET /v1/openapi.json', 'GET /docs/scalar.js', 'GET /problems', 'GET /docs/api-versioning-policy'].includes(k));
    expect(undocumented).toEqual([]);
    for (const key of ['POST /v1/actions/plan', 'POST /v1/actions/apply', 'GET /v1/actions/{planId}', 'GET /v1/actions/{planId}/events', 'POST /v1/actions/{planId}/approvals', 'GET /v1/approvals', 'POST /v1/policy/evaluate', 'GET /v1/catalog', 'GET /v1/actions/{planId}/evidence', 'GET /healthz'])
      expect(documented, key).toContain(key);
  });

  it('describes every operation: summary, tags, and a description for every response', () => {
    for (const { key, op } of operations(doc)) {
      expect(op.summary, key).toBeTruthy();
      expect(op.tags?.length, key).toBeGreaterThan(0);
      for (const [status, r] of Object.entries<Json>(op.responses)) expect(r.description, `${key} ${status}`).toBeTruthy();
    }
  });

  it('gives every JSON request body and response an example that validates against its schema', () => {
    const v = createOpenApiValidator(doc);
    const missing: string[] = [];
    const invalid: string[] = [];
    let checked = 0;
    for (const { key, path, method, op } of operations(doc)) {
      const body = op.requestBody?.content?.['application/json'];
      if (body) {
        const examples = body.example !== undefined ? [body.example] : Object.values<Json>(body.examples ?? {}).map((e) => e.value);
        if (examples.length === 0) missing.push(`${key} request`);
        for (const e of examples) {
          checked++;
          const errors = v.checkRequest(method, path, e);
          if (errors.length) invalid.push(`${key} request: ${errors.join('; ')}`);
        }
      }
      for (const [status, response] of Object.entries<Json>(op.responses)) {
        for (const [type, media] of Object.entries<Json>(response.content ?? {})) {
          if (!type.includes('json')) {
            if (type === 'text/event-stream' && media.example === undefined) missing.push(`${key} ${status} ${type}`);
            continue;
          }
          const examples = media.example !== undefined ? [media.example] : Object.values<Json>(media.examples ?? {}).map((e) => e.value);
          if (examples.length === 0) missing.push(`${key} ${status} ${type}`);
          for (const e of examples) {
            checked++;
            const errors = v.checkResponse(method, path, Number(status), type, e);
            if (errors.length) invalid.push(`${key} ${status}: ${errors.join('; ')}`);
          }
        }
      }
    }
    expect(missing).toEqual([]);
    expect(invalid).toEqual([]);
    expect(checked).toBeGreaterThan(50);
  });

  it('an example that does not match its schema is caught (the check can fail)', () => {
    const v = createOpenApiValidator(doc);
    expect(v.checkResponse('POST', '/v1/actions/apply', 202, 'application/json', { planId: 'p', status: 'done' })).not.toEqual([]);
    expect(v.checkResponse('POST', '/v1/actions/apply', 299, 'application/json', {})).toEqual(['POST /v1/actions/apply does not declare status 299']);
  });

  it('documents every problem type: each appears as an example of some operation', () => {
    const seen = new Set<string>();
    for (const { op } of operations(doc))
      for (const r of Object.values<Json>(op.responses)) for (const code of Object.keys(r.content?.['application/problem+json']?.examples ?? {})) seen.add(code);
    // method-not-allowed answers the methods no operation declares, so no operation lists it.
    const undocumented = (Object.keys(PROBLEMS) as ProblemCode[]).filter((c) => !seen.has(c) && c !== 'method-not-allowed');
    expect(undocumented).toEqual([]);
  });
});

describe('undeclared methods', () => {
  // Found by schemathesis (unsupported_method): TRACE /docs answered 404 although the resource exists.
  it('answer 405 with Allow on a path that exists, 404 on one that does not', async () => {
    const a = app();
    for (const [method, path, allow] of [
      ['PATCH', '/docs', 'GET, HEAD'],
      ['DELETE', '/problems/plan-stale', 'GET, HEAD'],
      ['PUT', '/healthz', 'GET, HEAD'],
    ] as const) {
      const res = await a.request(path, { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(((await res.json()) as { type: string }).type).toBe('/problems/method-not-allowed');
    }
    expect((await a.request('/docs/nothing', { method: 'PATCH' })).status).toBe(404);
    expect((await a.request('/docs', { method: 'HEAD' })).status).toBe(200);
  });

  it('answer 405 when a fixed path is only reached through a parameter route (GET /v1/actions/plan)', async () => {
    const caller = { tokenId: 't', principal: 'agent:t', scopes: ['plan', 'apply', 'read'], environments: ['*'], roles: [] };
    const a = createApp({ ...deps(), authenticate: () => caller as never });
    for (const path of ['/v1/actions/plan', '/v1/actions/apply']) {
      const res = await a.request(path, { headers: { authorization: 'Bearer t' } });
      expect(res.status, path).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
    }
    // A bad plan id is still a bad parameter.
    expect((await a.request('/v1/actions/plan_nope', { headers: { authorization: 'Bearer t' } })).status).toBe(400);
  });
});

describe('problem pages', () => {
  it('serves one HTML page per problem type and an index of them all', async () => {
    const a = app();
    const index = await (await a.request('/problems')).text();
    for (const code of Object.keys(PROBLEMS) as ProblemCode[]) {
      const res = await a.request(`/problems/${code}`);
      expect(res.status, code).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await res.text();
      expect(html).toContain(PROBLEMS[code].title.replace(/'/g, '&#39;'));
      expect(html).toContain(`HTTP ${PROBLEMS[code].status}`);
      expect(html).toContain('What to do');
      expect(index).toContain(`href="/problems/${code}"`);
    }
    const unknown = await a.request('/problems/no-such-thing');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { type: string }).type).toBe('/problems/not-found');
  });
});

describe('/docs', () => {
  it('is the Scalar reference over /v1/openapi.json, loading only same-origin URLs', async () => {
    const a = app();
    const res = await a.request('/docs');
    expect(res.status).toBe(200);
    const html = await res.text();
    const urls = [...html.matchAll(/(?:src|href)\s*=\s*"([^"]*)"/g)].map((m) => m[1]!);
    urls.push(...[...html.matchAll(/"(?:url|cdn|proxyUrl)"\s*:\s*"([^"]*)"/g)].map((m) => m[1]!));
    expect(urls).toContain('/docs/scalar.js');
    expect(urls).toContain('/v1/openapi.json');
    expect(urls.filter((u) => !u.startsWith('/') || u.startsWith('//'))).toEqual([]);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).toContain('"withDefaultFonts": false');
    const script = await a.request('/docs/scalar.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect((await script.text()).length).toBeGreaterThan(1_000_000);
  });
});
