/**
 * Starts the real service in-process for an integration test: the test's Temporal dev server (from
 * the global setup), the Proxmox simulator for the demo environments, the worker and the HTTP API on
 * a random loopback port. Nothing is mocked.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode, DefaultLogger, Runtime, type LogEntry, type LogLevel, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { loadConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { createLogger, type Logger } from '../../../src/logging.js';
import { startService, type RunningService, type ServiceOptions } from '../../../src/service.js';
import { WORKFLOWS_PATH } from '../../../src/worker/worker.js';
import type { ProxmoxSimulator } from '../../../src/simulator/index.js';
import { testConnectionOptions } from '../../setup/temporal.js';

export const TOKENS = {
  agent: 'demo-agent-token',
  approver1: 'demo-approver-1-token',
  approver2: 'demo-approver-2-token',
  /** Not in the demo: a token that may plan AND approve, to prove it still cannot approve its own plan. */
  ops: 'test-ops-token',
  labOnly: 'test-lab-reader-token',
  /** The demo's admin (human:carol): freezes and lifts, nothing else. */
  admin: 'demo-admin-token',
} as const;

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
let runtimeInstalled = false;

export interface TestService {
  url: string;
  service: RunningService;
  /** The live config: the worker reads `config.policy` at every evaluation, so tests may change it. */
  config: Config;
  sim(environment: 'lab' | 'prod'): ProxmoxSimulator;
  call(method: string, path: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  waitForStatus(planId: string, statuses: string[], timeoutMs?: number): Promise<any>;
  stop(): Promise<void>;
}

export interface TestServiceOptions {
  /** The service's logger (default: pino at LOG_LEVEL or warn). */
  log?: Logger;
  /** Where the Temporal Runtime logs go, at `level` (default: stderr at WARN). Only the first service in a process installs it. */
  temporalLog?: { level: LogLevel; write: (entry: LogEntry) => void };
  /** The simulated Proxmox token secret (default: random). */
  simulatorTokenSecret?: string;
  /** Overrides for startService (another Temporal server, tracing, …). */
  service?: Partial<ServiceOptions>;
}

export async function startTestService(tweak: (config: Config) => void = () => {}, options: TestServiceOptions = {}): Promise<TestService> {
  const { config, path } = loadConfig({});
  config.server.port = 0;
  config.temporal.taskQueue = `test-${Math.random().toString(36).slice(2)}`;
  config.audit.file = join(mkdtempSync(join(tmpdir(), 'pa-it-audit-')), 'audit.jsonl');
  config.tokens.push(
    { id: 'test-ops', principal: 'human:olivia', secretSha256: sha(TOKENS.ops), scopes: ['plan', 'apply', 'approve', 'read'], environments: ['*'], roles: [], channels: ['api', 'cli'] },
    { id: 'test-lab-reader', principal: 'agent:lab-only', secretSha256: sha(TOKENS.labOnly), scopes: ['plan', 'apply', 'read'], environments: ['lab'], roles: [] },
  );
  tweak(config);
  if (!runtimeInstalled) {
    // One Runtime per process; keep the SDK's per-state INFO lines out of test output.
    Runtime.install(
      options.temporalLog
        ? { logger: new DefaultLogger(options.temporalLog.level, options.temporalLog.write), telemetryOptions: { logging: { forward: {}, filter: { core: options.temporalLog.level, other: options.temporalLog.level } } } }
        : { logger: new DefaultLogger((process.env.LOG_LEVEL?.toUpperCase() as 'WARN') ?? 'WARN') },
    );
    runtimeInstalled = true;
  }
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  const service = await startService({
    config,
    configPath: path,
    temporal: testConnectionOptions(),
    log: options.log ?? createLogger({ level: process.env.LOG_LEVEL ?? 'warn' }),
    simulator: { taskDurationMs: 50, authFailureDelayMs: 0, ...(options.simulatorTokenSecret ? { tokenSecret: options.simulatorTokenSecret } : {}) },
    workflowBundle: await bundle,
    pollIntervalMs: 50,
    ...options.service,
  });
  const url = service.url!;

  const call: TestService['call'] = async (method, p, opts = {}) => {
    const res = await fetch(`${url}${p}`, {
      method,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...opts.headers,
      },
      ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}),
    });
    const text = await res.text();
    const json = /json/.test(res.headers.get('content-type') ?? '');
    return { status: res.status, body: text ? (json ? JSON.parse(text) : text) : undefined, headers: res.headers };
  };

  return {
    url,
    service,
    config,
    call,
    sim: (env) => service.environments.simulators.get(env)!,
    async waitForStatus(planId, statuses, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      let last: any;
      while (Date.now() < deadline) {
        last = (await call('GET', `/v1/actions/${planId}`, { token: TOKENS.agent })).body;
        if (statuses.includes(last?.status)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`plan ${planId} did not reach ${statuses.join('|')}; last: ${JSON.stringify(last)}`);
    },
    stop: () => service.stop(),
  };
}

function sha(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} } as never;
