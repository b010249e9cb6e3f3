/**
 * notifyApprovers and notifyOutcome: post each approval request, and then its outcome (the requester
 * told), to the configured webhooks, and with a Slack bot token post the request with
 * chat.postMessage and rewrite that same message with chat.update on every outcome, whichever
 * channel the decision came from. Started by the workflow, retried by Temporal.
 *
 * Progress is kept in heartbeat details (which targets already took the message, and the Slack
 * message once posted), so a retry after a partial failure re-sends only to the targets that failed:
 * one message per notice per target, barring a crash between a POST and its heartbeat. For that case
 * every POST carries X-PA-Delivery, the same on every retry (`{planId}/{event}/{target}`), for the
 * receiver to drop what it has seen; chat.update is idempotent by nature.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Dispatcher } from 'undici';
import type { PlanView } from '../domain/plan-view.js';
import { deliver, NotificationError, outcomeNotice, requestNotice, type Notice } from '../channels/notifier.js';
import { OutboundError } from '../channels/outbound.js';
import { planLinks, type LinkBases } from '../channels/plan-summary.js';
import type { NotificationTarget } from '../channels/settings.js';
import { postSlackMessage, updateSlackMessage, type SlackMessageRef } from '../channels/slack-api.js';
import type { SlackPost } from '../channels/slack-channel.js';
import { slackOutcomeMessage } from '../channels/slack-channel.js';
import { approvalRequestMessage } from '../channels/slack.js';

export interface NotifyDeps {
  targets: readonly NotificationTarget[];
  /** The Slack bot that posts approval requests and updates them (channels.slack.post). */
  slack?: SlackPost;
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

export interface OutcomeInput extends NotifyInput {
  /** The Slack message the approval request was posted as, to update in place. */
  slackMessage?: SlackMessageRef;
}

export interface NotifyResult {
  targets: number;
  delivered: number;
  /** The message notifyApprovers posted with the bot token, for notifyOutcome to update. */
  slackMessage?: SlackMessageRef;
}

interface NotifyProgress {
  delivered: number[];
  slackMessage?: SlackMessageRef;
  slackDone?: boolean;
}

/** Whether anything would be posted: webhook targets, or the Slack bot. */
export const notifiesAnyone = (deps: NotifyDeps | undefined) => (deps?.targets.length ?? 0) > 0 || deps?.slack !== undefined;

export function createNotifyActivities(deps: NotifyDeps) {
  const http = { ...(deps.timeoutMs ? { timeoutMs: deps.timeoutMs } : {}), ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}) };

  /**
   * Delivers `notice` to the webhooks not yet delivered and runs `slack` once, remembering both in
   * heartbeats; a failure is retryable unless every target refused it for good.
   */
  async function notify(notice: Notice, slack?: (progress: NotifyProgress) => Promise<void>): Promise<NotifyResult> {
    const ctx = Context.current();
    const progress: NotifyProgress = { delivered: [], ...(ctx.info.heartbeatDetails as NotifyProgress | undefined) };
    const done = new Set<number>(progress.delivered);
    const beat = () => ctx.heartbeat({ ...progress, delivered: [...done] } satisfies NotifyProgress);
    const failures: string[] = [];
    let permanent = true;
    try {
      await deliver(deps.targets, notice, { skip: done, onDelivered: (i) => (done.add(i), beat()), ...http });
    } catch (err) {
      if (!(err instanceof NotificationError)) throw err;
      failures.push(err.message);
      permanent &&= err.permanent;
    }
    if (slack && !progress.slackDone) {
      try {
        await slack(progress);
        progress.slackDone = true;
        beat();
      } catch (err) {
        if (!(err instanceof OutboundError)) throw err;
        failures.push(err.message);
        permanent &&= err.permanent;
      }
    }
    // The message names targets by label only: it is recorded in the workflow history.
    if (failures.length) {
      const message = failures.join('; ');
      throw permanent ? ApplicationFailure.nonRetryable(message, 'NotificationRejected') : ApplicationFailure.retryable(message, 'NotificationFailed');
    }
    return { targets: deps.targets.length, delivered: done.size, ...(progress.slackMessage ? { slackMessage: progress.slackMessage } : {}) };
  }

  return {
    async notifyApprovers({ plan, round }: NotifyInput): Promise<NotifyResult> {
      if (!notifiesAnyone(deps)) return { targets: 0, delivered: 0 };
      const links = planLinks(plan.planId, deps.links());
      const bot = deps.slack;
      return notify(
        requestNotice(plan, links, round),
        bot &&
          (async (progress) => {
            progress.slackMessage = await postSlackMessage(bot, approvalRequestMessage(plan, links), http);
          }),
      );
    },

    /** The plan's outcome (approved, rejected, expired, succeeded, failed) for the requester. */
    async notifyOutcome({ plan, round, slackMessage }: OutcomeInput): Promise<NotifyResult> {
      if (!notifiesAnyone(deps)) return { targets: 0, delivered: 0 };
      const links = planLinks(plan.planId, deps.links());
      const bot = deps.slack;
      return notify(
        outcomeNotice(plan, links, round),
        bot && slackMessage ? () => updateSlackMessage(bot, slackMessage, slackOutcomeMessage(plan, links), http) : undefined,
      );
    },
  };
}
