/**
 * Approval-request notifications: one POST per configured webhook, Block Kit with buttons for Slack
 * or a JSON document for anything else, signed when the target has a secret. The durable part
 * (retries, remembering what was delivered) is the notifyApprovers activity's job.
 */
import type { Dispatcher } from 'undici';
import type { PlanView } from '../domain/plan-view.js';
import { OutboundError, postJson } from './outbound.js';
import { describeApprovals, describePreflight, describeRequest, type PlanLinks } from './plan-summary.js';
import type { NotificationTarget } from './settings.js';
import { signedHeaders } from './signing.js';
import { approvalRequestMessage } from './slack.js';

export const APPROVAL_REQUESTED = 'approval.requested';

/** The JSON notification: the plan as an approver needs it, plus a one-line summary and links. */
export function jsonNotification(view: PlanView, links: PlanLinks) {
  return {
    event: APPROVAL_REQUESTED,
    summary: `${describeRequest(view)}: risk ${view.risk}, approvals ${describeApprovals(view)}`,
    planId: view.planId,
    requestHash: view.requestHash,
    action: view.action,
    environment: view.environment,
    target: view.target,
    params: view.params,
    reason: view.reason,
    requester: view.requester,
    risk: view.risk,
    decision: view.decision,
    reasons: view.reasons,
    approval: { required: view.approval.required, received: view.approval.received, requirements: view.approval.requirements, approvers: view.approval.approvers },
    preflight: { ...view.preflight, summary: describePreflight(view.preflight) },
    createdAt: view.createdAt,
    expiresAt: view.expiresAt,
    links,
  };
}

export function notificationBody(view: PlanView, format: NotificationTarget['format'], links: PlanLinks): string {
  return JSON.stringify(format === 'slack' ? approvalRequestMessage(view, links) : jsonNotification(view, links));
}

/** `{planId}/approval.requested/{index}`; a later request of the same plan adds its round: `approval.requested.2`. */
export function deliveryId(planId: string, round: number, index: number): string {
  return `${planId}/${APPROVAL_REQUESTED}${round > 1 ? `.${round}` : ''}/${index}`;
}

export interface DeliveryOptions {
  /** Indexes of targets already delivered (by an earlier attempt): skipped. */
  skip?: ReadonlySet<number>;
  /** Called after each successful delivery, e.g. to record progress. */
  onDelivered?: (index: number) => void;
  /** Which approval request of the plan this is: 2 and up when policy asked for approvals again at apply. */
  round?: number;
  now?: () => number;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

export class NotificationError extends Error {
  override readonly name = 'NotificationError';
  constructor(
    message: string,
    /** True when every failed target refused the request (4xx): retrying the same POST will not help. */
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/**
 * Posts the approval request to every target not yet delivered, each independently (one failing
 * target does not stop the others), and throws a NotificationError naming the failed ones by label.
 */
export async function deliverNotifications(targets: readonly NotificationTarget[], view: PlanView, links: PlanLinks, opts: DeliveryOptions = {}): Promise<number> {
  const now = opts.now ?? Date.now;
  const failures: OutboundError[] = [];
  let delivered = 0;
  for (const [index, target] of targets.entries()) {
    if (opts.skip?.has(index)) continue;
    const body = notificationBody(view, target.format, links);
    try {
      await postJson(target.url, body, {
        label: target.label,
        headers: {
          'x-pa-event': APPROVAL_REQUESTED,
          // Lets a receiver drop a duplicate if a retry re-sends after an unrecorded success.
          'x-pa-delivery': deliveryId(view.planId, opts.round ?? 1, index),
          ...(target.secret ? signedHeaders(target.secret, body, now()) : {}),
        },
        ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
        ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
      });
      delivered++;
      opts.onDelivered?.(index);
    } catch (err) {
      failures.push(err instanceof OutboundError ? err : new OutboundError(`${target.label}: ${(err as Error).message}`));
    }
  }
  if (failures.length) {
    throw new NotificationError(failures.map((f) => f.message).join('; '), failures.every((f) => f.permanent));
  }
  return delivered;
}
