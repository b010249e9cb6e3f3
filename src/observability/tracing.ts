/**
 * OpenTelemetry tracing through `@temporalio/interceptors-opentelemetry`: spans for the API's
 * Temporal calls (Update-with-Start, updates, signals, queries), the workflow run and its handlers,
 * and every activity, linked into one trace per request through Temporal headers.
 *
 * Off unless configured: `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
 * names an OTLP/HTTP collector, e.g. `http://otel-collector:4318`; `OTEL_SERVICE_NAME` overrides the
 * service name; `OTEL_SDK_DISABLED=true` turns it off again. Tests pass their own exporter.
 */
import { createRequire } from 'node:module';
import { context, propagation, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';

/** The workflow-side interceptors: bundled into the workflow code when tracing is on. */
export const OTEL_WORKFLOW_INTERCEPTORS = createRequire(import.meta.url).resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

export interface Tracing {
  readonly tracer: Tracer;
  readonly resource: Resource;
  readonly spanProcessor: SpanProcessor;
  /** Flushes pending spans and stops the exporter. */
  shutdown(): Promise<void>;
}

/** Tracing as the environment configures it, or undefined (the default: off). */
export function tracingFromEnv(env: NodeJS.ProcessEnv, serviceName: string): Tracing | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!endpoint || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  // The exporter reads the OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout) itself.
  return createTracing(new OTLPTraceExporter(), env.OTEL_SERVICE_NAME?.trim() || serviceName);
}

/** `batch: false` exports each span as it ends (tests). */
export function createTracing(exporter: SpanExporter, serviceName: string, opts: { batch?: boolean } = {}): Tracing {
  // The interceptors carry the trace through Temporal headers with the global propagator, and need
  // the active span to follow awaits: both default to no-ops in @opentelemetry/api. (Set once per
  // process; a second call keeps the first.)
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const resource = new Resource({ 'service.name': serviceName });
  const spanProcessor = opts.batch === false ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter);
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // The provider itself is not registered globally: the interceptors get this tracer explicitly.
  return { tracer: provider.getTracer('proxmox-agent'), resource, spanProcessor, shutdown: () => provider.shutdown() };
}

export function tracingClientInterceptors(tracing: Tracing): WorkflowClientInterceptor[] {
  return [new OpenTelemetryWorkflowClientInterceptor({ tracer: tracing.tracer })];
}

export function tracingActivityInterceptors(tracing: Tracing): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer: tracing.tracer }),
    outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
  });
}

/** The sink through which the workflow sandbox hands its spans out to the exporter. */
export function tracingSinks(tracing: Tracing): InjectedSinks<Record<string, never>> {
  return { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) } as never;
}
