/**
 * How the execute activity reads a failed Proxmox call, and how it reports failures to Temporal:
 * what may have reached Proxmox, what is an unknown outcome, what is retried.
 */
import { ApplicationFailure, CancelledFailure, type Context } from '@temporalio/activity';
import { isRetryableProxmoxError, isStaleConfigError, ProxmoxError, ProxmoxTaskFailedError } from '../proxmox/index.js';
import { REFUSALS } from '../domain/refusals.js';

/** The failure type of an outcome that cannot be known: reported as such, never as success or a clean failure. */
export const OUTCOME_UNKNOWN = 'OutcomeUnknown';

/** False only when the request certainly never reached Proxmox, or Proxmox certainly refused it. */
export function mayHaveReachedProxmox(err: unknown): boolean {
  if (err instanceof ProxmoxError) return err.outcomeUnknown;
  if (err instanceof ApplicationFailure && err.type === 'DispatchLate') return false;
  return true; // our own deadline aborted it mid-flight, or something unforeseen: assume it may have
}

/** Proxmox said 2xx, but the body could not be used: something was done. */
export function answeredSuccess(err: unknown): boolean {
  return err instanceof ProxmoxError && err.status !== undefined && err.status >= 200 && err.status < 300;
}

export function outcomeUnknown(message: string, cause?: unknown): ApplicationFailure {
  const seen = cause instanceof Error ? `${cause.name}: ${cause.message}` : undefined;
  return ApplicationFailure.create({ type: OUTCOME_UNKNOWN, message, nonRetryable: true, details: [{ ...(seen ? { seen } : {}) }] });
}

/**
 * Transient Proxmox errors are rethrown as retryable failures (the retry policy handles them);
 * permanent ones become non-retryable, carrying Proxmox's own words and the task's details. A digest
 * Proxmox refused is the same staleness the run checks before dispatch, and is reported the same way,
 * whether refused at once or by the task (qemu-server 8.0.2+ checks resize's digest in its worker).
 * A cancellation that is not an operator's (worker shutdown, timeout, reset) becomes a retryable
 * failure, so that the next attempt follows the task instead of the run recording a cancel.
 */
export function toActivityFailure(err: unknown, ctx: Context): unknown {
  if (err instanceof CancelledFailure || (ctx.cancellationSignal.aborted && err === ctx.cancellationSignal.reason)) {
    if (ctx.cancellationDetails?.cancelRequested) return err;
    return ApplicationFailure.retryable('the attempt was interrupted (worker shutdown, timeout or reset); the next attempt follows the plan\'s task', 'AttemptInterrupted');
  }
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof ProxmoxError && isStaleConfigError(err)) {
    const task = err instanceof ProxmoxTaskFailedError ? { upid: err.upid, exitstatus: err.exitstatus } : undefined;
    return ApplicationFailure.create({
      type: REFUSALS.stale,
      message: `the guest config changed since the plan; plan again (Proxmox${task ? ', in its task' : ''}: ${err.proxmoxMessage.trim() || err.message})`,
      nonRetryable: true,
      ...(task ? { details: [task] } : {}),
    });
  }
  if (err instanceof ProxmoxError) {
    const details = err instanceof ProxmoxTaskFailedError ? [{ upid: err.upid, exitstatus: err.exitstatus, logTail: err.logTail }] : [];
    return ApplicationFailure.create({
      type: err.name,
      message: err.message,
      nonRetryable: !isRetryableProxmoxError(err),
      details,
    });
  }
  return err;
}
