/**
 * A small typed client for the proxmox-agent HTTP API (the CLI uses it; agents and bots may too).
 * Errors are typed: ApiProblemError for a problem+json answer, ApiUnreachableError otherwise. The
 * token is sent only in the Authorization header and never appears in an error.
 */
import { request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import type { ActionRequestInput } from '../domain/request.js';
import type { ApprovalList } from '../api/routes/approvals.js';
import type { catalogSchema } from '../api/routes/catalog.js';
import type { evidenceSchema } from '../api/routes/evidence.js';
import type { healthSchema } from '../api/routes/health.js';
import type { guestDetailSchema, inventorySchema, snapshotsSchema, taskLogSchema, taskSchema } from '../api/routes/inventory.js';
import type { evaluateRequestSchema, evaluateResponseSchema, riskMatrixSchema } from '../api/routes/policy.js';
import type { budgetsReportSchema } from '../api/routes/budgets.js';
import type { doctorReportSchema } from '../api/routes/doctor.js';
import type { applyResponseSchema, approvalResponseSchema, planResponseSchema } from '../api/openapi/schemas.js';
import type { createdFreezeSchema, freezeViewSchema } from '../api/routes/freezes.js';
import type { PlanStatus } from '../domain/lifecycle.js';
import { ApiProblemError, ApiUnreachableError } from './errors.js';
import { parseServerSentEvents } from './sse.js';

export { ApiProblemError, ApiUnreachableError };

// The shapes are the API's own zod schemas (the ones that validate and document it), inferred.
export type Plan = z.infer<typeof planResponseSchema>;
export type ApplyAccepted = z.infer<typeof applyResponseSchema>;
export type ApprovalAccepted = z.infer<typeof approvalResponseSchema>;
export type { ApprovalList };
export type ApprovalSummary = ApprovalList['items'][number];
export type Catalog = z.infer<typeof catalogSchema>;
export type CatalogAction = Catalog['actions'][number];
export type PolicyEvaluationInput = z.input<typeof evaluateRequestSchema>;
export type PolicyEvaluation = z.infer<typeof evaluateResponseSchema>;
export type RiskMatrix = z.infer<typeof riskMatrixSchema>;
export type BudgetsReport = z.infer<typeof budgetsReportSchema>;
export type DoctorReport = z.infer<typeof doctorReportSchema>;
export type EvidenceBundle = z.infer<typeof evidenceSchema>;
export type Health = z.infer<typeof healthSchema>;
export type Freeze = z.infer<typeof freezeViewSchema>;
export type CreatedFreeze = z.infer<typeof createdFreezeSchema>;
export type { ActionRequestInput, PlanStatus };

export type Inventory = z.infer<typeof inventorySchema>;
export type InventoryGuestDetail = z.infer<typeof guestDetailSchema>;
export type InventorySnapshots = z.infer<typeof snapshotsSchema>;
export type InventoryTask = z.infer<typeof taskSchema>;
export type InventoryTaskLog = z.infer<typeof taskLogSchema>;

/** What a `Deprecation` header on an answer says (docs/api-versioning-policy.md). */
export interface DeprecationNotice {
  method: string;
  path: string;
  deprecation: string;
  sunset?: string;
  link?: string;
}

export const TERMINAL: readonly PlanStatus[] = ['succeeded', 'failed', 'rejected', 'expired', 'denied'];

export const DEFAULT_API_URL = 'http://127.0.0.1:8787';

export interface ApiClientOptions {
  baseUrl?: string;
  token: string;
  /** Sent as X-Proxmox-Agent-Channel on approvals: `cli` from the command line, else `api`. */
  channel?: 'api' | 'cli';
  timeoutMs?: number;
  dispatcher?: Dispatcher;
  /** Called when an answer carries a Deprecation header; by default nothing happens. */
  onDeprecation?: (notice: DeprecationNotice) => void;
  /**
   * Send requests through this fetch instead of over the network (undici): the MCP endpoint uses
   * it to call the API's own routes in process (src/mcp/http.ts).
   */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

/** What `send` needs of an answer, from undici or from a fetch Response. */
interface Answer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array> & { text(): Promise<string>; destroy(): unknown };
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

  const urlOf = (path: string) => new URL(path.replace(/^\//, ''), base.href.endsWith('/') ? base.href : `${base.href}/`);

  async function send(method: 'GET' | 'POST' | 'DELETE', path: string, o: { body?: unknown; headers?: Record<string, string>; accept?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Answer> {
    const { body } = o;
    const headers = {
      authorization: `Bearer ${opts.token}`,
      accept: o.accept ?? 'application/json, application/problem+json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...o.headers,
    };
    let res: Answer;
    try {
      res = opts.fetch
        ? fromFetch(
            await opts.fetch(urlOf(path).href, {
              method,
              headers,
              ...(body === undefined ? {} : { body: JSON.stringify(body) }),
              signal: o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs ?? timeoutMs)]) : AbortSignal.timeout(o.timeoutMs ?? timeoutMs),
            }),
          )
        : await request(urlOf(path), {
            method,
            headers,
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
            headersTimeout: o.timeoutMs ?? timeoutMs,
            bodyTimeout: o.timeoutMs ?? timeoutMs,
            ...(o.signal ? { signal: o.signal } : {}),
            ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
          });
    } catch (err) {
      if (o.signal?.aborted) throw err;
      const e = err as { code?: string; message?: string };
      throw new ApiUnreachableError(`cannot reach ${base.origin}: ${e.code ?? e.message ?? String(err)}`);
    }
    const deprecation = res.headers['deprecation'];
    if (deprecation && opts.onDeprecation) {
      const h = (k: string) => (typeof res.headers[k] === 'string' ? (res.headers[k] as string) : undefined);
      opts.onDeprecation({ method, path, deprecation: String(deprecation), ...(h('sunset') ? { sunset: h('sunset')! } : {}), ...(h('link') ? { link: h('link')! } : {}) });
    }
    return res;
  }

  async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    return parse<T>(await send(method, path, { body, headers }));
  }

  async function parse<T>(res: Answer): Promise<T> {
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
    /** Plans the inverse of a plan that succeeded (its one undo); apply it like any plan. */
    undo: (planId: string, reason: string, o: { idempotencyKey?: string } = {}) =>
      call<Plan>('POST', `/v1/actions/${seg(planId)}/undo`, { reason }, o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {}),
    approve: (planId: string, input: ApprovalInput) =>
      call<ApprovalAccepted>('POST', `/v1/actions/${seg(planId)}/approvals`, input, { 'x-proxmox-agent-channel': opts.channel ?? 'api' }),
    /** One page, oldest first; pass the answer's `nextCursor` as `cursor` for the next. */
    listApprovals: (q: { status?: 'pending'; limit?: number; cursor?: string } = {}) =>
      call<ApprovalList>(
        'GET',
        `/v1/approvals?status=${q.status ?? 'pending'}${q.limit ? `&limit=${q.limit}` : ''}${q.cursor ? `&cursor=${encodeURIComponent(q.cursor)}` : ''}`,
      ),
    catalog: () => call<Catalog>('GET', '/v1/catalog'),
    inventory: (environment: string) => call<Inventory>('GET', `/v1/inventory?environment=${seg(environment)}`),
    guest: (environment: string, vmid: number) => call<InventoryGuestDetail>('GET', `/v1/inventory/${seg(environment)}/guests/${vmid}`),
    snapshots: (environment: string, vmid: number) => call<InventorySnapshots>('GET', `/v1/inventory/${seg(environment)}/guests/${vmid}/snapshots`),
    task: (environment: string, upid: string) => call<InventoryTask>('GET', `/v1/inventory/${seg(environment)}/tasks/${seg(upid)}`),
    taskLog: (environment: string, upid: string, page: { start?: number; limit?: number } = {}) =>
      call<InventoryTaskLog>('GET', `/v1/inventory/${seg(environment)}/tasks/${seg(upid)}/log?start=${page.start ?? 0}&limit=${page.limit ?? 500}`),
    evaluate: (req: PolicyEvaluationInput) => call<PolicyEvaluation>('POST', '/v1/policy/evaluate', req),
    /** The policy's effective risk matrix for the token's environments. */
    riskMatrix: () => call<RiskMatrix>('GET', '/v1/policy/matrix'),
    /** The caller's budget usage (every principal's with the admin scope). */
    budgets: () => call<BudgetsReport>('GET', '/v1/budgets'),
    /** The connection doctor: per environment, what keeps this service from doing what the policy allows there. */
    doctor: (environment?: string) => call<DoctorReport>('GET', `/v1/doctor${environment === undefined ? '' : `?environment=${seg(environment)}`}`),
    evidence: (planId: string) => call<EvidenceBundle>('GET', `/v1/actions/${seg(planId)}/evidence`),
    health: () => call<Health>('GET', '/healthz'),
    /** The kill switch (admin scope): from the answer on, no apply starts in the environment. */
    freeze: (environment: string, reason: string) => call<CreatedFreeze>('POST', '/v1/freezes', { environment, reason }),
    freezes: (q: { environment?: string; includeLifted?: boolean } = {}) =>
      call<{ freezes: Freeze[] }>('GET', `/v1/freezes?${new URLSearchParams({ ...(q.environment ? { environment: q.environment } : {}), ...(q.includeLifted ? { includeLifted: 'true' } : {}) })}`),
    /** Lifts a freeze (admin scope); held runs go on. */
    lift: (id: string) => call<Freeze>('DELETE', `/v1/freezes/${seg(id)}`),

    /**
     * Long poll: the plan as soon as its status differs from `status` (default: its status now), or
     * after `waitSeconds` (the server caps it at 60).
     */
    wait: async (planId: string, o: { waitSeconds?: number; status?: PlanStatus; signal?: AbortSignal } = {}) => {
      const wait = Math.max(0, Math.min(60, Math.round(o.waitSeconds ?? 30)));
      const res = await send('GET', `/v1/actions/${seg(planId)}?wait=${wait}s${o.status ? `&status=${o.status}` : ''}`, { timeoutMs: (wait + 15) * 1000, ...(o.signal ? { signal: o.signal } : {}) });
      return parse<Plan>(res);
    },

    /**
     * The plan now, then at every change, until a terminal status: `GET /v1/actions/{planId}/events`
     * (server-sent events). Ends early when `signal` aborts.
     */
    async *events(planId: string, o: { signal?: AbortSignal } = {}): AsyncGenerator<Plan> {
      // Heartbeats arrive every 15 s; a minute of silence means the connection is gone.
      const res = await send('GET', `/v1/actions/${seg(planId)}/events`, { accept: 'text/event-stream, application/problem+json', timeoutMs: 60_000, ...(o.signal ? { signal: o.signal } : {}) });
      if (res.statusCode >= 400) {
        const text = await res.body.text().catch(() => '');
        let problem: unknown = {};
        try {
          problem = JSON.parse(text);
        } catch {
          /* not a problem body */
        }
        throw new ApiProblemError(res.statusCode, problem as ConstructorParameters<typeof ApiProblemError>[1]);
      }
      try {
        for await (const event of parseServerSentEvents(res.body)) {
          if (event.event === 'status') yield JSON.parse(event.data) as Plan;
          else if (event.event === 'error') throw new ApiUnreachableError(`the event stream failed: ${event.data}`);
        }
      } catch (err) {
        if (o.signal?.aborted || err instanceof ApiUnreachableError) throw err;
        throw new ApiUnreachableError(`the event stream from ${base.origin} broke: ${(err as Error).message}`);
      } finally {
        res.body.destroy();
      }
    },
  };
}

export type ApiClient = ReturnType<typeof createApiClient>;

/** A fetch Response as the answer `send` returns (the body is read once: as text, or as a stream). */
function fromFetch(res: Response): Answer {
  const headers: Record<string, string> = {};
  res.headers.forEach((value, key) => {
    headers[key] = value;
  });
  const stream = res.body;
  return {
    statusCode: res.status,
    headers,
    body: {
      text: () => res.text(),
      destroy: () => stream?.cancel().catch(() => undefined),
      async *[Symbol.asyncIterator]() {
        if (!stream) return;
        const reader = stream.getReader();
        try {
          for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) yield chunk.value;
        } finally {
          reader.releaseLock();
        }
      },
    },
  };
}
