/**
 * Approvals from chat (docs/approvals.md). These endpoints take no bearer token: each request is
 * authenticated by its signature (Slack's signing secret, or a bot's webhook secret), checked against
 * the raw body before anything is parsed, within a 5-minute window, and accepted once (the replay
 * cache: shared by every API replica with `audit.postgres`, src/api/shared-state.ts).
 * The approver identity comes from the config, never from the request alone, and every decision is
 * recorded with channel `chat`.
 */
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Logger } from '../../logging.js';
import type { PlanView } from '../../domain/plan-view.js';
import { PLAN_ID_PATTERN } from '../../domain/plan-id.js';
import type { NonceCache } from '../../channels/nonce-cache.js';
import { postJson } from '../../channels/outbound.js';
import { planLinks } from '../../channels/plan-summary.js';
import type { ApproverIdentity, ChannelSettings } from '../../channels/settings.js';
import { SIGNATURE_FAILURE_MESSAGES, verifySlackSignature, verifyWebhookSignature, type SignatureFailure } from '../../channels/signing.js';
import { checkResponseUrl, ephemeral, escapeMrkdwn, outcomeMessage, parseInteraction, SlackPayloadError } from '../../channels/slack.js';
import type { ApiDeps, AppEnv } from '../context.js';
import { ApiError, problemResponses } from '../problems.js';
import { approvalResponseSchema } from '../schemas.js';

export interface ChannelEndpointDeps {
  settings: ChannelSettings;
  nonces: NonceCache;
  now?: () => number;
  /** Posts a message to a Slack response_url; by default an undici POST with a timeout. */
  respond?: (url: string, message: unknown) => Promise<void>;
  log?: Logger;
}

export const SLACK_INTERACTIONS_PATH = '/v1/channels/slack/interactions';
export const WEBHOOK_APPROVALS_PATH = '/v1/channels/webhook/approvals';

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

