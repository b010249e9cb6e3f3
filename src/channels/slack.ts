/**
 * Slack interactivity: parsing `block_actions` payloads, the button values proxmox-agent puts in its
 * messages, `response_url` validation, and the Block Kit it sends. Pure; the HTTP endpoint is in
 * src/api/routes/channels.ts.
 */
import { z } from 'zod';
import { PLAN_ID_PATTERN } from '../domain/plan-id.js';
import type { PlanView } from '../domain/plan-view.js';
import { describeApprovals, describeMissing, describePreflight, describeRequest, type PlanLinks } from './plan-summary.js';

export const SLACK_ACTIONS = { approve: 'approve', reject: 'reject' } as const;
export const DEFAULT_SLACK_RESPONSE_ORIGINS = ['https://hooks.slack.com'] as const;

const REQUEST_HASH = /^sha256:[0-9a-f]{64}$/;

/** A button's value binds the click to one plan and the exact request the message showed. */
export function encodeButtonValue(planId: string, requestHash: string): string {
  return `${planId}|${requestHash}`;
}

export function decodeButtonValue(value: string): { planId: string; requestHash: string } | undefined {
  const [planId, requestHash, ...rest] = value.split('|');
  if (rest.length || !planId || !requestHash || !PLAN_ID_PATTERN.test(planId) || !REQUEST_HASH.test(requestHash)) return undefined;
  return { planId, requestHash };
}

// Slack sends many more fields; only these are read. Unknown ones are ignored, not refused.
const blockActionsSchema = z.object({
  type: z.literal('block_actions'),
  user: z.object({ id: z.string().min(1), username: z.string().optional(), name: z.string().optional() }),
  team: z.object({ id: z.string() }).nullish(),
  response_url: z.string().min(1),
  actions: z.array(z.object({ action_id: z.string(), value: z.string().optional() })).min(1),
});

export interface SlackInteraction {
  userId: string;
  userName?: string;
  decision: 'approve' | 'reject';
  planId: string;
  requestHash: string;
  responseUrl: string;
}

export class SlackPayloadError extends Error {
  override readonly name = 'SlackPayloadError';
}

/** Reads the `payload` field of the form Slack posts; throws SlackPayloadError for anything else. */
export function parseInteraction(rawBody: string): SlackInteraction {
  const payload = new URLSearchParams(rawBody).get('payload');
  if (!payload) throw new SlackPayloadError('expected a form body with a payload field');
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    throw new SlackPayloadError('payload is not JSON');
  }
  const parsed = blockActionsSchema.safeParse(json);
  if (!parsed.success) throw new SlackPayloadError('payload is not a block_actions interaction');
  const p = parsed.data;
  const action = p.actions.find((a) => a.action_id === SLACK_ACTIONS.approve || a.action_id === SLACK_ACTIONS.reject);
  if (!action) throw new SlackPayloadError(`no ${SLACK_ACTIONS.approve} or ${SLACK_ACTIONS.reject} action in the payload`);
  const value = decodeButtonValue(action.value ?? '');
  if (!value) throw new SlackPayloadError('the action value is not planId|requestHash');
  return {
    userId: p.user.id,
    ...((p.user.username ?? p.user.name) ? { userName: (p.user.username ?? p.user.name)! } : {}),
    decision: action.action_id === SLACK_ACTIONS.approve ? 'approve' : 'reject',
    ...value,
    responseUrl: p.response_url,
  };
}

/**
 * The endpoint POSTs to the payload's `response_url`; left unchecked, anyone able to sign a payload
 * could aim the service at an internal address. Only https URLs on an allowed origin pass (exact
 * origin match: scheme, host and port), and never with credentials in them.
 */
export function checkResponseUrl(raw: string, allowedOrigins: readonly string[]): URL | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.username || url.password) return undefined;
  const allowed = allowedOrigins.map((o) => new URL(o).origin);
  return allowed.includes(url.origin) ? url : undefined;
}

// ---- Block Kit ---------------------------------------------------------------------------------

