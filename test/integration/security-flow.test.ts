/**
 * A full run of the service (plan, approval through a signed chat webhook, apply, a failure at
 * Proxmox) with signed audit checkpoints, once on the file store and once on PostgreSQL, then:
 *  - `audit verify` passes on both stores, with the public key, and for every evidence bundle;
 *  - every evidence bundle verifies offline and carries the task log;
 *  - the secret scan: nothing the service wrote (pino lines, console, stdout/stderr, the Temporal
 *    runtime's logs including core's), no HTTP response, no run's Temporal history and no audit record
 *    contains a secret: API tokens, the Proxmox token secret, the audit signing key, chat and
 *    notification secrets, the PostgreSQL password.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogEntry } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEvidenceBundle, type EvidenceBundle } from '../../src/audit/evidence.js';
import { checkpointsPathFor } from '../../src/audit/file-store.js';
import { generateAuditKeyPair, parsePublicKey } from '../../src/audit/signing.js';
import { webhookSignature } from '../../src/channels/signing.js';
import { runCli } from '../../src/cli/main.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging.js';
import { ProxmoxRequester } from '../../src/temporal/search-attributes.js';
import { startTestServer, type TestServer } from '../proxmox/helpers/http-server.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const captured: string[] = [];
const keys = generateAuditKeyPair();
const dir = mkdtempSync(join(tmpdir(), 'pa-secflow-'));
const keyFile = join(dir, 'audit-signing.key');
const pubFile = join(dir, 'audit-signing.pub');
writeFileSync(keyFile, keys.privateKeyPem, { mode: 0o600 });
writeFileSync(pubFile, keys.publicKeyPem);

const SECRETS: Record<string, string> = {
  ...Object.fromEntries(Object.entries(TOKENS).map(([k, v]) => [`api token ${k}`, v])),
  'proxmox token secret': `pve-${randomBytes(16).toString('hex')}`,
  'slack signing secret': `slack-${randomBytes(16).toString('hex')}`,
  'webhook bot secret': `bot-${randomBytes(16).toString('hex')}`,
  'notification secret': `notify-${randomBytes(16).toString('hex')}`,
  // The PEM's base64 body, line by line: any one line is a leak.
  ...Object.fromEntries(
    keys.privateKeyPem
      .split('\n')
      .filter((l) => l && !l.startsWith('-----'))
      .map((l, i) => [`audit signing key line ${i + 1}`, l]),
  ),
};

/** Stringify anything, with bytes (Temporal payloads) decoded as UTF-8 so their JSON is scanned too. */
function text(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
    if (v && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data)) return Buffer.from(v.data).toString('utf8');
    return v;
  });
}

/** History JSON carries payloads as base64 `data`: append them decoded, so their JSON is scanned. */
function withPayloadsDecoded(json: string): string {
  const decoded = [...json.matchAll(/"data":"([A-Za-z0-9+/=]{4,})"/g)].map((m) => Buffer.from(m[1]!, 'base64').toString('utf8'));
  return [json, ...decoded].join('\n');
}

// Everything written to the console or the standard streams by this process while tests run.
const restore: (() => void)[] = [];
function captureProcessOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    restore.push(() => (stream.write = write as typeof stream.write));
  }
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    const original = console[method];
    console[method] = (...args: unknown[]) => {
      captured.push(args.map((a) => (typeof a === 'string' ? a : a instanceof Error ? `${a.message}\n${a.stack}` : text(a))).join(' '));
      original(...args);
    };
    restore.push(() => (console[method] = original));
  }
}

let hooks: TestServer;

beforeAll(async () => {
  captureProcessOutput();
  hooks = await startTestServer((_req, res) => res.end('ok'));
  process.env.PA_SEC_SLACK = SECRETS['slack signing secret'];
  process.env.PA_SEC_BOT = SECRETS['webhook bot secret'];
  process.env.PA_SEC_NOTIFY = SECRETS['notification secret'];
});
afterAll(async () => {
  await hooks?.close();
  for (const r of restore.reverse()) r();
});

interface Run {
  t: TestService;
  log: ReturnType<typeof createLogger>;
  planIds: string[];
  bundles: EvidenceBundle[];
  responses: string[];
  verifyArgs: string[];
}

