/**
 * A small typed client for the proxmox-agent HTTP API (the CLI uses it; agents and bots may too).
 * Errors are typed: ApiProblemError for a problem+json answer, ApiUnreachableError otherwise. The
 * token is sent only in the Authorization header and never appears in an error.
 */
import { request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import type { ActionRequestInput } from '../domain/request.js';
import type { ApprovalList } from '../api/routes/approvals.js';
import type { applyResponseSchema, approvalResponseSchema, planResponseSchema } from '../api/schemas.js';
import { ApiProblemError, ApiUnreachableError } from './errors.js';

export { ApiProblemError, ApiUnreachableError };

export type Plan = z.infer<typeof planResponseSchema>;
export type ApplyAccepted = z.infer<typeof applyResponseSchema>;
export type ApprovalAccepted = z.infer<typeof approvalResponseSchema>;
export type { ApprovalList };
export type ApprovalSummary = ApprovalList['items'][number];

export const DEFAULT_API_URL = 'http://127.0.0.1:8787';

export interface ApiClientOptions {
  baseUrl?: string;
  token: string;
  /** Sent as X-Proxmox-Agent-Channel on approvals: `cli` from the command line, else `api`. */
  channel?: 'api' | 'cli';
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

export interface ApprovalInput {
  decision: 'approve' | 'reject';
  comment?: string;
  /** The hash you reviewed: the approval then counts only for exactly that request. */
  requestHash?: string;
}

export function createApiClient(opts: ApiClientOptions) {
  const base = new URL(opts.baseUrl ?? DEFAULT_API_URL);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`the API URL must be http(s), got ${base.protocol}`);
  const timeoutMs = opts.timeoutMs ?? 30_000;

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const url = new URL(path.replace(/^\//, ''), base.href.endsWith('/') ? base.href : `${base.href}/`);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method,
        headers: {
          authorization: `Bearer ${opts.token}`,
          accept: 'application/json, application/problem+json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
      });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      throw new ApiUnreachableError(`cannot reach ${base.origin}: ${e.code ?? e.message ?? String(err)}`);
    }
    const text = await res.body.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ApiUnreachableError(`${base.origin} answered HTTP ${res.statusCode} with a body that is not JSON; is this the proxmox-agent API?`);
    }
    if (res.statusCode >= 400) throw new ApiProblemError(res.statusCode, (parsed ?? {}) as ConstructorParameters<typeof ApiProblemError>[1]);
    return parsed as T;
  }

  const seg = (s: string) => encodeURIComponent(s);

  return {
    baseUrl: base.origin + base.pathname.replace(/\/$/, ''),
    plan: (req: ActionRequestInput, o: { idempotencyKey?: string } = {}) =>
      call<Plan>('POST', '/v1/actions/plan', req, o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {}),
    apply: (planId: string, requestHash: string) => call<ApplyAccepted>('POST', '/v1/actions/apply', { planId, requestHash }),
    get: (planId: string) => call<Plan>('GET', `/v1/actions/${seg(planId)}`),
    approve: (planId: string, input: ApprovalInput) =>
      call<ApprovalAccepted>('POST', `/v1/actions/${seg(planId)}/approvals`, input, { 'x-proxmox-agent-channel': opts.channel ?? 'api' }),
    listApprovals: (q: { status?: 'pending'; limit?: number } = {}) =>
      call<ApprovalList>('GET', `/v1/approvals?status=${q.status ?? 'pending'}${q.limit ? `&limit=${q.limit}` : ''}`),
  };
}

export type ApiClient = ReturnType<typeof createApiClient>;
