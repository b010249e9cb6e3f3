/**
 * Request signing for the chat channels: Slack's v0 scheme (inbound) and the generic `X-PA-*`
 * scheme (inbound approvals and outbound notifications). Pure functions over an injected clock.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Signed requests older (or further in the future) than this are refused: 5 minutes, as Slack advises. */
export const REPLAY_WINDOW_SECONDS = 300;

export type SignatureFailure = 'missing' | 'malformed' | 'stale' | 'future' | 'mismatch';

export type SignatureCheck<T = true> = { ok: true; value: T } | { ok: false; reason: SignatureFailure };

export const SIGNATURE_FAILURE_MESSAGES: Record<SignatureFailure, string> = {
  missing: 'the signature or timestamp header is missing',
  malformed: 'the signature or timestamp header is malformed',
  stale: `the request timestamp is more than ${REPLAY_WINDOW_SECONDS} seconds old`,
  future: `the request timestamp is more than ${REPLAY_WINDOW_SECONDS} seconds in the future`,
  mismatch: 'the signature does not match',
};

export function hmacSha256Hex(secret: string, message: string): string {
  return createHmac('sha256', secret).update(message, 'utf8').digest('hex');
}

/** Constant-time comparison of two lowercase hex digests of the same algorithm. */
function sameDigest(expectedHex: string, presentedHex: string): boolean {
  const a = Buffer.from(expectedHex, 'hex');
  const b = Buffer.from(presentedHex, 'hex');
  // Lengths are public (a SHA-256 digest is always 32 bytes); only the content is compared in constant time.
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A Unix-seconds timestamp inside the replay window, or why not. */
export function checkTimestamp(header: string | undefined, nowMs: number): SignatureCheck<number> {
  if (header === undefined || header === '') return { ok: false, reason: 'missing' };
  if (!/^\d{1,12}$/.test(header)) return { ok: false, reason: 'malformed' };
  const ts = Number(header);
  const skew = Math.floor(nowMs / 1000) - ts;
  if (skew > REPLAY_WINDOW_SECONDS) return { ok: false, reason: 'stale' };
  if (skew < -REPLAY_WINDOW_SECONDS) return { ok: false, reason: 'future' };
  return { ok: true, value: ts };
}

export interface SignedRequest {
  timestamp: string | undefined;
  signature: string | undefined;
  /** The raw request body, exactly as received (before any parsing). */
  body: string;
  nowMs: number;
}

/**
 * Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:{timestamp}:{body}")>`
 * (api.slack.com/authentication/verifying-requests-from-slack). The signature is checked before the
 * timestamp's age, so an unsigned caller learns nothing about the clock.
 */
export function verifySlackSignature(secret: string, req: SignedRequest): SignatureCheck<number> {
  if (!req.signature || !req.timestamp) return { ok: false, reason: 'missing' };
  const m = /^v0=([0-9a-f]{64})$/.exec(req.signature);
  if (!m || !/^\d{1,12}$/.test(req.timestamp)) return { ok: false, reason: 'malformed' };
  if (!sameDigest(hmacSha256Hex(secret, `v0:${req.timestamp}:${req.body}`), m[1]!)) return { ok: false, reason: 'mismatch' };
  return checkTimestamp(req.timestamp, req.nowMs);
}

export function slackSignature(secret: string, timestamp: string, body: string): string {
  return `v0=${hmacSha256Hex(secret, `v0:${timestamp}:${body}`)}`;
}

/** `X-PA-Signature: sha256=<hex HMAC-SHA256(secret, "{X-PA-Timestamp}.{body}")>`, as sent by proxmox-agent and its bots. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${hmacSha256Hex(secret, `${timestamp}.${body}`)}`;
}

/** The headers that sign an outgoing body. */
export function signedHeaders(secret: string, body: string, nowMs: number): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  return { 'x-pa-timestamp': timestamp, 'x-pa-signature': webhookSignature(secret, timestamp, body) };
}

/**
 * Verifies an `X-PA-Signature` against every candidate secret and returns the one that signed it.
 * All candidates are always computed, so the time taken does not reveal which one matched.
 */
export function verifyWebhookSignature<K>(candidates: readonly { key: K; secret: string }[], req: SignedRequest): SignatureCheck<{ key: K; timestamp: number }> {
  if (!req.signature || !req.timestamp) return { ok: false, reason: 'missing' };
  const m = /^sha256=([0-9a-f]{64})$/.exec(req.signature);
  if (!m || !/^\d{1,12}$/.test(req.timestamp)) return { ok: false, reason: 'malformed' };
  let found: K | undefined;
  let matched = false;
  for (const c of candidates) {
    const same = sameDigest(hmacSha256Hex(c.secret, `${req.timestamp}.${req.body}`), m[1]!);
    if (same && !matched) {
      matched = true;
      found = c.key;
    }
  }
  if (!matched) return { ok: false, reason: 'mismatch' };
  const ts = checkTimestamp(req.timestamp, req.nowMs);
  return ts.ok ? { ok: true, value: { key: found as K, timestamp: ts.value } } : ts;
}

/**
 * Microsoft Teams outgoing webhook: `Authorization: HMAC <base64 HMAC-SHA256(base64-decoded security
 * token, raw body bytes)>` (learn.microsoft.com, "Create Outgoing Webhooks"; the OfficeDev
 * Microsoft-Teams-Samples outgoing-webhook sample). The scheme carries no timestamp header: the
 * activity's own `timestamp` and `id`, inside the signed body, serve for the replay window and the nonce.
 */
export function verifyTeamsSignature(securityToken: string, authorization: string | undefined, body: string): SignatureCheck {
  if (!authorization) return { ok: false, reason: 'missing' };
  const m = /^HMAC ([A-Za-z0-9+/]{43}=)$/.exec(authorization);
  if (!m) return { ok: false, reason: 'malformed' };
  const expected = createHmac('sha256', Buffer.from(securityToken, 'base64')).update(body, 'utf8').digest();
  const presented = Buffer.from(m[1]!, 'base64');
  return expected.length === presented.length && timingSafeEqual(expected, presented) ? { ok: true, value: true } : { ok: false, reason: 'mismatch' };
}

export function teamsSignature(securityToken: string, body: string): string {
  return `HMAC ${createHmac('sha256', Buffer.from(securityToken, 'base64')).update(body, 'utf8').digest('base64')}`;
}
