/**
 * Notifications: one POST per configured webhook, rendered in the target's format (each channel's own,
 * registry.ts: Block Kit for Slack, the JSON document, an Adaptive Card for Teams), signed when the
 * target has a secret. Two kinds: the approval request, and its outcome (the requester told). The
 * durable part (retries, remembering what was delivered) is the notify activities' job.
 */
import type { Dispatcher } from 'undici';
import type { PlanView } from '../domain/plan-view.js';
import { OutboundError, postJson } from './outbound.js';
import { outcomeDeliveryId, outcomeEvent, type OutcomeStatus } from './outcome.js';
import { describeApprovals, describePreflight, describeRequest, type PlanLinks } from './plan-summary.js';
import { notificationFormat } from './registry.js';
import type { NotificationTarget } from './settings.js';
import { signedHeaders } from './signing.js';

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
  return JSON.stringify(notificationFormat(format).request(view, links));
}

/** One notification, whatever it announces: its event, its body per format, and its stable delivery id per target. */
export interface Notice {
  event: string;
  body(format: string): string;
  deliveryId(index: number): string;
}

export function requestNotice(view: PlanView, links: PlanLinks, round = 1): Notice {
  return { event: APPROVAL_REQUESTED, body: (format) => notificationBody(view, format, links), deliveryId: (i) => deliveryId(view.planId, round, i) };
}

/** The plan's outcome (view.status is one of OUTCOME_STATUSES), for the requester. */
export function outcomeNotice(view: PlanView, links: PlanLinks, round = 1): Notice {
  const status = view.status as OutcomeStatus;
  return {
    event: outcomeEvent(status),
    body: (format) => JSON.stringify(notificationFormat(format).outcome(view, links)),
    deliveryId: (i) => outcomeDeliveryId(view.planId, status, i, round),
  };
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
export function deliverNotifications(targets: readonly NotificationTarget[], view: PlanView, links: PlanLinks, opts: DeliveryOptions = {}): Promise<number> {
  return deliver(targets, requestNotice(view, links, opts.round), opts);
}

/** Posts `notice` to every target not yet delivered, as deliverNotifications does. */
export async function deliver(targets: readonly NotificationTarget[], notice: Notice, opts: DeliveryOptions = {}): Promise<number> {
  const now = opts.now ?? Date.now;
  const failures: OutboundError[] = [];
  let delivered = 0;
  for (const [index, target] of targets.entries()) {
    if (opts.skip?.has(index)) continue;
    const body = notice.body(target.format);
    try {
      await postJson(target.url, body, {
        label: target.label,
        headers: {
          'x-pa-event': notice.event,
          // Lets a receiver drop a duplicate if a retry re-sends after an unrecorded success.
          'x-pa-delivery': notice.deliveryId(index),
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
