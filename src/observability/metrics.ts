/**
 * Prometheus metrics (docs/operations.md, "Metrics"): one prom-client Registry per process, holding
 * the series of whichever parts run in it (API, worker, or both with `npm start`). The Temporal SDK's
 * own metrics come from its Rust core's Prometheus endpoint and are appended to our exposition, so
 * one scrape of `/metrics` sees both.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  /** HTTP API requests by method, route template and status. */
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Plan decisions by environment, risk and decision (allowed, requires_approval, denied). */
  readonly planDecisions: Counter<'environment' | 'risk' | 'decision'>;
  /** Activity executions (each attempt) by activity type, task queue, outcome and error class. */
  readonly activityExecutions: Counter<'activity' | 'task_queue' | 'outcome' | 'error'>;
  readonly activityDuration: Histogram<'activity' | 'outcome'>;
  /** Proxmox API calls by environment, method, route template and outcome (ok, error). */
  readonly proxmoxDuration: Histogram<'environment' | 'method' | 'route' | 'outcome'>;
  /** Proxmox API errors by environment, method, route template, error class and HTTP status. */
  readonly proxmoxErrors: Counter<'environment' | 'method' | 'route' | 'error' | 'status'>;
  /** When each API token with an `expiresAt` stops being accepted (Unix seconds). */
  readonly tokenExpiry: Gauge<'token'>;
  /** Event streams (GET /v1/actions/{planId}/events) open now, per API token (capped per token). */
  readonly eventStreams: Gauge<'token'>;
  /** What counts now against each configured budget of each principal (docs/policy.md, "Budgets"). */
  readonly budgetUsed: Gauge<'principal' | 'budget'>;
  readonly budgetLimit: Gauge<'principal' | 'budget'>;
  /** Plans refused because they would overrun a budget, per budget overrun. */
  readonly budgetRefusals: Counter<'principal' | 'budget'>;
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const ACTIVITY_SECONDS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

export function createMetrics(registry: Registry = new Registry()): Metrics {
  collectDefaultMetrics({ register: registry, prefix: 'proxmox_agent_' });
  const registers = [registry];
  return {
    registry,
    httpRequests: new Counter({ name: 'proxmox_agent_http_requests_total', help: 'HTTP API requests', labelNames: ['method', 'route', 'status'], registers }),
    httpDuration: new Histogram({
      name: 'proxmox_agent_http_request_duration_seconds',
      help: 'HTTP API request latency',
      labelNames: ['method', 'route', 'status'],
      buckets: SECONDS,
      registers,
    }),
    planDecisions: new Counter({
      name: 'proxmox_agent_plan_decisions_total',
      help: 'Plans answered by POST /v1/actions/plan, by policy decision (an Idempotency-Key replay counts again)',
      labelNames: ['environment', 'risk', 'decision'],
      registers,
    }),
    activityExecutions: new Counter({
      name: 'proxmox_agent_activity_executions_total',
      help: 'Activity attempts by outcome (completed, failed, cancelled) and error class',
      labelNames: ['activity', 'task_queue', 'outcome', 'error'],
      registers,
    }),
    activityDuration: new Histogram({
      name: 'proxmox_agent_activity_duration_seconds',
      help: 'Activity attempt duration',
      labelNames: ['activity', 'outcome'],
      buckets: ACTIVITY_SECONDS,
      registers,
    }),
    proxmoxDuration: new Histogram({
      name: 'proxmox_agent_proxmox_request_duration_seconds',
      help: 'Proxmox API call latency, by route template',
      labelNames: ['environment', 'method', 'route', 'outcome'],
      buckets: SECONDS,
      registers,
    }),
    proxmoxErrors: new Counter({
      name: 'proxmox_agent_proxmox_errors_total',
      help: 'Proxmox API calls that failed, by error class (docs/proxmox-client.md) and HTTP status (none: no answer)',
      labelNames: ['environment', 'method', 'route', 'error', 'status'],
      registers,
    }),
    tokenExpiry: new Gauge({
      name: 'proxmox_agent_api_token_expiry_timestamp_seconds',
      help: 'When an API token with expiresAt stops being accepted (Unix time); tokens without one have no series',
      labelNames: ['token'],
      registers,
    }),
    eventStreams: new Gauge({
      name: 'proxmox_agent_api_event_streams',
      help: 'Event streams (GET /v1/actions/{planId}/events) open now, per API token id; each token may hold server.maxEventStreamsPerToken',
      labelNames: ['token'],
      registers,
    }),
    budgetUsed: new Gauge({
      name: 'proxmox_agent_budget_used',
      help: 'What counts now against a principal\'s budget (destructive, guests: sliding hour; concurrent: plans not yet ended), read from the shared ledger at scrape',
      labelNames: ['principal', 'budget'],
      registers,
    }),
    budgetLimit: new Gauge({
      name: 'proxmox_agent_budget_limit',
      help: 'The configured limit of a principal\'s budget',
      labelNames: ['principal', 'budget'],
      registers,
    }),
    budgetRefusals: new Counter({
      name: 'proxmox_agent_budget_refusals_total',
      help: 'Plans denied because they would overrun a budget, per budget overrun (counted by the worker that decided the plan)',
      labelNames: ['principal', 'budget'],
      registers,
    }),
  };
}

/** What `/metrics` answers: our registry, then the Temporal SDK core's exposition when it runs here. */
export async function renderMetrics(registry: Registry, sdkMetricsUrl?: string): Promise<{ contentType: string; body: string }> {
  let body = await registry.metrics();
  if (sdkMetricsUrl) {
    try {
      const res = await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(2000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body += `\n${await res.text()}`;
    } catch (err) {
      body += `\n# Temporal SDK metrics unavailable from ${sdkMetricsUrl}: ${(err as Error).message}\n`;
    }
  }
  return { contentType: registry.contentType, body };
}
