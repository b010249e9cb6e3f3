/**
 * Every chat channel, once. Adding one: its file (a ChatChannel, see channel.ts) and a line here.
 * The config schema (`channels.<key>`), the resolved settings, the inbound routes with their OpenAPI
 * entries and the notification formats are all built from this list.
 */
import type { ChatChannel } from './channel.js';
import { slackChannel } from './slack-channel.js';
import { teamsChannel } from './teams-channel.js';
import { webhookChannel } from './webhook-channel.js';

export const CHAT_CHANNELS = [slackChannel, webhookChannel, teamsChannel] as const;

export type ChannelKey = (typeof CHAT_CHANNELS)[number]['key'];
type SettingsOf<C> = C extends ChatChannel<any, infer S> ? S : never;
type ConfigOf<C> = C extends ChatChannel<infer Cfg> ? Cfg : never;

type AllConfigs = { [C in (typeof CHAT_CHANNELS)[number] as C['key']]: ConfigOf<C> };
type OptionalKeys<T> = { [K in keyof T]: undefined extends T[K] ? K : never }[keyof T];
/** The config under `channels`, one key per channel (optional where the channel's schema is). */
export type ChannelsConfigShape = Omit<AllConfigs, OptionalKeys<AllConfigs>> & Partial<Pick<AllConfigs, OptionalKeys<AllConfigs>>>;
/** Each configured channel's settings, secrets read; absent when the channel is not configured. */
export type ChannelSettingsShape = { [C in (typeof CHAT_CHANNELS)[number] as C['key']]?: SettingsOf<C> };

/** The notification formats: each channel's own, by name (`notifications.webhooks[].format`). */
export const NOTIFICATION_FORMATS = CHAT_CHANNELS.flatMap((c) => (c.notification ? [c.notification.format] : [])) as [string, ...string[]];

export function notificationFormat(format: string): NonNullable<ChatChannel['notification']> {
  const found = CHAT_CHANNELS.find((c) => c.notification?.format === format)?.notification;
  if (!found) throw new Error(`no channel renders the notification format '${format}'`);
  return found;
}
