/**
 * The deployment the chaos suite tortures, all on loopback:
 *  - its own Temporal dev server (headless, a fixed SQLite file in a temp dir, a free port), which
 *    the harness can stop and start again on the same port and file;
 *  - two Proxmox simulators (`lab`, nonprod; `prod`, prod), with fault injection;
 *  - the HTTP API in this process (as `npm run api` runs it: no worker);
 *  - ONE worker at a time, as a separate OS process (`src/worker/main.ts`) that the harness SIGKILLs
 *    and restarts. One at a time because the audit store is the file store, which takes one writer
 *    process (a lock file; a lock left by a dead pid is taken over): a SIGKILLed writer is exactly
 *    the crash the file store must survive (torn last line, stale lock).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { generateAuditKeyPair } from '../../../src/audit/signing.js';
import { loadConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/logging.js';
import { startService, type RunningService } from '../../../src/service.js';
import { startSimulator, type ProxmoxSimulator, type SimGuestSeed } from '../../../src/simulator/index.js';
import { ensureTemporalCli } from '../../../src/temporal/cli-locator.js';
import { getFreePort, startDevServer, type DevServerHandle } from '../../../src/temporal/dev-server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TOKEN_ID = 'proxmox-agent@pve!agent';
const NAMESPACE = 'default';

export interface ChaosEnvOptions {
  seed: number;
  lab: { nodes: string[]; guests: SimGuestSeed[] };
  prod: { nodes: string[]; guests: SimGuestSeed[] };
  taskDurationMs: number;
  policy: Record<string, unknown>;
  log: (line: string) => void;
}

export interface CallResult {
  status: number;
  body: any;
  /** Answers before the final one that the client retried (503, connection errors). */
  retried: { status: number | string }[];
}

export interface ChaosEnv {
  sims: { lab: ProxmoxSimulator; prod: ProxmoxSimulator };
  api: RunningService;
  configPath: string;
  auditFile: string;
  temporalAddress: string;
  /** Every answer the API gave, by status (retries included): the figures and the 5xx check. */
  statuses: Map<number | string, number>;
  /**
   * An HTTP call as a careful client makes it: a 503 (Temporal unavailable), a 429 (after its
   * Retry-After) or a refused/reset connection is retried with backoff until `deadlineMs`; anything
   * else is returned.
   */
  call(method: string, path: string, opts?: { token?: string; body?: unknown; idempotencyKey?: string; deadlineMs?: number }): Promise<CallResult>;
  worker: {
    start(): Promise<void>;
    /** SIGKILL the running worker and wait until it is gone. */
    kill(): Promise<void>;
    /** SIGTERM (a clean shutdown that releases the audit lock). */
    stop(): Promise<void>;
    output(): string;
    readonly starts: number;
    /** How long each start took, spawn to polling (the worker bundles its workflows at start). */
    readonly startMs: number[];
    /** Times a worker process ended without being killed or stopped by the harness (must stay 0). */
    readonly selfExits: number;
  };
  temporal: {
    /** Stop the dev server (SIGTERM) and start it again on the same port with the same SQLite file. */
    restart(downMs: number): Promise<void>;
    readonly restarts: number;
  };
  stop(): Promise<void>;
}

