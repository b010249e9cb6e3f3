/** Config for operations (issue 7): per-environment activity rate limits, the worker section, WORKER_PORT, TEMPORAL_UI_URL. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { resolveTemporal, TemporalConfigError, temporalUiUrl } from '../../src/temporal/connection.js';

const demo = () => structuredClone(loadConfig({}).config) as unknown as Record<string, any>;

describe('operations config', () => {
  it('defaults: 5 Proxmox activities per second per environment, worker HTTP on 127.0.0.1:9464, 30 s shutdown grace', () => {
    const { config } = loadConfig({});
    expect(Object.values(config.environments).map((e) => e.maxActivitiesPerSecond)).toEqual([5, 5]);
    expect(config.worker).toEqual({ host: '127.0.0.1', port: 9464, shutdownGraceSeconds: 30 });
  });

  it('takes per-environment limits and worker tuning, and refuses nonsense', () => {
    const raw = demo();
    raw.environments.prod.maxActivitiesPerSecond = 0.5;
    raw.worker = { host: '0.0.0.0', port: 9500, maxConcurrentActivityTaskExecutions: 20, maxCachedWorkflows: 100 };
    const config = parseConfig(raw);
    expect(config.environments.prod!.maxActivitiesPerSecond).toBe(0.5);
    expect(config.worker).toMatchObject({ host: '0.0.0.0', port: 9500, maxConcurrentActivityTaskExecutions: 20, maxCachedWorkflows: 100, shutdownGraceSeconds: 30 });
    raw.environments.prod.maxActivitiesPerSecond = 0;
    expect(() => parseConfig(raw)).toThrow(/environments\.prod\.maxActivitiesPerSecond/);
    raw.environments.prod.maxActivitiesPerSecond = 1;
    raw.worker = { sdkMetricsAddress: 'http://x:1' };
    expect(() => parseConfig(raw)).toThrow(/worker\.sdkMetricsAddress/);
  });

  it('WORKER_PORT overrides worker.port, like PORT for the API', () => {
    expect(loadConfig({ WORKER_PORT: '0' }).config.worker.port).toBe(0);
    expect(() => loadConfig({ WORKER_PORT: 'ninety' })).toThrow(ConfigError);
    expect(() => loadConfig({ WORKER_PORT: 'ninety' })).toThrow(/WORKER_PORT/);
  });
});

describe('TEMPORAL_UI_URL', () => {
  it('is optional, validated, and loses a trailing slash', () => {
    expect(temporalUiUrl({})).toBeUndefined();
    expect(temporalUiUrl({ TEMPORAL_UI_URL: ' ' })).toBeUndefined();
    expect(temporalUiUrl({ TEMPORAL_UI_URL: 'https://temporal.example.com/' })).toBe('https://temporal.example.com');
    expect(() => temporalUiUrl({ TEMPORAL_UI_URL: 'temporal.example.com' })).toThrow(TemporalConfigError);
    expect(() => temporalUiUrl({ TEMPORAL_UI_URL: 'ftp://x' })).toThrow(/TEMPORAL_UI_URL/);
  });

  it('names the UI of an external server only when set (no guessed localhost link)', async () => {
    const external = await resolveTemporal({ env: { TEMPORAL_ADDRESS: 'temporal.example.com:7233' } });
    expect(external.uiUrl).toBeUndefined();
    const withUi = await resolveTemporal({ env: { TEMPORAL_ADDRESS: 'temporal.example.com:7233', TEMPORAL_UI_URL: 'https://ui.example.com' } });
    expect(withUi.uiUrl).toBe('https://ui.example.com');
  });
});