export function registerChannelRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  const channels = deps.channels;
  const now = () => channels?.now?.() ?? Date.now();

  /** Records a chat decision as `identity`; environment scoping as for tokens. */
  async function decide(identity: ApproverIdentity, tokenId: string, d: { planId: string; requestHash: string; decision: 'approve' | 'reject'; comment?: string }): Promise<PlanView> {
    const view = await deps.plans.state(d.planId);
    if (!identity.environments.includes('*') && !identity.environments.includes(view.environment))
      throw new ApiError('forbidden', `${identity.principal} may not approve in environment '${view.environment}'`, { planId: d.planId });
    const { view: decided } = await deps.plans.approve(d.planId, {
      principal: identity.principal,
      tokenId,
      roles: identity.roles,
      channel: 'chat',
      decision: d.decision,
      requestHash: d.requestHash,
      ...(d.comment === undefined ? {} : { comment: d.comment }),
    });
    return decided;
  }

  const claimOnce = async (key: string) => {
    const claim = await channels!.nonces.claim(key);
    if (claim === 'replayed') throw new ApiError('request-replayed', 'this signed request was already received; sign a new one');
    if (claim === 'full') throw new ApiError('replay-cache-full');
    // Fail closed: without the shared cache a replay to this replica could not be told from a first request.
    if (claim === 'unavailable') throw new ApiError('replay-store-unavailable', 'the replay cache cannot be reached, so signed requests are refused; retry shortly', {}, { 'retry-after': '5' });
  };

  const signatureProblem = (reason: SignatureFailure) => new ApiError('unauthenticated', SIGNATURE_FAILURE_MESSAGES[reason]);
  // A request without its credentials is unauthenticated (401) before anything else is said about
  // the channel, including whether it is configured.
  const requireSignatureHeaders = (c: Context<AppEnv>, names: readonly string[]) => {
    if (names.some((n) => !c.req.header(n))) throw signatureProblem('missing');
  };

  // ---- Slack ----------------------------------------------------------------------------------

  app.post(SLACK_INTERACTIONS_PATH, async (c) => {
    requireSignatureHeaders(c, ['x-slack-signature', 'x-slack-request-timestamp']);
    const slack = channels?.settings.slack;
    if (!slack) throw new ApiError('not-found', 'the Slack channel is not configured');
    const raw = await c.req.text();
    const check = verifySlackSignature(slack.signingSecret, {
      timestamp: c.req.header('x-slack-request-timestamp'),
      signature: c.req.header('x-slack-signature'),
      body: raw,
      nowMs: now(),
    });
    if (!check.ok) throw signatureProblem(check.reason);
    // Slack's scheme has no nonce; its signature is unique per (timestamp, body), so it serves as one.
    await claimOnce(`slack:${c.req.header('x-slack-signature')}`);

    let interaction;
    try {
      interaction = parseInteraction(raw);
    } catch (err) {
      if (err instanceof SlackPayloadError) throw new ApiError('validation-failed', err.message);
      throw err;
    }
    const responseUrl = checkResponseUrl(interaction.responseUrl, slack.responseUrlOrigins);
    if (!responseUrl) throw new ApiError('validation-failed', 'response_url is not on an allowed origin (channels.slack.responseUrlOrigins)');
    const reply = (message: unknown) => respondInBackground(responseUrl.href, message);

    const identity = slack.users.get(interaction.userId);
    if (!identity) {
      reply(ephemeral(`Your Slack user ${interaction.userId} is not mapped to an approver in proxmox-agent, so your decision was not recorded. Ask an administrator to add it under channels.slack.users.`));
      return c.body(null, 200);
    }
    try {
      const view = await decide(identity, `slack:${interaction.userId}`, interaction);
      reply(outcomeMessage(view, identity.principal, interaction.decision, planLinks(view.planId, { ...(deps.temporalUi ? { temporalUi: deps.temporalUi } : {}) })));
    } catch (err) {
      const known = err instanceof ApiError && err.status < 500;
      reply(ephemeral(`Not recorded: ${escapeMrkdwn(known ? err.message : 'proxmox-agent could not record your decision just now; try again in a moment')}`));
      if (!known) throw err;
    }
    // Slack needs a 200 within 3 seconds; the message itself is updated through response_url.
    return c.body(null, 200);
  });

  function respondInBackground(url: string, message: unknown): void {
    const send = channels?.respond ?? defaultRespond;
    send(url, message).catch((err: unknown) => channels?.log?.warn({ err: (err as Error).message }, 'could not update the Slack message'));
  }

  // ---- Generic signed webhook -----------------------------------------------------------------

  app.post(WEBHOOK_APPROVALS_PATH, async (c: Context<AppEnv>) => {
    requireSignatureHeaders(c, ['x-pa-signature', 'x-pa-timestamp']);
    const bots = channels?.settings.webhooks ?? [];
    if (bots.length === 0) throw new ApiError('not-found', 'no webhook approval channel is configured');
    const raw = await c.req.text();
    const check = verifyWebhookSignature(
      bots.map((b) => ({ key: b, secret: b.secret })),
      { timestamp: c.req.header('x-pa-timestamp'), signature: c.req.header('x-pa-signature'), body: raw, nowMs: now() },
    );
    if (!check.ok) throw signatureProblem(check.reason);
    const bot = check.value.key;
    let body: z.infer<typeof webhookApprovalSchema>;
    try {
      body = webhookApprovalSchema.parse(JSON.parse(raw));
    } catch (err) {
      const issues = err instanceof z.ZodError ? err.issues.map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message })) : [{ path: '(body)', message: 'not JSON' }];
      throw new ApiError('validation-failed', 'the approval does not match the schema', { errors: issues });
    }
    await claimOnce(`webhook:${bot.id}:${body.nonce}`);
    const identity = bot.approvers.get(body.approver);
    if (!identity) throw new ApiError('forbidden', `approver '${body.approver}' is not configured for webhook '${bot.id}'`, { planId: body.planId });
    const view = await decide(identity, `webhook:${bot.id}`, body);
    const { required, received, approvers } = view.approval;
    return c.json({ planId: view.planId, status: view.status, approval: { required, received, approvers } }, 202);
  });

  // Documented for clients; handled above on the raw body, since the signature covers its exact bytes.
  app.openAPIRegistry.registerPath({
    method: 'post',
    path: SLACK_INTERACTIONS_PATH,
    tags: ['channels'],
    summary: 'Slack interactivity request URL (block_actions from Approve/Reject buttons)',
    description:
      'Authenticated by X-Slack-Signature (v0 HMAC-SHA256 with the signing secret) and X-Slack-Request-Timestamp (5-minute window), not by a bearer token. The Slack user must be mapped under channels.slack.users. The outcome is posted to the payload response_url, whose origin must be allowed.',
    request: {
      headers: z.object({ 'x-slack-signature': z.string(), 'x-slack-request-timestamp': z.string() }),
      body: { content: { 'application/x-www-form-urlencoded': { schema: z.object({ payload: z.string().describe('The interaction, JSON') }) } } },
    },
    responses: {
      200: { description: 'Received; the decision (or why it was not recorded) is sent to response_url' },
      ...problemResponses('validation-failed', 'unauthenticated', 'not-found', 'request-replayed', 'replay-cache-full', 'replay-store-unavailable', 'temporal-unavailable'),
    },
  });
  app.openAPIRegistry.registerPath({
    method: 'post',
    path: WEBHOOK_APPROVALS_PATH,
    tags: ['channels'],
    summary: 'Approve or reject from another bot, with a signed request',
    description:
      'X-PA-Signature: sha256=<hex HMAC-SHA256(bot secret, "{X-PA-Timestamp}.{raw body}")>; the timestamp (Unix seconds) must be within 5 minutes and the nonce unused. Recorded with channel chat as the configured approver.',
    request: {
      headers: z.object({ 'x-pa-signature': z.string(), 'x-pa-timestamp': z.string() }),
      body: { required: true, content: { 'application/json': { schema: webhookApprovalSchema } } },
    },
    responses: {
      202: { description: 'The decision was sent to the run', content: { 'application/json': { schema: approvalResponseSchema } } },
      ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'self-approval', 'not-found', 'plan-not-found', 'request-hash-mismatch', 'approval-not-counted', 'request-replayed', 'plan-rejected', 'plan-expired', 'replay-cache-full', 'replay-store-unavailable', 'temporal-unavailable'),
    },
  });
}

async function defaultRespond(url: string, message: unknown): Promise<void> {
  await postJson(url, JSON.stringify(message), { label: 'Slack response_url', timeoutMs: 5_000 });
}
