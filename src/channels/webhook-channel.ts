/**
 * The generic signed webhook as a ChatChannel: another bot (a ChatOps runner, a ticketing hook) POSTs
 * a JSON decision signed with its own secret (`X-PA-Signature`, `X-PA-Timestamp`, signing.ts), naming
 * an approver configured for that bot, with a nonce used once. Its notifications are the JSON documents.
 */
import { z } from 'zod';
import { PLAN_ID_PATTERN } from '../domain/plan-id.js';
import { approvalResponseSchema } from '../api/openapi/schemas.js';
import type { ApproverIdentity } from '../config/schema.js';
import { ChannelPayloadError, type ChatChannel, type ConfigParts } from './channel.js';
import { jsonNotification } from './notifier.js';
import { outcomeNotification } from './outcome.js';
import { verifyWebhookSignature } from './signing.js';

export const webhookApprovalSchema = z
  .strictObject({
    planId: z.string().regex(PLAN_ID_PATTERN),
    requestHash: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    decision: z.enum(['approve', 'reject']),
    comment: z.string().max(2000).optional(),
    approver: z.string().min(1).max(128).describe('An approver id configured for this bot under channels.webhooks[].approvers'),
    nonce: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, '16-128 characters of [A-Za-z0-9_-], unique per request'),
  })
  .meta({ id: 'WebhookApproval' });

const webhookConfig = (p: ConfigParts) =>
  z
    .array(
      z.strictObject({
        id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/),
        secret: p.secretRef,
        approvers: z.record(z.string().regex(/^[\w.@:+-]{1,128}$/, 'an approver id the bot sends'), p.approverIdentity),
      }),
    )
    .default([])
    .superRefine((bots, ctx) => {
      const ids = new Set<string>();
      bots.forEach((bot, i) => {
        if (ids.has(bot.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate webhook id '${bot.id}'` });
        ids.add(bot.id);
      });
    });

type WebhookConfig = z.output<ReturnType<typeof webhookConfig>>;

export interface WebhookBot {
  id: string;
  secret: string;
  approvers: ReadonlyMap<string, ApproverIdentity>;
}

export class SharedBotSecretError extends Error {
  override readonly name = 'SharedBotSecretError';
}

export const webhookChannel: ChatChannel<WebhookConfig, readonly WebhookBot[], WebhookBot, undefined, 'webhooks'> = {
  key: 'webhooks',
  path: '/v1/channels/webhook/approvals',
  configSchema: webhookConfig,
  identities: (bots) => bots.flatMap((bot, i) => Object.entries(bot.approvers).map(([id, identity]) => ({ path: ['channels', 'webhooks', i, 'approvers', id], identity }))),
  resolve(config, secret) {
    const bots = config.map((bot, i) => ({ id: bot.id, secret: secret(bot.secret, `channels.webhooks.${i}.secret`), approvers: new Map(Object.entries(bot.approvers)) }));
    // The signature identifies the bot, so two bots must never share a secret.
    const seen = new Map<string, string>();
    for (const bot of bots) {
      const other = seen.get(bot.secret);
      if (other) throw new SharedBotSecretError(`channels.webhooks: '${bot.id}' and '${other}' share one secret; give each bot its own`);
      seen.set(bot.secret, bot.id);
    }
    return bots.length ? bots : undefined;
  },

  signatureHeaders: ['x-pa-signature', 'x-pa-timestamp'],
  verify(bots, req) {
    const check = verifyWebhookSignature(
      bots.map((b) => ({ key: b, secret: b.secret })),
      { timestamp: req.header('x-pa-timestamp'), signature: req.header('x-pa-signature'), body: req.body, nowMs: req.nowMs },
    );
    return check.ok ? { ok: true, value: check.value.key } : check;
  },
  parse(body, bot) {
    let parsed: z.infer<typeof webhookApprovalSchema>;
    try {
      parsed = webhookApprovalSchema.parse(JSON.parse(body));
    } catch (err) {
      const issues = err instanceof z.ZodError ? err.issues.map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message })) : [{ path: '(body)', message: 'not JSON' }];
      throw new ChannelPayloadError('the approval does not match the schema', issues);
    }
    const { planId, requestHash, decision, comment } = parsed;
    return {
      decision: { planId, requestHash, decision, ...(comment === undefined ? {} : { comment }) },
      replayKey: `webhook:${bot.id}:${parsed.nonce}`,
      approverId: parsed.approver,
      context: undefined,
    };
  },
  approver: (_bots, bot, received) => ({
    identity: bot.approvers.get(received.approverId),
    tokenId: `webhook:${bot.id}`,
    unknown: `approver '${received.approverId}' is not configured for webhook '${bot.id}'`,
  }),

  replies: {
    decided: (view, _who, _received, _links, recorded = true) => {
      const { required, received, approvers } = view.approval;
      return { status: 202, json: { planId: view.planId, status: view.status, approval: { required, received, approvers }, recorded } };
    },
    // A bot reads problem+json: refusals are answered as the problems they are.
    refused: () => undefined,
  },

  openapi: {
    summary: 'Approve or reject from another bot, with a signed request',
    description:
      'X-PA-Signature: sha256=<hex HMAC-SHA256(bot secret, "{X-PA-Timestamp}.{raw body}")>; the timestamp (Unix seconds) must be within 5 minutes and the nonce unused. Recorded with channel chat as the configured approver.',
    headers: z.object({ 'x-pa-signature': z.string(), 'x-pa-timestamp': z.string() }),
    body: { contentType: 'application/json', schema: webhookApprovalSchema },
    success: { status: 202, description: 'The decision was sent to the run', schema: approvalResponseSchema },
    problems: ['validation-failed', 'unauthenticated', 'forbidden', 'self-approval', 'not-found', 'plan-not-found', 'request-hash-mismatch', 'approval-not-counted', 'request-replayed', 'plan-rejected', 'plan-expired', 'replay-cache-full', 'replay-store-unavailable', 'temporal-unavailable'],
  },

  notification: { format: 'json', request: jsonNotification, outcome: outcomeNotification },
};
