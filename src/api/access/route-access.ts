import { CHAT_CHANNELS } from '../../channels/registry.js';
import { SCOPES, type Scope } from '../../config/schema.js';

/**
 * Who may call each route: the one table the authorization matrix test
 * (test/integration/authz-matrix.test.ts) checks every registered route against. A route missing
 * here fails that test, so adding an endpoint means deciding its access here too. (An entry whose
 * route is not registered is simply not exercised.)
 *
 *  - `public`: no credentials (health, readiness, metrics, the OpenAPI document);
 *  - `signature`: authenticated by a per-request signature (chat channels); bearer tokens grant nothing;
 *  - `bearer`: a token holding ANY of `scopes` (all of them: any valid token), and, for `environment`:
 *     - `body`: the request names an environment the token must have (else 403);
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
