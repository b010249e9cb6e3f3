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

/**
 * One local activity per decision point (runs that recorded the `compact-history` patch): audit
 * records already decided are written first, then the target is read and policy evaluated, and at
 * plan time the decision itself is recorded. One history marker instead of three or four.
 */
export interface AssessInput {
  request: NormalizedRequest;
  /** Records decided earlier in the same workflow task (an apply, an approval), written first. */
  before?: AuditEventInput[];
  /** Record the decision as `plan.created` or `plan.denied` (eventId from `seq`). */
  record?: PlanDecisionRecord;
}

export type PlanDecisionRecord = Pick<AuditEventInput, 'planId' | 'requestHash' | 'actor' | 'channel'> & { seq: number };

export interface AssessResult {
  preflight: Preflight;
  policy: PolicyResult;
  /** Whether approval requests go anywhere (a chat or webhook target is configured). */
  notifies: boolean;
}

/**
 * The audit records the execute activity writes itself (compact-history runs): `started` before it
 * touches Proxmox, and on success `action.<outcome>` with the UPID, under the sequence number the
 * workflow reserved. A failure is recorded by the workflow.
 */
export interface ExecuteAudit {
  started: AuditEventInput;
  finished: Omit<AuditEventInput, 'eventId' | 'event' | 'upid' | 'outcome' | 'detail'> & { seq: number };
}

export interface ExecuteInput {
  planId: string;
  request: NormalizedRequest;
  /** The node the preflight resolved the guest to. */
  node: string;
  /** The config digest the plan's preflight read: digest-guarded actions run only against this config. */
  plannedDigest?: string;
  audit?: ExecuteAudit;
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
