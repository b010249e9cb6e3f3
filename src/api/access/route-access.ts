import { CHAT_CHANNELS } from '../../channels/registry.js';
import { SCOPES, type Scope } from '../../config/schema.js';

/**
 * Who may call each route, decided here and nowhere else:
 *  - the app factory refuses to build with a registered route that has no entry (assertEveryRouteHasAccess);
 *  - authentication asks this table whether a path needs a bearer token (bearerRequired);
 *  - the scope of every OpenAPI route is enforced from its entry (route-guard.ts), never in a handler;
 *  - the authorization matrix test (test/integration/authz-matrix.test.ts) calls every registered route
 *    with every kind of token and checks the answers against the entries. (An entry whose route is not
 *    registered is simply not exercised.)
 *
 *  - `public`: no credentials (health, readiness, metrics, the OpenAPI document);
 *  - `signature`: authenticated by a per-request signature (chat channels); bearer tokens grant nothing;
 *  - `bearer`: a token holding ANY of `scopes` (all of them: any valid token), and, for `environment`
 *     (checked where the environment is known: in the handler, from the body or the plan):
 *     - `body`: the request names an environment the token must have (else 403, requireEnvironment);
 *     - `plan`: the plan's (or freeze's) environment; one in another environment is reported as not found (404);
 *     - `list`: results are filtered to the token's environments;
 *     - `none`: not about one environment.
 *
 * Beyond the scope and the environment, the routes that act on one plan also hold the token to its
 * action patterns (`tokens[].actions`: plan, apply, and approve/reject, 403), and an approval to the
 * channels the token may speak for (`tokens[].channels`, default `api`; 403 channel-not-allowed).
 * test/api/hardening.test.ts proves both.
 */
export type RouteAccess =
  | { auth: 'public' }
  | { auth: 'signature' }
  | { auth: 'bearer'; scopes: readonly Scope[]; environment: 'body' | 'plan' | 'list' | 'none' };

