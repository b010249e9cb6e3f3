/**
 * Metrics and logs of the real service (issue 7 §2): `/metrics` in Prometheus text format with the
 * API's request, latency and decision series, the worker's activity outcomes and the Proxmox client's
 * latency and errors by route and class; JSON log lines that carry planId and workflowId for every
 * activity of a run, and never the Proxmox token secret; `/readyz`.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const SECRET = 'c0ffee00-0bse-rvab-ilit-y0000secret1';
const lines: Record<string, unknown>[] = [];
const raw: string[] = [];
const sink = new Writable({
  write(chunk, _enc, done) {
    for (const line of String(chunk).split('\n').filter(Boolean)) {
      raw.push(line);
      lines.push(JSON.parse(line));
    }
    done();
  },
});

let t: TestService;
let planId: string;

/** One sample line of `name` whose labels include `labels`; its value. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

beforeAll(async () => {
  t = await startTestService(() => {}, { log: createLogger({ level: 'debug', destination: sink }), simulatorTokenSecret: SECRET });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));

  // One transient Proxmox failure on the dispatch: the activity fails once, is retried, succeeds.
  t.sim('lab').faults.add({ kind: 'error', method: 'POST', path: '/nodes/*/qemu/101/status/start', status: 503, message: 'Service Unavailable', times: 1 });
  const plan = await t.call('POST', '/v1/actions/plan', {
    token: TOKENS.agent,
    body: { action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'observability test' },
  });
  expect(plan.status, JSON.stringify(plan.body)).toBe(201);
  planId = plan.body.planId;
  expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash: plan.body.requestHash } })).status).toBe(202);
  await t.waitForStatus(planId, ['succeeded'], 30_000);
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

describe('/metrics', () => {
  let text: string;
  let contentType: string | null;
  beforeAll(async () => {
    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    contentType = res.headers.get('content-type');
    text = await res.text();
  });

  it('is Prometheus text format', () => {
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toMatch(/^# HELP proxmox_agent_http_requests_total /m);
    expect(text).toMatch(/^# TYPE proxmox_agent_http_request_duration_seconds histogram$/m);
  });

  it('counts API requests by route template and status, with latency histograms', () => {
    expect(sample(text, 'proxmox_agent_http_requests_total', { method: 'POST', route: '/v1/actions/plan', status: '201' })).toBe(1);
    expect(sample(text, 'proxmox_agent_http_requests_total', { method: 'GET', route: '/v1/actions/:planId', status: '200' })).toBeGreaterThan(0);
    expect(sample(text, 'proxmox_agent_http_request_duration_seconds_count', { method: 'POST', route: '/v1/actions/apply', status: '202' })).toBe(1);
    expect(sample(text, 'proxmox_agent_http_request_duration_seconds_bucket', { route: '/v1/actions/plan', le: '+Inf' })).toBe(1);
    // Filled paths never become label values.
    expect(text).not.toContain(planId);
  });

  it('counts plan decisions by risk and outcome', () => {
    expect(sample(text, 'proxmox_agent_plan_decisions_total', { environment: 'lab', risk: 'low', decision: 'allowed' })).toBe(1);
  });

  it('counts activity attempts by outcome and error class, on the environment task queue', () => {
    const queue = `${t.config.temporal.taskQueue}-lab`;
    expect(sample(text, 'proxmox_agent_activity_executions_total', { activity: 'executeAction', task_queue: queue, outcome: 'failed', error: 'ProxmoxTransientError' })).toBe(1);
    expect(sample(text, 'proxmox_agent_activity_executions_total', { activity: 'executeAction', task_queue: queue, outcome: 'completed' })).toBe(1);
    expect(sample(text, 'proxmox_agent_activity_executions_total', { activity: 'assess', outcome: 'completed' })).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'proxmox_agent_activity_duration_seconds_count', { activity: 'executeAction', outcome: 'completed' })).toBe(1);
  });

  it('times Proxmox calls by route template and counts their errors by class and status', () => {
    const route = '/nodes/{node}/qemu/{vmid}/status/start';
    expect(sample(text, 'proxmox_agent_proxmox_request_duration_seconds_count', { environment: 'lab', method: 'POST', route, outcome: 'ok' })).toBe(1);
    expect(sample(text, 'proxmox_agent_proxmox_errors_total', { environment: 'lab', method: 'POST', route, error: 'ProxmoxTransientError', status: '503' })).toBe(1);
    expect(sample(text, 'proxmox_agent_proxmox_request_duration_seconds_count', { environment: 'lab', method: 'GET', route: '/nodes/{node}/qemu/{vmid}/status/current', outcome: 'ok' })).toBeGreaterThan(0);
  });
});

describe('logs', () => {
  it('put planId and workflowId on every activity line of the run', () => {
    const run = lines.filter((l) => l.planId === planId);
    const activities = new Set(run.map((l) => l.activity));
    expect([...activities].sort()).toEqual(expect.arrayContaining(['assess', 'executeAction']));
    for (const l of run) expect(l, JSON.stringify(l)).toMatchObject({ planId, workflowId: planId, runId: expect.any(String) });
    // No line that mentions the plan lacks the fields.
    const mentioning = raw.filter((line) => line.includes(planId)).map((line) => JSON.parse(line));
    expect(mentioning.length).toBe(run.length);
    const failed = run.find((l) => l.msg === 'activity failed');
    expect(failed).toMatchObject({ level: 40, activity: 'executeAction', attempt: 1, error: { type: 'ProxmoxTransientError' } });
  });

  it('never carry the Proxmox token secret or an Authorization header', () => {
    expect(raw.length).toBeGreaterThan(0);
    for (const line of raw) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toMatch(/PVEAPIToken=/);
    }
  });
});

describe('/readyz', () => {
  it('answers ready while Temporal is reachable', async () => {
    const res = await t.call('GET', '/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ready', checks: { temporal: { ok: true } } });
  });
});
