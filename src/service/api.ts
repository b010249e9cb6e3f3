import type { Client } from '@temporalio/client';
import type { Activities } from '../activities/index.js';
import { createApp, type App } from '../api/http/app.js';
import { createApprovalQueue } from '../api/plans/approval-queue.js';
import { createAuthenticator } from '../api/access/auth.js';
import { closeGracefully } from '../api/http/drain.js';
import { createEvidenceDeps } from '../api/plans/evidence-deps.js';
import { createPlanGateway } from '../api/plans/plan-gateway.js';
import { listenApi } from '../api/http/server.js';
import { openSharedApiState } from '../api/access/shared-state.js';
import { reportTokenExpiry } from '../api/access/token-expiry.js';
import type { AuditStore } from '../audit/store.js';
import type { BudgetView } from '../budgets/view.js';
import type { ChannelSettings } from '../channels/settings.js';
import type { Config } from '../config/schema.js';
import type { DispatchJournal } from '../dispatch/journal.js';
import { createDoctor } from '../doctor/probe.js';
import { createFreezeService, registerFreezeGauge } from '../freezes/service.js';
import type { Logger } from '../logging.js';
import { mcpHttpOptions } from '../mcp/http.js';
import type { Metrics } from '../observability/metrics.js';
import { riskMatrix } from '../policy/matrix.js';
import type { TemporalWatch } from '../temporal/watch.js';
import type { BuiltEnvironments } from '../worker/environments.js';
import { apiProbes } from './api-probes.js';
import { scheduleDoctorCheckups } from './doctor-checkups.js';
import { policyPreview } from './policy-preview.js';

/** What the HTTP API is built over: the stores, Temporal and the parts the worker shares with it. */
export interface ApiParts {
  config: Config;
  configPath?: string | undefined;
  log: Logger;
  /** Where `{env: VAR}` secrets are read from (absent: process.env). */
  secrets: { env?: NodeJS.ProcessEnv };
  client: Client;
  watch: TemporalWatch;
  namespace: string;
  taskQueue: string;
  environments: BuiltEnvironments;
  audit: AuditStore;
  /** The dispatch journal where this process shares it with the workers: it keeps the freezes. Absent, freezes are unavailable. */
  sharedJournal?: DispatchJournal | undefined;
  budgets: BudgetView;
  metrics: Metrics;
  render: () => Promise<{ contentType: string; body: string }>;
  activities: Pick<Activities, 'preflight' | 'evaluatePolicy'>;
  channelSettings: ChannelSettings;
  temporalUi?: { baseUrl: string; namespace: string } | undefined;
  stopping: () => boolean;
  /** How long a stopping API lets in-flight requests finish (default 10 s). */
  drainTimeoutMs?: number | undefined;
  /** Registers a stop; the service runs them in reverse order. */
  defer: (stop: () => Promise<void>) => void;
}

/**
 * Builds the HTTP API over its parts and starts listening: the plan gateway (one, which the
 * approval queue reads through too), the freezes where the journal is shared, the probes, the
 * connection doctor and its checkups, and the state replicas share (nonces, rate limits).
 */
export async function startApi(p: ApiParts): Promise<{ app: App; url: string }> {
  const { config, log, client, taskQueue, environments } = p;
  reportTokenExpiry(config.tokens, { gauge: p.metrics.tokenExpiry, log });
  const freezes = p.sharedJournal ? createFreezeService({ journal: p.sharedJournal, audit: p.audit, client, log }) : undefined;
  if (freezes) registerFreezeGauge(p.metrics.registry, freezes, Object.keys(config.environments));
  const shared = await openSharedApiState(config, { configPath: p.configPath, log, ...p.secrets });
  p.defer(() => shared.close());
  const doctor = createDoctor(config, (name) => environments.environments.get(name));
  p.defer(scheduleDoctorCheckups(doctor, log));
  const probes = apiProbes({ client, watch: p.watch, taskQueue, environments: Object.keys(config.environments), ...(freezes ? { freezes } : {}), doctor, stopping: p.stopping });
  const plans = createPlanGateway({ client, taskQueue });
  const app = createApp(
    {
      plans,
      authenticate: createAuthenticator(config.tokens),
      environments: new Set(Object.keys(config.environments)),
      health: probes.health,
      operations: { ready: probes.ready, metrics: p.metrics, render: p.render },
      doctor,
      temporal: p.watch,
      evaluate: policyPreview(p.activities),
      ...(p.temporalUi ? { temporalUi: p.temporalUi } : {}),
      approvals: createApprovalQueue({ client, taskQueue, plans }),
      channels: { settings: p.channelSettings, nonces: shared.nonces, log },
      evidence: createEvidenceDeps({ audit: p.audit, client, namespace: p.namespace, proxmox: (env) => environments.environments.get(env)?.client }),
      inventory: { proxmox: (env) => environments.environments.get(env)?.client },
      riskMatrix: () => riskMatrix(config),
      budgets: p.budgets,
      mcp: mcpHttpOptions(config.server),
      ...(freezes ? { freezes } : {}),
      ...(shared.rateLimit ? { rateLimit: shared.rateLimit } : {}),
      ...(config.server.maxEventStreamsPerToken ? { maxEventStreamsPerToken: config.server.maxEventStreamsPerToken } : {}),
      ...(config.server.cors ? { cors: config.server.cors } : {}),
    },
    log,
  );
  const listening = await listenApi(app.fetch, config.server, { configPath: p.configPath, log });
  p.defer(() => closeGracefully(listening.server, p.drainTimeoutMs ?? 10_000));
  return { app, url: listening.url };
}
