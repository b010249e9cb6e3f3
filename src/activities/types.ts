import type { GuestState, StateFingerprint } from '../domain/guest-state.js';
import type { NormalizedRequest } from '../domain/request.js';
import type { PolicyDecision } from '../policy/engine.js';
import type { Approval, Preflight } from '../workflows/messages.js';

export interface PreflightInput {
  request: NormalizedRequest;
}

export interface PolicyInput {
  request: NormalizedRequest;
  preflight: Preflight;
  /** Evaluate as of this instant (ISO 8601); default: now. */
  at?: string;
}

export interface PolicyResult extends PolicyDecision {
  planTtlSeconds: number;
}

export interface ExecuteInput {
  planId: string;
  request: NormalizedRequest;
  /** The node the preflight resolved the guest to. */
  node: string;
  /** The config digest the plan's preflight read: digest-guarded actions run only against this config. */
  plannedDigest?: string;
}

export interface ExecuteResult {
  outcome: 'applied' | 'noop';
  upid?: string;
  exitstatus?: string;
  note?: string;
  logTail?: string[];
}

/** Details carried by the execute activity's heartbeats: what a retry must resume instead of re-sending. */
export interface ExecuteProgress {
  phase: 'dispatched';
  upid: string;
}

export interface AuditEventInput {
  /** Unique per run and event: a retried activity writes it once. */
  eventId: string;
  planId: string;
  event: string;
  actor?: string;
  channel?: string;
  requestHash: string;
  decision?: Pick<PolicyDecision, 'risk' | 'decision' | 'policyVersion' | 'reasons'>;
  approvals?: Approval[];
  upid?: string;
  outcome?: string;
  detail?: Record<string, unknown>;
}

export interface AuditReceipt {
  seq: number;
  hash: string;
}

export type { GuestState, StateFingerprint };
