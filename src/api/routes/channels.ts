/**
 * Approvals from chat (docs/approvals.md): one route per channel of the registry
 * (src/channels/registry.ts), every one through the same pipeline. These endpoints take no bearer
 * token: each request is authenticated by its signature, checked against the raw body before
 * anything is parsed, within a 5-minute window, and accepted once (the replay cache: shared by every
 * API replica with `audit.postgres`, src/api/access/shared-state.ts). The approver identity comes from the
 * config, never from the request alone, and every decision is recorded with channel `chat`.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Logger } from '../../logging.js';
import type { PlanView } from '../../domain/plan-view.js';
import { ChannelPayloadError, type ChatChannel, type ChatDecision, type Reply } from '../../channels/channel.js';
import type { NonceCache } from '../../channels/nonce-cache.js';
import { postJson } from '../../channels/outbound.js';
import { planLinks } from '../../channels/plan-summary.js';
import { CHAT_CHANNELS } from '../../channels/registry.js';
import type { ApproverIdentity, ChannelSettings } from '../../channels/settings.js';
import { SIGNATURE_FAILURE_MESSAGES, type SignatureFailure } from '../../channels/signing.js';
import type { ApiDeps, AppEnv } from '../http/context.js';
import { ApiError, problemResponses } from '../http/problems.js';

export { webhookApprovalSchema } from '../../channels/webhook-channel.js';

export interface ChannelEndpointDeps {
  settings: ChannelSettings;
  nonces: NonceCache;
  now?: () => number;
  /** Posts a follow-up message (a Slack response_url); by default an undici POST with a timeout. */
  respond?: (url: string, message: unknown) => Promise<void>;
  log?: Logger;
}

export const SLACK_INTERACTIONS_PATH = '/v1/channels/slack/interactions';
export const WEBHOOK_APPROVALS_PATH = '/v1/channels/webhook/approvals';

/** What a chat user hears when the run did not confirm the decision within the wait. */
const NOT_CONFIRMED = 'your decision was sent, but the run has not confirmed it yet (it may be busy or restarting): it may still count; look at the plan before deciding again';

