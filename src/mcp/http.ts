/**
 * MCP over Streamable HTTP at /mcp on the API (the MCP spec's transport, 2025-11-25 and the versions
 * before it that the SDK negotiates). Each request is checked, in this order:
 *
 * 1. `Origin`, when a browser sends one, must be one of `server.cors.origins` (DNS rebinding), and the
 *    `Host` must be one of `server.mcp.allowedHosts` (default: the loopback names when the API listens
 *    on loopback): 403 otherwise.
 * 2. The bearer token, with the API's own authenticator: 401 with `WWW-Authenticate: Bearer …` when it
 *    is missing, unknown or expired (RFC 6750). Tokens go in the Authorization header only, never in
 *    the URL.
 * 3. The session (`Mcp-Session-Id`), which belongs to the token that opened it: another token's session
 *    is "not found" (404), so a session id is no credential.
 *
 * Each session is one MCP server whose tools call the REST routes of this same app in process
 * (`app.request`), with the caller's Authorization header: validation, scopes, environments, action
 * patterns, the rate limit and the problems are REST's own, not a copy.
 */
import { randomUUID } from 'node:crypto';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createApiClient } from '../client/index.js';
import { isLoopback } from '../api/http/server.js';
import type { ApiDeps, AppEnv } from '../api/http/context.js';
import type { Caller } from '../api/access/auth.js';
import { ApiError } from '../api/http/problems.js';
import { DEFAULT_MCP_SESSIONS_PER_TOKEN, type ServerConfig } from '../config/security.js';
import type { Logger } from '../logging.js';
import { createMcpServer } from './server.js';

export const MCP_PATH = '/mcp';
export const MAX_MCP_BODY_BYTES = 256 * 1024;
/** A session no request has used for this long, and that holds no open stream, is closed. */
export const MCP_SESSION_IDLE_MS = 30 * 60_000;
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

export interface McpHttpOptions {
  /** Host header names (without port) /mcp answers; undefined: any. */
  allowedHosts?: readonly string[];
  /** Sessions one token may hold; opening another closes its least recently used. */
  maxSessionsPerToken: number;
  idleMs?: number;
}

/** The options `server` implies, or undefined when `server.mcp.enabled` is false. */
export function mcpHttpOptions(server: Pick<ServerConfig, 'host' | 'mcp'>): McpHttpOptions | undefined {
  if (server.mcp?.enabled === false) return undefined;
  const allowedHosts = server.mcp?.allowedHosts ?? (isLoopback(server.host) ? LOOPBACK_HOSTS : undefined);
  return { maxSessionsPerToken: server.mcp?.maxSessionsPerToken ?? DEFAULT_MCP_SESSIONS_PER_TOKEN, ...(allowedHosts ? { allowedHosts } : {}) };
}

interface Session {
  id: string;
  tokenId: string;
  server: McpServer;
  transport: WebStandardStreamableHTTPServerTransport;
  lastUsed: number;
  /** Requests in flight, SSE streams included. */
  open: number;
}

