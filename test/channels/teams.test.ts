/** The Teams channel's pure parts: the outgoing-webhook HMAC, the command, the timestamp window. */
import { describe, expect, it } from 'vitest';
import { teamsSignature, verifyTeamsSignature } from '../../src/channels/signing.js';
import { commandText, teamsChannel } from '../../src/channels/teams-channel.js';

// Computed with openssl, not with the code under test:
// printf '{"a":1}' | openssl dgst -sha256 -hmac "secret-token-for-teams" -binary | base64
const TOKEN = 'c2VjcmV0LXRva2VuLWZvci10ZWFtcw=='; // base64 of "secret-token-for-teams"
const VECTOR = 'HMAC zf4ESp4mP1kBr0iTnKZLeB42Ub1Lw/82cI0aljOXTi8=';
const NOW = Date.parse('2026-03-01T12:00:00Z');
const AAD = '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const HASH = `sha256:${'ab'.repeat(32)}`;
const PLAN = 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G';

const settings = { securityToken: TOKEN, users: new Map([[AAD, { principal: 'human:alice', roles: [], environments: ['*'] }]]), tenantId: '11111111-2222-4333-8444-555555555555' };

function activity(over: Record<string, unknown> = {}) {
  return JSON.stringify({
    type: 'message',
    id: '1485983408511',
    timestamp: new Date(NOW - 2000).toISOString(),
    from: { id: '29:abc', name: 'Alice', aadObjectId: AAD },
    text: `<at>proxmox-agent</at>&nbsp;approve ${PLAN} ${HASH} CHG-42 &amp; ok`,
    channelData: { tenant: { id: settings.tenantId } },
    ...over,
  });
}
const request = (body: string, authorization = teamsSignature(TOKEN, body), nowMs = NOW) => ({ header: (n: string) => (n === 'authorization' ? authorization : undefined), body, nowMs });

describe('Teams outgoing webhook signature', () => {
  it('matches an HMAC computed elsewhere: key = the base64-decoded token, over the raw body, base64', () => {
    expect(teamsSignature(TOKEN, '{"a":1}')).toBe(VECTOR);
    expect(verifyTeamsSignature(TOKEN, VECTOR, '{"a":1}')).toEqual({ ok: true, value: true });
  });

  it('refuses a missing, malformed or wrong header, and a changed body', () => {
    expect(verifyTeamsSignature(TOKEN, undefined, '{"a":1}')).toEqual({ ok: false, reason: 'missing' });
    expect(verifyTeamsSignature(TOKEN, 'Bearer x', '{"a":1}')).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyTeamsSignature(TOKEN, VECTOR, '{"a":2}')).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyTeamsSignature('b3RoZXI=', VECTOR, '{"a":1}')).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('bounds replays by the signed activity timestamp', () => {
    expect(teamsChannel.verify(settings, request(activity()))).toEqual({ ok: true, value: { tenantId: settings.tenantId } });
    expect(teamsChannel.verify(settings, request(activity({ timestamp: new Date(NOW - 301_000).toISOString() })))).toEqual({ ok: false, reason: 'stale' });
    expect(teamsChannel.verify(settings, request(activity({ timestamp: new Date(NOW + 301_000).toISOString() })))).toEqual({ ok: false, reason: 'future' });
    expect(teamsChannel.verify(settings, request(activity({ timestamp: 'yesterday' })))).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('Teams command', () => {
  it('reads the decision after the mention, with the comment as typed', () => {
    expect(commandText(`<at>proxmox-agent</at>&nbsp;<p>reject ${PLAN} ${HASH}</p>`)).toBe(`reject ${PLAN} ${HASH}`);
    const got = teamsChannel.parse(activity(), { tenantId: settings.tenantId }, settings);
    expect(got).toEqual({
      decision: { planId: PLAN, requestHash: HASH, decision: 'approve', comment: 'CHG-42 & ok' },
      replayKey: 'teams:1485983408511',
      approverId: AAD,
      context: { name: 'Alice' },
    });
    expect(teamsChannel.approver(settings, {}, got).identity?.principal).toBe('human:alice');
  });

  it('refuses what is not a decision, and another tenant', () => {
    expect(() => teamsChannel.parse(activity({ text: '<at>proxmox-agent</at> approve everything' }), { tenantId: settings.tenantId }, settings)).toThrow(/expected: approve\|reject/);
    expect(() => teamsChannel.parse(activity({ type: 'conversationUpdate' }), {}, settings)).toThrow(/not a Teams message activity/);
    expect(() => teamsChannel.parse(activity(), { tenantId: '99999999-2222-4333-8444-555555555555' }, settings)).toThrow(/another tenant/);
  });
});