async function startRun(audit: (config: Config) => void): Promise<Run> {
  const log = createLogger({ level: 'trace', destination: { write: (line: string) => void captured.push(line) } });
  const t = await startTestService(
    (config) => {
      audit(config);
      config.channels = {
        slack: { signingSecret: { env: 'PA_SEC_SLACK' }, users: { UALICE: { principal: 'human:alice', roles: [], environments: ['*'] } }, responseUrlOrigins: [hooks.url] },
        webhooks: [{ id: 'opsbot', secret: { env: 'PA_SEC_BOT' }, approvers: { bob: { principal: 'human:bob', roles: [], environments: ['*'] } } }],
      };
      config.notifications = { webhooks: [{ name: 'json', url: `${hooks.url}/notify`, format: 'json', secret: { env: 'PA_SEC_NOTIFY' } }] };
    },
    {
      log,
      temporalLog: { level: 'DEBUG', write: (e: LogEntry) => void captured.push(`${e.level} ${e.message} ${text(e.meta)}`) },
      simulatorTokenSecret: SECRETS['proxmox token secret']!,
    },
  );
  return { t, log, planIds: [], bundles: [], responses: [], verifyArgs: [] };
}

async function call(run: Run, method: string, path: string, opts: Parameters<TestService['call']>[2] = {}) {
  const res = await run.t.call(method, path, opts);
  run.responses.push(`${res.status} ${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${text(res.body)}`);
  return res;
}

/** The flow: a low-risk apply, an approval through the signed webhook, a Proxmox failure, and refusals. */
async function flow(run: Run): Promise<void> {
  const { t } = run;
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
  const plan = async (body: object) => {
    const p = await call(run, 'POST', '/v1/actions/plan', { token: TOKENS.agent, body: { reason: 'security flow', params: {}, ...body } });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    run.planIds.push(p.body.planId);
    return { planId: p.body.planId as string, requestHash: p.body.requestHash as string };
  };
  const apply = (p: { planId: string; requestHash: string }) => call(run, 'POST', '/v1/actions/apply', { token: TOKENS.agent, body: p });

  // 1. Low risk: runs without approval.
  const start = await plan({ action: 'vm.start', environment: 'lab', target: { vmid: 101 } });
  expect((await apply(start)).status).toBe(202);
  expect((await t.waitForStatus(start.planId, ['succeeded', 'failed'])).status).toBe('succeeded');

  // 2. High risk in prod: one approval, given through the signed webhook as human:bob.
  const stop = await plan({ action: 'vm.stop', environment: 'prod', target: { vmid: 200 } });
  expect((await apply(stop)).status).toBe(202);
  const raw = JSON.stringify({ ...stop, decision: 'approve', approver: 'bob', nonce: randomBytes(12).toString('hex') });
  const ts = String(Math.floor(Date.now() / 1000));
  const forged = await call(run, 'POST', '/v1/channels/webhook/approvals', { body: raw, headers: { 'x-pa-timestamp': ts, 'x-pa-signature': webhookSignature('wrong-secret', ts, raw) } });
  expect(forged.status).toBe(401);
  const signed = await call(run, 'POST', '/v1/channels/webhook/approvals', { body: raw, headers: { 'x-pa-timestamp': ts, 'x-pa-signature': webhookSignature(SECRETS['webhook bot secret']!, ts, raw) } });
  expect(signed.status, JSON.stringify(signed.body)).toBe(202);
  const stopped = await t.waitForStatus(stop.planId, ['succeeded', 'failed']);
  expect(stopped.status).toBe('succeeded');
  expect(stopped.approval.approvers).toMatchObject([{ principal: 'human:bob', channel: 'chat' }]);

  // 3. Proxmox fails the task.
  t.sim('lab').faults.failTasks('disk on fire', { path: '/nodes/*/qemu/100/status/shutdown' });
  const shutdown = await plan({ action: 'vm.shutdown', environment: 'lab', target: { vmid: 100 } });
  expect((await apply(shutdown)).status).toBe(202);
  const failed = await t.waitForStatus(shutdown.planId, ['succeeded', 'failed']);
  expect(failed).toMatchObject({ status: 'failed', result: { exitstatus: 'disk on fire' } });

  // 4. Refusals: unknown token, self-approval, a token in the wrong place.
  expect((await call(run, 'GET', `/v1/actions/${start.planId}`, { token: 'not-a-real-token' })).status).toBe(401);
  expect((await call(run, 'POST', `/v1/actions/${stop.planId}/approvals`, { token: TOKENS.agent, body: { decision: 'approve' } })).status).toBe(403);
  expect((await call(run, 'GET', `/v1/actions/${stop.planId}`, { headers: { authorization: `Basic ${Buffer.from(`x:${TOKENS.ops}`).toString('base64')}` } })).status).toBe(401);

  // The requester's principal is in each run's search attributes (operators filter by it in the UI).
  for (const planId of run.planIds) {
    const described = await t.service.client.workflow.getHandle(planId).describe();
    expect(described.typedSearchAttributes.get(ProxmoxRequester)).toBe('agent:pi-demo');
  }

  // Evidence for each run. A GET never signs: the bundle carries the store's newest checkpoint once one
  // covers the run's last record (every 5 records, or 1 s after an unsigned one), a note until then.
  for (const planId of run.planIds) {
    let res = await call(run, 'GET', `/v1/actions/${planId}/evidence`, { token: TOKENS.approver1 });
    for (let i = 0; i < 50 && res.status === 200 && !res.body.audit.checkpoint; i++) {
      expect(res.body.audit.checkpointNote).toMatch(/^no signed checkpoint covers record seq \d+ yet/);
      await new Promise((r) => setTimeout(r, 200));
      res = await call(run, 'GET', `/v1/actions/${planId}/evidence`, { token: TOKENS.approver1 });
    }
    expect(res.status).toBe(200);
    run.bundles.push(res.body);
  }
}

