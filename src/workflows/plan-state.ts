/**
 * Pure transitions of a plan's state, used by the workflow and unit-tested without Temporal.
 * Workflow-safe: no imports with side effects, no clocks (callers pass `now`).
 */
import { isTerminal } from '../domain/lifecycle.js';
import type { StateFingerprint } from '../domain/guest-state.js';
import { REFUSALS, type ApplyArgs, type ApprovalArgs, type PlanView } from './messages.js';

export function quorumMet(view: PlanView): boolean {
  return view.approval.received >= view.approval.required;
}

/** Why an apply must be refused right away, or undefined when it may be accepted. */
export function applyRefusal(view: PlanView, args: ApplyArgs): { type: string; message: string } | undefined {
  if (!args.actorEnvironments.includes('*') && !args.actorEnvironments.includes(view.environment))
    return { type: REFUSALS.forbidden, message: `your token may not act in environment '${view.environment}'` };
  if (args.requestHash !== view.requestHash)
    return { type: REFUSALS.hashMismatch, message: `requestHash does not match plan ${view.planId}; plan the new request instead` };
  switch (view.status) {
    case 'denied':
      return { type: REFUSALS.denied, message: `plan ${view.planId} was denied by policy and cannot be applied` };
    case 'rejected':
      return { type: REFUSALS.rejected, message: `plan ${view.planId} was rejected by ${view.approval.rejectedBy?.principal ?? 'an approver'}` };
    case 'expired':
      return { type: REFUSALS.expired, message: `plan ${view.planId} expired at ${view.expiresAt}; plan again` };
  }
  // A repeated apply of a plan already applied is answered with its status, not refused.
  if (isTerminal(view.status) && !view.applyRequested)
    return { type: REFUSALS.finished, message: `plan ${view.planId} is already ${view.status}` };
  return undefined;
}

export type ApprovalOutcome =
  | { kind: 'counted' }
  | { kind: 'rejected' }
  | { kind: 'refused'; reason: 'self_approval' | 'duplicate' | 'hash_mismatch' | 'not_open' | 'not_required' };

/** Decide what an approval signal does to the plan; mutates `view` and returns what happened. */
export function recordApproval(view: PlanView, args: ApprovalArgs, now: string): ApprovalOutcome {
  const refuse = (reason: Extract<ApprovalOutcome, { kind: 'refused' }>['reason']): ApprovalOutcome => {
    view.approval.refused.push({ principal: args.principal, reason, at: now });
    return { kind: 'refused', reason };
  };
  if (view.status !== 'awaiting_approval' && view.status !== 'approved') return refuse('not_open');
  if (args.requestHash !== view.requestHash) return refuse('hash_mismatch');
  // Separation of duties: the identity that asked never decides, through any channel.
  if (args.principal === view.requester.principal) return refuse('self_approval');
  if (view.approval.approvers.some((a) => a.principal === args.principal)) return refuse('duplicate');
  const approval = {
    principal: args.principal,
    tokenId: args.tokenId,
    channel: args.channel,
    decision: args.decision,
    ...(args.comment === undefined ? {} : { comment: args.comment }),
    at: now,
  };
  if (args.decision === 'reject') {
    view.approval.rejectedBy = approval;
    view.status = 'rejected';
    return { kind: 'rejected' };
  }
  if (view.approval.required === 0) return refuse('not_required');
  view.approval.approvers.push(approval);
  view.approval.received = view.approval.approvers.length;
  if (quorumMet(view)) view.status = 'approved';
  return { kind: 'counted' };
}

/** The fields of the target that changed since the plan, or [] if the plan still describes reality. */
export function staleFields(planned: StateFingerprint | undefined, now: StateFingerprint | undefined): string[] {
  if (!planned || !now) return planned === now ? [] : ['state'];
  const fields: (keyof StateFingerprint)[] = ['exists', 'status', 'lock', 'digest'];
  return fields.filter((f) => planned[f] !== now[f]);
}
