import { Client, type Connection } from '@temporalio/client';
import type { Worker, WorkflowBundleOption } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import { createActivities } from './activities/index.js';
import type { App } from './api/http/app.js';
import { openAuditStore } from './audit/open.js';
import type { AuditStore } from './audit/store.js';
import { openBudgetStore } from './budgets/open.js';
import { createBudgetView } from './budgets/view.js';
import { resolveChannelSettings, resolveNotificationTargets } from './channels/settings.js';
import type { Config } from './config/schema.js';
import { openFileDispatchJournal } from './dispatch/file-journal.js';
import { openDispatchJournal } from './dispatch/open.js';
import type { Logger } from './logging.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { observeProxmoxCalls } from './observability/proxmox-calls.js';
import { tracingClientInterceptors, tracingFromEnv, type Tracing } from './observability/tracing.js';
import { startApi } from './service/api.js';
import { metricsPage } from './service/metrics-page.js';
import { workerProbes } from './service/worker-probes.js';
import { startWorkers } from './service/workers.js';
import { connectConnection, connectPatiently, type TemporalConnectionOptions } from './temporal/connection.js';
import { createTemporalWatch } from './temporal/watch.js';
import { buildEnvironments, type BuiltEnvironments, type SimulatorSettings } from './worker/environments.js';
import { startWorkerHttp } from './worker/http.js';

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

/**
 * The composition root: config → Proxmox clients (or demo simulators) → audit store → worker and
 * HTTP API over one Temporal connection. `npm start` and the integration tests both start here.
 */
export async function startService(opts: ServiceOptions): Promise<RunningService> {
  const { config, log } = opts;
  const { namespace, taskQueue } = { namespace: opts.temporal.namespace, taskQueue: config.temporal.taskQueue };
  // Where `{env: VAR}` secrets are read from, for every part that reads one.
  const secrets = opts.env ? { env: opts.env } : {};
  // What to stop, in reverse order of starting.
  const stops: (() => Promise<void>)[] = [];
  const defer = (fn: () => Promise<void>) => void stops.push(fn);
  let stopping = false;
  const stop = async () => {
    stopping = true; // readiness answers 503 from here on
    for (const fn of stops.reverse()) await fn().catch((err) => log.warn({ err }, 'error while stopping'));
  };
  const metrics = createMetrics(opts.metrics?.registry);
  const tracing = opts.tracing === false ? undefined : (opts.tracing ?? tracingFromEnv(opts.env ?? process.env, 'proxmox-agent'));
  try {
    if (tracing) defer(() => tracing.shutdown());

    // Stores: Proxmox (or the simulators), the audit chain, the dispatch journal and the budget ledger.
    const environments = await buildEnvironments(config, { configPath: opts.configPath, simulator: opts.simulator ?? {}, ...secrets, onProxmoxCall: observeProxmoxCalls(metrics) });
    defer(() => environments.close());
    const audit = await openAuditStore(config.audit, { configPath: opts.configPath, log, readOnly: opts.worker === false, ...secrets });
    defer(() => audit.close());
    // Only workers dispatch. An API-only process shares the journal only where it can (PostgreSQL):
    // it keeps the freezes there. On the file store it has none, and answers freezes-unavailable.
    const sharesJournal = opts.worker !== false || config.audit.postgres !== undefined;
    const journal = sharesJournal ? await openDispatchJournal(config.audit, { configPath: opts.configPath, log, ...secrets }) : await openFileDispatchJournal();
    defer(() => journal.close());
    // Workers charge plans against it, the API shows it: one ledger beside the audit store (src/budgets).
    const budgets = await openBudgetStore(config.audit, { configPath: opts.configPath, log, ...secrets });
    defer(() => budgets.close());
    const budgetView = createBudgetView(budgets, () => config.budgets);
    const render = metricsPage({ metrics, budgets: budgetView, limits: () => config.budgets, sdkMetricsUrl: opts.metrics?.sdkMetricsUrl, log });

    // Temporal: one client connection, watched for readiness and the API's fail-fast while Temporal is down (src/temporal/watch.ts).
    const waiting = (what: string) => (err: Error, waitMs: number) => log.warn({ err: err.message, address: opts.temporal.address }, `Temporal is not reachable yet (${what}); trying again in ${waitMs} ms`);
    if (config.temporal.namespace !== namespace) log.info({ namespace, configNamespace: config.temporal.namespace }, 'TEMPORAL_NAMESPACE overrides the config\'s temporal.namespace');
    const watch = createTemporalWatch({ address: opts.temporal.address, namespace, log });
    const connection: Connection = await connectPatiently(() => connectConnection(opts.temporal, { interceptors: watch.interceptors }), { onRetry: waiting('client') });
    defer(() => connection.close());
    await watch.start(connection);
    defer(() => watch.stop());
    const client = new Client({ connection, namespace, ...(tracing ? { interceptors: { workflow: tracingClientInterceptors(tracing) } } : {}) });
    // Links to a run in the Temporal Web UI, in notifications and API answers alike.
    const temporalUi = opts.temporal.uiUrl ? { baseUrl: opts.temporal.uiUrl, namespace } : undefined;

    // Channel secrets are read at boot: a missing one stops the service here, naming the field.
    const channelSettings = resolveChannelSettings(config.channels, { configPath: opts.configPath, ...secrets });
    let url: string | undefined;
    const activities = createActivities({
      environments: environments.environments,
      policy: () => config.policy,
      audit,
      journal,
      notify: {
        targets: resolveNotificationTargets(config.notifications, { configPath: opts.configPath, ...secrets }),
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

    // Workers. Their HTTP server starts before them and stops after them: probes and scrapes see the whole drain.
    let workers: Worker[] = [];
    let workerUrl: string | undefined;
    if (opts.workerHttp) {
      const http = await startWorkerHttp({ host: config.worker.host, port: config.worker.port, metrics: render, ...workerProbes(() => workers, watch, () => stopping) });
      workerUrl = http.url;
      defer(() => http.close());
    }
    if (opts.worker !== false)
      workers = await startWorkers({ temporal: opts.temporal, namespace, taskQueue, activities, config, metrics, log, tracing, workflowBundle: opts.workflowBundle, waiting, defer });

    // The HTTP API.
    let app: App | undefined;
    if (opts.api !== false) {
      const sharedJournal = sharesJournal ? journal : undefined;
      const api = await startApi({ config, configPath: opts.configPath, log, secrets, client, watch, namespace, taskQueue, environments, audit, sharedJournal, budgets: budgetView, metrics, render, activities, channelSettings, temporalUi, stopping: () => stopping, drainTimeoutMs: opts.drainTimeoutMs, defer });
      app = api.app;
      url = api.url;
    }
    return { ...(url ? { url } : {}), ...(app ? { app } : {}), ...(workerUrl ? { workerUrl } : {}), metrics, environments, audit, client, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
