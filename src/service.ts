import { Client, type Connection } from '@temporalio/client';
import type { NativeConnection, Worker, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from './activities/index.js';
import { createApp, type App } from './api/app.js';
import { createAuthenticator } from './api/auth.js';
import { createHealthCheck } from './api/health.js';
import { createPlanGateway } from './api/plan-gateway.js';
import { createEvidenceDeps } from './api/evidence-deps.js';
import { createRateLimiter } from './api/rate-limit.js';
import { listenApi } from './api/server.js';
import { createApprovalQueue } from './api/approval-queue.js';
import { createNonceCache } from './channels/nonce-cache.js';
import { resolveChannelSettings, resolveNotificationTargets } from './channels/settings.js';
import { openAuditStore } from './audit/open.js';
import type { AuditStore } from './audit/store.js';
import type { Config } from './config/schema.js';
import type { Logger } from './logging.js';
import { connectConnection, connectWorkerConnection, type TemporalConnectionOptions } from './temporal/connection.js';
import { buildEnvironments, type BuiltEnvironments, type SimulatorSettings } from './worker/environments.js';
import { createWorker } from './worker/worker.js';

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
  workflowBundle?: WorkflowBundleWithSourceMap;
  /** Proxmox task polling interval (default 1 s; tests use less). */
  pollIntervalMs?: number;
  /** Where `{env: VAR}` secrets are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface RunningService {
  /** Base URL of the HTTP API, when it runs. */
  url?: string;
  environments: BuiltEnvironments;
  audit: AuditStore;
  client: Client;
  /** The HTTP app, when the API runs (its route table is what the authorization matrix test walks). */
  app?: App;
  stop(): Promise<void>;
}

/**
 * The composition root: config → Proxmox clients (or demo simulators) → audit store → worker and
 * HTTP API over one Temporal connection. `npm start` and the integration tests both start here.
 */
export async function startService(opts: ServiceOptions): Promise<RunningService> {
  const { config, log } = opts;
  const { namespace, taskQueue } = { namespace: opts.temporal.namespace, taskQueue: config.temporal.taskQueue };
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch((err) => log.warn({ err }, 'error while stopping'));
  };
  try {
    const environments = await buildEnvironments(config, { configPath: opts.configPath, simulator: opts.simulator ?? {}, ...(opts.env ? { env: opts.env } : {}) });
    stops.push(() => environments.close());
    const audit = await openAuditStore(config.audit, { configPath: opts.configPath, log, readOnly: opts.worker === false, ...(opts.env ? { env: opts.env } : {}) });
    stops.push(() => audit.close());

    const connection: Connection = await connectConnection(opts.temporal);
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace });

    // Channel secrets are read at boot: a missing one stops the service here, naming the field.
    const channelSettings = resolveChannelSettings(config.channels, { configPath: opts.configPath, ...(opts.env ? { env: opts.env } : {}) });
    const temporalUi = opts.temporal.uiUrl ? { baseUrl: opts.temporal.uiUrl, namespace } : undefined;
    let url: string | undefined;
    const activities = createActivities({
      environments: environments.environments,
      policy: () => config.policy,
      audit,
      notify: {
        targets: resolveNotificationTargets(config.notifications, { configPath: opts.configPath, ...(opts.env ? { env: opts.env } : {}) }),
        links: () => ({ apiBaseUrl: config.notifications.apiBaseUrl ?? url, ...(temporalUi ? { temporalUi } : {}) }),
      },
      ...(opts.pollIntervalMs === undefined ? {} : { pollIntervalMs: opts.pollIntervalMs }),
    });

    if (opts.worker !== false) {
      const nativeConnection: NativeConnection = await connectWorkerConnection(opts.temporal);
      stops.push(() => nativeConnection.close());
      const worker: Worker = await createWorker({
        connection: nativeConnection,
        namespace,
        taskQueue,
        activities,
        ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : {}),
      });
      const running = worker.run();
      running.catch((err) => log.error({ err }, 'worker stopped with an error'));
      stops.push(async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running.catch(() => undefined);
      });
    }

    let app: App | undefined;
    if (opts.api !== false) {
      app = createApp(
        {
          plans: createPlanGateway({ client, taskQueue }),
          authenticate: createAuthenticator(config.tokens),
          environments: new Set(Object.keys(config.environments)),
          health: createHealthCheck(client, namespace, taskQueue),
          evaluate: async (request, at) => {
            // The same preflight and policy the workflow runs, called directly: nothing is started.
            const preflight = await activities.preflight({ request }).catch((err: Error) => ({
              assessment: { kind: 'unavailable' as const, reason: err.message },
              checkedAt: new Date().toISOString(),
            }));
            return { preflight, decision: await activities.evaluatePolicy({ request, preflight, at: at.toISOString() }) };
          },
          ...(opts.temporal.uiUrl ? { temporalUi: { baseUrl: opts.temporal.uiUrl, namespace } } : {}),
          approvals: createApprovalQueue({ client, taskQueue, plans: createPlanGateway({ client, taskQueue }) }),
          channels: { settings: channelSettings, nonces: createNonceCache(), log },
          evidence: createEvidenceDeps({ audit, client, namespace, proxmox: (env) => environments.environments.get(env)?.client }),
          inventory: { proxmox: (env) => environments.environments.get(env)?.client },
          ...(config.server.rateLimit ? { rateLimit: createRateLimiter(config.server.rateLimit) } : {}),
          ...(config.server.cors ? { cors: config.server.cors } : {}),
        },
        log,
      );
      const listening = await listenApi(app.fetch, config.server, { configPath: opts.configPath, log });
      const server = listening.server;
      url = listening.url;
      stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    }
    return { ...(url ? { url } : {}), ...(app ? { app } : {}), environments, audit, client, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
