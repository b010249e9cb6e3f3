/**
 * notifyApprovers: posts each approval request to the configured webhooks. Started by the workflow
 * when a plan enters `awaiting_approval`, retried by Temporal. Progress is kept in heartbeat details
 * (which targets already took the message), so a retry after a partial failure re-sends only to the
 * targets that failed: one message per approval request per target, barring a crash between a POST
 * and its heartbeat (receivers can de-duplicate with X-PA-Delivery).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Dispatcher } from 'undici';
import type { PlanView } from '../domain/plan-view.js';
import { deliverNotifications, NotificationError } from '../channels/notifier.js';
import { planLinks, type LinkBases } from '../channels/plan-summary.js';
import type { NotificationTarget } from '../channels/settings.js';

export interface NotifyDeps {
  targets: readonly NotificationTarget[];
  /** Read at call time: the API's own URL is known only once it listens. */
  links: () => LinkBases;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

export interface NotifyInput {
  plan: PlanView;
  /** The plan's second or later approval request (policy asked again at apply); default 1. */
  round?: number;
}

export interface NotifyResult {
  targets: number;
  delivered: number;
}

interface NotifyProgress {
  delivered: number[];
}

export function createNotifyActivities(deps: NotifyDeps) {
  return {
    async notifyApprovers({ plan, round }: NotifyInput): Promise<NotifyResult> {
      if (deps.targets.length === 0) return { targets: 0, delivered: 0 };
      const ctx = Context.current();
      const previous = ctx.info.heartbeatDetails as NotifyProgress | undefined;
      const done = new Set<number>(previous?.delivered ?? []);
      try {
        await deliverNotifications(deps.targets, plan, planLinks(plan.planId, deps.links()), {
          skip: done,
          ...(round ? { round } : {}),
          onDelivered: (i) => {
            done.add(i);
            ctx.heartbeat({ delivered: [...done] } satisfies NotifyProgress);
          },
          ...(deps.timeoutMs ? { timeoutMs: deps.timeoutMs } : {}),
          ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
        });
      } catch (err) {
        if (!(err instanceof NotificationError)) throw err;
        // The message names targets by label only: it is recorded in the workflow history.
        throw err.permanent
          ? ApplicationFailure.nonRetryable(err.message, 'NotificationRejected')
          : ApplicationFailure.retryable(err.message, 'NotificationFailed');
      }
      return { targets: deps.targets.length, delivered: done.size };
    },
  };
}
