import { describe, expect, it } from 'vitest';
import { createAuthenticator } from '../../src/api/access/auth.js';
import { ApiError } from '../../src/api/http/problems.js';
import { apiTokenSchema } from '../../src/config/schema.js';
import { testToken as token } from '../support/tokens.js';

const refusal = (fn: () => unknown): ApiError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('not refused');
};

describe('createAuthenticator', () => {
  it('knows a configured token and refuses any other, or a malformed header, with 401', () => {
    const auth = createAuthenticator([token('a'), token('b')]);
    expect(auth('Bearer b-secret')).toMatchObject({ tokenId: 'b', principal: 'agent:b' });
    expect(refusal(() => auth('Bearer c-secret'))).toMatchObject({ code: 'unauthenticated', message: 'unknown or revoked token' });
    expect(refusal(() => auth('Basic b-secret'))).toMatchObject({ code: 'unauthenticated' });
    expect(refusal(() => auth(undefined))).toMatchObject({ code: 'unauthenticated' });
  });

  it('refuses a token from its expiresAt on, and saying so; a token without one never expires', () => {
    let now = Date.parse('2026-12-01T00:00:00Z');
    const auth = createAuthenticator([token('short', { expiresAt: '2026-12-01T12:00:00+00:00' }), token('forever')], () => now);
    expect(auth('Bearer short-secret').tokenId).toBe('short');
    now = Date.parse('2026-12-01T11:59:59.999Z');
    expect(auth('Bearer short-secret').tokenId).toBe('short');
    now = Date.parse('2026-12-01T12:00:00Z');
    expect(refusal(() => auth('Bearer short-secret'))).toMatchObject({ code: 'unauthenticated', message: "token 'short' expired at 2026-12-01T12:00:00+00:00" });
    now = Date.parse('2099-01-01T00:00:00Z');
    expect(auth('Bearer forever-secret').tokenId).toBe('forever');
  });
});

describe('apiTokenSchema expiresAt', () => {
  it('takes an RFC 3339 instant with an offset and refuses anything else', () => {
    expect(apiTokenSchema.parse({ ...token('a'), expiresAt: '2027-03-01T00:00:00Z' }).expiresAt).toBe('2027-03-01T00:00:00Z');
    expect(apiTokenSchema.parse({ ...token('a'), expiresAt: '2027-03-01T01:00:00+01:00' }).expiresAt).toBeDefined();
    for (const bad of ['2027-03-01', 'tomorrow', '2027-03-01T00:00:00', 1788220800])
      expect(apiTokenSchema.safeParse({ ...token('a'), expiresAt: bad }).success, String(bad)).toBe(false);
  });
});