async function verifyCli(args: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  try {
    return { code: await runCli(['node', 'proxmox-agent', 'audit', 'verify', ...args]), out: out.join('\n') };
  } finally {
    console.log = log;
    process.exitCode = 0;
  }
}

function checkBundles(run: Run): void {
  const key = parsePublicKey(keys.publicKeyPem);
  expect(run.bundles.map((b) => b.outcome.status)).toEqual(['succeeded', 'succeeded', 'failed']);
  for (const b of run.bundles) {
    expect(verifyEvidenceBundle(b, key)).toMatchObject({ ok: true, problems: [] });
    expect(b.request).toBeDefined();
    expect(b.audit.checkpoint!.seq).toBeGreaterThanOrEqual(b.audit.records.at(-1)!.seq);
    expect(b.audit.publicKey).toBe(keys.publicKeyPem);
    expect(b.proxmox.upid).toMatch(/^UPID:/);
    expect(b.proxmox.taskLog?.lines.length).toBeGreaterThan(0);
  }
  const [start, stop, failed] = run.bundles as [EvidenceBundle, EvidenceBundle, EvidenceBundle];
  expect(start.audit.records.map((r) => r.event)).toEqual(['plan.created', 'apply.requested', 'apply.checked', 'apply.started', 'action.applied']);
  expect(stop.audit.records.map((r) => `${r.event}:${r.actor ?? ''}:${r.channel ?? ''}`)).toEqual(
    expect.arrayContaining(['approval.granted:human:bob:chat', 'apply.requested:agent:pi-demo:api']),
  );
  expect(stop.approval.approvers).toMatchObject([{ principal: 'human:bob', channel: 'chat' }]);
  expect(failed.proxmox.taskLog!.lines.at(-1)).toBe('TASK ERROR: disk on fire');
  expect(failed.audit.records.at(-1)).toMatchObject({ event: 'action.failed', outcome: 'failed' });
}

async function checkStoreVerifies(run: Run): Promise<void> {
  const bundleFile = join(dir, `bundle-${run.planIds[1]}.json`);
  writeFileSync(bundleFile, JSON.stringify(run.bundles[1]));
  const withBundle = await verifyCli([...run.verifyArgs, '--public-key', pubFile, '--bundle', bundleFile]);
  expect(withBundle.code, withBundle.out).toBe(0);
  // The bundle alone, offline (the README's walkthrough), and a tampered copy of it.
  expect((await verifyCli(['--bundle', bundleFile, '--public-key', pubFile])).code).toBe(0);
  const tampered = structuredClone(run.bundles[1]!);
  tampered.approval.approvers[0]!.principal = 'human:mallory';
  tampered.audit.records.find((r) => r.event === 'approval.granted')!.actor = 'human:mallory';
  writeFileSync(`${bundleFile}.tampered`, JSON.stringify(tampered));
  const caught = await verifyCli(['--bundle', `${bundleFile}.tampered`, '--public-key', pubFile]);
  expect(caught.code).toBe(1);
  expect(caught.out).toMatch(/problem: record seq \d+: hash does not match its content \(edited\)/);
  // Editing only the summary, not the hashed records, is caught too: it must agree with them.
  const summaryOnly = structuredClone(run.bundles[1]!);
  summaryOnly.approval.approvers[0]!.principal = 'human:mallory';
  writeFileSync(`${bundleFile}.summary`, JSON.stringify(summaryOnly));
  const summaryCaught = await verifyCli(['--bundle', `${bundleFile}.summary`, '--public-key', pubFile]);
  expect(summaryCaught.code).toBe(1);
  expect(summaryCaught.out).toMatch(/problem: approvers human:mallory\/chat differ from the audit records \(human:bob\/chat\)/);
  const plain = await verifyCli([...run.verifyArgs, '--public-key', pubFile]);
  expect(plain.code, plain.out).toBe(0);
  expect(plain.out).toMatch(/^OK {2}.*signatures verified/m);
}

