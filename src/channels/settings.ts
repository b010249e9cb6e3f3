/**
 * The channel and notifier configuration with its secrets read, once at boot: a missing secret stops
 * the service with the field's name, never its value.
 */
import { ConfigError, resolveSecret } from '../config/load.js';
import type { ApproverIdentity, ChannelsConfig, NotificationsConfig } from '../config/schema.js';
import type { ResolveSecret } from './channel.js';
import { CHAT_CHANNELS, type ChannelSettingsShape } from './registry.js';

export type { ApproverIdentity };

export type { SlackSettings } from './slack-channel.js';
export type { WebhookBot } from './webhook-channel.js';
export type { TeamsSettings } from './teams-channel.js';

/** Each configured channel's settings (channels.<key>), secrets read. */
export type ChannelSettings = ChannelSettingsShape;

export interface NotificationTarget {
  /** Used in logs and errors instead of the URL. */
  label: string;
  url: string;
  secret?: string;
  /** A channel's notification format (registry.ts): slack, json, teams. */
  format: string;
}

interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  configPath?: string;
}

export function resolveChannelSettings(config: ChannelsConfig, opts: ResolveOptions = {}): ChannelSettings {
  const secret: ResolveSecret = (ref, field) => resolveSecret(ref, field, opts.env, opts.configPath);
  const settings: Record<string, unknown> = {};
  for (const channel of CHAT_CHANNELS) {
    try {
      const resolved = channel.resolve((config as Record<string, unknown>)[channel.key] as never, secret);
      if (resolved !== undefined) settings[channel.key] = resolved;
    } catch (err) {
      // A channel's own refusal of its settings (e.g. two bots sharing a secret) stops the boot like any config error.
      throw err instanceof ConfigError ? err : new ConfigError((err as Error).message);
    }
  }
  return settings as ChannelSettings;
}

export function resolveNotificationTargets(config: NotificationsConfig, opts: ResolveOptions = {}): NotificationTarget[] {
  return config.webhooks.map((w, i) => ({
    label: w.name ? `notifications.webhooks.${i} (${w.name})` : `notifications.webhooks.${i}`,
    url: w.url,
    format: w.format,
    ...(w.secret ? { secret: resolveSecret(w.secret, `notifications.webhooks.${i}.secret`, opts.env, opts.configPath) } : {}),
  }));
}
