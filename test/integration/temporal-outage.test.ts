/**
 * Outages noticed within 3 s (issue 13, item 4). Its own Temporal dev server (a SQLite file, a free
 * port, headless), the API and a worker as separate processes (`src/api/http/main.ts`,
 * `src/worker/main.ts`). The server is SIGKILLed: `/healthz` and `/readyz` of the API and of the
 * worker answer 503 within 3 s, and so do API calls that need Temporal (problem+json, Retry-After),
 * one sent at the moment of the kill included. The server comes back on the same port and file: the
 * four endpoints answer 200 within 3 s of the frontend answering again. Every endpoint is polled every
 * 100 ms, each poll on its own (a slow answer does not delay the next poll).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTemporalCli } from '../../src/temporal/cli-locator.js';
import { getFreePort, probeTemporal, startDevServer, type DevServerHandle } from '../../src/temporal/dev-server.js';
import { startSplitService, type SplitService, type WorkerProcess } from './support/split-service.js';
import { until } from './support/until.js';

const AGENT = 'demo-agent-token';
/** The bound, never tighter. */
const BOUND_MS = 3000;
/** Long enough for the SDK's backoffs to grow past what a short blip would show. */
const OUTAGE_MS = 8000;

let dir: string;
let address: string;
let server: DevServerHandle | undefined;
let startServer: () => Promise<DevServerHandle>;
let s: SplitService;
let worker: WorkerProcess;

interface Answer {
  sentAt: number;
  at: number;
  status: number;
}

/** Polls one URL every 100 ms, each request on its own, until stopped; keeps every answer. */
function poll(url: string) {
  const answers: Answer[] = [];
  const timer = setInterval(() => {
    const sentAt = Date.now();
    fetch(url, { signal: AbortSignal.timeout(30_000) }).then(
      async (res) => {
        await res.arrayBuffer();
        answers.push({ sentAt, at: Date.now(), status: res.status });
      },
      () => answers.push({ sentAt, at: Date.now(), status: 0 }),
    );
  }, 100);
  return {
    answers,
    /** When the first answer with `status` to a poll sent at or after `from` arrived. */
    first: (status: number, from: number) => answers.filter((a) => a.sentAt >= from && a.status === status).reduce((t, a) => Math.min(t, a.at), Infinity),
    stop: () => clearInterval(timer),
  };
}

async function timed(method: string, path: string, body?: unknown) {
  const started = Date.now();
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${AGENT}`, ...(body ? { 'content-type': 'application/json', 'idempotency-key': `outage-${started}` } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { ms: Date.now() - started, status: res.status, type: res.headers.get('content-type'), retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { type?: string; detail?: string } };
}

const planBody = { action: 'vm.start', environment: 'lab', target: { vmid: 601 }, params: {}, reason: 'outage test' };

describe('a Temporal outage', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pa-outage-'));
    const cliPath = await ensureTemporalCli();
    const port = await getFreePort();
    startServer = () => startDevServer({ cliPath, dbFile: join(dir, 'temporal.sqlite'), port, headless: true, reuseExisting: false, logLevel: 'error' });
    server = await startServer();
    address = server.address;
    s = await startSplitService({
      apiProcess: true,
      temporalAddress: server.address,
      guests: [{ vmid: 601, type: 'qemu', node: 'pve-f1', name: 'vm-601', status: 'stopped' }],
    });
    worker = await s.startWorker();
    await until('API /healthz 200', async () => (await fetch(`${s.url}/healthz`)).status === 200, 60_000, 200);
    await until('worker /readyz 200', async () => (await fetch(`${worker.url}/readyz`)).status === 200, 60_000, 200);
  }, 180_000);

  afterAll(async () => {
    await s?.stop();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is answered with 503 within 3 s by health, readiness and API calls, and recovery with 200 within 3 s of the frontend answering', async () => {
    const planned = await timed('POST', '/v1/actions/plan', planBody);
    expect(planned.status, JSON.stringify(planned.body)).toBe(201);
    const planId = (planned.body as { planId: string }).planId;

    const endpoints = {
      'API /healthz': poll(`${s.url}/healthz`),
      'API /readyz': poll(`${s.url}/readyz`),
      'worker /healthz': poll(`${worker.url}/healthz`),
      'worker /readyz': poll(`${worker.url}/readyz`),
    };
    const report: string[] = [];
    try {
      await new Promise((r) => setTimeout(r, 500));
      for (const [name, p] of Object.entries(endpoints)) expect(p.answers.filter((a) => a.status === 200).length, `${name} before the kill`).toBeGreaterThan(0);

      // Down: SIGKILL, and API calls sent at that very moment.
      const killedAt = Date.now();
      process.kill(server!.pid!, 'SIGKILL');
      const atKill = await Promise.all([timed('GET', `/v1/actions/${planId}`), timed('POST', '/v1/actions/plan', planBody)]);
      await until('every endpoint 503', () => Object.values(endpoints).every((p) => p.first(503, killedAt) < Infinity), 10_000, 50);
      const later = await timed('GET', `/v1/actions/${planId}`);
      await server!.exited;
      server = undefined;

      for (const [name, p] of Object.entries(endpoints)) report.push(`${name}: 503 after ${p.first(503, killedAt) - killedAt} ms`);
      for (const [i, call] of [...atKill, later].entries()) {
        report.push(`${['GET plan at the kill', 'POST plan at the kill', 'GET plan once noticed'][i]}: ${call.status} in ${call.ms} ms`);
        expect(call.status, JSON.stringify(call.body)).toBe(503);
        expect(call.type).toBe('application/problem+json');
        expect(call.body.type).toBe('/problems/temporal-unavailable');
        expect(Number(call.retryAfter)).toBeGreaterThan(0);
        expect(call.ms).toBeLessThanOrEqual(BOUND_MS);
      }
      expect(later.body.detail).toMatch(/is not reachable/);
      for (const [name, p] of Object.entries(endpoints)) expect(p.first(503, killedAt) - killedAt, name).toBeLessThanOrEqual(BOUND_MS);

      // Up: the same port and file; measured from the first answer of the frontend.
      await new Promise((r) => setTimeout(r, Math.max(0, killedAt + OUTAGE_MS - Date.now())));
      let answeredAt = Infinity;
      const watching = (async () => {
        while (answeredAt === Infinity) {
          const tried = Date.now();
          if ((await probeTemporal(address, undefined, 500)).ok) answeredAt = tried;
          else await new Promise((r) => setTimeout(r, 50));
        }
      })();
      server = await startServer();
      await watching;
      await until('every endpoint 200', () => Object.values(endpoints).every((p) => p.first(200, answeredAt) < Infinity), 20_000, 50);
      for (const [name, p] of Object.entries(endpoints)) report.push(`${name}: 200 after ${p.first(200, answeredAt) - answeredAt} ms`);
      for (const [name, p] of Object.entries(endpoints)) expect(p.first(200, answeredAt) - answeredAt, name).toBeLessThanOrEqual(BOUND_MS);
    } finally {
      for (const p of Object.values(endpoints)) p.stop();
      console.log(`[temporal-outage] ${report.join('; ')}`);
    }

    // And the service works again.
    await until('the plan readable again', async () => (await timed('GET', `/v1/actions/${planId}`)).status === 200, 20_000, 200);
  });
});