export function registerChannelRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  const channels = deps.channels;
  const now = () => channels?.now?.() ?? Date.now();

  /** Records a chat decision as `identity`; environment scoping as for tokens. */
  async function decide(identity: ApproverIdentity, tokenId: string, d: ChatDecision): Promise<{ view: PlanView; recorded: boolean }> {
    const view = await deps.plans.state(d.planId);
    if (!identity.environments.includes('*') && !identity.environments.includes(view.environment))
      throw new ApiError('forbidden', `${identity.principal} may not approve in environment '${view.environment}'`, { planId: d.planId });
    return deps.plans.approve(d.planId, {
      principal: identity.principal,
      tokenId,
      roles: identity.roles,
      channel: 'chat',
      decision: d.decision,
      requestHash: d.requestHash,
      ...(d.comment === undefined ? {} : { comment: d.comment }),
    });
  }

  const claimOnce = async (key: string) => {
    const claim = await channels!.nonces.claim(key);
    if (claim === 'replayed') throw new ApiError('request-replayed', 'this signed request was already received; sign a new one');
    if (claim === 'full') throw new ApiError('replay-cache-full');
    // Fail closed: without the shared cache a replay to this replica could not be told from a first request.
    if (claim === 'unavailable') throw new ApiError('replay-store-unavailable', 'the replay cache cannot be reached, so signed requests are refused; retry shortly', {}, { 'retry-after': '5' });
  };

  const signatureProblem = (reason: SignatureFailure) => new ApiError('unauthenticated', SIGNATURE_FAILURE_MESSAGES[reason]);

  function answer(c: Context<AppEnv>, reply: Reply): Response {
    if (reply.followUp) followUpInBackground(reply.followUp.url, reply.followUp.message);
    return reply.json === undefined ? c.body(null, reply.status) : c.json(reply.json, reply.status);
  }

  function followUpInBackground(url: string, message: unknown): void {
    const send = channels?.respond ?? defaultRespond;
    send(url, message).catch((err: unknown) => channels?.log?.warn({ err: (err as Error).message }, 'could not send the follow-up message'));
  }

  function register(channel: ChatChannel): void {
    app.post(channel.path, async (c: Context<AppEnv>) => {
      // A request without its credentials is unauthenticated (401) before anything else is said about
      // the channel, including whether it is configured.
      if (channel.signatureHeaders.some((n) => !c.req.header(n))) throw signatureProblem('missing');
      if (Object.entries(channel.signatureShape ?? {}).some(([n, shape]) => !shape.test(c.req.header(n)!))) throw signatureProblem('malformed');
      const settings = (channels?.settings as Record<string, unknown> | undefined)?.[channel.key];
      if (settings === undefined || (Array.isArray(settings) && settings.length === 0)) throw new ApiError('not-found', `the ${channel.key} channel is not configured`);
      const raw = await c.req.text();
      const signed = channel.verify(settings, { header: (n) => c.req.header(n), body: raw, nowMs: now() });
      if (!signed.ok) throw signatureProblem(signed.reason);

      let received;
      try {
        received = channel.parse(raw, signed.value, settings);
      } catch (err) {
        if (err instanceof ChannelPayloadError) throw new ApiError('validation-failed', err.message, err.errors ? { errors: err.errors } : {});
        throw err;
      }
      await claimOnce(received.replayKey);

      const { identity, tokenId, unknown } = channel.approver(settings, signed.value, received);
      if (!identity) {
        const told = channel.replies.refused(unknown, received, true);
        if (told) return answer(c, told);
        throw new ApiError('forbidden', unknown, { planId: received.decision.planId });
      }
      try {
        const { view, recorded } = await decide(identity, tokenId, received.decision);
        // The run had not recorded it in time (a worker restarting): never "approved" on a guess. A
        // chat user is told it is not confirmed; a bot gets the prediction with `recorded: false`.
        const unconfirmed = recorded ? undefined : channel.replies.refused(NOT_CONFIRMED, received);
        if (unconfirmed) return answer(c, unconfirmed);
        return answer(c, channel.replies.decided(view, identity.principal, received, planLinks(view.planId, { ...(deps.temporalUi ? { temporalUi: deps.temporalUi } : {}) }), recorded));
      } catch (err) {
        const known = err instanceof ApiError && err.status < 500;
        const told = channel.replies.refused(known ? err.message : 'proxmox-agent could not record your decision just now; try again in a moment', received);
        if (!told) throw err;
        if (!known) {
          // The user is told; the failure itself is still answered (and logged) as the problem it is.
          if (told.followUp) followUpInBackground(told.followUp.url, told.followUp.message);
          throw err;
        }
        return answer(c, told);
      }
    });

    // Documented for clients; handled above on the raw body, since the signature covers its exact bytes.
    const doc = channel.openapi;
    app.openAPIRegistry.registerPath({
      method: 'post',
      path: channel.path,
      tags: ['channels'],
      summary: doc.summary,
      description: doc.description,
      request: {
        headers: doc.headers,
        body: {
          ...(doc.body.contentType === 'application/json' ? { required: true } : {}),
          content: { [doc.body.contentType]: { schema: doc.body.schema, ...(doc.examples?.request ? { example: doc.examples.request } : {}) } },
        },
      },
      responses: {
        [doc.success.status]: {
          description: doc.success.description,
          ...(doc.success.schema ? { content: { 'application/json': { schema: doc.success.schema, ...(doc.examples?.response ? { example: doc.examples.response } : {}) } } } : {}),
        },
        ...problemResponses(...doc.problems),
      },
    });
  }

  for (const channel of CHAT_CHANNELS) register(channel);
}

async function defaultRespond(url: string, message: unknown): Promise<void> {
  await postJson(url, JSON.stringify(message), { label: 'Slack response_url', timeoutMs: 5_000 });
}
