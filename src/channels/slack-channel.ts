/**
 * Slack as a ChatChannel: interactivity requests signed with the app's signing secret (v0), users
 * mapped by Slack user id, the outcome sent back through the payload's response_url, and (with a bot
 * token under `post`) the approval request posted with chat.postMessage so that any later decision,
 * from whatever channel, can update that very message with chat.update (slack-api.ts).
 */
import { z } from 'zod';
import type { ApproverIdentity, SecretRef } from '../config/schema.js';
import type { ChatChannel, ConfigParts } from './channel.js';
import { ChannelPayloadError } from './channel.js';
import { outcomeFooter } from './outcome.js';
import { verifySlackSignature } from './signing.js';
import type { PlanView } from '../domain/plan-view.js';
import type { PlanLinks } from './plan-summary.js';
import { approvalRequestMessage, checkResponseUrl, DEFAULT_SLACK_RESPONSE_ORIGINS, ephemeral, escapeMrkdwn, outcomeMessage, parseInteraction, SlackPayloadError, type SlackMessage } from './slack.js';

export const DEFAULT_SLACK_API_URL = 'https://slack.com/api';

const slackConfig = (p: ConfigParts) =>
  z
    .strictObject({
      signingSecret: p.secretRef,
      users: z.record(z.string().regex(/^[UW][A-Z0-9]{2,}$/, 'a Slack user id like U012ABCDEF'), p.approverIdentity),
      responseUrlOrigins: z
        .array(z.url({ protocol: /^https?$/ }))
        .min(1)
        .default([...DEFAULT_SLACK_RESPONSE_ORIGINS])
        .describe('Origins the interaction response_url may point at; anything else is refused (no SSRF relay)'),
      post: z
        .strictObject({
          botToken: p.secretRef.describe('A bot token (xoxb-…) with chat:write'),
          channel: z.string().min(1).describe('The conversation id approval requests are posted to, e.g. C012ABCDEF'),
          apiUrl: z.url({ protocol: /^https?$/ }).default(DEFAULT_SLACK_API_URL).describe('The Web API base (a test double in tests)'),
        })
        .optional()
        .describe('Post approval requests as the bot (chat.postMessage) and update them on every outcome (chat.update)'),
    })
    .optional();

type SlackConfig = z.output<ReturnType<typeof slackConfig>>;

export interface SlackPost {
  botToken: string;
  channel: string;
  apiUrl: string;
}

export interface SlackSettings {
  signingSecret: string;
  users: ReadonlyMap<string, ApproverIdentity>;
  responseUrlOrigins: readonly string[];
  post?: SlackPost;
}

export const slackChannel: ChatChannel<SlackConfig, SlackSettings, string, { responseUrl: string; userId: string }, 'slack'> = {
  key: 'slack',
  path: '/v1/channels/slack/interactions',
  configSchema: slackConfig,
  identities: (config) => Object.entries(config?.users ?? {}).map(([id, identity]) => ({ path: ['channels', 'slack', 'users', id], identity })),
  resolve(config, secret) {
    if (!config) return undefined;
    const post = config.post && {
      botToken: secret(config.post.botToken as SecretRef, 'channels.slack.post.botToken'),
      channel: config.post.channel,
      apiUrl: config.post.apiUrl,
    };
    return {
      signingSecret: secret(config.signingSecret, 'channels.slack.signingSecret'),
      users: new Map(Object.entries(config.users)),
      responseUrlOrigins: config.responseUrlOrigins,
      ...(post ? { post } : {}),
    };
  },

  signatureHeaders: ['x-slack-signature', 'x-slack-request-timestamp'],
  verify(settings, req) {
    const check = verifySlackSignature(settings.signingSecret, {
      timestamp: req.header('x-slack-request-timestamp'),
      signature: req.header('x-slack-signature'),
      body: req.body,
      nowMs: req.nowMs,
    });
    return check.ok ? { ok: true, value: req.header('x-slack-signature')! } : check;
  },
  parse(body, signature, settings) {
    let interaction;
    try {
      interaction = parseInteraction(body);
    } catch (err) {
      if (err instanceof SlackPayloadError) throw new ChannelPayloadError(err.message);
      throw err;
    }
    const responseUrl = checkResponseUrl(interaction.responseUrl, settings.responseUrlOrigins);
    if (!responseUrl) throw new ChannelPayloadError('response_url is not on an allowed origin (channels.slack.responseUrlOrigins)');
    const { planId, requestHash, decision } = interaction;
    return {
      decision: { planId, requestHash, decision },
      // Slack's scheme has no nonce; its signature is unique per (timestamp, body), so it serves as one.
      replayKey: `slack:${signature}`,
      approverId: interaction.userId,
      context: { responseUrl: responseUrl.href, userId: interaction.userId },
    };
  },
  approver: (settings, _signer, received) => ({
    identity: settings.users.get(received.approverId),
    tokenId: `slack:${received.approverId}`,
    unknown: `Your Slack user ${received.approverId} is not mapped to an approver in proxmox-agent, so your decision was not recorded. Ask an administrator to add it under channels.slack.users.`,
  }),

  // Slack needs a 200 within 3 seconds; the message itself is updated through response_url.
  replies: {
    decided: (view, who, received, links) => ({ status: 200, followUp: { url: received.context.responseUrl, message: outcomeMessage(view, who, received.decision.decision, links) } }),
    refused: (message, received, unmapped) => ({
      status: 200,
      followUp: { url: received.context.responseUrl, message: ephemeral(unmapped ? message : `Not recorded: ${escapeMrkdwn(message)}`) },
    }),
  },

  openapi: {
    summary: 'Slack interactivity request URL (block_actions from Approve/Reject buttons)',
    description:
      'Authenticated by X-Slack-Signature (v0 HMAC-SHA256 with the signing secret) and X-Slack-Request-Timestamp (5-minute window), not by a bearer token. The Slack user must be mapped under channels.slack.users. The outcome is posted to the payload response_url, whose origin must be allowed.',
    headers: z.object({ 'x-slack-signature': z.string(), 'x-slack-request-timestamp': z.string() }),
    body: { contentType: 'application/x-www-form-urlencoded', schema: z.object({ payload: z.string().describe('The interaction, JSON') }) },
    success: { status: 200, description: 'Received; the decision (or why it was not recorded) is sent to response_url' },
    problems: ['validation-failed', 'unauthenticated', 'not-found', 'request-replayed', 'replay-cache-full', 'replay-store-unavailable', 'temporal-unavailable'],
  },

  notification: {
    format: 'slack',
    request: (view, links) => approvalRequestMessage(view, links),
    outcome: (view, links) => slackOutcomeMessage(view, links),
  },
};

/** The approval request as it now stands, with its outcome in the footer and no buttons once decided. */
export function slackOutcomeMessage(view: PlanView, links: PlanLinks): SlackMessage {
  return approvalRequestMessage(view, links, escapeMrkdwn(outcomeFooter(view)));
}
