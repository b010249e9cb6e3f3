/**
 * Microsoft Teams as a ChatChannel, through an outgoing webhook: a member @mentions the webhook in a
 * channel with `approve <planId> <requestHash> [comment]` (or `reject …`), Teams POSTs the message
 * activity signed with the webhook's security token (`Authorization: HMAC …`, signing.ts), and the
 * answer, a message activity in the response body, is shown in the thread. Users are mapped by their
 * Microsoft Entra object id (`from.aadObjectId`), which Teams sets and the signature covers.
 *
 * Chosen over Mattermost because the scheme signs each request's body with an HMAC that can be
 * checked here offline, and the body carries the activity's id and timestamp for replay protection;
 * Mattermost's slash-command and interactive-message tokens are static bearer values sent in the body.
 */
import { z } from 'zod';
import type { ApproverIdentity } from '../config/schema.js';
import { ChannelPayloadError, type ChatChannel, type ConfigParts } from './channel.js';
import { outcomeFooter } from './outcome.js';
import { describeApprovals, describeRequest, type PlanLinks } from './plan-summary.js';
import { checkTimestamp, verifyTeamsSignature } from './signing.js';
import type { PlanView } from '../domain/plan-view.js';

const ENTRA_OBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const teamsConfig = (p: ConfigParts) =>
  z
    .strictObject({
      securityToken: p.secretRef.describe('The outgoing webhook security token Teams shows once, base64'),
      users: z.record(z.string().regex(ENTRA_OBJECT_ID, 'a Microsoft Entra object id (lowercase GUID)'), p.approverIdentity),
      tenantId: z.string().regex(ENTRA_OBJECT_ID).optional().describe('When set, activities from another tenant are refused'),
    })
    .optional();

type TeamsConfig = z.output<ReturnType<typeof teamsConfig>>;

export interface TeamsSettings {
  securityToken: string;
  users: ReadonlyMap<string, ApproverIdentity>;
  tenantId?: string;
}

// Teams sends a full Bot Framework activity; only these fields are read.
const activitySchema = z.object({
  type: z.literal('message'),
  id: z.string().min(1),
  timestamp: z.string(),
  from: z.object({ id: z.string(), name: z.string().optional(), aadObjectId: z.string().optional() }),
  text: z.string(),
  channelData: z.object({ tenant: z.object({ id: z.string() }).optional() }).optional(),
});

const COMMAND = /^(approve|reject)\s+(plan_[0-9A-Za-z]+)\s+(sha256:[0-9a-f]{64})(?:\s+([\s\S]+))?$/;

