import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { resolveChannelSettings, resolveNotificationTargets } from '../../src/channels/settings.js';

const base = () => ({
  environments: { lab: { tier: 'nonprod', proxmox: { simulator: 'lab' } }, prod: { tier: 'prod', proxmox: { simulator: 'prod' } } },
  tokens: [{ id: 'agent', principal: 'agent:pi', secretSha256: 'a'.repeat(64), scopes: ['plan', 'apply', 'read'], environments: ['*'] }],
});

describe('channels and notifications config', () => {
  it('defaults to no channels and no notifications', () => {
    const config = parseConfig(base());
    expect(config.channels).toEqual({ webhooks: [] });
    expect(config.notifications).toEqual({ webhooks: [] });
  });

  it('fills identity defaults and the Slack response_url origin', () => {
    const config = parseConfig({
      ...base(),
      channels: { slack: { signingSecret: { env: 'SLACK_SECRET' }, users: { U012ABCDEF: { principal: 'human:alice' } } } },
      notifications: { webhooks: [{ url: 'https://hooks.slack.com/services/T/B/X', format: 'slack' }] },
    });
    expect(config.channels.slack).toEqual({
      signingSecret: { env: 'SLACK_SECRET' },
      users: { U012ABCDEF: { principal: 'human:alice', roles: [], environments: ['*'] } },
      responseUrlOrigins: ['https://hooks.slack.com'],
    });
  });

  it('refuses a Slack user id that is not one, and a notifier without a format', () => {
    const bad = {
      ...base(),
      channels: {
        slack: { signingSecret: { env: 'S' }, users: { alice: { principal: 'human:alice' }, U0LAB: { principal: 'human:l', environments: ['staging'] } } },
        webhooks: [
          { id: 'bot', secret: { env: 'A' }, approvers: {} },
          { id: 'bot', secret: { env: 'B' }, approvers: { x: { principal: 'human:x', environments: ['nope'] } } },
        ],
      },
      notifications: { webhooks: [{ url: 'https://example.com/hook' }] },
    };
    let message = '';
    try {
      parseConfig(bad);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toContain('channels.slack.users.alice');
    expect(message).toContain('notifications.webhooks.0.format');
  });

  it('refuses unknown environments and duplicate bot ids (once the shape is valid)', () => {
    const bad = {
      ...base(),
      channels: {
        slack: { signingSecret: { env: 'S' }, users: { U0LAB: { principal: 'human:l', environments: ['staging'] } } },
        webhooks: [
          { id: 'bot', secret: { env: 'A' }, approvers: {} },
          { id: 'bot', secret: { env: 'B' }, approvers: { x: { principal: 'human:x', environments: ['nope'] } } },
        ],
      },
    };
    expect(() => parseConfig(bad)).toThrow(/channels\.slack\.users\.U0LAB\.environments\.0: unknown environment 'staging'/);
    expect(() => parseConfig(bad)).toThrow(/channels\.webhooks\.1\.id: duplicate webhook id 'bot'/);
    expect(() => parseConfig(bad)).toThrow(/channels\.webhooks\.1\.approvers\.x\.environments\.0: unknown environment 'nope'/);
  });

  it('takes Teams users by Entra object id and a Slack bot to post with, checking their environments too', () => {
    const config = parseConfig({
      ...base(),
      channels: {
        slack: { signingSecret: { env: 'S' }, users: {}, post: { botToken: { env: 'BOT' }, channel: 'C012ABCDEF' } },
        teams: { securityToken: { env: 'T' }, users: { '0c0a0f0e-1111-4222-8333-444455556666': { principal: 'human:carol', roles: ['dba'] } } },
      },
      notifications: { webhooks: [{ url: 'https://example.com/hook', format: 'teams' }] },
    });
    expect(config.channels.slack?.post).toEqual({ botToken: { env: 'BOT' }, channel: 'C012ABCDEF', apiUrl: 'https://slack.com/api' });
    expect(config.channels.teams?.users['0c0a0f0e-1111-4222-8333-444455556666']).toEqual({ principal: 'human:carol', roles: ['dba'], environments: ['*'] });
    const teams = (users: object) => ({ ...base(), channels: { teams: { securityToken: { env: 'T' }, users } } });
    expect(() => parseConfig(teams({ carol: { principal: 'human:carol' } }))).toThrow(/channels\.teams\.users\.carol: Invalid key/);
    expect(() => parseConfig(teams({ '0c0a0f0e-1111-4222-8333-444455556666': { principal: 'human:c', environments: ['nope'] } }))).toThrow(
      /channels\.teams\.users\.0c0a0f0e-1111-4222-8333-444455556666\.environments\.0: unknown environment 'nope'/,
    );
    // A Teams user with the role counts for a rule that asks for it.
    expect(() =>
      parseConfig({
        ...teams({ '0c0a0f0e-1111-4222-8333-444455556666': { principal: 'human:d', roles: ['dba'] } }),
        policy: { rules: [{ id: 'dba', match: { environments: ['prod'] }, approvals: { count: 1, roles: ['dba'] } }] },
      }),
    ).not.toThrow();
  });

  it('counts chat identities as holders of the roles a rule asks for', () => {
    const raw = {
      ...base(),
      policy: { rules: [{ id: 'dba', match: { environments: ['prod'] }, approvals: { count: 1, roles: ['dba'] } }] },
    };
    expect(() => parseConfig(raw)).toThrow(/no approver holds role 'dba'/);
    expect(() =>
      parseConfig({ ...raw, channels: { webhooks: [{ id: 'bot', secret: { env: 'B' }, approvers: { d: { principal: 'human:d', roles: ['dba'] } } }] } }),
    ).not.toThrow();
    expect(() =>
      parseConfig({ ...raw, channels: { slack: { signingSecret: { env: 'S' }, users: { U0DBA: { principal: 'human:d', roles: ['dba'] } } } } }),
    ).not.toThrow();
  });
});

describe('resolving channel secrets', () => {
  const channels = (webhooks: { id: string; env: string }[]) =>
    parseConfig({ ...base(), channels: { slack: { signingSecret: { env: 'PA_SLACK' }, users: {} }, webhooks: webhooks.map((w) => ({ id: w.id, secret: { env: w.env }, approvers: { a: { principal: 'human:a' } } })) } }).channels;

  it('reads each secret, and names the field (never a value) when one is missing', () => {
    const env = { PA_SLACK: 'slack-secret', PA_BOT_A: 'a-secret' };
    const settings = resolveChannelSettings(channels([{ id: 'a', env: 'PA_BOT_A' }]), { env });
    expect(settings.slack?.signingSecret).toBe('slack-secret');
    expect(settings.webhooks![0]).toMatchObject({ id: 'a', secret: 'a-secret' });
    expect(settings.webhooks![0]!.approvers.get('a')).toEqual({ principal: 'human:a', roles: [], environments: ['*'] });
    expect(() => resolveChannelSettings(channels([{ id: 'a', env: 'PA_MISSING' }]), { env })).toThrow(/channels\.webhooks\.0\.secret: environment variable PA_MISSING is not set/);
  });

  it('refuses two bots with one secret: the signature identifies the bot', () => {
    const env = { PA_SLACK: 's', PA_BOT_A: 'same', PA_BOT_B: 'same' };
    expect(() => resolveChannelSettings(channels([{ id: 'a', env: 'PA_BOT_A' }, { id: 'b', env: 'PA_BOT_B' }]), { env })).toThrow(/'b' and 'a' share one secret/);
  });

  it('labels notification targets by index and name, never by URL', () => {
    const config = parseConfig({
      ...base(),
      notifications: { webhooks: [{ url: 'https://hooks.slack.com/services/T/B/SECRET', format: 'slack', name: 'ops' }, { url: 'https://bot.example/x', format: 'json', secret: { env: 'PA_N' } }] },
    });
    const targets = resolveNotificationTargets(config.notifications, { env: { PA_N: 'n-secret' } });
    expect(targets.map((t) => t.label)).toEqual(['notifications.webhooks.0 (ops)', 'notifications.webhooks.1']);
    expect(targets[1]!.secret).toBe('n-secret');
    expect(targets[0]!.secret).toBeUndefined();
  });
});
