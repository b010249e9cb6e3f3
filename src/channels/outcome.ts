/**
 * The requester told: what a plan's outcome looks like in a notification. The outcomes are the
 * states a requester waits for: approved (the gate is open), rejected (with the rejecter's comment),
 * expired, succeeded and failed. Pure and workflow-safe (no imports with side effects): the workflow
 * decides which statuses are told.
 */
import type { PlanView } from '../domain/plan-view.js';
import type { PlanLinks } from './plan-summary.js';

export const OUTCOME_STATUSES = ['approved', 'rejected', 'expired', 'succeeded', 'failed'] as const;
export type OutcomeStatus = (typeof OUTCOME_STATUSES)[number];

export const isOutcome = (status: string): status is OutcomeStatus => (OUTCOME_STATUSES as readonly string[]).includes(status);

/** The event name in X-PA-Event and the JSON body, e.g. `plan.rejected`. */
export const outcomeEvent = (status: OutcomeStatus) => `plan.${status}` as const;

/**
 * `{planId}/plan.{status}/{target}`, the same on every retry: a receiver drops what it has seen. A
 * plan is approved again only after policy asked for approvals again at apply: that round is added.
 */
export function outcomeDeliveryId(planId: string, status: OutcomeStatus, target: string | number, round = 1): string {
  return `${planId}/${outcomeEvent(status)}${round > 1 ? `.${round}` : ''}/${target}`;
}

/** One plain sentence: who decided what, and what came of it. */
export function outcomeFooter(view: PlanView): string {
  const approvers = view.approval.approvers.map((a) => `${a.principal} via ${a.channel}`).join(', ');
  const r = view.approval.rejectedBy;
  switch (view.status) {
    case 'approved':
      return `Approved by ${approvers || 'policy'}; it runs once applied.`;
    case 'rejected':
      return `Rejected by ${r?.principal ?? 'an approver'}${r ? ` via ${r.channel}` : ''}${r?.comment ? `: "${r.comment}"` : ''}.`;
    case 'expired':
      return `Expired at ${view.expiresAt} without being applied with its approvals; plan again.`;
    case 'succeeded':
      return `Succeeded${view.result?.upid ? ` (task ${view.result.upid})` : ''}${approvers ? `; approved by ${approvers}` : ''}.`;
    case 'failed':
      return `Failed${view.result?.errorType ? ` (${view.result.errorType})` : ''}: ${view.result?.message ?? 'see the plan'}.`;
    default:
      return `The plan is ${view.status}.`;
  }
}

/** The JSON notification of an outcome: enough for the requester (or a bot) to act on it. */
export function outcomeNotification(view: PlanView, links: PlanLinks) {
  const status = view.status as OutcomeStatus;
  return {
    event: outcomeEvent(status),
    summary: outcomeFooter(view),
    planId: view.planId,
    requestHash: view.requestHash,
    status: view.status,
    action: view.action,
    environment: view.environment,
    target: view.target,
    requester: view.requester,
    approvers: view.approval.approvers.map(({ principal, channel, comment, at }) => ({ principal, channel, ...(comment ? { comment } : {}), at })),
    ...(view.approval.rejectedBy
      ? { rejectedBy: { principal: view.approval.rejectedBy.principal, channel: view.approval.rejectedBy.channel, ...(view.approval.rejectedBy.comment ? { comment: view.approval.rejectedBy.comment } : {}) } }
      : {}),
    ...(view.result ? { result: view.result } : {}),
    expiresAt: view.expiresAt,
    links,
  };
}
