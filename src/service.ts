import { Client, type Connection } from '@temporalio/client';
import type { NativeConnection, Worker, WorkflowBundleOption } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import { createActivities } from './activities/index.js';
import { createApp, type App } from './api/http/app.js';
import { createAuthenticator } from './api/access/auth.js';
import { reportTokenExpiry } from './api/access/token-expiry.js';
import { closeGracefully } from './api/http/drain.js';
import { createHealthCheck, createReadinessCheck } from './api/http/health.js';
import { createDoctor, doctorReadinessDetails } from './doctor/probe.js';
import { createPlanGateway } from './api/plans/plan-gateway.js';
import { createEvidenceDeps } from './api/plans/evidence-deps.js';
import { openSharedApiState } from './api/access/shared-state.js';
import { listenApi } from './api/http/server.js';
import { createApprovalQueue } from './api/plans/approval-queue.js';
import { mcpHttpOptions } from './mcp/http.js';
import { riskMatrix } from './policy/matrix.js';
import { resolveChannelSettings, resolveNotificationTargets } from './channels/settings.js';
import { openAuditStore } from './audit/open.js';
import { openFileDispatchJournal } from './dispatch/file-journal.js';
import { openDispatchJournal } from './dispatch/open.js';
import { createFreezeService, freezeHealth, registerFreezeGauge } from './freezes/service.js';
import { openBudgetStore } from './budgets/open.js';
import { createBudgetView, observeBudgets, type BudgetView } from './budgets/view.js';
import type { AuditStore } from './audit/store.js';
import type { Config } from './config/schema.js';
import type { Logger } from './logging.js';
import { connectConnection, connectPatiently, connectWorkerConnection, type TemporalConnectionOptions } from './temporal/connection.js';
import { createTemporalWatch } from './temporal/watch.js';
import { buildEnvironments, type BuiltEnvironments, type SimulatorSettings } from './worker/environments.js';
import { activityObservability } from './observability/activity-interceptor.js';
import { createMetrics, renderMetrics, type Metrics } from './observability/metrics.js';
import {
  OTEL_WORKFLOW_INTERCEPTORS,
  tracingActivityInterceptors,
  tracingClientInterceptors,
  tracingFromEnv,
  tracingSinks,
  type Tracing,
} from './observability/tracing.js';
import { startWorkerHttp, type Probe } from './worker/http.js';
import { createWorkers } from './worker/worker.js';
import { unreadablePreflight } from './domain/plan-view.js';

export interface ServiceOptions {
  config: Config;
  configPath?: string;
  temporal: TemporalConnectionOptions & { uiUrl?: string };
  log: Logger;
  /** Run the HTTP API (default true). */
  api?: boolean;
  /** Run a worker (default true). */
  worker?: boolean;
  simulator?: SimulatorSettings;
  /** Prebuilt workflow code (tests; `dist/` in an image); otherwise bundled from source at start. */
  workflowBundle?: WorkflowBundleOption;
  /** Proxmox task polling interval (default 1 s; tests use less). */
  pollIntervalMs?: number;
  /** Where `{env: VAR}` secrets are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The process's metrics registry (default: a new one), and the Temporal SDK's Prometheus endpoint to append to `/metrics`. */
  metrics?: { registry?: Registry; sdkMetricsUrl?: string };
  /** OpenTelemetry tracing; default: from OTEL_EXPORTER_OTLP_ENDPOINT (src/observability/tracing.ts), off when unset. */
  tracing?: Tracing | false;
  /** Serve /metrics, /healthz and /readyz on `config.worker.host:port` (the worker-only process). */
  workerHttp?: boolean;
  /** How long a stopping API lets in-flight requests finish before closing their connections (default 10 s). */
  drainTimeoutMs?: number;
}

export interface RunningService {
  /** Base URL of the HTTP API, when it runs. */
  url?: string;
  environments: BuiltEnvironments;
  audit: AuditStore;
  client: Client;
  /** The HTTP app, when the API runs (its route table is what the authorization matrix test walks). */
  app?: App;
  /** Base URL of the worker process's HTTP server, when `workerHttp`. */
  workerUrl?: string;
  metrics: Metrics;
  stop(): Promise<void>;
}

