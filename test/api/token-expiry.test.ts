import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { reportTokenExpiry } from '../../src/api/access/token-expiry.js';
import type { ApiTokenConfig } from '../../src/config/schema.js';
import { createMetrics } from '../../src/observability/metrics.js';

const token = (id: string, expiresAt?: string): ApiTokenConfig => ({
  id,
  principal: `agent:${id}`,
  secretSha256: '0'.repeat(64),
  scopes: ['read'],
  environments: ['*'],
  roles: [],
  ...(expiresAt ? { expiresAt } : {}),
});

describe('reportTokenExpiry', () => {
  it('exports each deadline as a gauge and warns about tokens expired or expiring within 14 days', async () => {
    const metrics = createMetrics(new Registry());
    const warnings: string[] = [];
    const now = Date.parse('2026-12-01T00:00:00Z');
    reportTokenExpiry(
      [token('forever'), token('gone', '2026-11-30T00:00:00Z'), token('soon', '2026-12-10T00:00:00Z'), token('later', '2027-06-01T00:00:00Z')],
      { gauge: metrics.tokenExpiry, log: { warn: (_obj: unknown, msg: string) => void warnings.push(msg) } as never, now },
    );
    expect(warnings).toEqual([
      "API token 'gone' expired at 2026-11-30T00:00:00Z: it is refused; remove it from the config",
      "API token 'soon' expires at 2026-12-10T00:00:00Z: make its successor with 'proxmox-agent tokens create'",
    ]);
    const text = await metrics.registry.metrics();
    const series = text.split('\n').filter((l) => l.startsWith('proxmox_agent_api_token_expiry_timestamp_seconds{'));
    expect(series).toEqual([
      `proxmox_agent_api_token_expiry_timestamp_seconds{token="gone"} ${Date.parse('2026-11-30T00:00:00Z') / 1000}`,
      `proxmox_agent_api_token_expiry_timestamp_seconds{token="soon"} ${Date.parse('2026-12-10T00:00:00Z') / 1000}`,
      `proxmox_agent_api_token_expiry_timestamp_seconds{token="later"} ${Date.parse('2027-06-01T00:00:00Z') / 1000}`,
    ]);
  });
});