/** The command with the @mention and any markup removed. */
export function commandText(html: string): string {
  return html
    .replace(/<at>[\s\S]*?<\/at>/g, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

const message = (text: string) => ({ type: 'message', text });
/** Teams renders a subset of Markdown; user text is shown as typed. */
const plain = (s: string) => s.replace(/([\\`*_{}[\]()#+!<>|~])/g, '\\$1');

export const teamsChannel: ChatChannel<TeamsConfig, TeamsSettings, { tenantId?: string }, { name?: string }, 'teams'> = {
  key: 'teams',
  path: '/v1/channels/teams/messages',
  configSchema: teamsConfig,
  identities: (config) => Object.entries(config?.users ?? {}).map(([id, identity]) => ({ path: ['channels', 'teams', 'users', id], identity })),
  resolve: (config, secret) =>
    config && {
      securityToken: secret(config.securityToken, 'channels.teams.securityToken'),
      users: new Map(Object.entries(config.users)),
      ...(config.tenantId ? { tenantId: config.tenantId } : {}),
    },

  signatureHeaders: ['authorization'],
  // A bearer token is not this scheme: refused as unauthenticated like no header, not as "not configured".
  signatureShape: { authorization: /^HMAC / },
  verify(settings, req) {
    const signed = verifyTeamsSignature(settings.securityToken, req.header('authorization'), req.body);
    if (!signed.ok) return signed;
    // No timestamp header in this scheme: the activity's own timestamp, covered by the HMAC, bounds replays.
    let activity: { timestamp?: unknown; channelData?: { tenant?: { id?: unknown } } };
    try {
      activity = JSON.parse(req.body);
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    const at = typeof activity.timestamp === 'string' ? Date.parse(activity.timestamp) : NaN;
    if (Number.isNaN(at)) return { ok: false, reason: 'malformed' };
    const fresh = checkTimestamp(String(Math.floor(at / 1000)), req.nowMs);
    if (!fresh.ok) return fresh;
    const tenant = activity.channelData?.tenant?.id;
    return { ok: true, value: typeof tenant === 'string' ? { tenantId: tenant } : {} };
  },
  parse(body, signer, settings) {
    const parsed = activitySchema.safeParse(JSON.parse(body));
    if (!parsed.success) throw new ChannelPayloadError('the request is not a Teams message activity');
    const a = parsed.data;
    if (settings.tenantId && signer.tenantId !== settings.tenantId) throw new ChannelPayloadError('the activity comes from another tenant (channels.teams.tenantId)');
    const m = COMMAND.exec(commandText(a.text));
    if (!m) throw new ChannelPayloadError('expected: approve|reject <planId> <requestHash> [comment]');
    return {
      decision: { planId: m[2]!, requestHash: m[3]!, decision: m[1] as 'approve' | 'reject', ...(m[4] ? { comment: m[4].slice(0, 2000) } : {}) },
      replayKey: `teams:${a.id}`,
      approverId: a.from.aadObjectId ?? `(no aadObjectId; Teams id ${a.from.id})`,
      context: a.from.name ? { name: a.from.name } : {},
    };
  },
  approver: (settings, _signer, received) => ({
    identity: settings.users.get(received.approverId),
    tokenId: `teams:${received.approverId}`,
    unknown: `your Teams user ${received.approverId} is not mapped to an approver in proxmox-agent; ask an administrator to add it under channels.teams.users`,
  }),

  replies: {
    decided: (view, who, received) =>
      ({ status: 200, json: message(`${plain(who)} ${received.decision.decision === 'approve' ? 'approved' : 'rejected'} ${view.planId} (${plain(describeRequest(view))}): ${plain(view.status === 'awaiting_approval' ? describeApprovals(view) : outcomeFooter(view))}`) }),
    // Teams shows the answer in the thread, whatever it is: refusals are said there, with a 200.
    refused: (text) => ({ status: 200, json: message(`Not recorded: ${plain(text)}`) }),
  },

  openapi: {
    summary: 'Microsoft Teams outgoing webhook (approve|reject <planId> <requestHash> [comment])',
    description:
      'Authenticated by Authorization: HMAC <base64 HMAC-SHA256(base64-decoded security token, raw body)>, not by a bearer token; the activity timestamp must be within 5 minutes and its id unused. The sender is mapped by from.aadObjectId under channels.teams.users. The answer is a message activity shown in the thread.',
    headers: z.object({ authorization: z.string().describe('HMAC <base64 digest>') }),
    body: { contentType: 'application/json', schema: z.object({ type: z.literal('message'), id: z.string(), timestamp: z.string(), text: z.string() }).meta({ id: 'TeamsActivity' }) },
    success: { status: 200, description: 'A message activity: what was recorded, or why not', schema: z.object({ type: z.literal('message'), text: z.string() }) },
    problems: ['validation-failed', 'unauthenticated', 'not-found', 'request-replayed', 'replay-cache-full', 'replay-store-unavailable', 'temporal-unavailable'],
    examples: {
      request: {
        type: 'message',
        id: '1485983408511',
        timestamp: '2026-03-01T12:00:00.000Z',
        from: { id: '29:1XJKJMvc5GBtc2JwZq0oj8tHZmzrQgFmB39ATiQWA85gQtHieVkKilBZ9XHoq9j7Zaqt7CZ-NJWi7me2kHTL3Bw', name: 'Alice', aadObjectId: '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' },
        text: `<at>proxmox-agent</at> approve plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G sha256:${'ab'.repeat(32)} CHG-42 ok`,
      },
      response: { type: 'message', text: 'human:alice approved plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G (vm.delete on prod/201): 1 so far (human:alice via chat); still needed: 1 more' },
    },
  },

  notification: {
    format: 'teams',
    request: (view, links) => card(view, links, `Approval requested: ${describeRequest(view)} (risk ${view.risk})`, [
      `Requested by ${view.requester.principal}: ${view.reason}`,
      `Approvals: ${describeApprovals(view)}. Expires ${view.expiresAt}.`,
      `To decide, mention this webhook with: approve ${view.planId} ${view.requestHash} (or reject …, with a comment after it)`,
    ]),
    outcome: (view, links) => card(view, links, `Plan ${view.status}: ${describeRequest(view)}`, [outcomeFooter(view)]),
  },
};

/** An Adaptive Card message, as a Teams incoming webhook (Workflows) takes it. */
function card(view: PlanView, links: PlanLinks, title: string, lines: string[]) {
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [{ type: 'TextBlock', weight: 'Bolder', wrap: true, text: plain(title) }, ...lines.map((l) => ({ type: 'TextBlock', wrap: true, text: plain(l) }))],
          ...(links.api ? { actions: [{ type: 'Action.OpenUrl', title: 'Open the plan', url: links.api }] } : {}),
        },
      },
    ],
  };
}
