/**
 * The channel and notifier configuration with its secrets read, once at boot: a missing secret stops
 * the service with the field's name, never its value.
 */
import { ConfigError, resolveSecret } from '../config/load.js';
import type { ApproverIdentity, ChannelsConfig, NotificationsConfig } from '../config/schema.js';

export type { ApproverIdentity };

export interface SlackSettings {
  signingSecret: string;
  users: ReadonlyMap<string, ApproverIdentity>;
  responseUrlOrigins: readonly string[];
}

export interface WebhookBot {
  id: string;
  secret: string;
  approvers: ReadonlyMap<string, ApproverIdentity>;
}

export interface ChannelSettings {
  slack?: SlackSettings;
  webhooks: readonly WebhookBot[];
}

export interface NotificationTarget {
  /** Used in logs and errors instead of the URL. */
  label: string;
  url: string;
  secret?: string;
  format: 'slack' | 'json';
}

interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  configPath?: string;
}

export function resolveChannelSettings(config: ChannelsConfig, opts: ResolveOptions = {}): ChannelSettings {
  const secret = (ref: Parameters<typeof resolveSecret>[0], field: string) => resolveSecret(ref, field, opts.env, opts.configPath);
  const webhooks = config.webhooks.map((bot, i) => ({
    id: bot.id,
    secret: secret(bot.secret, `channels.webhooks.${i}.secret`),
    approvers: new Map(Object.entries(bot.approvers)),
  }));
  // The signature identifies the bot, so two bots must never share a secret.
  const seen = new Map<string, string>();
  for (const bot of webhooks) {
    const other = seen.get(bot.secret);
    if (other) throw new ConfigError(`channels.webhooks: '${bot.id}' and '${other}' share one secret; give each bot its own`);
    seen.set(bot.secret, bot.id);
  }
  return {
    ...(config.slack
      ? {
          slack: {
            signingSecret: secret(config.slack.signingSecret, 'channels.slack.signingSecret'),
            users: new Map(Object.entries(config.slack.users)),
            responseUrlOrigins: config.slack.responseUrlOrigins,
          },
        }
      : {}),
    webhooks,
  };
}

export function resolveNotificationTargets(config: NotificationsConfig, opts: ResolveOptions = {}): NotificationTarget[] {
  return config.webhooks.map((w, i) => ({
    label: w.name ? `notifications.webhooks.${i} (${w.name})` : `notifications.webhooks.${i}`,
    url: w.url,
    format: w.format,
    ...(w.secret ? { secret: resolveSecret(w.secret, `notifications.webhooks.${i}.secret`, opts.env, opts.configPath) } : {}),
  }));
}
