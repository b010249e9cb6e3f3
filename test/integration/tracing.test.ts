/**
 * OpenTelemetry tracing (issue 7 §2): off by default; with an exporter configured, one plan yields
 * client, workflow and activity spans in one trace.
 */
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTracing, tracingFromEnv } from '../../src/observability/tracing.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const exporter = new InMemorySpanExporter();
let t: TestService;
let planId: string;

beforeAll(async () => {
  // Tracing puts its interceptors into the workflow bundle, so the service bundles from source here.
  t = await startTestService(() => {}, { service: { tracing: createTracing(exporter, 'proxmox-agent-test', { batch: false }) } });
  for (let i = 0; i < 150 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
  const plan = await t.call('POST', '/v1/actions/plan', {
    token: TOKENS.agent,
    body: { action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'tracing test' },
  });
  expect(plan.status, JSON.stringify(plan.body)).toBe(201);
  planId = plan.body.planId;
  await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash: plan.body.requestHash } });
  await t.waitForStatus(planId, ['succeeded'], 30_000);
}, 180_000);

afterAll(async () => {
  await t?.stop();
});

describe('tracing', () => {
  it('is off unless an OTLP endpoint is configured', () => {
    expect(tracingFromEnv({}, 'x')).toBeUndefined();
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' }, 'x')).toBeUndefined();
    const on = tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, 'x');
    expect(on).toBeDefined();
    return on!.shutdown();
  });

  it('produces client, workflow and activity spans for a plan, in one trace', async () => {
    // Workflow spans leave the sandbox through a sink after the workflow task completes.
    let spans = exporter.getFinishedSpans();
    for (let i = 0; i < 50 && !spans.some((s) => s.name === 'RunActivity:executeAction'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      spans = exporter.getFinishedSpans();
    }
    const names = new Set(spans.map((s) => s.name));
    for (const name of ['UpdateWithStartWorkflow:plan', 'RunWorkflow:actionWorkflow', 'RunActivity:assess', 'StartActivity:executeAction', 'RunActivity:executeAction', 'StartWorkflowUpdate:apply']) {
      expect(names, [...names].join(', ')).toContain(name);
    }
    const start = spans.find((s) => s.name === 'UpdateWithStartWorkflow:plan')!;
    const run = spans.find((s) => s.name === 'RunWorkflow:actionWorkflow')!;
    const execute = spans.find((s) => s.name === 'RunActivity:executeAction')!;
    // The API's call is the root; the run and the Proxmox activity hang under it.
    expect(start.parentSpanId).toBeUndefined();
    expect(run.parentSpanId).toBe(start.spanContext().spanId);
    expect(execute.spanContext().traceId).toBe(start.spanContext().traceId);
    expect(execute.attributes).toMatchObject({ temporalWorkflowId: planId });
    expect(execute.resource.attributes['service.name']).toBe('proxmox-agent-test');
  });
});
