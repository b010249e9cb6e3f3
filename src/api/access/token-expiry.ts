/**
 * Token expiry, made visible before it bites: each expiring token's deadline as a Prometheus gauge
 * (alert on `proxmox_agent_api_token_expiry_timestamp_seconds - time() < 7 * 86400`, as one does for
 * certificates), and a warning at start for tokens that have expired or will within `warnDays`.
 */
import type { Gauge } from 'prom-client';
import type { ApiTokenConfig } from '../../config/schema.js';
import type { Logger } from '../../logging.js';

const DAY_MS = 86_400_000;

export function reportTokenExpiry(
  tokens: readonly ApiTokenConfig[],
  { gauge, log, now = Date.now(), warnDays = 14 }: { gauge: Gauge<'token'>; log: Pick<Logger, 'warn'>; now?: number; warnDays?: number },
): void {
  for (const token of tokens) {
    if (!token.expiresAt) continue;
    const at = Date.parse(token.expiresAt);
    gauge.set({ token: token.id }, at / 1000);
    if (at <= now) log.warn({ token: token.id, expiresAt: token.expiresAt }, `API token '${token.id}' expired at ${token.expiresAt}: it is refused; remove it from the config`);
    else if (at - now <= warnDays * DAY_MS)
      log.warn({ token: token.id, expiresAt: token.expiresAt }, `API token '${token.id}' expires at ${token.expiresAt}: make its successor with 'proxmox-agent tokens create'`);
  }
}
