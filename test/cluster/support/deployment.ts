/**
 * The production shape the cluster suite (test/cluster/) runs, all on loopback:
 *  - a real Temporal server on PostgreSQL (`startTemporalCluster`), whose PostgreSQL cluster also holds
 *    the audit store's database (`audit.postgres`, with signed checkpoints);
 *  - two API replicas and two workers, each its own OS process (`src/api/http/main.ts`, `src/worker/main.ts`)
 *    on one config file, logs in test-artifacts/cluster/;
 *  - the Proxmox simulator (two clusters, the demo guests plus a few more) in this process, so the
 *    test reads its mutation log and injects slow tasks as a Proxmox operator would see them.
 *
 * The config is config/demo.yaml (tokens, policy) pointed at all of that, plus a webhook bot for the
 * signed approvals and a rate-limit-only token.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { generateAuditKeyPair } from '../../../src/audit/signing.js';
import { DEMO_TOKEN_ID, demoClusters, startSimulator, type ProxmoxSimulator, type SimGuestSeed } from '../../../src/simulator/index.js';
import { getFreePort } from '../../../src/temporal/dev-server.js';
import { serviceProcess, type ServiceProcess } from './processes.js';
import { startTemporalCluster, type TemporalCluster } from '../../../src/temporal/cluster.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'cluster');

/** The README's demo tokens, and one for the rate-limit check alone. */
export const TOKENS = {
  agent: 'demo-agent-token',
  alice: 'demo-approver-1-token',
  bob: 'demo-approver-2-token',
  rate: 'cluster-rate-token',
} as const;

/** Shared by every token, across replicas (server.rateLimit). */
export const RATE_LIMIT = { requestsPerSecond: 10, burst: 40 } as const;
export const SHUTDOWN_GRACE_SECONDS = 2;
export const WEBHOOK_BOT = { id: 'opsbot', approver: 'alice@example.com', principal: 'human:alice' } as const;

export interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** Sent as is (signed requests); `body` is ignored then. */
  rawBody?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface Deployment {
  temporal: TemporalCluster;
  sims: { lab: ProxmoxSimulator; prod: ProxmoxSimulator };
  apis: ServiceProcess[];
  workers: ServiceProcess[];
  configPath: string;
  publicKeyPath: string;
  webhookSecret: string;
  /** One HTTP request to a process (no retries: every answer is the test's to judge). */
  call(to: ServiceProcess, method: string, path: string, opts?: CallOptions): Promise<Answer>;
  temporalClient(): Promise<Client>;
  /** The audit log as stored, in seq order. */
  auditRows(): Promise<{ seq: number; planId: string; type: string; record: any }[]>;
  /** `proxmox-agent audit verify <args>` with this deployment's environment; exit code and output. */
  auditVerify(args: string[]): { exit: number | null; output: string };
  stop(): Promise<void>;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The demo clusters, plus twins of the walkthrough's guests (so it runs once per replica) and idle VMs for the other checks. */
function simulatedClusters(secrets: { lab: string; prod: string }) {
  const demo = demoClusters(secrets);
  const twin = (g: SimGuestSeed, vmid: number): SimGuestSeed => ({ ...structuredClone(g), vmid, name: `${g.name}-2`, disks: Object.fromEntries(Object.entries(g.disks ?? {}).map(([k, v]) => [k, v.replace(`vm-${g.vmid}-`, `vm-${vmid}-`)])) });
  const byId = (guests: SimGuestSeed[], vmid: number) => guests.find((g) => g.vmid === vmid)!;
  // 110-121: the other checks' guests; the ones they delete are stopped (a running VM is not deleted).
  const stopped = new Set([110, 111, 114, 117]);
  const work = (vmid: number): SimGuestSeed => ({ vmid, type: 'qemu', node: 'pve-lab', name: `work-${vmid}`, status: stopped.has(vmid) ? 'stopped' : 'running', tags: ['lab'], cores: 1, memory: 1024, disks: { scsi0: `local-lvm:vm-${vmid}-disk-0,size=8G` } });
  demo.lab.guests.push(twin(byId(demo.lab.guests, 101), 102), ...Array.from({ length: 12 }, (_, i) => work(110 + i)));
  demo.prod.guests.push(twin(byId(demo.prod.guests, 201), 202));
  return demo;
}

export async function startDeployment(opts: { log: (line: string) => void }): Promise<Deployment> {
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'pa-cluster-suite-'));
  const cleanups: (() => Promise<unknown> | unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch((err: unknown) => opts.log(`cleanup: ${String(err)}`));
  };
  try {
    const clusterLog = join(ARTIFACTS, 'temporal-cluster.log');
    const temporal = await startTemporalCluster({ log: (m) => writeFileSync(clusterLog, `${new Date().toISOString()} ${m}\n`, { flag: 'a' }) });
    cleanups.push(() => temporal.stop());
    // The server's own log lives in the cluster's temp directory, which stop() deletes.
    cleanups.push(() => existsSync(temporal.serverLog) && copyFileSync(temporal.serverLog, join(ARTIFACTS, 'temporal-server.log')));
    const auditUrl = await temporal.createDatabase('proxmox_audit');

    const secrets = { lab: randomUUID(), prod: randomUUID() };
    const clusters = simulatedClusters(secrets);
    const lab = await startSimulator({ cluster: clusters.lab, taskDurationMs: 1000, authFailureDelayMs: 0 });
    cleanups.push(() => lab.close());
    const prod = await startSimulator({ cluster: clusters.prod, taskDurationMs: 1000, authFailureDelayMs: 0 });
    cleanups.push(() => prod.close());

    const keys = generateAuditKeyPair();
    writeFileSync(join(dir, 'audit-signing.key'), keys.privateKeyPem, { mode: 0o600 });
    const publicKeyPath = join(dir, 'audit-signing.pub');
    writeFileSync(publicKeyPath, keys.publicKeyPem);
    const webhookSecret = randomUUID();
    const demo = parse(readFileSync(join(ROOT, 'config', 'demo.yaml'), 'utf8')) as Record<string, any>;
    const proxmox = (sim: ProxmoxSimulator, env: string) => ({ url: sim.url, tokenId: DEMO_TOKEN_ID, tokenSecret: { env } });
    const configPath = join(dir, 'config.yaml');
    writeFileSync(
      configPath,
      stringify({
        ...demo,
        server: { host: '127.0.0.1', port: 0, rateLimit: RATE_LIMIT },
        temporal: { ...demo.temporal, namespace: temporal.namespace },
        environments: {
          lab: { ...demo.environments.lab, proxmox: proxmox(lab, 'CLUSTER_LAB_SECRET') },
          prod: { ...demo.environments.prod, proxmox: proxmox(prod, 'CLUSTER_PROD_SECRET') },
        },
        tokens: [...demo.tokens, { id: 'rate-check', principal: 'agent:rate-check', secretSha256: sha256(TOKENS.rate), scopes: ['read'], environments: ['*'] }],
        channels: {
          webhooks: [{ id: WEBHOOK_BOT.id, secret: { env: 'CLUSTER_WEBHOOK_SECRET' }, approvers: { [WEBHOOK_BOT.approver]: { principal: WEBHOOK_BOT.principal, roles: ['sre'] } } }],
        },
        worker: { host: '127.0.0.1', port: 0, shutdownGraceSeconds: SHUTDOWN_GRACE_SECONDS },
        audit: {
          postgres: { url: { env: 'CLUSTER_AUDIT_URL' } },
          signing: { privateKey: { file: 'audit-signing.key' }, checkpointEvery: 10, checkpointIntervalSeconds: 2 },
        },
      }),
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PROXMOX_AGENT_CONFIG: configPath,
      CLUSTER_LAB_SECRET: secrets.lab,
      CLUSTER_PROD_SECRET: secrets.prod,
      CLUSTER_WEBHOOK_SECRET: webhookSecret,
      CLUSTER_AUDIT_URL: auditUrl,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      LOG_LEVEL: 'info',
    };
    delete env.PORT;
    delete env.WORKER_PORT;

    const role = async (kind: 'api' | 'worker', i: number): Promise<ServiceProcess> => {
      const port = await getFreePort();
      return serviceProcess({
        name: `${kind}-${i}`,
        root: ROOT,
        script: kind === 'api' ? 'src/api/http/main.ts' : 'src/worker/main.ts',
        env: { ...env, [kind === 'api' ? 'PORT' : 'WORKER_PORT']: String(port) },
        url: `http://127.0.0.1:${port}`,
        readyMessage: kind === 'api' ? 'API listening' : 'worker polling',
        logDir: ARTIFACTS,
      });
    };
    const workers = [await role('worker', 1), await role('worker', 2)];
    const apis = [await role('api', 1), await role('api', 2)];
    cleanups.push(() => Promise.all([...apis, ...workers].map((p) => p.kill())));
    // One at a time: each worker bundles the workflow code at start, and there are two cores.
    for (const p of [...workers, ...apis]) await p.start();

    let connection: Connection | undefined;
    let client: Promise<Client> | undefined;
    cleanups.push(() => connection?.close());
    const temporalClient = () =>
      (client ??= Connection.connect({ address: temporal.address }).then((c) => {
        connection = c;
        return new Client({ connection: c, namespace: temporal.namespace });
      }));

    const pool = new pg.Pool({ connectionString: auditUrl, max: 2 });
    pool.on('error', () => undefined); // the PostgreSQL restart ends idle connections
    cleanups.push(() => pool.end());
    const auditRows: Deployment['auditRows'] = async () => {
      const { rows } = await pool.query<{ seq: string; plan_id: string; record: string }>('SELECT seq, plan_id, record FROM proxmox_agent_audit ORDER BY seq');
      return rows.map((r) => {
        const record = JSON.parse(r.record) as { event: string };
        return { seq: Number(r.seq), planId: r.plan_id, type: record.event, record };
      });
    };

    const auditVerify = (args: string[]) => {
      const r = spawnSync(process.execPath, ['bin/proxmox-agent.mjs', 'audit', 'verify', ...args], { cwd: ROOT, encoding: 'utf8', env: { ...env, LOG_LEVEL: 'warn' }, timeout: 120_000 });
      return { exit: r.status, output: `${r.stdout}\n${r.stderr}`.trim() };
    };

    const call: Deployment['call'] = async (to, method, path, o = {}) => {
      const body = o.rawBody ?? (o.body !== undefined ? JSON.stringify(o.body) : undefined);
      const res = await fetch(`${to.url}${path}`, {
        method,
        headers: {
          ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...o.headers,
        },
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(o.timeoutMs ?? 60_000),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        /* not JSON: keep the text */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    };

    return { temporal, sims: { lab, prod }, apis, workers, configPath, publicKeyPath, webhookSecret, call, temporalClient, auditRows, auditVerify, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
