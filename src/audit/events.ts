/**
 * What an audit record is: its shape, the events a chain can hold, and the ids that make each record
 * written once. The audit store, the activities and the workflow all build on this; workflow-safe
 * (type imports only, no I/O).
 */
import type { Approval } from '../domain/plan-view.js';
import type { PolicyDecision } from '../policy/engine.js';

/** Every event a chain holds, by the step that records it (docs/audit.md lists what each means). */
export type AuditEvent =
  // The plan's decision, made once at plan time (the assess activity).
  | 'plan.created'
  | 'plan.denied'
  // A run's terminal decision without an execute (recorded once per run, finalEventId).
  | 'plan.rejected'
  | 'plan.expired'
  | 'apply.refused_stale'
  | 'apply.denied'
  | 'safeguard.failed'
  // Messages and the steps between them.
  | 'apply.requested'
  | 'apply.checked'
  | 'apply.held'
  | 'apply.resumed'
  | 'apply.started'
  | 'approval.granted'
  | 'approval.rejected'
  | 'approval.refused'
  | 'approval.required_again'
  | 'safeguard.started'
  | 'safeguard.taken'
  | 'run.cancelled'
  // The run's one outcome record (outcomeRecord).
  | `action.${RunOutcome}`
  // Freezes (the freeze service's own plan-less records).
  | 'freeze.created'
  | 'freeze.lifted';

/** A terminal decision's event: the run ends without an execute. */
export type FinalEvent = Extract<AuditEvent, 'plan.rejected' | 'plan.expired' | 'apply.refused_stale' | 'apply.denied' | 'safeguard.failed'>;

export type RunOutcome = 'applied' | 'noop' | 'failed' | 'outcome_unknown';

export interface AuditEventInput {
  /** Unique per run and record: a retried activity writes it once. */
  eventId: string;
  planId: string;
  event: AuditEvent;
  actor?: string;
  channel?: string;
  requestHash: string;
  decision?: Pick<PolicyDecision, 'risk' | 'decision' | 'policyVersion' | 'reasons'>;
  approvals?: Approval[];
  upid?: string;
  outcome?: string;
  detail?: Record<string, unknown>;
}

/** Where a record landed on the chain. */
export interface AuditReceipt {
  seq: number;
  hash: string;
}

/**
 * An audit record's id: unique per run and event, so that a retried activity writes it once. `seq`
 * counts the run's records in the order the workflow decided them (deterministic on replay).
 */
export function auditEventId(planId: string, seq: number, event: AuditEvent): string {
  return `${planId}/${seq}/${event}`;
}

/** The id of a run's terminal decision without an execute (rejected, expired, stale, denied): one per run. */
export function finalEventId(planId: string): string {
  return `${planId}/final/run.decided`;
}

/** The outcome's event id: fixed per run, whatever the outcome turns out to be. */
export function outcomeEventId(planId: string, seq: number): string {
  return `${planId}/${seq}/action.outcome`;
}

/** The id of an assessment's record (plan time or apply time): fixed per run and number. */
export function assessmentEventId(planId: string, seq: number): string {
  return `${planId}/${seq}/assessed`;
}