export function registerMcpRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps, log?: Logger): void {
  const opts = deps.mcp;
  if (!opts) return;
  const origins = new Set(deps.cors?.origins ?? []);
  const hosts = opts.allowedHosts ? new Set(opts.allowedHosts.map((h) => h.toLowerCase())) : undefined;
  const sessions = createSessionStore(opts);

  if (deps.cors) {
    app.use(
      MCP_PATH,
      cors({
        origin: [...deps.cors.origins],
        allowMethods: ['GET', 'POST', 'DELETE'],
        allowHeaders: ['authorization', 'content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'],
        exposeHeaders: ['mcp-session-id', 'www-authenticate'],
        maxAge: 600,
      }),
    );
  }
  app.use(MCP_PATH, bodyLimit({ maxSize: MAX_MCP_BODY_BYTES, onError: () => { throw new ApiError('payload-too-large', `at most ${MAX_MCP_BODY_BYTES} bytes`); } }));

  const handle = async (c: Context<AppEnv>): Promise<Response> => {
    const origin = c.req.header('origin');
    if (origin !== undefined && !origins.has(origin))
      throw new ApiError('forbidden', `Origin ${origin} may not call ${MCP_PATH} (allowed: server.cors.origins${origins.size ? `: ${[...origins].join(', ')}` : ', none configured'})`);
    const host = hostName(c.req.header('host'));
    if (hosts && !(host && hosts.has(host))) throw new ApiError('forbidden', `Host ${host ?? '(none)'} is not served at ${MCP_PATH} (server.mcp.allowedHosts)`);
    const caller = authenticate(deps, c.req.header('authorization'));
    const token = c.req.header('authorization')!.replace(/^Bearer\s+/i, '').trim();
    const authInfo = { token, clientId: caller.tokenId, scopes: [...caller.scopes], extra: { principal: caller.principal } };

    let parsedBody: unknown;
    if (c.req.method === 'POST') {
      try {
        parsedBody = JSON.parse(await c.req.text());
      } catch {
        return jsonRpcError(400, -32700, 'Parse error: the body is not JSON');
      }
    }

    const sessionId = c.req.header('mcp-session-id');
    let session: Session | undefined;
    if (sessionId !== undefined) {
      session = sessions.get(sessionId, caller.tokenId);
      if (!session) return jsonRpcError(404, -32001, 'Session not found: initialize a new one');
    } else {
      if (c.req.method !== 'POST' || !isInitializeRequest(parsedBody)) return jsonRpcError(400, -32000, 'Bad Request: send Mcp-Session-Id, or initialize a session first');
      session = await open(caller, token);
    }
    session.open++;
    try {
      const res = await session.transport.handleRequest(c.req.raw, { ...(parsedBody === undefined ? {} : { parsedBody }), authInfo });
      return whenBodyEnds(res, () => session.open--);
    } catch (err) {
      session.open--;
      throw err;
    }
  };
  app.post(MCP_PATH, handle);
  app.get(MCP_PATH, handle);
  app.delete(MCP_PATH, handle);

  /** A new session: an MCP server whose API client calls this app's routes with the caller's token. */
  async function open(caller: Caller, token: string): Promise<Session> {
    const api = createApiClient({ baseUrl: 'http://proxmox-agent.internal', token, channel: 'api', fetch: async (url, init) => app.request(url, init) });
    const server = createMcpServer(api);
    const session: Session = {
      id: '',
      tokenId: caller.tokenId,
      server,
      lastUsed: Date.now(),
      open: 0,
      transport: new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          session.id = id;
          sessions.add(session);
        },
      }),
    };
    server.server.onerror = (err) => log?.debug({ err: err.message, tokenId: caller.tokenId }, 'MCP session error');
    const closed = server.server.onclose;
    server.server.onclose = () => {
      closed?.();
      sessions.remove(session);
    };
    await server.connect(session.transport);
    return session;
  }
}

/** The API's authenticator; its refusal becomes the 401 the MCP spec wants, with WWW-Authenticate. */
function authenticate(deps: ApiDeps, authorization: string | undefined): Caller {
  try {
    return deps.authenticate(authorization);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'unauthenticated') {
      // RFC 6750 §3: no error code when no credentials were sent; invalid_token for a bad or expired one.
      const challenge = authorization?.trim()
        ? `Bearer realm="proxmox-agent", error="invalid_token", error_description="${err.message.replace(/["\\]/g, "'")}"`
        : 'Bearer realm="proxmox-agent"';
      throw new ApiError('unauthenticated', err.message, {}, { 'www-authenticate': challenge });
    }
    throw err;
  }
}

function createSessionStore(opts: McpHttpOptions) {
  const idleMs = opts.idleMs ?? MCP_SESSION_IDLE_MS;
  const byId = new Map<string, Session>();
  let sweeper: NodeJS.Timeout | undefined;
  const close = (s: Session) => {
    byId.delete(s.id);
    void s.server.close().catch(() => undefined);
  };
  const sweep = () => {
    const now = Date.now();
    for (const s of byId.values()) if (s.open === 0 && now - s.lastUsed > idleMs) close(s);
    if (byId.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };
  return {
    get(id: string, tokenId: string): Session | undefined {
      const s = byId.get(id);
      if (!s || s.tokenId !== tokenId) return undefined;
      s.lastUsed = Date.now();
      return s;
    },
    add(session: Session): void {
      const mine = [...byId.values()].filter((s) => s.tokenId === session.tokenId).sort((a, b) => a.lastUsed - b.lastUsed);
      for (const s of mine.slice(0, Math.max(0, mine.length - opts.maxSessionsPerToken + 1))) close(s);
      byId.set(session.id, session);
      sweeper ??= setInterval(sweep, Math.min(60_000, idleMs)).unref();
    },
    remove(session: Session): void {
      if (byId.get(session.id) === session) byId.delete(session.id);
    },
  };
}

/** `example.com:8787` → `example.com`; `[::1]:8787` → `[::1]`; lower case. */
function hostName(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const m = /^(\[[^\]]+\]|[^:]+)(:\d+)?$/.exec(host.trim().toLowerCase());
  return m?.[1];
}

function jsonRpcError(status: number, code: number, message: string): Response {
  return Response.json({ jsonrpc: '2.0', error: { code, message }, id: null }, { status });
}

/** Calls `done` once the response body has been sent, or at once when there is none (an SSE stream ends when its client leaves). */
function whenBodyEnds(res: Response, done: () => void): Response {
  let finished = false;
  const end = () => {
    if (!finished) {
      finished = true;
      done();
    }
  };
  if (!res.body) {
    end();
    return res;
  }
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = await reader.read();
        if (chunk.done) {
          end();
          controller.close();
        } else controller.enqueue(chunk.value);
      } catch (err) {
        end();
        controller.error(err);
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}
