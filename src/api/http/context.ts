import type { Caller } from '../access/auth.js';
import type { PlanGateway } from '../plans/plan-gateway.js';
import type { RateLimiter } from '../access/rate-limit.js';
import type { EvidenceDeps } from '../routes/evidence.js';
import type { ApprovalQueue } from '../plans/approval-queue.js';
import type { OperationsDeps } from './operations.js';
import type { ChannelEndpointDeps } from '../routes/channels.js';
import type { NormalizedRequest } from '../../domain/request.js';
import type { InventoryDeps } from '../routes/inventory.js';
import type { Preflight } from '../../domain/plan-view.js';
import type { PolicyDecision } from '../../policy/engine.js';
import type { RiskMatrix } from '../../policy/matrix.js';
import type { McpHttpOptions } from '../../mcp/http.js';
import type { TemporalWatch } from '../../temporal/watch.js';
import type { FreezeService } from '../../freezes/service.js';
import type { BudgetView } from '../../budgets/view.js';
import type { Doctor } from '../../doctor/probe.js';

/** What the HTTP layer needs from the rest of the service: injected, never imported as singletons. */
export interface ApiDeps {
  plans: PlanGateway;
  authenticate: (authorization: string | undefined) => Caller;
  /** Names of the configured environments. */
  environments: ReadonlySet<string>;
  /** Liveness of the things the API depends on: Temporal reachable, a worker polling. */
  health: () => Promise<HealthReport>;
  /** Base URL of the Temporal Web UI and the namespace, for links in responses. */
  temporalUi?: { baseUrl: string; namespace: string };
  /** Plans awaiting approval, from Temporal visibility (GET /v1/approvals). */
  approvals?: ApprovalQueue;
  /** Signed chat endpoints under /v1/channels; absent, they answer 404. */
  channels?: ChannelEndpointDeps;
  /** Preflight + policy for a request, without starting a run (POST /v1/policy/evaluate). */
  evaluate: (request: NormalizedRequest, at: Date) => Promise<{ preflight: Preflight; decision: PolicyDecision }>;
  /** The running policy's risk matrix (GET /v1/policy/matrix); absent, that route answers 404. */
  riskMatrix?: () => RiskMatrix;
  /** Per-principal budget usage (GET /v1/budgets); absent, that route answers 404. */
  budgets?: BudgetView;
  /** MCP over Streamable HTTP at /mcp (src/mcp/http.ts); absent, /mcp is not served. */
  mcp?: McpHttpOptions;
  /** The audit log, run inputs and Proxmox task logs (GET /v1/actions/{planId}/evidence); absent, 404. */
  evidence?: EvidenceDeps;
  /** Per-token request limit; absent, unlimited. */
  /** Proxmox reads for GET /v1/inventory…; absent, those routes answer 400 for every environment. */
  inventory?: InventoryDeps;
  rateLimit?: RateLimiter;
  /** Event streams a token may hold open at once (GET /v1/actions/{planId}/events); default 8. */
  maxEventStreamsPerToken?: number;
  /** Browser origins allowed to call /v1/*; absent, CORS is off. */
  cors?: { origins: readonly string[] };
  /**
   * What the process knows of its Temporal namespace (src/temporal/watch.ts): problems name an
   * outage or a missing search attribute precisely; absent (tests with a stand-in gateway), they are generic.
   */
  temporal?: Pick<TemporalWatch, 'status' | 'recheck' | 'registerCommand'>;
  /** The kill switch (GET/POST /v1/freezes, DELETE /v1/freezes/{id}); absent, those routes answer 503 freezes-unavailable. */
  freezes?: FreezeService;
  /** The connection doctor (GET /v1/doctor, src/doctor); absent, that route answers 404. */
  doctor?: Doctor;
  /** `/readyz`, `/metrics` and request metrics (src/api/http/operations.ts); absent, neither route exists. */
  operations?: OperationsDeps;
}

export interface HealthReport {
  ok: boolean;
  checks: Record<string, { ok: boolean; detail: string }>;
}

export interface AppEnv {
  Variables: {
    caller: Caller;
  };
}
