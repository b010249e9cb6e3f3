/**
 * probe16 harness: the service as two API processes and N worker processes (each its own OS
 * process, SIGKILL-able), sharing one Temporal server, one standalone Proxmox simulator and one
 * PostgreSQL audit store (so one dispatch journal and one replay cache).
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { inject } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { startSimulator, type ProxmoxSimulator, type SimClusterSeed } from '../../../src/simulator/index.js';
import { spawnUntilReady, type ReadyProcess } from './spawn-ready.js';

const TOKEN_ID = 'proxmox-agent@pve!agent';

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export type Proc = ReadyProcess;

export interface TwoApis {
  sim: ProxmoxSimulator;
  apis: Proc[];
  urls: string[];
  workers: Proc[];
  startWorker(): Promise<Proc>;
  startApi(): Promise<Proc>;
  call(i: number, method: string, path: string, o?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

export async function startTwoApis(opts: {
  guests: SimClusterSeed['guests'];
  pgUrl: string;
  policy?: Record<string, unknown>;
  tier?: 'nonprod' | 'prod';
  extraTokens?: Record<string, unknown>[];
  channels?: Record<string, unknown>;
  env?: Record<string, string>;
  taskDurationMs?: number;
  workers?: number;
}): Promise<TwoApis> {
  const secret = randomUUID();
  const sim = await startSimulator({
    cluster: { name: 'p16', nodes: ['pve-f1'], guests: opts.guests, apiTokens: [{ tokenId: TOKEN_ID, secret }] },
    taskDurationMs: opts.taskDurationMs ?? 100,
    authFailureDelayMs: 0,
    faultSeed: 16,
  });
  const demo = loadConfig({}).config;
  const dir = mkdtempSync(join(tmpdir(), 'pa-p16-'));
  const configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    stringify({
      server: { host: '127.0.0.1', port: 0, rateLimit: false },
      temporal: { namespace: inject('temporalNamespace'), taskQueue: `p16-${randomUUID().slice(0, 8)}` },
      environments: { lab: { tier: opts.tier ?? 'nonprod', proxmox: { url: sim.url, tokenId: TOKEN_ID, tokenSecret: { env: 'SIM_TOKEN_SECRET' } } } },
      tokens: [...demo.tokens, ...(opts.extraTokens ?? [])],
      policy: opts.policy ?? { rules: [] },
      audit: { postgres: { url: { env: 'PA_P16_PG_URL' } } },
      ...(opts.channels ? { channels: opts.channels } : {}),
    }),
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PROXMOX_AGENT_CONFIG: configPath,
    SIM_TOKEN_SECRET: secret,
    PA_P16_PG_URL: opts.pgUrl,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    LOG_LEVEL: 'warn',
    WORKER_PORT: '0',
    ...opts.env,
  };
  const procs: Proc[] = [];
  const spawnProcess = async (entry: string, ready: string, extraEnv: Record<string, string>): Promise<Proc> => {
    const p = await spawnUntilReady(entry, ready, { ...env, ...extraEnv }, 90_000);
    procs.push(p);
    return p;
  };
  const apis: Proc[] = [];
  const urls: string[] = [];
  const workers: Proc[] = [];
  const startApi = async () => {
    const p = await spawnProcess('src/api/http/main.ts', 'API listening', { LOG_LEVEL: 'info', PORT: '0' });
    apis.push(p);
    urls.push(p.line.api);
    return p;
  };
  const startWorker = async () => {
    const p = await spawnProcess('src/worker/main.ts', 'worker polling', { LOG_LEVEL: 'info' });
    workers.push(p);
    return p;
  };
  await Promise.all([startApi(), startApi()]);
  for (let i = 0; i < (opts.workers ?? 2); i++) await startWorker();
  return {
    sim,
    apis,
    urls,
    workers,
    startApi,
    startWorker,
    async call(i, method, path, o = {}) {
      const body = o.raw ?? (o.body !== undefined ? JSON.stringify(o.body) : undefined);
      try {
        const res = await fetch(`${urls[i % urls.length]}${path}`, {
          method,
          headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers },
          ...(body !== undefined ? { body } : {}),
        });
        const text = await res.text();
        let parsed: any = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          /* not JSON */
        }
        return { status: res.status, body: parsed };
      } catch (err) {
        return { status: 0, body: { error: (err as Error).message } };
      }
    },
    async stop() {
      await Promise.all(procs.map((p) => p.kill('SIGTERM').catch(() => undefined)));
      await sim.close();
    },
  };
}
