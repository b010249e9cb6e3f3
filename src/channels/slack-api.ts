/**
 * The two Slack Web API methods the notifier calls with the bot token (channels.slack.post):
 * chat.postMessage, whose answer names the message (`channel` id and `ts`), and chat.update, which
 * rewrites that message in place (api.slack.com/methods/chat.postMessage, /methods/chat.update).
 * Keeping the pair lets any later decision, from whatever channel, update the one message approvers
 * saw; a response_url can only answer the click that carried it.
 *
 * Slack answers HTTP 200 with `{ ok: false, error }` for most failures: those are permanent (a bad
 * token, an unknown channel, a deleted message) except the few that say to try again.
 */
import type { Dispatcher } from 'undici';
import { OutboundError, postJson } from './outbound.js';
import type { SlackPost } from './slack-channel.js';

export interface SlackMessageRef {
  /** The conversation id Slack answered with (chat.update needs the id, not a name). */
  channel: string;
  ts: string;
}

export interface SlackCallOptions {
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

const RETRYABLE = new Set(['ratelimited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);

async function call(post: SlackPost, method: 'chat.postMessage' | 'chat.update', payload: object, opts: SlackCallOptions): Promise<Record<string, unknown>> {
  const label = `Slack ${method}`;
  const res = await postJson(`${post.apiUrl.replace(/\/+$/, '')}/${method}`, JSON.stringify(payload), {
    label,
    // The token is a header, never part of a message or a label: errors and logs never carry it.
    headers: { authorization: `Bearer ${post.botToken}` },
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
  });
  let answer: Record<string, unknown>;
  try {
    answer = JSON.parse(res.body) as Record<string, unknown>;
  } catch {
    throw new OutboundError(`${label}: the answer is not JSON`);
  }
  if (answer.ok !== true) {
    const error = typeof answer.error === 'string' ? answer.error : 'unknown_error';
    throw new OutboundError(`${label}: ${error}`, RETRYABLE.has(error) ? undefined : 400);
  }
  return answer;
}

export async function postSlackMessage(post: SlackPost, message: { text: string; blocks: unknown[] }, opts: SlackCallOptions = {}): Promise<SlackMessageRef> {
  const answer = await call(post, 'chat.postMessage', { channel: post.channel, text: message.text, blocks: message.blocks, unfurl_links: false }, opts);
  if (typeof answer.channel !== 'string' || typeof answer.ts !== 'string') throw new OutboundError('Slack chat.postMessage: no channel and ts in the answer');
  return { channel: answer.channel, ts: answer.ts };
}

/** Idempotent: the same update twice leaves the message as once. */
export async function updateSlackMessage(post: SlackPost, ref: SlackMessageRef, message: { text: string; blocks: unknown[] }, opts: SlackCallOptions = {}): Promise<void> {
  await call(post, 'chat.update', { channel: ref.channel, ts: ref.ts, text: message.text, blocks: message.blocks }, opts);
}
