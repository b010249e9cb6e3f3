/**
 * The service as a real deployment runs it: the Proxmox simulator standalone, the HTTP API in this
 * process, and workers as separate OS processes (`src/worker/main.ts`) that tests can SIGKILL and
 * restart. The config is a real YAML file pointing at the simulator's URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { inject } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/logging.js';
import { startService, type RunningService } from '../../../src/service.js';
import { startSimulator, type ProxmoxSimulator, type SimClusterSeed } from '../../../src/simulator/index.js';
import { testConnectionOptions } from '../../setup/temporal.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TOKEN_ID = 'proxmox-agent@pve!agent';

export interface SplitService {
  url: string;
  sim: ProxmoxSimulator;
  api: RunningService;
  configPath: string;
  /** Start one more worker process; resolves once it polls. */
  startWorker(): Promise<WorkerProcess>;
  call(method: string, path: string, opts?: { token?: string; body?: unknown }): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything the process wrote, for the secret scan and for debugging a failure. */
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startSplitService(opts: {
  guests: SimClusterSeed['guests'];
  nodes?: string[];
  taskDurationMs?: number;
  tier?: 'nonprod' | 'prod';
  policy?: Record<string, unknown>;
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
      temporal: { namespace: inject('temporalNamespace'), taskQueue: `split-${randomUUID().slice(0, 8)}` },
      environments: { lab: { tier: opts.tier ?? 'nonprod', proxmox: { url: sim.url, tokenId: TOKEN_ID, tokenSecret: { env: 'SIM_TOKEN_SECRET' } } } },
      tokens: demo.tokens,
      policy: opts.policy ?? { rules: [] },
      audit: { file: join(dir, 'audit.jsonl') },
    }),
  );
  const env = { ...process.env, PROXMOX_AGENT_CONFIG: configPath, SIM_TOKEN_SECRET: secret, TEMPORAL_ADDRESS: inject('temporalAddress'), LOG_LEVEL: 'warn' };
  const { config } = loadConfig(env);
  // The API in this process: it reads Proxmox for preflights and never runs a worker.
  const api = await startService({ config, configPath, temporal: testConnectionOptions(), log: createLogger({ level: 'warn' }), worker: false, env });
  const workers: WorkerProcess[] = [];

  const startWorker = async (): Promise<WorkerProcess> => {
    // Info level: the harness waits for the worker's 'worker polling' line.
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/worker/main.ts')], { cwd: ROOT, env: { ...env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker did not start:\n${out}`)), 60_000);
      const check = () => {
        if (out.includes('worker polling')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`worker exited with ${code}:\n${out}`));
      });
    });
    const w: WorkerProcess = {
      child,
      output: () => out,
      kill: async (signal = 'SIGKILL') => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        await exited;
      },
    };
    workers.push(w);
    return w;
  };

  return {
    url: api.url!,
    sim,
    api,
    configPath,
    startWorker,
    async call(method, path, o = {}) {
      const res = await fetch(`${api.url}${path}`, {
        method,
        headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    async stop() {
      await Promise.all(workers.map((w) => w.kill('SIGTERM')));
      await api.stop();
      await sim.close();
    },
  };
}

export function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
