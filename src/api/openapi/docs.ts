/**
 * Human-readable documentation served by the API itself, all offline (no CDN, no web fonts):
 *  - `/docs`: the Scalar API reference over /v1/openapi.json, its script served from node_modules
 *    (`@scalar/api-reference`'s standalone build) at `/docs/scalar.js`;
 *  - `/docs/api-versioning-policy`: the versioning and deprecation policy (Markdown);
 *  - `/problems` and `/problems/{code}`: one page per problem type, generated from src/api/http/problems.ts
 *    (the `type` of every problem the API answers is such a page).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { Scalar } from '@scalar/hono-api-reference';
import { REPO_ROOT } from '../../temporal/cli-locator.js';
import type { AppEnv } from '../http/context.js';
import { PROBLEM_ADVICE } from './problem-docs.js';
import { ApiError, PROBLEMS, problemExample, problemResponses, problemType, type ProblemCode } from '../http/problems.js';

export const DOCS_PATH = '/docs';
export const SCALAR_SCRIPT_PATH = '/docs/scalar.js';
export const VERSIONING_POLICY_PATH = '/docs/api-versioning-policy';

const require = createRequire(import.meta.url);
let scalarScript: Buffer | undefined;
let policyText: string | undefined;

export function registerDocsRoutes(app: OpenAPIHono<AppEnv>): void {
  app.get(
    DOCS_PATH,
    Scalar({
      url: '/v1/openapi.json',
      cdn: SCALAR_SCRIPT_PATH,
      pageTitle: 'proxmox-agent API reference',
      // Nothing leaves the page: fonts from the system, no telemetry, no hosted proxy or agent.
      withDefaultFonts: false,
      telemetry: false,
      hideClientButton: true,
      showDeveloperTools: 'never',
      agent: { disabled: true },
    } as Parameters<typeof Scalar>[0]),
  );

  app.get(SCALAR_SCRIPT_PATH, (c) => {
    scalarScript ??= readFileSync(require.resolve('@scalar/api-reference/browser/standalone.js'));
    return c.body(new Uint8Array(scalarScript), 200, {
      'content-type': 'application/javascript; charset=utf-8',
      'cache-control': 'public, max-age=86400',
    });
  });

  app.get(VERSIONING_POLICY_PATH, (c) => {
    // From the repository root, not from this file: the built bundle (dist/bin/api.mjs) sits at another depth.
    policyText ??= readFileSync(join(REPO_ROOT, 'docs/api-versioning-policy.md'), 'utf8');
    return c.body(policyText, 200, { 'content-type': 'text/markdown; charset=utf-8' });
  });

  app.get('/problems', (c) => c.html(problemIndexPage()));
  app.get('/problems/:code', (c) => {
    const code = c.req.param('code');
    if (!(code in PROBLEMS)) throw new ApiError('not-found', `no problem type ${code}`);
    return c.html(problemPage(code as ProblemCode));
  });

  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/problems/{code}',
    tags: ['documentation'],
    summary: 'What a problem type means and what to do about it',
    description: 'Every problem the API answers has `type: /problems/{code}`; this is that page (HTML). `/problems` lists them all.',
    request: { params: z.object({ code: z.enum(Object.keys(PROBLEMS) as [ProblemCode, ...ProblemCode[]]).openapi({ param: { name: 'code', in: 'path' }, example: 'plan-stale' }) }) },
    responses: {
      200: { description: 'The page', content: { 'text/html': { schema: z.string() } } },
      ...problemResponses('not-found'),
    },
  });
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: DOCS_PATH,
    tags: ['documentation'],
    summary: 'This API reference (HTML, works offline)',
    responses: { 200: { description: 'The page', content: { 'text/html': { schema: z.string() } } } },
  });
}

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
/** `code` spans in the advice texts. */
const md = (s: string) => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');

const STYLE = 'body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}code,pre{background:#f4f4f4;border-radius:4px}code{padding:0 .2em}pre{padding:.8rem;overflow:auto}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}';

function page(title: string, body: string): string {
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>\n`;
}

export function problemPage(code: ProblemCode): string {
  const { status, title } = PROBLEMS[code];
  const advice = PROBLEM_ADVICE[code];
  return page(
    `${code}: ${title}`,
    `<p><a href="/problems">All problem types</a> · <a href="${DOCS_PATH}">API reference</a></p>
<h1>${esc(title)}</h1>
<p><code>type: ${esc(problemType(code))}</code> · HTTP ${status}</p>
<h2>When</h2><p>${md(advice.when)}</p>
<h2>What to do</h2><p>${md(advice.todo)}</p>
<h2>Example</h2><pre>${esc(JSON.stringify(problemExample(code), null, 2))}</pre>
<p>Every problem is <code>application/problem+json</code> (RFC 9457) with <code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code> and <code>code</code> (the last segment of <code>type</code>); some add <code>errors[]</code> and <code>planId</code>.</p>`,
  );
}

export function problemIndexPage(): string {
  const rows = (Object.keys(PROBLEMS) as ProblemCode[])
    .map((c) => `<tr><td><a href="${esc(problemType(c))}"><code>${esc(c)}</code></a></td><td>${PROBLEMS[c].status}</td><td>${esc(PROBLEMS[c].title)}</td></tr>`)
    .join('\n');
  return page('Problem types', `<p><a href="${DOCS_PATH}">API reference</a></p><h1>Problem types</h1><table><tr><th>type</th><th>HTTP</th><th>title</th></tr>\n${rows}</table>`);
}
