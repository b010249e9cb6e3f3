/**
 * The records a run builds from its decisions: the assessment (the plan's decision, the apply-time
 * re-check) and the one outcome. Workflow-safe (type imports only).
 */
import type { ActionResult } from '../domain/plan-view.js';
import type { PolicyDecision } from '../policy/engine.js';
import { assessmentEventId, outcomeEventId, type AuditEvent, type AuditEventInput, type RunOutcome } from './events.js';

/** Where an assessment's record goes, and for whom. */
export type AssessmentRecord = Pick<AuditEventInput, 'planId' | 'requestHash' | 'actor' | 'channel'> & {
  seq: number;
  /** plan: the plan's decision (plan.created / plan.denied); apply: the apply-time re-check (apply.checked). */
  stage: 'plan' | 'apply';
};

/**
 * An assessment's record: at plan time the plan's decision (`plan.created`, or `plan.denied`), at
 * apply the re-check (`apply.checked`), with the decision and, in its detail, the whole assessment
 * (a second run of the activity returns it from there instead of reading again).
 */
export function assessmentRecord(
  record: AssessmentRecord,
  policy: Pick<PolicyDecision, 'risk' | 'decision' | 'policyVersion' | 'reasons'>,
  assessment: unknown,
  link: { undoes?: string } = {},
): AuditEventInput {
  const event: AuditEvent = record.stage === 'apply' ? 'apply.checked' : policy.decision === 'denied' ? 'plan.denied' : 'plan.created';
  const { seq, stage: _stage, ...fields } = record;
  const { risk, decision, policyVersion, reasons } = policy;
  return { ...fields, eventId: assessmentEventId(record.planId, seq), event, decision: { risk, decision, policyVersion, reasons }, detail: { assessment, ...link } };
}

/**
 * The one outcome record of a run. Workflow-safe (type imports only): the execute activity writes it
 * on success, the workflow on failure, both under the sequence number the workflow reserved and the
 * same event id, so that a retry, a crash after the write or a later failure can never add a second
 * outcome for the run: the chain keeps the first record with an id.
 */
/** What the outcome record carries besides its event, outcome and UPID. */
export type OutcomeFields = Omit<AuditEventInput, 'eventId' | 'event' | 'upid' | 'outcome' | 'detail'> & { seq: number };

/**
 * The outcome record. `result` (the run's result as the run reports it) is kept in its detail, so a
 * second writer of the same outcome finds what the first decided.
 */
export function outcomeRecord(
  fields: OutcomeFields,
  outcome: RunOutcome,
  more: { upid?: string | undefined; message?: string | undefined; errorType?: string | undefined; result?: ActionResult } = {},
): AuditEventInput {
  const { seq, ...rest } = fields;
  const detail = {
    ...(more.message ? { message: more.message } : {}),
    ...(more.errorType ? { errorType: more.errorType } : {}),
    ...(more.result ? { result: more.result } : {}),
  };
  return {
    ...rest,
    eventId: outcomeEventId(fields.planId, seq),
    event: `action.${outcome}`,
    ...(more.upid ? { upid: more.upid } : {}),
    outcome: outcome === 'applied' || outcome === 'noop' ? 'succeeded' : 'failed',
    detail,
  };
}
