import { describe, expect, it } from 'vitest';
import { createNonceCache } from '../../src/channels/nonce-cache.js';
import {
  checkTimestamp,
  hmacSha256Hex,
  REPLAY_WINDOW_SECONDS,
  signedHeaders,
  slackSignature,
  verifySlackSignature,
  verifyWebhookSignature,
  webhookSignature,
} from '../../src/channels/signing.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const ts = (offsetSeconds = 0) => String(Math.floor(NOW / 1000) + offsetSeconds);

describe('Slack v0 signatures', () => {
  // The worked example from Slack's "Verifying requests from Slack" guide.
  const secret = '8f742231b10e8888abcd99yyyzzz85a5';
  const body =
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
  const timestamp = '1531420618';
  const published = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';

  it('matches the published example', () => {
    expect(slackSignature(secret, timestamp, body)).toBe(published);
    expect(verifySlackSignature(secret, { timestamp, signature: published, body, nowMs: 1531420618_000 + 10_000 })).toEqual({ ok: true, value: 1531420618 });
  });

  it('accepts a fresh, correctly signed request', () => {
    const t = ts(-30);
    expect(verifySlackSignature('s3cret', { timestamp: t, signature: slackSignature('s3cret', t, 'payload=x'), body: 'payload=x', nowMs: NOW }).ok).toBe(true);
  });

  it('refuses a stale timestamp, and one too far in the future', () => {
    const old = ts(-REPLAY_WINDOW_SECONDS - 1);
    const future = ts(REPLAY_WINDOW_SECONDS + 1);
    expect(verifySlackSignature('s', { timestamp: old, signature: slackSignature('s', old, 'b'), body: 'b', nowMs: NOW })).toEqual({ ok: false, reason: 'stale' });
    expect(verifySlackSignature('s', { timestamp: future, signature: slackSignature('s', future, 'b'), body: 'b', nowMs: NOW })).toEqual({ ok: false, reason: 'future' });
    // The edge of the window is inside it.
    const edge = ts(-REPLAY_WINDOW_SECONDS);
    expect(verifySlackSignature('s', { timestamp: edge, signature: slackSignature('s', edge, 'b'), body: 'b', nowMs: NOW }).ok).toBe(true);
  });

  it('refuses a forged signature: other secret, other body, other timestamp', () => {
    const t = ts();
    const good = slackSignature('right', t, 'payload=a');
    expect(verifySlackSignature('right', { timestamp: t, signature: slackSignature('wrong', t, 'payload=a'), body: 'payload=a', nowMs: NOW })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySlackSignature('right', { timestamp: t, signature: good, body: 'payload=b', nowMs: NOW })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySlackSignature('right', { timestamp: ts(1), signature: good, body: 'payload=a', nowMs: NOW })).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('checks the signature before the clock, so a forger learns nothing about it', () => {
    const old = ts(-10_000);
    expect(verifySlackSignature('s', { timestamp: old, signature: `v0=${'0'.repeat(64)}`, body: 'b', nowMs: NOW })).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('refuses missing and malformed headers', () => {
    const t = ts();
    expect(verifySlackSignature('s', { timestamp: undefined, signature: slackSignature('s', t, 'b'), body: 'b', nowMs: NOW })).toEqual({ ok: false, reason: 'missing' });
    expect(verifySlackSignature('s', { timestamp: t, signature: undefined, body: 'b', nowMs: NOW })).toEqual({ ok: false, reason: 'missing' });
    for (const signature of ['v1=' + 'a'.repeat(64), 'v0=' + 'A'.repeat(64), 'v0=' + 'a'.repeat(63), 'v0=', slackSignature('s', t, 'b') + ' '])
      expect(verifySlackSignature('s', { timestamp: t, signature, body: 'b', nowMs: NOW })).toEqual({ ok: false, reason: 'malformed' });
    expect(verifySlackSignature('s', { timestamp: '12.5', signature: slackSignature('s', '12.5', 'b'), body: 'b', nowMs: NOW })).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('X-PA webhook signatures', () => {
  const bots = [
    { key: 'alpha', secret: 'alpha-secret' },
    { key: 'beta', secret: 'beta-secret' },
  ];

  it('is HMAC-SHA256 over "timestamp.body", hex, with a sha256= prefix', () => {
    expect(webhookSignature('k', '1700000000', '{"a":1}')).toBe(`sha256=${hmacSha256Hex('k', '1700000000.{"a":1}')}`);
    const headers = signedHeaders('k', '{"a":1}', NOW);
    expect(headers['x-pa-timestamp']).toBe(ts());
    expect(headers['x-pa-signature']).toBe(webhookSignature('k', ts(), '{"a":1}'));
  });

  it('identifies which bot signed a valid request', () => {
    const t = ts(-5);
    const body = '{"nonce":"abc"}';
    expect(verifyWebhookSignature(bots, { timestamp: t, signature: webhookSignature('beta-secret', t, body), body, nowMs: NOW })).toEqual({
      ok: true,
      value: { key: 'beta', timestamp: Number(t) },
    });
  });

  it('refuses a forged, a stale and a malformed request', () => {
    const t = ts();
    const body = '{}';
    expect(verifyWebhookSignature(bots, { timestamp: t, signature: webhookSignature('gamma-secret', t, body), body, nowMs: NOW })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyWebhookSignature(bots, { timestamp: t, signature: webhookSignature('alpha-secret', t, body), body: '{ }', nowMs: NOW })).toEqual({ ok: false, reason: 'mismatch' });
    const old = ts(-REPLAY_WINDOW_SECONDS - 60);
    expect(verifyWebhookSignature(bots, { timestamp: old, signature: webhookSignature('alpha-secret', old, body), body, nowMs: NOW })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhookSignature(bots, { timestamp: t, signature: hmacSha256Hex('alpha-secret', `${t}.${body}`), body, nowMs: NOW })).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyWebhookSignature([], { timestamp: t, signature: webhookSignature('x', t, body), body, nowMs: NOW })).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('checkTimestamp works in whole seconds', () => {
    expect(checkTimestamp(ts(), NOW)).toEqual({ ok: true, value: Number(ts()) });
    expect(checkTimestamp('', NOW)).toEqual({ ok: false, reason: 'missing' });
    expect(checkTimestamp('-1', NOW)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('nonce cache', () => {
  it('accepts a key once, then reports replays until it expires', () => {
    let now = 0;
    const cache = createNonceCache({ ttlMs: 1000, now: () => now });
    expect(cache.claim('a')).toBe('fresh');
    expect(cache.claim('b')).toBe('fresh');
    expect(cache.claim('a')).toBe('replayed');
    now = 999;
    expect(cache.claim('a')).toBe('replayed');
    now = 1000;
    expect(cache.claim('a')).toBe('fresh');
    expect(cache.size).toBe(1);
  });

  it('remembers keys for the whole window on both sides of a timestamp by default', () => {
    let now = 0;
    const cache = createNonceCache({ now: () => now });
    cache.claim('k');
    now = 2 * REPLAY_WINDOW_SECONDS * 1000 - 1;
    expect(cache.claim('k')).toBe('replayed');
  });

  it('fails closed when full, and makes room as keys expire', () => {
    let now = 0;
    const cache = createNonceCache({ ttlMs: 100, maxEntries: 2, now: () => now });
    expect(cache.claim('a')).toBe('fresh');
    now = 50;
    expect(cache.claim('b')).toBe('fresh');
    expect(cache.claim('c')).toBe('full');
    expect(cache.claim('a')).toBe('replayed');
    now = 100;
    expect(cache.claim('c')).toBe('fresh');
    expect(cache.claim('b')).toBe('replayed');
  });
});
