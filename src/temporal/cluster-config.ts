/**
 * The configuration of the real Temporal cluster (cluster.ts): the server's static YAML and its
 * dynamic-config file. Pure functions, so the unit tests check exactly what the server is given.
 *
 * Production-like on purpose: PostgreSQL persistence and SQL visibility (the `postgres12` plugin), all
 * four services in one process, loopback only, no authorizer (loopback, like the dev server), and a
 * dynamic config holding only documented settings, each with the reason it is there.
 */
import { stringify } from 'yaml';

/**
 * History shards. Fixed when the cluster is first started (the server refuses another value later).
 * 4 on 2 cores: a shard is the unit of history-service concurrency, and each one runs its own queue
 * readers and polls PostgreSQL even when idle, so more shards than cores buys nothing here but idle
 * load. 4 is also what Temporal's own development configs and Docker template default to. A
 * production cluster sizes this once for its peak load (hundreds to thousands of shards) and cannot
 * change it afterwards.
 */
export const CLUSTER_HISTORY_SHARDS = 4;

/** Retention of closed workflows in the namespace the cluster creates, as compose sets it (30 days). */
export const CLUSTER_NAMESPACE_RETENTION_HOURS = 720;

/** Databases the SQL tool creates for Temporal. */
export const TEMPORAL_DATABASE = 'temporal';
export const TEMPORAL_VISIBILITY_DATABASE = 'temporal_visibility';

export interface DynamicConfigSetting {
  key: string;
  value: number | boolean;
  /** Why it is set: written above the key in the file. */
  why: string;
}

/** Why activities are handed out eagerly, on the cluster and on the dev server (DEV_SERVER_DYNAMIC_CONFIG). */
export const EAGER_ACTIVITIES_WHY =
  'Activity eager execution (default off): an activity a workflow task schedules on the workflow\'s own task queue ' +
  '(the apply-time re-check, the notices) is handed to the worker in the answer to that task\'s completion, instead ' +
  'of waiting for a poll. It saved ~10 ms of each plan + apply at concurrency 1 (docs/benchmarks.md). Proxmox-calling ' +
  'activities run on their environment\'s task queue, so they are still polled (and rate-limited per cluster).';

/**
 * Every dynamic-config setting the cluster runs with (docs/temporal-server.md, "A real cluster on this
 * machine"). The keys are documented in the server's common/dynamicconfig/constants.go (v1.29.1).
 */
export const CLUSTER_DYNAMIC_CONFIG: readonly DynamicConfigSetting[] = Object.freeze([
  {
    key: 'frontend.namespaceRPS.visibility',
    value: 100,
    why:
      'List/Count workflow calls per second per namespace and frontend (server default 10). GET /v1/approvals makes several; ' +
      'ten parallel requests with ~1,000 plans pending took 7-11 s at 10/s and at most 1.7 s at 100/s (issue 13).',
  },
  {
    key: 'history.transferProcessorMaxPollRPS',
    value: 1000,
    why:
      'Reads of the transfer queue (workflow and activity tasks on their way to matching) per second per shard (default 20), ' +
      `a default sized for clusters of hundreds of shards. With ${CLUSTER_HISTORY_SHARDS} shards, past ~${20 * CLUSTER_HISTORY_SHARDS} tasks/s in all ` +
      'each task waits up to 50 ms for the next read (the dev server, with one shard, lost ~40 ms a task: docs/benchmarks.md).',
  },
  {
    key: 'history.visibilityProcessorMaxPollRPS',
    value: 1000,
    why:
      'The same limit for the visibility queue (search-attribute upserts reaching the visibility store), so that list ' +
      'queries see a plan\'s status promptly under load.',
  },
  {
    key: 'system.enableActivityEagerExecution',
    value: true,
    why: EAGER_ACTIVITIES_WHY,
  },
]);

/**
 * The settings with some values replaced (`overrides`: key → value), each marked as overridden in its
 * reason; for measuring a setting's effect (the benchmark's BENCH_VISIBILITY_RPS). Unknown keys throw.
 */
export function overrideDynamicConfig(overrides: Readonly<Record<string, number>>, settings: readonly DynamicConfigSetting[] = CLUSTER_DYNAMIC_CONFIG): DynamicConfigSetting[] {
  for (const key of Object.keys(overrides)) {
    if (!settings.some((s) => s.key === key)) throw new Error(`no dynamic-config setting '${key}' to override`);
  }
  return settings.map((s) => (s.key in overrides ? { ...s, value: overrides[s.key]!, why: `Overridden for a measurement (default here ${s.value}). ${s.why}` } : s));
}

/** The dynamic-config file: each key with its reason as a comment above it. */
export function renderDynamicConfig(settings: readonly DynamicConfigSetting[] = CLUSTER_DYNAMIC_CONFIG): string {
  const lines = [
    '# Written by src/temporal/cluster-config.ts (npm run temporal:cluster); edits are overwritten at the next start.',
    '# Only documented settings (go.temporal.io/server common/dynamicconfig/constants.go); the server re-reads this file every 10 s.',
  ];
  for (const s of settings) {
    lines.push('', ...wrap(s.why, 100).map((l) => `# ${l}`), stringify({ [s.key]: [{ value: s.value }] }).trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

/** The loopback ports one cluster uses; chosen once and kept in its state file. */
export interface ClusterPorts {
  frontend: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
  /** Prometheus metrics (`/metrics`). */
  metrics: number;
}

export const CLUSTER_PORT_NAMES: readonly (keyof ClusterPorts)[] = Object.freeze([
  'frontend',
  'frontendMembership',
  'history',
  'historyMembership',
  'matching',
  'matchingMembership',
  'worker',
  'workerMembership',
  'metrics',
]);

export interface ServerConfigInput {
  ports: ClusterPorts;
  /** Loopback address the server binds and advertises. */
  host: string;
  postgres: { host: string; port: number; user: string; password: string };
  /** Absolute path of the dynamic-config file. */
  dynamicConfigFile: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/** The server's static config (`<dir>/config/production.yaml`, read with `--env production`). */
export function serverConfig(input: ServerConfigInput): Record<string, unknown> {
  const { ports, host, postgres } = input;
  const datastore = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `${postgres.host}:${postgres.port}`,
      connectProtocol: 'tcp',
      user: postgres.user,
      password: postgres.password,
      // As Temporal's Docker template: 20 connections for the main store, 10 for visibility.
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const service = (grpcPort: number, membershipPort: number) => ({ rpc: { grpcPort, membershipPort, bindOnIP: host } });
  return {
    log: { stdout: true, level: input.logLevel ?? 'info' },
    persistence: {
      numHistoryShards: CLUSTER_HISTORY_SHARDS,
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      datastores: {
        'postgres-default': datastore(TEMPORAL_DATABASE, 20),
        'postgres-visibility': datastore(TEMPORAL_VISIBILITY_DATABASE, 10),
      },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: host },
      metrics: { prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `${host}:${ports.metrics}` } },
    },
    services: {
      frontend: service(ports.frontend, ports.frontendMembership),
      history: service(ports.history, ports.historyMembership),
      matching: service(ports.matching, ports.matchingMembership),
      worker: service(ports.worker, ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `${host}:${ports.frontend}` },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    dynamicConfigClient: { filepath: input.dynamicConfigFile, pollInterval: '10s' },
  };
}

export function renderServerConfig(input: ServerConfigInput): string {
  return `# Written by src/temporal/cluster-config.ts (npm run temporal:cluster) at every start; holds the database password.\n${stringify(serverConfig(input))}`;
}
