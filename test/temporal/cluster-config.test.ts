/**
 * What the real cluster's server is given (src/temporal/cluster-config.ts, cluster-schema.ts,
 * cluster-server.ts): its static config, its dynamic config, the SQL tool's steps and its command line.
 * The dynamic config is also checked by the server itself (`server validate-dynamic-config`) when the
 * binary is built.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  CLUSTER_DYNAMIC_CONFIG,
  CLUSTER_HISTORY_SHARDS,
  CLUSTER_PORT_NAMES,
  overrideDynamicConfig,
  renderDynamicConfig,
  renderServerConfig,
  type ClusterPorts,
} from '../../src/temporal/cluster-config.js';
import { schemaCommands } from '../../src/temporal/cluster-schema.js';
import { serverArgs } from '../../src/temporal/cluster-server.js';
import { projectLocalServerPath } from '../../src/temporal/server-binaries.js';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../src/temporal/dev-server.js';

const ports = Object.fromEntries(CLUSTER_PORT_NAMES.map((n, i) => [n, 17000 + i])) as unknown as ClusterPorts;
const postgres = { host: '127.0.0.1', port: 15432, user: 'postgres', password: 's3cret' };
const input = { ports, host: '127.0.0.1', postgres, dynamicConfigFile: '/x/dynamicconfig.yaml' };

type Sql = { pluginName: string; databaseName: string; connectAddr: string; user: string; password: string; maxConns: number };
type Rpc = { grpcPort: number; membershipPort: number; bindOnIP: string };

describe('the server config', () => {
  const config = parse(renderServerConfig(input)) as {
    persistence: { numHistoryShards: number; defaultStore: string; visibilityStore: string; datastores: Record<string, { sql: Sql }> };
    services: Record<string, { rpc: Rpc }>;
    clusterMetadata: { currentClusterName: string; clusterInformation: Record<string, { rpcAddress: string }> };
    global: { membership: { broadcastAddress: string }; metrics: { prometheus: { listenAddress: string } } };
    dynamicConfigClient: { filepath: string };
    archival: { history: { state: string } };
  };

  it('keeps persistence and visibility on PostgreSQL (postgres12), in their own databases', () => {
    const { persistence } = config;
    expect(persistence.numHistoryShards).toBe(CLUSTER_HISTORY_SHARDS);
    const main = persistence.datastores[persistence.defaultStore]!.sql;
    const vis = persistence.datastores[persistence.visibilityStore]!.sql;
    expect([main.pluginName, vis.pluginName]).toEqual(['postgres12', 'postgres12']);
    expect([main.databaseName, vis.databaseName]).toEqual(['temporal', 'temporal_visibility']);
    for (const s of [main, vis]) {
      expect(s.connectAddr).toBe('127.0.0.1:15432');
      expect([s.user, s.password]).toEqual(['postgres', 's3cret']);
    }
    // Both pools fit well inside the cluster's max_connections (200) with room for the audit stores.
    expect(main.maxConns + vis.maxConns).toBeLessThanOrEqual(30);
  });

  it('runs the four services on loopback, each on its own ports, and advertises the frontend', () => {
    expect(Object.keys(config.services).sort()).toEqual(['frontend', 'history', 'matching', 'worker']);
    const used = Object.values(config.services).flatMap((s) => [s.rpc.grpcPort, s.rpc.membershipPort]);
    expect(new Set(used).size).toBe(8);
    for (const s of Object.values(config.services)) expect(s.rpc.bindOnIP).toBe('127.0.0.1');
    expect(config.services.frontend!.rpc.grpcPort).toBe(ports.frontend);
    expect(config.global.membership.broadcastAddress).toBe('127.0.0.1');
    expect(config.global.metrics.prometheus.listenAddress).toBe(`127.0.0.1:${ports.metrics}`);
    expect(config.clusterMetadata.clusterInformation[config.clusterMetadata.currentClusterName]!.rpcAddress).toBe(`127.0.0.1:${ports.frontend}`);
  });

  it('reads the dynamic config file, and archives nothing', () => {
    expect(config.dynamicConfigClient.filepath).toBe('/x/dynamicconfig.yaml');
    expect(config.archival.history.state).toBe('disabled');
  });
});

describe('the dynamic config', () => {
  const text = renderDynamicConfig();
  const parsed = parse(text) as Record<string, { value: unknown }[]>;

  it('raises the visibility rate limit from 10/s (issue 13, item 1)', () => {
    expect(parsed['frontend.namespaceRPS.visibility']).toEqual([{ value: 100 }]);
  });

  it('hands activities out eagerly, as the dev server does (the apply-time re-check is not polled)', () => {
    expect(parsed['system.enableActivityEagerExecution']).toEqual([{ value: true }]);
    expect(DEV_SERVER_DYNAMIC_CONFIG['system.enableActivityEagerExecution']).toBe(true);
  });

  it('holds exactly the listed settings, each with its reason as a comment above it', () => {
    expect(Object.keys(parsed).sort()).toEqual(CLUSTER_DYNAMIC_CONFIG.map((s) => s.key).sort());
    const lines = text.split('\n');
    for (const s of CLUSTER_DYNAMIC_CONFIG) {
      const at = lines.indexOf(`${s.key}:`);
      expect(at, s.key).toBeGreaterThan(0);
      expect(lines[at - 1], `comment above ${s.key}`).toMatch(/^# /);
      expect(s.why.length).toBeGreaterThan(40);
    }
  });

  it('takes overrides for measurements (the benchmark\'s BENCH_VISIBILITY_RPS), and refuses keys it does not hold', () => {
    const over = parse(renderDynamicConfig(overrideDynamicConfig({ 'frontend.namespaceRPS.visibility': 10 }))) as Record<string, { value: unknown }[]>;
    expect(over['frontend.namespaceRPS.visibility']).toEqual([{ value: 10 }]);
    expect(over['history.transferProcessorMaxPollRPS']).toEqual(parsed['history.transferProcessorMaxPollRPS']);
    expect(() => overrideDynamicConfig({ 'frontend.nope': 1 })).toThrow(/frontend.nope/);
  });

  it.skipIf(!existsSync(projectLocalServerPath()))('is valid for the server itself (server validate-dynamic-config)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pa-dc-'));
    try {
      const file = join(dir, 'dc.yaml');
      writeFileSync(file, text);
      const res = spawnSync(projectLocalServerPath(), ['validate-dynamic-config', file], { encoding: 'utf8', timeout: 30_000 });
      expect(res.status, `${res.stdout}${res.stderr}`).toBe(0);
      expect(`${res.stdout}${res.stderr}`).not.toMatch(/unknown|error|warn/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the schema steps', () => {
  const t = { schemaDir: '/s/postgresql/v12', postgres };

  it('create, set up and update both databases, at every start (each step is idempotent)', () => {
    const steps = schemaCommands(t).map((a) => `${a[a.indexOf('--db') + 1]} ${a.slice(a.indexOf('--db') + 2).join(' ')}`);
    expect(steps).toEqual([
      'temporal create-database',
      'temporal setup-schema -v 0.0',
      'temporal update-schema -d /s/postgresql/v12/temporal/versioned',
      'temporal_visibility create-database',
      'temporal_visibility setup-schema -v 0.0',
      'temporal_visibility update-schema -d /s/postgresql/v12/visibility/versioned',
    ]);
  });

  it('never put the password on the command line', () => {
    for (const a of schemaCommands(t)) {
      expect(a.slice(0, 8)).toEqual(['--plugin', 'postgres12', '--ep', '127.0.0.1', '-p', '15432', '-u', 'postgres']);
      expect(a.join(' ')).not.toContain('s3cret');
    }
  });
});

describe('the server command line', () => {
  it('starts every service from <dir>/config/production.yaml', () => {
    expect(serverArgs('/c')).toEqual(['--root', '/c', '--config', 'config', '--env', 'production', '--allow-no-auth', 'start']);
  });
});
