import type { GuestState, StateFingerprint } from '../domain/guest-state.js';
import type { NormalizedRequest } from '../domain/request.js';
import type { Freeze } from '../domain/freeze.js';
import type { UndoLink } from '../domain/undo.js';
import type { PolicyDecision } from '../policy/engine.js';
import type { AuditEventInput, FinalEvent } from '../audit/events.js';
import type { AssessmentRecord, OutcomeFields } from '../audit/records.js';
import type { ActionResult, Preflight } from '../domain/plan-view.js';

export interface PreflightInput {
  request: NormalizedRequest;
}

export interface PolicyInput {
  request: NormalizedRequest;
  preflight: Preflight;
  /** Evaluate as of this instant (ISO 8601); default: now. */
  at?: string;
  /** The plan being decided: a safeguard snapshot is named after it. */
  planId?: string;
}

export interface PolicyResult extends PolicyDecision {
  planTtlSeconds: number;
}

/**
 * The run's one local activity per decision point: audit records already decided are written first,
 * then the target is read (bounded: a Proxmox that does not answer makes an unreadable target, it
 * never fails the activity), policy evaluated, and the assessment itself recorded (`plan.created` /
 * `plan.denied` at plan time, `apply.checked` at apply) under a fixed event id. A local activity runs
 * again when its workflow task is lost (Temporal down, a worker killed): the second run returns the
 * recorded assessment instead of reading again, so every decision the run takes from it, and every
 * record it writes, is the same as the first time.
 */
export interface AssessInput {
  request: NormalizedRequest;
  /** Records decided earlier (an apply, approvals), written first, in this order. */
  before?: AuditEventInput[];
  record: AssessmentRecord;
  /** An undo plan (plan stage): the plan it takes back, and the config digest it is held to. */
  undoes?: UndoLink;
}


export interface AssessResult {
  preflight: Preflight;
  policy: PolicyResult;
  /** Whether approval requests go anywhere (a chat or webhook target is configured). */
  notifies: boolean;
  /** The environment's active freeze: the plan is made and may be approved, but nothing is applied while it holds. */
  frozen?: Freeze;
  /** The plan was charged against its principal's budgets: its run releases them when it ends. */
  budgeted?: boolean;
  /** A budget charge's expiry (ISO 8601): the plan expires no later, so the `freesAt` others were told holds. */
  expiresBy?: string;
}

/**
 * The audit records the execute activity writes itself: `before` (the records the run decided since
 * its last write, then `apply.started`) before it touches Proxmox, so nothing runs without its
 * authorisation on the chain; and on success the run's one outcome record, under the sequence number
 * the workflow reserved (a failure is recorded by the workflow under the same number).
 */
export interface ExecuteAudit {
  before: AuditEventInput[];
  outcome: OutcomeFields;
}


export interface ExecuteInput {
  planId: string;
  request: NormalizedRequest;
  /** The node the preflight resolved the guest to. */
  node: string;
  /** The config digest the plan's preflight read: digest-guarded actions run only against this config. */
  plannedDigest?: string;
  audit?: ExecuteAudit;
  /** The how-manieth execute of the run (0 first; a freeze that refused one makes the run schedule another). */
  round?: number;
  /**
   * This execute takes a safeguard snapshot: it must be this plan's own. A snapshot of that name
   * already there that the journal does not know as this plan's (someone foresaw the name) is
   * refused, never counted as taken; and the digest it reports is the guest's only while the guest
   * still holds what the snapshot holds. With a `plannedDigest` (a digest-guarded action) it runs
   * only against the planned config, and reports the digest the snapshot left (`digestAfter`), which
   * the action is then held to (a snapshot rewrites the config file, so its digest changes).
   */
  safeguard?: boolean;
}

export interface ExecuteResult {
  outcome: 'applied' | 'noop';
  upid?: string;
  exitstatus?: string;
  note?: string;
  logTail?: string[];
  /** The config digest once the change settled (digest-guarded actions): what an undo is guarded by. */
  digestAfter?: string;
  /** Keys the write left pending: the running guest takes them at its next start or reboot. */
  pendingUntilRestart?: string[];
}

/** Details carried by the execute activity's heartbeats (for operators; the dispatch journal is what a retry follows). */
export type ExecuteProgress = { phase: 'dispatched'; upid: string } | { phase: 'waiting_for_guest'; planId: string };

/**
 * The run's outcome after a failed or cancelled execute: what the workflow saw, settled against the
 * dispatch journal (a recorded dispatch makes a plain failure `outcome_unknown`) and recorded once;
 * a second run of the activity (its workflow task lost) returns the outcome recorded the first time.
 */
export interface OutcomeInput {
  fields: OutcomeFields;
  proposed: ActionResult;
  /** Ask the journal whether anything was sent (a failure whose type does not say for certain). */
  consultJournal: boolean;
}

/**
 * A run's terminal decision without an execute (rejected, expired, refused as stale, denied at apply),
 * recorded once per run under one event id: a second run of the activity (its workflow task lost,
 * and messages now seen in another order) gets the decision recorded the first time.
 */
export interface FinalInput {
  /** Records decided before it (an approval, a rejection), written first. */
  before: AuditEventInput[];
  record: AuditEventInput;
  final: FinalDecision;
}

export interface FinalDecision {
  status: 'rejected' | 'expired' | 'failed' | 'denied';
  event: FinalEvent;
  result?: ActionResult;
}

export type { GuestState, StateFingerprint };
