/**
 * The secret scan in the deployment shape: the worker as its own OS process (`src/worker/main.ts`,
 * pino at trace level, Temporal's runtime and core writing to its stdout/stderr), the API in this
 * process, the Proxmox simulator reached over HTTP with a token secret from the environment, the
 * audit log signed with a key from a file. After a flow (an apply, an approval, a Proxmox failure),
 * nothing the worker process wrote, and nothing the API wrote, contains a secret.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAuditKeyPair } from '../../src/audit/signing.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logging.js';
import { startService, type RunningService } from '../../src/service.js';
import { demoClusters, DEMO_TOKEN_ID, startSimulator, type ProxmoxSimulator } from '../../src/simulator/index.js';
import { testConnectionOptions } from '../setup/temporal.js';
import { TOKENS } from './support/service.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const simSecret = `pve-${randomBytes(16).toString('hex')}`;
const keys = generateAuditKeyPair();
const apiOutput: string[] = [];
let workerOutput = '';
let sim: ProxmoxSimulator;
let api: RunningService;
let worker: ChildProcess;

async function call(method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  apiOutput.push(text);
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function waitFor(planId: string, statuses: string[]): Promise<any> {
  for (let i = 0; i < 300; i++) {
    const { body } = await call('GET', `/v1/actions/${planId}`, TOKENS.agent);
    if (statuses.includes(body?.status)) return body;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`plan ${planId} did not reach ${statuses.join('|')}:\n${workerOutput.slice(-3000)}`);
}

beforeAll(async () => {
  sim = await startSimulator({ cluster: demoClusters({ lab: simSecret, prod: simSecret }).lab, taskDurationMs: 50, authFailureDelayMs: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'pa-procscan-'));
  writeFileSync(join(dir, 'audit-signing.key'), keys.privateKeyPem, { mode: 0o600 });
  const demo = loadConfig({}).config;
  const configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    stringify({
      server: { host: '127.0.0.1', port: 0 },
      temporal: { namespace: inject('temporalNamespace'), taskQueue: `procscan-${randomBytes(4).toString('hex')}` },
      environments: { lab: { tier: 'nonprod', proxmox: { url: sim.url, tokenId: DEMO_TOKEN_ID, tokenSecret: { env: 'PA_SCAN_SIM_SECRET' } } } },
      tokens: demo.tokens,
      policy: { approvalsByRisk: { low: 0, medium: 1, high: 1, critical: 2 }, rules: [] },
      audit: { file: 'audit.jsonl', signing: { privateKey: { file: 'audit-signing.key' }, checkpointEvery: 2 } },
    }),
  );
  const env = { ...process.env, PROXMOX_AGENT_CONFIG: configPath, PA_SCAN_SIM_SECRET: simSecret, TEMPORAL_ADDRESS: inject('temporalAddress'), LOG_LEVEL: 'trace', WORKER_PORT: '0' };
  worker = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/worker/main.ts')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  worker.stdout!.on('data', (d) => (workerOutput += d));
  worker.stderr!.on('data', (d) => (workerOutput += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${workerOutput}`)), 90_000);
    const check = () => workerOutput.includes('worker polling') && (clearTimeout(timer), resolve());
    worker.stdout!.on('data', check);
    worker.once('exit', (code) => (clearTimeout(timer), reject(new Error(`worker exited ${code}:\n${workerOutput}`))));
  });
  const { config } = loadConfig(env);
  api = await startService({
    config,
    configPath,
    env,
    temporal: testConnectionOptions(),
    worker: false,
    log: createLogger({ level: 'trace', destination: { write: (line: string) => void apiOutput.push(line) } }),
  });
}, 120_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((r) => worker.once('exit', r));
    worker.kill('SIGTERM');
    await exited;
  }
  await api?.stop();
  await sim?.close();
});

describe('secret scan with the worker as its own process', () => {
  it('runs an apply, an approval and a Proxmox failure, then finds no secret in either process\'s output', async () => {
    const plan = async (body: object) => {
      const p = await call('POST', '/v1/actions/plan', TOKENS.agent, { reason: 'process scan', params: {}, environment: 'lab', ...body });
      expect(p.status, JSON.stringify(p.body)).toBe(201);
      return { planId: p.body.planId as string, requestHash: p.body.requestHash as string };
    };
    const start = await plan({ action: 'vm.start', target: { vmid: 101 } });
    expect((await call('POST', '/v1/actions/apply', TOKENS.agent, start)).status).toBe(202);
    expect((await waitFor(start.planId, ['succeeded', 'failed'])).status).toBe('succeeded');

    const stop = await plan({ action: 'vm.stop', target: { vmid: 100 } }); // medium: one approval here
    expect((await call('POST', '/v1/actions/apply', TOKENS.agent, stop)).status).toBe(202);
    expect((await call('POST', `/v1/actions/${stop.planId}/approvals`, TOKENS.approver1, { decision: 'approve' })).status).toBe(202);
    expect((await waitFor(stop.planId, ['succeeded', 'failed'])).status).toBe('succeeded');

    sim.faults.failTasks('controller on fire', { path: '/nodes/*/lxc/300/status/shutdown' });
    const down = await plan({ action: 'ct.shutdown', target: { vmid: 300 } });
    expect((await call('POST', '/v1/actions/apply', TOKENS.agent, down)).status).toBe(202);
    await call('POST', `/v1/actions/${down.planId}/approvals`, TOKENS.approver2, { decision: 'approve' });
    expect((await waitFor(down.planId, ['succeeded', 'failed'])).status).toBe('failed');
    expect((await call('GET', `/v1/actions/${down.planId}/evidence`, TOKENS.approver1)).status).toBe(200);
    expect((await call('GET', `/v1/actions/${down.planId}`, 'wrong-token')).status).toBe(401);

    // Stop the worker (it signs the last checkpoint on the way out) and read everything it wrote.
    const exited = new Promise((r) => worker.once('exit', r));
    worker.kill('SIGTERM');
    await exited;
    expect(workerOutput).toMatch(/"level":30.*"msg":"worker polling"/); // its pino lines are in what we scan
    expect(workerOutput).toMatch(/"level":40,/); // and the failed activity's warning

    const secrets: Record<string, string> = {
      'proxmox token secret': simSecret,
      ...Object.fromEntries(Object.entries(TOKENS).map(([k, v]) => [`api token ${k}`, v])),
      ...Object.fromEntries(keys.privateKeyPem.split('\n').filter((l) => l && !l.startsWith('-----')).map((l, i) => [`signing key line ${i + 1}`, l])),
      'proxmox token secret (sha256)': createHash('sha256').update(simSecret).digest('hex'),
    };
    const leaks = Object.entries(secrets).flatMap(([name, value]) => [
      ...(workerOutput.includes(value) ? [`${name} in the worker process's output`] : []),
      ...(apiOutput.join('\n').includes(value) ? [`${name} in the API's output or responses`] : []),
    ]);
    expect(leaks).toEqual([]);
  }, 120_000);
});