/** How often the connection doctor re-checks every environment for /readyz's details. */
const DOCTOR_INTERVAL_MS = 5 * 60_000;

/**
 * The composition root: config → Proxmox clients (or demo simulators) → audit store → worker and
 * HTTP API over one Temporal connection. `npm start` and the integration tests both start here.
 */
export async function startService(opts: ServiceOptions): Promise<RunningService> {
  const { config, log } = opts;
  const { namespace, taskQueue } = { namespace: opts.temporal.namespace, taskQueue: config.temporal.taskQueue };
  const stops: (() => Promise<void>)[] = [];
  let stopping = false;
  const stop = async () => {
    stopping = true; // readiness answers 503 from here on
    for (const fn of stops.reverse()) await fn().catch((err) => log.warn({ err }, 'error while stopping'));
  };
  const metrics = createMetrics(opts.metrics?.registry);
  let budgetView: BudgetView | undefined;
  const render = async () => {
    // Budget usage lives in the shared ledger: read it at each scrape, not tracked per process.
    if (budgetView && Object.keys(config.budgets).length > 0)
      await observeBudgets(budgetView, { used: metrics.budgetUsed, limit: metrics.budgetLimit }).catch((err: Error) => log.warn({ err: err.message }, 'cannot read the budget ledger for /metrics'));
    return renderMetrics(metrics.registry, opts.metrics?.sdkMetricsUrl);
  };
  const tracing = opts.tracing === false ? undefined : (opts.tracing ?? tracingFromEnv(opts.env ?? process.env, 'proxmox-agent'));
  try {
    if (tracing) stops.push(() => tracing.shutdown());
    const environments = await buildEnvironments(config, {
      configPath: opts.configPath,
      simulator: opts.simulator ?? {},
      ...(opts.env ? { env: opts.env } : {}),
      onProxmoxCall: (environment, call) => {
        const outcome = call.error ? 'error' : 'ok';
        metrics.proxmoxDuration.observe({ environment, method: call.method, route: call.route, outcome }, call.durationMs / 1000);
        if (call.error) metrics.proxmoxErrors.inc({ environment, method: call.method, route: call.route, error: call.error, status: String(call.status ?? 'none') });
      },
    });
    stops.push(() => environments.close());
    const audit = await openAuditStore(config.audit, { configPath: opts.configPath, log, readOnly: opts.worker === false, ...(opts.env ? { env: opts.env } : {}) });
    stops.push(() => audit.close());
    // Only workers dispatch. An API-only process shares the journal only where it can (PostgreSQL):
    // it keeps the freezes there. On the file store it has none, and answers freezes-unavailable.
    const sharesJournal = opts.worker !== false || config.audit.postgres !== undefined;
    const journal = sharesJournal ? await openDispatchJournal(config.audit, { configPath: opts.configPath, log, ...(opts.env ? { env: opts.env } : {}) }) : await openFileDispatchJournal();
    stops.push(() => journal.close());
    // Workers charge plans against it, the API shows it: one ledger beside the audit store (src/budgets).
    const budgets = await openBudgetStore(config.audit, { configPath: opts.configPath, log, ...(opts.env ? { env: opts.env } : {}) });
    stops.push(() => budgets.close());
    budgetView = createBudgetView(budgets, () => config.budgets);

    const waiting = (what: string) => (err: Error, waitMs: number) => log.warn({ err: err.message, address: opts.temporal.address }, `Temporal is not reachable yet (${what}); trying again in ${waitMs} ms`);
    if (config.temporal.namespace !== namespace) log.info({ namespace, configNamespace: config.temporal.namespace }, 'TEMPORAL_NAMESPACE overrides the config\'s temporal.namespace');
    // Readiness of both roles and the API's fail-fast while Temporal is down (src/temporal/watch.ts).
    const watch = createTemporalWatch({ address: opts.temporal.address, namespace, log });
    const connection: Connection = await connectPatiently(() => connectConnection(opts.temporal, { interceptors: watch.interceptors }), { onRetry: waiting('client') });
    stops.push(() => connection.close());
    await watch.start(connection);
    stops.push(() => watch.stop());
    const client = new Client({ connection, namespace, ...(tracing ? { interceptors: { workflow: tracingClientInterceptors(tracing) } } : {}) });

    // Channel secrets are read at boot: a missing one stops the service here, naming the field.
    const channelSettings = resolveChannelSettings(config.channels, { configPath: opts.configPath, ...(opts.env ? { env: opts.env } : {}) });
    const temporalUi = opts.temporal.uiUrl ? { baseUrl: opts.temporal.uiUrl, namespace } : undefined;
    let url: string | undefined;
    const activities = createActivities({
      environments: environments.environments,
      policy: () => config.policy,
      audit,
      journal,
      notify: {
        targets: resolveNotificationTargets(config.notifications, { configPath: opts.configPath, ...(opts.env ? { env: opts.env } : {}) }),
        ...(channelSettings.slack?.post ? { slack: channelSettings.slack.post } : {}),
        links: () => ({ apiBaseUrl: config.notifications.apiBaseUrl ?? url, ...(temporalUi ? { temporalUi } : {}) }),
      },
      ...(opts.pollIntervalMs === undefined ? {} : { pollIntervalMs: opts.pollIntervalMs }),
      budgets: {
        store: budgets,
        limits: () => config.budgets,
        onRefusal: (r) => metrics.budgetRefusals.inc({ principal: r.principal, budget: r.budget }),
      },
    });

    let workers: Worker[] = [];
    let workerUrl: string | undefined;
    // Started before the workers and stopped after them: probes and scrapes see the whole drain.
    if (opts.workerHttp) {
      // Temporal's side from the watch (this process's own probe of the frontend), the workers' from the SDK.
      const health = (): Probe => {
        const idle = workers.filter((w) => w.getState() !== 'RUNNING' || w.getStatus().activityPollerState !== 'POLLING');
        const polling = idle.length === 0 && workers.length > 0;
        const temporal = watch.status();
        const checks = {
          ...temporal.checks,
          workers: polling
            ? { ok: true, detail: `${workers.length} worker(s) polling: ${workers.map((w) => w.options.taskQueue).join(', ')}` }
            : { ok: false, detail: `not polling: ${idle.map((w) => `${w.options.taskQueue} (${w.getState()})`).join(', ') || 'no workers'}` },
        };
        const failing = Object.values(checks).filter((c) => !c.ok);
        return { ok: failing.length === 0, detail: failing.length === 0 ? checks.workers.detail : failing.map((c) => c.detail).join('; '), checks };
      };
      const http = await startWorkerHttp({
        host: config.worker.host,
        port: config.worker.port,
        metrics: render,
        health,
        ready: () => (stopping ? { ok: false, detail: 'shutting down', checks: { process: { ok: false, detail: 'shutting down' } } } : health()),
      });
      workerUrl = http.url;
      stops.push(() => http.close());
    }

    if (opts.worker !== false) {
      const nativeConnection: NativeConnection = await connectPatiently(() => connectWorkerConnection(opts.temporal), { onRetry: waiting('worker') });
      stops.push(() => nativeConnection.close());
      // Workflow interceptors live in the bundle: with tracing on, the workflows are bundled here.
      const bundle = tracing ? undefined : opts.workflowBundle;
      // Worker.create describes the namespace: a Temporal that went down after the connection was
      // made (a restart) is waited for here too, instead of the process exiting.
      workers = await connectPatiently(() => createWorkers({
        connection: nativeConnection,
        namespace,
        taskQueue,
        activities,
        environments: config.environments,
        tuning: config.worker,
        activityInterceptors: [activityObservability({ metrics, log }), ...(tracing ? [tracingActivityInterceptors(tracing)] : [])],
        ...(bundle ? { workflowBundle: bundle } : {}),
        ...(tracing ? { workflowInterceptorModules: [OTEL_WORKFLOW_INTERCEPTORS], sinks: tracingSinks(tracing) } : {}),
      }), { onRetry: waiting('worker start') });
      const running = workers.map((worker) => {
        const run = worker.run();
        run.catch((err) => log.error({ err, taskQueue: worker.options.taskQueue }, 'worker stopped with an error'));
        return run;
      });
      // All at once: each waits up to shutdownGraceSeconds for its in-flight activities.
      stops.push(async () => {
        for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
        await Promise.allSettled(running);
      });
    }

    let app: App | undefined;
    if (opts.api !== false) {
      reportTokenExpiry(config.tokens, { gauge: metrics.tokenExpiry, log });
      const health = createHealthCheck(client, watch, taskQueue, Object.keys(config.environments));
      const freezes = sharesJournal ? createFreezeService({ journal, audit, client, log }) : undefined;
      if (freezes) registerFreezeGauge(metrics.registry, freezes, Object.keys(config.environments));
      const shared = await openSharedApiState(config, { configPath: opts.configPath, log, ...(opts.env ? { env: opts.env } : {}) });
      stops.push(() => shared.close());
      // The connection doctor runs at start and every few minutes for /readyz's details; GET /v1/doctor asks afresh.
      const doctor = createDoctor(config, (name) => environments.environments.get(name));
      const checkup = () =>
        doctor
          .run()
          .then((reports) => {
            for (const r of reports) {
              const blockers = r.checks.filter((c) => !c.ok && c.severity === 'blocker');
              if (blockers.length > 0) log.warn({ environment: r.environment, blockers: blockers.map((b) => b.detail) }, 'connection doctor: blockers (GET /v1/doctor or proxmox-agent doctor for the fixes)');
            }
          })
          .catch((err: Error) => log.warn({ err: err.message }, 'connection doctor failed'));
      void checkup();
      const checkups = setInterval(() => void checkup(), DOCTOR_INTERVAL_MS);
      checkups.unref();
      stops.push(async () => clearInterval(checkups));
      app = createApp(
        {
          plans: createPlanGateway({ client, taskQueue }),
          authenticate: createAuthenticator(config.tokens),
          environments: new Set(Object.keys(config.environments)),
          health: async () => {
            const report = await health();
            if (!freezes) return report;
            const frozen = await freezeHealth(freezes);
            return { ok: report.ok && frozen.ok, checks: { ...report.checks, freezes: frozen } };
          },
          operations: { ready: createReadinessCheck(watch, () => stopping, () => doctorReadinessDetails(doctor)), metrics, render },
          doctor,
          temporal: watch,
          evaluate: async (request, at) => {
            // The same preflight and policy the workflow runs, called directly: nothing is started.
            const preflight = await activities.preflight({ request }).catch((err: Error) => unreadablePreflight(err.message, new Date().toISOString()));
            return { preflight, decision: await activities.evaluatePolicy({ request, preflight, at: at.toISOString() }) };
          },
          ...(opts.temporal.uiUrl ? { temporalUi: { baseUrl: opts.temporal.uiUrl, namespace } } : {}),
          approvals: createApprovalQueue({ client, taskQueue, plans: createPlanGateway({ client, taskQueue }) }),
          channels: { settings: channelSettings, nonces: shared.nonces, log },
          evidence: createEvidenceDeps({ audit, client, namespace, proxmox: (env) => environments.environments.get(env)?.client }),
          inventory: { proxmox: (env) => environments.environments.get(env)?.client },
          riskMatrix: () => riskMatrix(config),
          budgets: budgetView,
          mcp: mcpHttpOptions(config.server),
          ...(freezes ? { freezes } : {}),
          ...(shared.rateLimit ? { rateLimit: shared.rateLimit } : {}),
          ...(config.server.maxEventStreamsPerToken ? { maxEventStreamsPerToken: config.server.maxEventStreamsPerToken } : {}),
          ...(config.server.cors ? { cors: config.server.cors } : {}),
        },
        log,
      );
      const listening = await listenApi(app.fetch, config.server, { configPath: opts.configPath, log });
      const server = listening.server;
      url = listening.url;
      stops.push(() => closeGracefully(server, opts.drainTimeoutMs ?? 10_000));
    }
    return { ...(url ? { url } : {}), ...(app ? { app } : {}), ...(workerUrl ? { workerUrl } : {}), metrics, environments, audit, client, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
