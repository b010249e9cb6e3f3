/**
 * The real Hono app over a stand-in plan gateway, with /mcp mounted, and an MCP client from the
 * official SDK that talks to it through `app.request` (no socket): for the HTTP transport's own rules
 * (origin, host, 401s, sessions) and the tools' mapping of REST answers, without Temporal.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createApp } from '../../src/api/http/app.js';
import { createAuthenticator } from '../../src/api/access/auth.js';
import type { ApiDeps } from '../../src/api/http/context.js';
import type { PlanGateway } from '../../src/api/plans/plan-gateway.js';
import { ApiError } from '../../src/api/http/problems.js';
import type { ApiTokenConfig } from '../../src/config/schema.js';
import type { PlanView } from '../../src/domain/plan-view.js';
import { pendingPlan } from '../channels/helpers/fixtures.js';
import { bearer, testToken } from '../support/tokens.js';

export { bearer };

const token = (id: string, over: Partial<ApiTokenConfig> = {}) => testToken(id, { scopes: ['plan', 'apply', 'read'], ...over });

export const TOKENS: ApiTokenConfig[] = [
  token('agent'),
  token('other'),
  token('reader', { scopes: ['read'] }),
  token('vm-only', { actions: ['vm.*'] }),
  token('lab-only', { environments: ['lab'] }),
  token('expired', { expiresAt: '2020-01-01T00:00:00Z' }),
];

export function mcpApp(over: Partial<ApiDeps> = {}, plans: Partial<PlanGateway> = {}) {
  const planned: string[] = [];
  const stored = pendingPlan();
  const gateway = {
    state: async (planId: string) => {
      if (planId !== stored.planId) throw new ApiError('plan-not-found', `no plan ${planId}`);
      return structuredClone(stored);
    },
    plan: async (input: { planId: string; request: { action: string; environment: string } }) => {
      planned.push(`${input.request.action}@${input.request.environment}`);
      return { ...structuredClone(stored), planId: input.planId, action: input.request.action, environment: input.request.environment } as PlanView;
    },
    apply: async (planId: string) => ({ planId, status: 'awaiting_approval' as const }),
    ...plans,
  } as unknown as PlanGateway;
  const deps: ApiDeps = {
    plans: gateway,
    authenticate: createAuthenticator(TOKENS),
    environments: new Set(['lab', 'prod']),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: async () => {
      throw new Error('not used');
    },
    mcp: { maxSessionsPerToken: 3 },
    ...over,
  };
  return { app: createApp(deps), planned, stored };
}

export type McpApp = ReturnType<typeof createApp>;

/** An SDK client connected to the app's /mcp as `tokenId` (its secret is `<id>-secret`). */
export async function connect(app: McpApp, tokenId: string, headers: Record<string, string> = {}) {
  const client = new Client({ name: 'proxmox-agent-tests', version: '0' });
  const transport = new StreamableHTTPClientTransport(new URL('http://localhost/mcp'), {
    fetch: async (url, init) => app.request(String(url), init),
    requestInit: { headers: { ...bearer(tokenId), ...headers } },
  });
  await client.connect(transport);
  return { client, transport };
}


/** A JSON-RPC initialize request as a client sends it. */
export const initialize = (id = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
});

export const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
