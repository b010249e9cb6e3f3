/**
 * The deployment the model-based chaos suite (test/chaos/model-chaos.test.ts) tortures, all on
 * loopback and all as a real deployment runs it:
 *  - its own Temporal dev server (headless, a fixed SQLite file in a temp dir, a free port), which the
 *    harness can stop and start again on the same port with the same file;
 *  - a throw-away PostgreSQL cluster holding the audit log (`audit.postgres`), so that several workers
 *    append to one chain;
 *  - two Proxmox simulators (`lab` nonprod, `prod` prod) in this process, with fault injection;
 *  - the HTTP API as its own OS process (`src/api/http/main.ts`) on a fixed port, and TWO worker processes
 *    (`src/worker/main.ts`) at once; each can be SIGKILLed, SIGTERMed and started again.
 *
 * Unlike support/chaos-env.ts (one worker, file audit store, in-process API) nothing of the service
 * runs in the test process: what the test sees is what an outsider sees (HTTP answers, the
 * simulators' logs, the audit tables, `proxmox-agent audit verify`, Temporal's client API).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { stringify } from 'yaml';
import { generateAuditKeyPair } from '../../../src/audit/signing.js';
import { DISPATCH_TABLE } from '../../../src/dispatch/pg-journal.js';
import { startSimulator, type ProxmoxSimulator, type SimGuestSeed } from '../../../src/simulator/index.js';
import { ensureTemporalCli } from '../../../src/temporal/cli-locator.js';
import { getFreePort, startDevServer, type DevServerHandle } from '../../../src/temporal/dev-server.js';
import { startTempPostgres, type TempPostgres } from '../../setup/postgres.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SIM_TOKEN_ID = 'proxmox-agent@pve!agent';
const NAMESPACE = 'default';

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export interface ModelEnvOptions {
  seed: number;
  lab: { nodes: string[]; guests: SimGuestSeed[] };
  prod: { nodes: string[]; guests: SimGuestSeed[] };
  taskDurationMs: number;
  /** The policy, given the moment the config is written (just before the service processes start). */
  policy: (configWrittenAt: number) => Record<string, unknown>;
  tokens: Record<string, unknown>[];
  /** On SIGTERM, how long a worker lets in-flight activities run before cancelling them. */
  shutdownGraceSeconds: number;
  /** Worker processes (default 2). */
  workers?: number;
  log: (line: string) => void;
}

export interface CallResult {
  status: number;
  body: any;
  /** Answers before the final one that the client retried (503, 429, connection errors). */
  retried: (number | string)[];
}

/** One OS process of the service, restartable. */
export interface ServiceProcess {
  readonly name: string;
  readonly running: boolean;
  readonly pid: number | undefined;
  /** Every pid this process slot has had (Temporal worker identities are `<pid>@<host>`). */
  readonly pids: number[];
  readonly starts: number;
  /** Exits the harness did not cause (must stay 0). */
  readonly selfExits: number;
  start(): Promise<void>;
  /** SIGKILL and wait until gone. */
  kill(): Promise<void>;
  /** SIGTERM (a clean shutdown) and wait until gone (SIGKILL after 60 s). */
  term(): Promise<void>;
  output(): string;
}

export interface ModelEnv {
  /** ms since epoch: when the config was written, just before the service processes started. */
  configWrittenAt: number;
  sims: { lab: ProxmoxSimulator; prod: ProxmoxSimulator };
  apiUrl: string;
  configPath: string;
  temporalAddress: string;
  /** Every answer the API gave, by status (retries included). */
  statuses: Map<number | string, number>;
  call(method: string, path: string, opts?: { token?: string; body?: unknown; idempotencyKey?: string; deadlineMs?: number; timeoutMs?: number }): Promise<CallResult>;
  api: ServiceProcess;
  workers: ServiceProcess[];
  temporal: { restart(downMs: number): Promise<void>; readonly restarts: number };
  /** A Temporal client, as an operator's tooling holds one (cancel, describe). */
  temporalClient(): Promise<Client>;
  /** The audit tables, read straight from PostgreSQL: seq order. */
  auditRecords(): Promise<{ seq: number; eventId: string; planId: string; record: any }[]>;
  /** The dispatch journal's rows (src/dispatch/pg-journal.ts), to explain a plan that never ended. */
  dispatchRows(): Promise<DispatchRow[]>;
  /** `proxmox-agent audit verify --config <run config> --json`. */
  verifyAudit(): { exit: number | null; report: any; output: string };
  stop(): Promise<void>;
}

export interface DispatchRow {
  planId: string;
  guest: string;
  state: string;
  attempt: number;
  intentAt: number;
  ended: boolean;
  note?: string;
  upid?: string;
}

