/**
 * The service as a real deployment runs it: the Proxmox simulator standalone, the HTTP API in this
 * process (or, with `apiProcess`, as its own OS process: `src/api/http/main.ts`), and workers as separate
 * OS processes (`src/worker/main.ts`) that tests can SIGKILL, SIGTERM and restart. The config is a
 * real YAML file pointing at the simulator's URL.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { inject } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/logging.js';
import { startService, type RunningService } from '../../../src/service.js';
import { startSimulator, type ProxmoxSimulator, type SimClusterSeed } from '../../../src/simulator/index.js';
import { testConnectionOptions } from '../../setup/temporal.js';
import { spawnUntilReady } from './spawn-ready.js';

const TOKEN_ID = 'proxmox-agent@pve!agent';

export interface SplitService {
  url: string;
  sim: ProxmoxSimulator;
  /** The in-process API (absent with `apiProcess`). */
  api?: RunningService;
  /** The API process, with `apiProcess`. */
  apiProcess?: ServiceProcess;
  configPath: string;
  /** The config's task queue. */
  taskQueue: string;
  /** Start one more worker process; resolves once it polls. */
  /** Starts one more worker process (`env`: more environment variables for it alone). */
  startWorker(env?: Record<string, string>): Promise<WorkerProcess>;
  call(method: string, path: string, opts?: { token?: string; body?: unknown }): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

export interface ServiceProcess {
  child: ChildProcess;
  /** Everything the process wrote, for the secret scan and for debugging a failure. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface WorkerProcess extends ServiceProcess {
  /** The worker's own HTTP server: /metrics, /healthz, /readyz. */
  url: string;
}

export async function startSplitService(opts: {
  guests: SimClusterSeed['guests'];
  nodes?: string[];
  taskDurationMs?: number;
  tier?: 'nonprod' | 'prod';
  policy?: Record<string, unknown>;
  /** Run the API as a separate process too (default: in this process). */
  apiProcess?: boolean;
  /** The config's `audit` section (default: a file store, which allows one worker process at a time). */
  audit?: Record<string, unknown>;
  /** More environment variables for every process (secrets the config names). */
  env?: Record<string, string>;
  /** Run these built entry points (npm run build: dist/bin/*.mjs) with plain node instead of the sources with tsx. */
  built?: { api: string; worker: string };
  /** Another Temporal server than the suite's (a test that stops and starts its own). */
  temporalAddress?: string;
  /**
   * The config's `temporal.namespace` (default: the suite's). Given, the processes get no
   * TEMPORAL_NAMESPACE, so the config's value is the one they use.
   */
  namespace?: string;
}): Promise<SplitService> {
  const secret = randomUUID();
  const sim = await startSimulator({
    cluster: { name: 'faults', nodes: opts.nodes ?? ['pve-f1'], guests: opts.guests, apiTokens: [{ tokenId: TOKEN_ID, secret }] },
    taskDurationMs: opts.taskDurationMs ?? 100,
    authFailureDelayMs: 0,
    faultSeed: 42,
  });
  const demo = loadConfig({}).config;
  const dir = mkdtempSync(join(tmpdir(), 'pa-split-'));
  const configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    stringify({
      server: { host: '127.0.0.1', port: 0 },
      temporal: { namespace: opts.namespace ?? inject('temporalNamespace'), taskQueue: `split-${randomUUID().slice(0, 8)}` },
      environments: { lab: { tier: opts.tier ?? 'nonprod', proxmox: { url: sim.url, tokenId: TOKEN_ID, tokenSecret: { env: 'SIM_TOKEN_SECRET' } } } },
      tokens: demo.tokens,
      policy: opts.policy ?? { rules: [] },
      audit: opts.audit ?? { file: join(dir, 'audit.jsonl') },
    }),
  );
  // WORKER_PORT=0: each worker process serves /metrics and /readyz on a port of its own.
  const temporalAddress = opts.temporalAddress ?? inject('temporalAddress');
  const env: NodeJS.ProcessEnv = { ...process.env, PROXMOX_AGENT_CONFIG: configPath, SIM_TOKEN_SECRET: secret, TEMPORAL_ADDRESS: temporalAddress, LOG_LEVEL: 'warn', WORKER_PORT: '0', ...opts.env };
  if (opts.namespace !== undefined) delete env.TEMPORAL_NAMESPACE;
  const { config } = loadConfig(env);
  const workers: WorkerProcess[] = [];

  const spawnProcess = (entry: string, ready: string, extraEnv: Record<string, string>) => spawnUntilReady(entry, ready, { ...env, ...extraEnv }, 60_000);

  // The API reads Proxmox for preflights and never runs a worker. Info level: the harness waits for
  // the processes' 'API listening' / 'worker polling' lines.
  const apiProcess = opts.apiProcess ? await spawnProcess(opts.built?.api ?? 'src/api/http/main.ts', 'API listening', { LOG_LEVEL: 'info', PORT: '0' }) : undefined;
  const api = apiProcess
    ? undefined
    : await startService({ config, configPath, temporal: { ...testConnectionOptions(), address: temporalAddress, namespace: config.temporal.namespace }, log: createLogger({ level: 'warn' }), worker: false, env });
  const url: string = apiProcess ? apiProcess.line.api : api!.url!;

  const startWorker = async (extraEnv: Record<string, string> = {}): Promise<WorkerProcess> => {
    const p = await spawnProcess(opts.built?.worker ?? 'src/worker/main.ts', 'worker polling', { LOG_LEVEL: 'info', ...extraEnv });
    const w: WorkerProcess = { ...p, url: p.line.http };
    workers.push(w);
    return w;
  };

  return {
    url,
    sim,
    ...(api ? { api } : {}),
    ...(apiProcess ? { apiProcess } : {}),
    configPath,
    taskQueue: config.temporal.taskQueue,
    startWorker,
    async call(method, path, o = {}) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    async stop() {
      await Promise.all(workers.map((w) => w.kill('SIGTERM')));
      await api?.stop();
      await apiProcess?.kill('SIGTERM');
      await sim.close();
    },
  };
}

export function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