async function scan(run: Run, extra: Record<string, string> = {}): Promise<void> {
  // A field that should never be logged, logged anyway through the service's logger: redacted.
  run.log.warn(
    { authorization: `Bearer ${TOKENS.agent}`, headers: { authorization: `Bearer ${TOKENS.ops}` }, tokenSecret: SECRETS['proxmox token secret'], privateKey: keys.privateKeyPem },
    'secret-scan canary',
  );
  const histories = await Promise.all(run.planIds.map(async (id) => withPayloadsDecoded(text(await run.t.service.client.workflow.getHandle(id).fetchHistory()))));
  const records = text(await run.t.service.audit.all());
  const sources: Record<string, string> = {
    'service output (pino, console, stdout/stderr, Temporal runtime)': captured.join('\n'),
    'HTTP responses': run.responses.join('\n'),
    'Temporal run histories': histories.join('\n'),
    'audit records': records,
    'evidence bundles': text(run.bundles),
  };
  // The scan sees real output: Temporal's runtime lines (core's included), the pino lines, the runs.
  expect(captured.join('\n')).toMatch(/^(DEBUG|INFO|WARN) /m);
  expect(captured.join('\n')).toMatch(/"level":\d+.*"msg":"secret-scan canary"/);
  expect(sources['Temporal run histories']).toContain('security flow');
  const leaks: string[] = [];
  for (const [name, secret] of Object.entries({ ...SECRETS, ...extra }))
    for (const [where, content] of Object.entries(sources)) if (content.includes(secret)) leaks.push(`${name} in ${where}`);
  expect(leaks).toEqual([]);
}

describe('security flow on the file audit store', () => {
  let run: Run;
  let auditFile: string;
  beforeAll(async () => {
    run = await startRun((config) => {
      auditFile = config.audit.file;
      config.audit = { file: auditFile, signing: { privateKey: { file: keyFile }, checkpointEvery: 5, checkpointIntervalSeconds: 1 } };
    });
    run.verifyArgs = ['--file', auditFile];
  }, 120_000);
  afterAll(async () => {
    await run?.t.stop();
  });

  it('runs plan → approve (signed webhook) → apply, and a Proxmox failure', async () => {
    await flow(run);
  }, 120_000);

  it('hands out evidence bundles that verify offline, with task logs and signed heads', () => {
    checkBundles(run);
  });

  it('passes audit verify with the public key, alone and against a bundle', async () => {
    await checkStoreVerifies(run);
    expect(readFileSync(checkpointsPathFor(auditFile), 'utf8').trim().split('\n').length).toBeGreaterThan(0);
  });

  it('leaks no secret into logs, responses, run history, audit records or bundles', async () => {
    await scan(run);
  });
});

describePostgres('security flow on the PostgreSQL audit store', () => {
  let run: Run;
  let pg: TempPostgres;
  beforeAll(async () => {
    pg = await startTempPostgres();
    process.env.PA_SEC_AUDIT_PG = await pg.createDatabase();
    run = await startRun((config) => {
      config.audit = { file: config.audit.file, postgres: { url: { env: 'PA_SEC_AUDIT_PG' } }, signing: { privateKey: { file: keyFile }, checkpointEvery: 5, checkpointIntervalSeconds: 1 } };
    });
    run.verifyArgs = ['--postgres-url-env', 'PA_SEC_AUDIT_PG'];
  }, 120_000);
  afterAll(async () => {
    await run?.t.stop();
    await pg?.stop();
  });

  it('runs plan → approve (signed webhook) → apply, and a Proxmox failure', async () => {
    await flow(run);
  }, 120_000);

  it('hands out evidence bundles that verify offline, with task logs and signed heads', () => {
    checkBundles(run);
  });

  it('passes audit verify with the public key, alone and against a bundle', async () => {
    await checkStoreVerifies(run);
  });

  it('leaks no secret, the database password included', async () => {
    await scan(run, { 'postgres password': pg.password });
  });
});