export async function startChaosEnv(opts: ChaosEnvOptions): Promise<ChaosEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'pa-chaos-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch((err: unknown) => opts.log(`cleanup: ${String(err)}`));
  };
  try {
    // Temporal: own dev server, own DB file, restartable on the same port.
    const cliPath = await ensureTemporalCli({ log: opts.log });
    const port = await getFreePort();
    const dbFile = join(dir, 'temporal.sqlite');
    const startServer = () =>
      startDevServer({ cliPath, dbFile, port, ip: '127.0.0.1', namespace: NAMESPACE, headless: true, reuseExisting: false, logLevel: 'error', log: (m) => opts.log(m) });
    let server: DevServerHandle = await startServer();
    cleanups.push(() => server.stop());
    let restarts = 0;

    const secrets = { lab: randomUUID(), prod: randomUUID() };
    const sim = (name: 'lab' | 'prod', seed: ChaosEnvOptions['lab'], faultSeed: number) =>
      startSimulator({
        cluster: { name, nodes: seed.nodes, guests: seed.guests, apiTokens: [{ tokenId: TOKEN_ID, secret: secrets[name] }] },
        taskDurationMs: opts.taskDurationMs,
        authFailureDelayMs: 0,
        faultSeed,
      });
    const lab = await sim('lab', opts.lab, opts.seed);
    cleanups.push(() => lab.close());
    const prod = await sim('prod', opts.prod, opts.seed + 1);
    cleanups.push(() => prod.close());

    const keys = generateAuditKeyPair();
    const auditFile = join(dir, 'audit.jsonl');
    const configPath = join(dir, 'config.yaml');
    const demo = loadConfig({}).config;
    writeFileSync(join(dir, 'audit-signing.key'), keys.privateKeyPem, { mode: 0o600 });
    writeFileSync(
      configPath,
      stringify({
        server: { host: '127.0.0.1', port: 0 },
        temporal: { namespace: NAMESPACE, taskQueue: `chaos-${opts.seed}` },
        environments: {
          lab: { tier: 'nonprod', proxmox: { url: lab.url, tokenId: TOKEN_ID, tokenSecret: { env: 'CHAOS_LAB_SECRET' } } },
          prod: { tier: 'prod', proxmox: { url: prod.url, tokenId: TOKEN_ID, tokenSecret: { env: 'CHAOS_PROD_SECRET' } } },
        },
        tokens: demo.tokens,
        policy: opts.policy,
        // Signed checkpoints often, so a crash lands between, during and after signatures.
        audit: { file: auditFile, signing: { privateKey: { file: 'audit-signing.key' }, checkpointEvery: 25, checkpointIntervalSeconds: 2 } },
      }),
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PROXMOX_AGENT_CONFIG: configPath,
      CHAOS_LAB_SECRET: secrets.lab,
      CHAOS_PROD_SECRET: secrets.prod,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: NAMESPACE,
      LOG_LEVEL: 'warn',
    };
    const { config } = loadConfig(env);
    const api = await startService({
      config,
      configPath,
      temporal: { address: server.address, namespace: NAMESPACE },
      log: createLogger({ level: 'error' }),
      worker: false,
      env,
    });
    cleanups.push(() => api.stop());

    // The worker process: one at a time.
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    let out = '';
    let starts = 0;
    let selfExits = 0;
    const startMs: number[] = [];
    let ending = false;
    const keepTail = (s: string) => (out = (out + s).slice(-200_000));
    const worker = {
      get starts() {
        return starts;
      },
      startMs,
      get selfExits() {
        return selfExits;
      },
      output: () => out,
      async start() {
        if (child) throw new Error('a worker is already running (the file audit store takes one writer)');
        starts++;
        const spawnedAt = Date.now();
        keepTail(`\n----- worker start #${starts} -----\n`);
        const c = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/worker/main.ts')], {
          cwd: ROOT,
          env: { ...env, LOG_LEVEL: 'info' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        child = c;
        c.stdout!.on('data', (d) => keepTail(String(d)));
        c.stderr!.on('data', (d) => keepTail(String(d)));
        exited = new Promise<void>((resolve) =>
          c.once('exit', (code, signal) => {
            if (!ending) {
              selfExits++;
              keepTail(`\n----- worker exited on its own (${code ?? signal}) -----\n`);
              if (child === c) child = undefined;
            }
            resolve();
          }),
        );
        let seen = '';
        let polling = false;
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`worker did not start within 120 s:\n${out.slice(-4000)}`)), 120_000);
          c.stdout!.on('data', (d) => {
            seen += String(d);
            if (!polling && seen.includes('worker polling')) {
              polling = true;
              clearTimeout(timer);
              startMs.push(Date.now() - spawnedAt);
              resolve();
            }
          });
          c.once('exit', (code, signal) => {
            clearTimeout(timer);
            reject(new Error(`worker exited (${code ?? signal}) before polling:\n${out.slice(-4000)}`));
          });
        });
      },
      async kill() {
        const c = child;
        if (!c) return;
        ending = true;
        c.kill('SIGKILL');
        await exited;
        ending = false;
        child = undefined;
      },
      async stop() {
        const c = child;
        if (!c) return;
        ending = true;
        c.kill('SIGTERM');
        const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
        ending = false;
        child = undefined;
      },
    };
    cleanups.push(() => worker.kill());

    const temporal = {
      get restarts() {
        return restarts;
      },
      async restart(downMs: number) {
        await server.stop();
        await new Promise((r) => setTimeout(r, downMs));
        server = await startServer();
        restarts++;
      },
    };

    const statuses = new Map<number | string, number>();
    const count = (k: number | string) => statuses.set(k, (statuses.get(k) ?? 0) + 1);
    const call: ChaosEnv['call'] = async (method, path, o = {}) => {
      const deadline = Date.now() + (o.deadlineMs ?? 180_000);
      const retried: CallResult['retried'] = [];
      for (let attempt = 0; ; attempt++) {
        let status: number | string;
        let body: any;
        let retryAfterS: number | undefined;
        try {
          const res = await fetch(`${api.url}${path}`, {
            method,
            headers: {
              ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
              ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
              ...(o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {}),
            },
            ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
            signal: AbortSignal.timeout(90_000),
          });
          status = res.status;
          retryAfterS = Number(res.headers.get('retry-after') ?? '') || undefined;
          const text = await res.text();
          body = text ? JSON.parse(text) : undefined;
        } catch (err) {
          status = `network:${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name}`;
        }
        count(status);
        const transient = status === 503 || status === 429 || typeof status === 'string';
        if (!transient || Date.now() > deadline) return { status: typeof status === 'number' ? status : 0, body, retried };
        retried.push({ status });
        await new Promise((r) => setTimeout(r, retryAfterS ? retryAfterS * 1000 : Math.min(200 * 2 ** Math.min(attempt, 4), 3000)));
      }
    };

    return {
      sims: { lab, prod },
      api,
      configPath,
      auditFile,
      temporalAddress: server.address,
      statuses,
      call,
      worker,
      temporal,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
