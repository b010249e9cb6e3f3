/**
 * The OpenAPI 3.1 document: generated from the routes' zod schemas (the same ones that validate
 * requests), then completed in one place with what every operation shares: the problems any
 * authenticated route can answer (401, 429, 500), 413 on bodies, and examples from `EXAMPLES`.
 * `npm run openapi:snapshot` writes it to docs/openapi.v1.json, which test/api/openapi-compat.test.ts
 * guards against breaking changes (docs/api-versioning-policy.md).
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../http/context.js';
import { EXAMPLES } from './examples.js';
import { PROBLEMS, problemExample, problemType, type ProblemCode } from '../http/problems.js';

export const API_VERSION = '1.0.0';

export const OPENAPI_CONFIG = {
  openapi: '3.1.0',
  info: {
    title: 'proxmox-agent API',
    version: API_VERSION,
    description: [
      'Plan, approve and apply changes to Proxmox VE guests under policy, with audit evidence.',
      '',
      'Flow: `POST /v1/actions/plan` → read `decision` and `approval` → `POST /v1/actions/apply` with the plan\'s `requestHash` → follow `GET /v1/actions/{planId}/events` (server-sent events) or `GET /v1/actions/{planId}?wait=30s` until the status is terminal (`succeeded`, `failed`, `rejected`, `expired`, `denied`).',
      '',
      'Errors are RFC 9457 problems (`application/problem+json`) whose `type` is a page under `/problems/` that says what to do. Versioning and deprecation: see [the versioning policy](/docs/api-versioning-policy) (`/v1` changes only additively; deprecated operations carry `Deprecation` and `Sunset` headers for at least 6 months before removal).',
    ].join('\n'),
    license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
  },
  tags: [
    { name: 'actions', description: 'Plan, apply and follow one action on one guest' },
    { name: 'approvals', description: 'Human decisions on plans that need them' },
    { name: 'catalog', description: 'What an agent may request' },
    { name: 'policy', description: 'Dry-run policy evaluation' },
    { name: 'audit', description: 'Evidence bundles' },
    { name: 'channels', description: 'Signed approvals from Slack and other bots' },
    { name: 'operations', description: 'Health' },
  ],
} as const;

type Json = Record<string, any>;

/** The document as served at /v1/openapi.json. */
export function openApiDocument(app: OpenAPIHono<AppEnv>): Json {
  const doc = app.getOpenAPI31Document(structuredClone(OPENAPI_CONFIG) as never) as Json;
  return decorate(doc);
}

function decorate(doc: Json): Json {
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const [method, op] of Object.entries<Json>(item)) {
      if (!isOperation(method)) continue;
      const key = `${method.toUpperCase()} ${path}`;
      const bearer = (op.security ?? []).some((s: Json) => 'bearer' in s);
      const responses: Json = (op.responses ??= {});
      if (bearer) {
        addProblem(responses, 'unauthenticated');
        addProblem(responses, 'rate-limited');
      }
      if (op.requestBody && path.startsWith('/v1/')) addProblem(responses, 'payload-too-large');
      addProblem(responses, 'internal');
      const body = op.requestBody?.content?.['application/json'];
      if (body && body.example === undefined && body.examples === undefined && EXAMPLES[`${key} request`] !== undefined) body.example = EXAMPLES[`${key} request`];
      for (const [status, response] of Object.entries<Json>(responses)) {
        for (const [type, media] of Object.entries<Json>(response.content ?? {})) {
          if (type === 'application/problem+json' || media.example !== undefined || media.examples !== undefined) continue;
          const example = EXAMPLES[`${key} ${status}`];
          if (example !== undefined) media.example = example;
        }
      }
    }
  }
  return doc;
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);
const isOperation = (m: string) => METHODS.has(m);

/** Adds one problem to an operation's responses, merged with the others of the same status. */
function addProblem(responses: Json, code: ProblemCode): void {
  const status = String(PROBLEMS[code].status);
  const line = `${problemType(code)}: ${PROBLEMS[code].title}`;
  const existing = responses[status];
  if (!existing) {
    responses[status] = {
      description: line,
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' }, examples: { [code]: { summary: PROBLEMS[code].title, value: problemExample(code) } } } },
    };
    return;
  }
  const media = existing.content?.['application/problem+json'];
  if (!media || media.examples?.[code]) return;
  existing.description = `${existing.description}; ${line}`;
  media.examples = { ...(media.examples ?? {}), [code]: { summary: PROBLEMS[code].title, value: problemExample(code) } };
}