/** Keyed `METHOD path`, with OpenAPI `{param}` placeholders. */
export const ROUTE_ACCESS: Readonly<Record<string, RouteAccess>> = {
  'GET /healthz': { auth: 'public' },
  'GET /readyz': { auth: 'public' },
  'GET /metrics': { auth: 'public' },
  'GET /v1/openapi.json': { auth: 'public' },
  'GET /docs': { auth: 'public' },
  'GET /docs/scalar.js': { auth: 'public' },
  'GET /docs/api-versioning-policy': { auth: 'public' },
  'GET /problems': { auth: 'public' },
  'GET /problems/{code}': { auth: 'public' },
  'GET /v1/catalog': { auth: 'bearer', scopes: ['read'], environment: 'none' },
  'POST /v1/actions/plan': { auth: 'bearer', scopes: ['plan'], environment: 'body' },
  'POST /v1/actions/apply': { auth: 'bearer', scopes: ['apply'], environment: 'plan' },
  'GET /v1/inventory': { auth: 'bearer', scopes: ['read'], environment: 'body' },
  'GET /v1/inventory/{environment}/guests/{vmid}': { auth: 'bearer', scopes: ['read'], environment: 'body' },
  'GET /v1/inventory/{environment}/guests/{vmid}/snapshots': { auth: 'bearer', scopes: ['read'], environment: 'body' },
  'GET /v1/inventory/{environment}/tasks/{upid}': { auth: 'bearer', scopes: ['read'], environment: 'body' },
  'GET /v1/inventory/{environment}/tasks/{upid}/log': { auth: 'bearer', scopes: ['read'], environment: 'body' },
  'GET /v1/actions/{planId}': { auth: 'bearer', scopes: ['read'], environment: 'plan' },
  'POST /v1/actions/{planId}/approvals': { auth: 'bearer', scopes: ['approve'], environment: 'plan' },
  // Undoing is planning the inverse: it needs what planning needs.
  'POST /v1/actions/{planId}/undo': { auth: 'bearer', scopes: ['plan'], environment: 'plan' },
  'GET /v1/actions/{planId}/evidence': { auth: 'bearer', scopes: ['read'], environment: 'plan' },
  'GET /v1/actions/{planId}/events': { auth: 'bearer', scopes: ['read'], environment: 'plan' },
  'GET /v1/approvals': { auth: 'bearer', scopes: ['approve', 'read'], environment: 'list' },
  'POST /v1/policy/evaluate': { auth: 'bearer', scopes: ['read'], environment: 'body' },
  'GET /v1/policy/matrix': { auth: 'bearer', scopes: ['read'], environment: 'list' },
  // The kill switch: freezing and lifting are the admin's; anyone who reads sees what holds.
  'POST /v1/freezes': { auth: 'bearer', scopes: ['admin'], environment: 'body' },
  'GET /v1/freezes': { auth: 'bearer', scopes: ['read'], environment: 'list' },
  // `plan` here: the freeze's environment; a freeze of another environment is reported as not found.
  'DELETE /v1/freezes/{id}': { auth: 'bearer', scopes: ['admin'], environment: 'plan' },
  'GET /v1/budgets': { auth: 'bearer', scopes: ['read'], environment: 'none' },
  // The connection doctor: the token's environments (with ?environment=, that one, else 403).
  'GET /v1/doctor': { auth: 'bearer', scopes: ['read'], environment: 'list' },
  // Every chat channel of the registry (src/channels/registry.ts): Slack, the signed webhook, Teams.
  ...Object.fromEntries(CHAT_CHANNELS.map((c) => [`POST ${c.path}`, { auth: 'signature' } as const])),
  // MCP (src/mcp/http.ts): any valid token opens a session; each tool call is then a REST call above,
  // held to that route's scope, environment and action patterns.
  'POST /mcp': { auth: 'bearer', scopes: SCOPES, environment: 'none' },
  'GET /mcp': { auth: 'bearer', scopes: SCOPES, environment: 'none' },
  'DELETE /mcp': { auth: 'bearer', scopes: SCOPES, environment: 'none' },
};

/** `/v1/actions/:planId` (Hono) → `/v1/actions/{planId}` (OpenAPI). */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

/**
 * Every path under /v1/channels/ belongs to the chat channels: one that names no channel is 404 to
 * whoever asks, never a demand for a bearer token that a chat platform cannot send.
 */
const SIGNED_PATHS_PREFIX = '/v1/channels/';

const PATTERNS = Object.entries(ROUTE_ACCESS).map(([key, access]) => {
  const path = key.slice(key.indexOf(' ') + 1);
  const pattern = path
    .split('/')
    .map((seg) => (/^\{[^}]+\}$/.test(seg) ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return { regex: new RegExp(`^${pattern}$`), access };
});

/**
 * Whether a request to this path must carry a bearer token. Decided by the path alone, whatever the
 * method: a wrong method on a public path is then 405, not 401. A path of no entry needs one (401
 * comes before 404), except under the chat channels' prefix.
 */
export function bearerRequired(path: string): boolean {
  if (path.startsWith(SIGNED_PATHS_PREFIX)) return false;
  const entries = PATTERNS.filter((p) => p.regex.test(path));
  return entries.length === 0 || entries.some((p) => p.access.auth === 'bearer');
}

/**
 * Adding a route means deciding who may call it: the app factory calls this with every route it
 * registered (middleware aside), and a route without an entry stops the app from being built, by name.
 */
export function assertEveryRouteHasAccess(routes: readonly { method: string; path: string }[]): void {
  const keys = routes.filter((r) => r.method !== 'ALL' && !r.path.includes('*')).map((r) => `${r.method} ${openApiPath(r.path)}`);
  const missing = [...new Set(keys)].filter((k) => !(k in ROUTE_ACCESS));
  if (missing.length > 0) throw new Error(`${missing.join(', ')}: no entry in ROUTE_ACCESS (src/api/access/route-access.ts); say who may call it there`);
}

