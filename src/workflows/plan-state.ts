/**
 * Pure transitions of a plan's state, used by the workflow and unit-tested without Temporal.
 * Workflow-safe: no imports with side effects, no clocks (callers pass `now`).
 */
import { isTerminal } from '../domain/lifecycle.js';
import type { StateFingerprint } from '../domain/guest-state.js';
import { type ApplyArgs, type Approval, type ApprovalArgs, type ApprovalRequirement, type PlanView } from './messages.js';
import { REFUSALS } from '../domain/refusals.js';

/** Does this approval count towards this requirement? (role and channel filters) */
export function counts(requirement: ApprovalRequirement, approval: Pick<Approval, 'roles' | 'channel'>): boolean {
  if (requirement.roles && !requirement.roles.some((r) => approval.roles.includes(r))) return false;
  if (requirement.channels && !requirement.channels.includes(approval.channel)) return false;
  return true;
}

/** The gate is open when every requirement has enough distinct approvers that count for it. */
export function quorumMet(view: PlanView): boolean {
  return view.approval.requirements.every((r) => r.received >= r.count);
}

/** Set the gate's requirements (e.g. stricter ones after re-evaluation) and recount the approvals. */
export function setRequirements(view: PlanView, requirements: ApprovalRequirement[]): void {
  view.approval.requirements = requirements.map((r) => ({ ...r, received: 0 }));
  view.approval.required = Math.max(0, ...requirements.map((r) => r.count));
  recount(view);
}

/** Merge newly required approvals into the gate; the stricter of each requirement wins. */
export function mergeRequirements(current: ApprovalRequirement[], added: ApprovalRequirement[]): ApprovalRequirement[] {
  const byId = new Map(current.map(({ id, count, roles, channels }) => [id, { id, count, ...(roles ? { roles } : {}), ...(channels ? { channels } : {}) }]));
  for (const r of added) {
    const old = byId.get(r.id);
    byId.set(r.id, old && old.count >= r.count ? old : r);
  }
  return [...byId.values()];
}

function recount(view: PlanView): void {
  for (const r of view.approval.requirements) r.received = view.approval.approvers.filter((a) => counts(r, a)).length;
  view.approval.received = view.approval.approvers.length;
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
  | { kind: 'refused'; reason: 'self_approval' | 'duplicate' | 'hash_mismatch' | 'not_open' | 'not_required' | 'not_eligible' };

/** Decide what an approval signal does to the plan; mutates `view` and returns what happened. */
export function recordApproval(view: PlanView, args: ApprovalArgs, now: string): ApprovalOutcome {
  const refuse = (reason: Extract<ApprovalOutcome, { kind: 'refused' }>['reason']): ApprovalOutcome => {
    view.approval.refused.push({ principal: args.principal, reason, at: now, ...(args.decisionId === undefined ? {} : { decisionId: args.decisionId }) });
    return { kind: 'refused', reason };
  };
  if (view.status !== 'awaiting_approval' && view.status !== 'approved') return refuse('not_open');
  if (args.requestHash !== view.requestHash) return refuse('hash_mismatch');
  // Separation of duties: the identity that asked never decides, through any channel.
  if (args.principal === view.requester.principal) return refuse('self_approval');
  if (view.approval.approvers.some((a) => a.principal === args.principal)) return refuse('duplicate');
  const approval: Approval = {
    principal: args.principal,
    tokenId: args.tokenId,
    roles: args.roles ?? [],
    channel: args.channel,
    decision: args.decision,
    ...(args.comment === undefined ? {} : { comment: args.comment }),
    at: now,
    ...(args.decisionId === undefined ? {} : { decisionId: args.decisionId }),
  };
  if (args.decision === 'reject') {
    view.approval.rejectedBy = approval;
    view.status = 'rejected';
    return { kind: 'rejected' };
  }
  if (view.approval.requirements.length === 0) return refuse('not_required');
  // An approval that meets no requirement (wrong role, wrong channel) would be noise in the count.
  if (!view.approval.requirements.some((r) => counts(r, approval))) return refuse('not_eligible');
  view.approval.approvers.push(approval);
  recount(view);
  if (quorumMet(view)) view.status = 'approved';
  return { kind: 'counted' };
}

/** The main loop may go on: the plan was rejected, or applied with its approvals in. */
export function readyToGoOn(view: PlanView): boolean {
  return view.status === 'rejected' || (view.applyRequested && quorumMet(view));
}

/** The fields of the target that changed since the plan, or [] if the plan still describes reality. */
export function staleFields(planned: StateFingerprint | undefined, now: StateFingerprint | undefined): string[] {
  if (!planned || !now) return planned === now ? [] : ['state'];
  const fields: (keyof StateFingerprint)[] = ['exists', 'status', 'lock', 'digest'];
  return fields.filter((f) => planned[f] !== now[f]);
}
