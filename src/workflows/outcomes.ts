/**
 * A run's result after its execute activity failed or the run was cancelled while applying: pure
 * functions of what the activity said (workflow-safe).
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { StoppedDispatch } from '../activities/execute.js';
import type { ActionResult } from './messages.js';

/** A run cancelled while applying, as what became of its dispatch says. */
export function cancelledResult(seen: StoppedDispatch): ActionResult {
  const finishedAt = new Date().toISOString();
  const task = { ...(seen.upid ? { upid: seen.upid } : {}), ...(seen.exitstatus ? { exitstatus: seen.exitstatus } : {}) };
  switch (seen.state) {
    case 'dispatched':
      if (seen.exitstatus === undefined)
        return { outcome: 'outcome_unknown', errorType: 'Cancelled', message: 'the run was cancelled while Proxmox ran the task; Proxmox was asked to stop it, and whether it finished first is not known', ...task, finishedAt };
      if (seen.exitstatus === 'OK' || /^WARNINGS: \d+$/.test(seen.exitstatus))
        return { outcome: 'applied', message: 'the run was cancelled after its Proxmox task had finished: the change was made', ...task, finishedAt };
      return { outcome: 'failed', errorType: 'Cancelled', message: `the run was cancelled; Proxmox stopped its task before it finished (${seen.exitstatus})`, ...task, finishedAt };
    case 'done':
      return { outcome: 'applied', message: 'the run was cancelled after Proxmox had made the change', finishedAt };
    case 'noop':
      return { outcome: 'noop', message: `the run was cancelled; there was nothing to do (${seen.note ?? 'already done'})`, finishedAt };
    case 'intent':
      return { outcome: 'outcome_unknown', errorType: 'Cancelled', message: 'the run was cancelled while the answer to its request was missing, and what Proxmox did cannot be told yet', finishedAt };
    case 'unknown':
      return { outcome: 'outcome_unknown', errorType: 'Cancelled', message: `the run was cancelled; what its request did cannot be known (${seen.note ?? 'no task of it was found'})`, finishedAt };
    default:
      return { outcome: 'failed', errorType: 'Cancelled', message: 'the run was cancelled before anything was sent to Proxmox', finishedAt };
  }
}

export function failureType(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? 'ApplicationFailure') : 'Unknown';
}

/** The first detail an activity's ApplicationFailure carries, if any. */
export function failureDetails(err: unknown): unknown {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? cause.details?.[0] : undefined;
}

/** A failed execute as the run reports it (before the journal is asked whether anything was sent). */
export function failedResult(err: unknown): ActionResult {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const type = failureType(err);
  const details = cause instanceof ApplicationFailure ? (cause.details?.[0] as Partial<ActionResult> | undefined) : undefined;
  return {
    outcome: type === 'OutcomeUnknown' ? 'outcome_unknown' : 'failed',
    errorType: type,
    message: failureMessage(err),
    ...(details?.upid ? { upid: details.upid } : {}),
    ...(details?.exitstatus ? { exitstatus: details.exitstatus } : {}),
    ...(details?.logTail ? { logTail: details.logTail } : {}),
    finishedAt: new Date().toISOString(),
  };
}

export function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}
