import { describe, expect, it } from 'vitest';
import { jsonNotification, notificationBody } from '../../src/channels/notifier.js';
import { planLinks } from '../../src/channels/plan-summary.js';
import {
  approvalRequestMessage,
  checkResponseUrl,
  decodeButtonValue,
  encodeButtonValue,
  outcomeMessage,
  parseInteraction,
  SlackPayloadError,
} from '../../src/channels/slack.js';
import { pendingPlan, slackClickBody } from './helpers/fixtures.js';

const links = planLinks('plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G', {
  apiBaseUrl: 'https://agent.example/',
  temporalUi: { baseUrl: 'http://localhost:8233', namespace: 'default' },
});

describe('button values', () => {
  it('round-trip plan id and request hash, and refuse anything else', () => {
    const p = pendingPlan();
    expect(decodeButtonValue(encodeButtonValue(p.planId, p.requestHash))).toEqual({ planId: p.planId, requestHash: p.requestHash });
    for (const bad of ['', p.planId, `${p.planId}|sha256:abc`, `plan_x|${p.requestHash}`, `${p.planId}|${p.requestHash}|extra`])
      expect(decodeButtonValue(bad)).toBeUndefined();
  });
});

describe('the approval request message', () => {
  const p = pendingPlan();
  const msg = approvalRequestMessage(p, links);
  const text = JSON.stringify(msg);

  it('shows summary, risk, requester, reason, every reason, the preflight and links', () => {
    expect(msg.text).toContain('vm.delete on prod/201 (db-prod @ pve-prod)');
    expect(text).toContain('critical');
    expect(text).toContain('agent:pi-demo');
    expect(text).toContain('catalog.base_risk');
    expect(text).toContain('approval.required');
    expect(text).toContain("VM 201 'db-prod' on pve-prod: stopped; tags db; assessment: proceed");
    expect(text).toContain('https://agent.example/v1/actions/plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G');
    expect(text).toContain('http://localhost:8233/namespaces/default/workflows/plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G');
    // User-supplied text cannot inject Slack links or mentions.
    expect(text).toContain('&lt;CHG-42&gt; &amp; friends');
    expect(text).not.toContain('<CHG-42>');
  });

  it('carries Approve and Reject buttons whose values the interactive endpoint understands', () => {
    const actions = msg.blocks.find((b) => b.type === 'actions') as { elements: { action_id: string; value: string }[] };
    expect(actions.elements.map((e) => e.action_id)).toEqual(['approve', 'reject']);
    for (const e of actions.elements) {
      const click = slackClickBody({ userId: 'U1', actionId: e.action_id, value: e.value, responseUrl: 'https://hooks.slack.com/actions/T/1/x' });
      expect(parseInteraction(click)).toMatchObject({ planId: p.planId, requestHash: p.requestHash, decision: e.action_id, userId: 'U1' });
    }
  });

  it('drops the buttons once the plan no longer waits, and says what happened', () => {
    const done = outcomeMessage(pendingPlan({ status: 'approved', approval: { ...p.approval, received: 2 } }), 'human:alice', 'approve', links);
    expect(done.replace_original).toBe(true);
    expect(done.blocks.some((b) => b.type === 'actions')).toBe(false);
    expect(JSON.stringify(done)).toContain('human:alice approved: the approvals are complete');
    const alice = { principal: 'human:alice', tokenId: 'slack:U1', roles: [], channel: 'chat' as const, decision: 'approve' as const, at: '2026-03-01T12:01:00.000Z' };
    const halfway = outcomeMessage(
      pendingPlan({ approval: { ...p.approval, received: 1, approvers: [alice], requirements: [{ id: 'risk.critical', count: 2, received: 1 }, { id: 'policy.step-up', count: 1, channels: ['api', 'cli'], received: 0 }] } }),
      'human:alice',
      'approve',
      links,
    );
    expect(JSON.stringify(halfway)).toContain('1 so far (human:alice via chat); still needed: 1 more; 1 more via api/cli');
    expect(halfway.blocks.some((b) => b.type === 'actions')).toBe(true);
    expect(JSON.stringify(halfway)).toContain("human:alice approved; still needed: 1 more; 1 more via api/cli.");
  });

  it('the JSON format carries the same facts for other bots', () => {
    const body = JSON.parse(notificationBody(p, 'json', links));
    expect(body).toEqual(JSON.parse(JSON.stringify(jsonNotification(p, links))));
    expect(body).toMatchObject({ event: 'approval.requested', planId: p.planId, requestHash: p.requestHash, risk: 'critical', links });
    expect(body.preflight.summary).toContain("VM 201 'db-prod' on pve-prod: stopped");
    expect(body.reasons).toHaveLength(2);
  });
});

describe('parseInteraction', () => {
  const value = encodeButtonValue(pendingPlan().planId, pendingPlan().requestHash);
  it('refuses what is not one of our block_actions', () => {
    expect(() => parseInteraction('')).toThrow(SlackPayloadError);
    expect(() => parseInteraction('payload=%7Bnot json')).toThrow(SlackPayloadError);
    expect(() => parseInteraction(`payload=${encodeURIComponent(JSON.stringify({ type: 'view_submission' }))}`)).toThrow(SlackPayloadError);
    expect(() => parseInteraction(slackClickBody({ userId: 'U1', actionId: 'other', value, responseUrl: 'https://hooks.slack.com/x' }))).toThrow(/no approve or reject/);
    expect(() => parseInteraction(slackClickBody({ userId: 'U1', actionId: 'approve', value: 'nope', responseUrl: 'https://hooks.slack.com/x' }))).toThrow(/planId\|requestHash/);
  });
});

describe('response_url checks (no SSRF relay)', () => {
  const slack = ['https://hooks.slack.com'];
  it('allows only the configured origins', () => {
    expect(checkResponseUrl('https://hooks.slack.com/actions/T1/2/abc', slack)?.href).toBe('https://hooks.slack.com/actions/T1/2/abc');
    for (const bad of [
      'http://hooks.slack.com/actions/T1/2/abc',
      'https://hooks.slack.com:8443/actions',
      'https://hooks.slack.com.evil.example/actions',
      'https://evil.example/?https://hooks.slack.com/',
      'https://user:pw@hooks.slack.com/actions',
      'https://169.254.169.254/latest/meta-data',
      'http://127.0.0.1:8787/v1/actions/plan',
      'file:///etc/passwd',
      'not a url',
    ])
      expect(checkResponseUrl(bad, slack), bad).toBeUndefined();
    expect(checkResponseUrl('http://127.0.0.1:4000/r/1', ['http://127.0.0.1:4000'])?.pathname).toBe('/r/1');
  });
});