type Block = Record<string, unknown>;
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text: clip(text, 3000) });
const clip = (s: string, max: number) => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);
/** Slack mrkdwn control characters in user-supplied text (reasons, comments). */
export const escapeMrkdwn = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export interface SlackMessage {
  text: string;
  blocks: Block[];
}

/** The approval request: what, why, risk, every reason, the preflight, links, and (while open) the buttons. */
export function approvalRequestMessage(view: PlanView, links: PlanLinks, footer?: string): SlackMessage {
  const open = view.status === 'awaiting_approval';
  const what = describeRequest(view);
  const blocks: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`Approval ${open ? 'requested' : view.status}: ${what}`, 150) } },
    {
      type: 'section',
      fields: [
        mrkdwn(`*Risk*\n${view.risk}`),
        mrkdwn(`*Requested by*\n${escapeMrkdwn(view.requester.principal)}`),
        mrkdwn(`*Approvals*\n${escapeMrkdwn(describeApprovals(view))}`),
        mrkdwn(`*Expires*\n${view.expiresAt}`),
      ],
    },
    { type: 'section', text: mrkdwn(`*Reason*\n${escapeMrkdwn(view.reason)}`) },
    { type: 'section', text: mrkdwn(`*Policy*\n${view.reasons.map((r) => `• \`${escapeMrkdwn(r.rule)}\` ${escapeMrkdwn(r.message)}`).join('\n')}`) },
    { type: 'section', text: mrkdwn(`*Preflight* (${view.preflight.checkedAt})\n${escapeMrkdwn(describePreflight(view.preflight))}`) },
    {
      type: 'context',
      elements: [
        mrkdwn(
          [`\`${view.planId}\``, `\`${view.requestHash.slice(0, 19)}…\``, links.api ? `<${links.api}|API>` : '', links.temporalUi ? `<${links.temporalUi}|Temporal>` : '']
            .filter(Boolean)
            .join(' · '),
        ),
      ],
    },
  ];
  if (footer) blocks.push({ type: 'context', elements: [mrkdwn(footer)] });
  if (open) {
    const value = encodeButtonValue(view.planId, view.requestHash);
    blocks.push({
      type: 'actions',
      block_id: `proxmox-agent:${view.planId}`,
      elements: [
        { type: 'button', action_id: SLACK_ACTIONS.approve, style: 'primary', text: { type: 'plain_text', text: 'Approve' }, value },
        {
          type: 'button',
          action_id: SLACK_ACTIONS.reject,
          style: 'danger',
          text: { type: 'plain_text', text: 'Reject' },
          value,
          confirm: {
            title: { type: 'plain_text', text: 'Reject this plan?' },
            text: { type: 'plain_text', text: 'A rejection ends the plan; the agent must plan again.' },
            confirm: { type: 'plain_text', text: 'Reject' },
            deny: { type: 'plain_text', text: 'Cancel' },
          },
        },
      ],
    });
  }
  return { text: `${open ? 'Approval requested' : `Plan ${view.status}`}: ${what} (risk ${view.risk})`, blocks };
}

/** What replaces the original message after a decision: the request again, with its new state. */
export function outcomeMessage(view: PlanView, decidedBy: string, decision: 'approve' | 'reject', links: PlanLinks): SlackMessage & { replace_original: true } {
  const verb = decision === 'approve' ? 'approved' : 'rejected';
  const footer =
    view.status === 'awaiting_approval'
      ? `${escapeMrkdwn(decidedBy)} ${verb}; still needed: ${escapeMrkdwn(describeMissing(view) || 'nothing')}.`
      : view.status === 'approved'
        ? `${escapeMrkdwn(decidedBy)} ${verb}: the approvals are complete; it runs once applied.`
        : `${escapeMrkdwn(decidedBy)} ${verb}: the plan is ${view.status}.`;
  const message = approvalRequestMessage(view, links, footer);
  return { replace_original: true, text: `${decidedBy} ${verb} ${view.planId}: ${message.text}`, blocks: message.blocks };
}

/** A note only the clicking user sees; the original message stays as it is. */
export function ephemeral(text: string) {
  return { response_type: 'ephemeral', replace_original: false, text } as const;
}