export async function startModelEnv(opts: ModelEnvOptions): Promise<ModelEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'pa-model-chaos-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch((err: unknown) => opts.log(`cleanup: ${String(err)}`));
  };
  try {
    // Temporal and PostgreSQL start side by side.
    const cliPath = await ensureTemporalCli({ log: opts.log });
    const temporalPort = await getFreePort();
    const dbFile = join(dir, 'temporal.sqlite');
    const startServer = () =>
      startDevServer({ cliPath, dbFile, port: temporalPort, ip: '127.0.0.1', namespace: NAMESPACE, headless: true, reuseExisting: false, logLevel: 'error', log: (m) => opts.log(m) });
    const [firstServer, postgres] = await Promise.all([startServer(), startTempPostgres()]);
    let server: DevServerHandle = firstServer;
    cleanups.push(() => server.stop());
    const pgServer: TempPostgres = postgres;
    cleanups.push(() => pgServer.stop());
    const auditUrl = await pgServer.createDatabase(`audit_${opts.seed}`);
    let restarts = 0;

    const secrets = { lab: randomUUID(), prod: randomUUID() };
    const sim = (name: 'lab' | 'prod', seed: ModelEnvOptions['lab'], faultSeed: number) =>
      startSimulator({
        cluster: { name, nodes: seed.nodes, guests: seed.guests, apiTokens: [{ tokenId: SIM_TOKEN_ID, secret: secrets[name] }] },
        taskDurationMs: opts.taskDurationMs,
        authFailureDelayMs: 0,
        faultSeed,
      });
    const lab = await sim('lab', opts.lab, opts.seed);
    cleanups.push(() => lab.close());
    const prod = await sim('prod', opts.prod, opts.seed + 1);
    cleanups.push(() => prod.close());

    const keys = generateAuditKeyPair();
    const configPath = join(dir, 'config.yaml');
    writeFileSync(join(dir, 'audit-signing.key'), keys.privateKeyPem, { mode: 0o600 });
    const apiPort = await getFreePort();
    const configWrittenAt = Date.now();
    writeFileSync(
      configPath,
      stringify({
        server: { host: '127.0.0.1', port: apiPort },
        temporal: { namespace: NAMESPACE, taskQueue: `model-chaos-${opts.seed}` },
        environments: {
          lab: { tier: 'nonprod', proxmox: { url: lab.url, tokenId: SIM_TOKEN_ID, tokenSecret: { env: 'MODEL_CHAOS_LAB_SECRET' } }, maxActivitiesPerSecond: 50 },
          prod: { tier: 'prod', proxmox: { url: prod.url, tokenId: SIM_TOKEN_ID, tokenSecret: { env: 'MODEL_CHAOS_PROD_SECRET' } }, maxActivitiesPerSecond: 50 },
        },
        tokens: opts.tokens,
        policy: opts.policy(configWrittenAt),
        worker: { host: '127.0.0.1', port: 0, shutdownGraceSeconds: opts.shutdownGraceSeconds },
        audit: {
          postgres: { url: { env: 'MODEL_CHAOS_AUDIT_URL' } },
          signing: { privateKey: { file: 'audit-signing.key' }, checkpointEvery: 25, checkpointIntervalSeconds: 2 },
        },
      }),
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PROXMOX_AGENT_CONFIG: configPath,
      MODEL_CHAOS_LAB_SECRET: secrets.lab,
      MODEL_CHAOS_PROD_SECRET: secrets.prod,
      MODEL_CHAOS_AUDIT_URL: auditUrl,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: NAMESPACE,
      LOG_LEVEL: 'info',
    };
    delete env.PORT;
    delete env.WORKER_PORT;

    const api = serviceProcess('api', 'src/api/http/main.ts', env, 'API listening', opts.log);
    const workers = Array.from({ length: opts.workers ?? 2 }, (_, i) => i + 1).map((i) => serviceProcess(`worker-${i}`, 'src/worker/main.ts', env, 'worker polling', opts.log));
    cleanups.push(() => Promise.all([api, ...workers].map((p) => p.kill())).then(() => undefined));
    // The workers bundle their workflows at start: one after the other on 2 cores, then the API.
    for (const w of workers) await w.start();
    await api.start();

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

    let client: Promise<Client> | undefined;
    let connection: Connection | undefined;
    cleanups.push(() => connection?.close());
    const temporalClient = () =>
      (client ??= Connection.connect({ address: server.address }).then((c) => {
        connection = c;
        return new Client({ connection: c, namespace: NAMESPACE });
      }));

    const pool = new pg.Pool({ connectionString: auditUrl, max: 2 });
    cleanups.push(() => pool.end());
    const auditRecords: ModelEnv['auditRecords'] = async () => {
      const { rows } = await pool.query<{ seq: string; event_id: string; plan_id: string; record: string }>(
        'SELECT seq, event_id, plan_id, record FROM proxmox_agent_audit ORDER BY seq',
      );
      return rows.map((r) => ({ seq: Number(r.seq), eventId: r.event_id, planId: r.plan_id, record: JSON.parse(r.record) }));
    };
    const dispatchRows: ModelEnv['dispatchRows'] = async () => {
      const { rows } = await pool.query<{ plan_id: string; guest: string; state: string; attempt: number; note: string | null; intent_at: Date; upid: string | null; ended: boolean }>(
        `SELECT plan_id, guest, state, attempt, note, intent_at, upid, ended FROM ${DISPATCH_TABLE} ORDER BY intent_at`,
      );
      return rows.map((r) => ({ planId: r.plan_id, guest: r.guest, state: r.state, attempt: r.attempt, intentAt: r.intent_at.getTime(), ended: r.ended, ...(r.note ? { note: r.note } : {}), ...(r.upid ? { upid: r.upid } : {}) }));
    };
    const verifyAudit = () => {
      const r = spawnSync(process.execPath, ['bin/proxmox-agent.mjs', 'audit', 'verify', '--config', configPath, '--json'], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...env, LOG_LEVEL: 'warn' },
        timeout: 120_000,
      });
      let report: any;
      try {
        report = JSON.parse(r.stdout || 'null');
      } catch {
        report = undefined;
      }
      return { exit: r.status, report, output: `${r.stdout}\n${r.stderr}`.trim() };
    };

    const statuses = new Map<number | string, number>();
    const count = (k: number | string) => statuses.set(k, (statuses.get(k) ?? 0) + 1);
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const call: ModelEnv['call'] = async (method, path, o = {}) => {
      const deadline = Date.now() + (o.deadlineMs ?? 120_000);
      const retried: CallResult['retried'] = [];
      for (let attempt = 0; ; attempt++) {
        let status: number | string;
        let body: any;
        let retryAfterS: number | undefined;
        try {
          const res = await fetch(`${apiUrl}${path}`, {
            method,
            headers: {
              ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
              ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
              ...(o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {}),
            },
            ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
            signal: AbortSignal.timeout(o.timeoutMs ?? 90_000),
          });
          status = res.status;
          retryAfterS = Number(res.headers.get('retry-after') ?? '') || undefined;
          const text = await res.text();
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = text;
          }
        } catch (err) {
          status = `network:${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name}`;
        }
        count(status);
        const transient = status === 503 || status === 429 || typeof status === 'string';
        if (!transient || Date.now() > deadline) return { status: typeof status === 'number' ? status : 0, body, retried };
        retried.push(status);
        await new Promise((r) => setTimeout(r, retryAfterS ? Math.min(retryAfterS, 5) * 1000 : Math.min(250 * 2 ** Math.min(attempt, 4), 3000)));
      }
    };

    return {
      configWrittenAt,
      sims: { lab, prod },
      apiUrl,
      configPath,
      get temporalAddress() {
        return server.address;
      },
      statuses,
      call,
      api,
      workers,
      temporal,
      temporalClient,
      auditRecords,
      dispatchRows,
      verifyAudit,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function serviceProcess(name: string, script: string, env: NodeJS.ProcessEnv, readyLine: string, log: (line: string) => void): ServiceProcess {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let out = '';
  let starts = 0;
  let selfExits = 0;
  let ending = false;
  const pids: number[] = [];
  const keepTail = (s: string) => (out = (out + s).slice(-400_000));
  return {
    name,
    get running() {
      return child !== undefined;
    },
    get pid() {
      return child?.pid;
    },
    pids,
    get starts() {
      return starts;
    },
    get selfExits() {
      return selfExits;
    },
    output: () => out,
    async start() {
      if (child) throw new Error(`${name} is already running`);
      starts++;
      keepTail(`\n----- ${name} start #${starts} at ${new Date().toISOString()} -----\n`);
      const c = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script)], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      if (c.pid) pids.push(c.pid);
      c.stdout!.on('data', (d) => keepTail(String(d)));
      c.stderr!.on('data', (d) => keepTail(String(d)));
      exited = new Promise<void>((resolve) =>
        c.once('exit', (code, signal) => {
          if (!ending) {
            selfExits++;
            keepTail(`\n----- ${name} exited on its own (${code ?? signal}) -----\n`);
            log(`[model-chaos] ${name} exited on its own (${code ?? signal})`);
            if (child === c) child = undefined;
          }
          resolve();
        }),
      );
      let seen = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name} did not start within 180 s:\n${out.slice(-4000)}`)), 180_000);
        c.stdout!.on('data', (d) => {
          if (seen.length < 1_000_000) seen += String(d);
          if (seen.includes(readyLine)) {
            seen = '';
            clearTimeout(timer);
            resolve();
          }
        });
        c.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${out.slice(-4000)}`));
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
    async term() {
      const c = child;
      if (!c) return;
      ending = true;
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
      ending = false;
      child = undefined;
    },
  };
}
