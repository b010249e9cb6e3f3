/**
 * The one outcome record of a run. Workflow-safe (type imports only): the execute activity writes it
 * on success, the workflow on failure, both under the sequence number the workflow reserved and the
 * same event id, so that a retry, a crash after the write or a later failure can never add a second
 * outcome for the run: the chain keeps the first record with an id.
 */
import type { AuditEventInput, OutcomeFields } from '../activities/types.js';
import type { ActionResult } from '../domain/plan-view.js';

export type RunOutcome = 'applied' | 'noop' | 'failed' | 'outcome_unknown';

/** The outcome's event id: fixed per run, whatever the outcome turns out to be. */
export function outcomeEventId(planId: string, seq: number): string {
  return `${planId}/${seq}/action.outcome`;
}

/** The id of an assessment's record (plan time or apply time): fixed per run and number. */
export function assessmentEventId(planId: string, seq: number): string {
  return `${planId}/${seq}/assessed`;
}

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
