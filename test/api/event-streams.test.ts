/**
 * Concurrent event streams (GET /v1/actions/{planId}/events) per API token are capped (issue 12,
 * item 10): over the cap a token gets 429 problem+json with Retry-After; a stream's slot is released
 * when it ends, when the client cancels it, and when the client's connection drops; the open count
 * per token is a metric. Through the real Hono app, and once over a real HTTP server.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/http/app.js';
import { createAuthenticator } from '../../src/api/access/auth.js';
import type { ApiDeps } from '../../src/api/http/context.js';
import type { PlanGateway } from '../../src/api/plans/plan-gateway.js';
import { listenApi } from '../../src/api/http/server.js';
import { DEFAULT_EVENT_STREAMS_PER_TOKEN, serverConfigSchema } from '../../src/config/security.js';
import { sha256Hex } from '../../src/domain/hashing.js';
import type { PlanStatus } from '../../src/domain/lifecycle.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { pendingPlan } from '../channels/helpers/fixtures.js';

const WAITING = 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G';
const FINISHED = 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1H';
const token = (id: string) => ({ id, principal: `human:${id}`, secretSha256: sha256Hex(`${id}-secret`), scopes: ['read' as const], environments: ['*'], roles: [] });
const as = (id: string) => ({ headers: { authorization: `Bearer ${id}-secret` } });

function appWith(over: Partial<ApiDeps> = {}) {
  const metrics = createMetrics();
  const plans = {
    state: async (planId: string) => pendingPlan({ planId, status: (planId === FINISHED ? 'succeeded' : 'awaiting_approval') as PlanStatus }),
  } as unknown as PlanGateway;
  const deps: ApiDeps = {
    plans,
    authenticate: createAuthenticator([token('alice'), token('bob')]),
    environments: new Set(['prod']),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: async () => {
      throw new Error('unused');
    },
    operations: { ready: async () => ({ ok: true, checks: {} }), metrics, render: async () => ({ contentType: 'text/plain', body: '' }) },
    ...over,
  };
  return { app: createApp(deps), metrics };
}

/** The `proxmox_agent_api_event_streams` gauge for one token. */
async function openStreams(metrics: Metrics, tokenId: string): Promise<number> {
  const metric = metrics.registry.getSingleMetric('proxmox_agent_api_event_streams');
  expect(metric, 'the gauge exists').toBeDefined();
  return (await metric!.get()).values.find((v) => v.labels.token === tokenId)?.value ?? 0;
}

/** Opens a stream and reads its first chunk (the stream is then established and held). */
async function open(app: ReturnType<typeof appWith>['app'], tokenId: string, planId = WAITING) {
  const res = await app.request(`/v1/actions/${planId}/events`, as(tokenId));
  if (res.status !== 200) return { res };
  const reader = res.body!.getReader();
  expect(new TextDecoder().decode((await reader.read()).value)).toContain('retry: 2000');
  return { res, reader };
}

describe('event streams per token', () => {
  it('allows 8 at once by default, refuses the next with 429 + Retry-After, and frees a slot on cancel', async () => {
    const { app, metrics } = appWith();
    const held = [];
    for (let i = 0; i < 8; i++) {
      const s = await open(app, 'alice');
      expect(s.res.status).toBe(200);
      held.push(s.reader!);
    }
    const refused = await app.request(`/v1/actions/${WAITING}/events`, as('alice'));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({
      type: '/problems/rate-limited',
      status: 429,
      detail: expect.stringMatching(/token 'alice' has 8 event streams open \(the limit\)/),
    });
    expect(DEFAULT_EVENT_STREAMS_PER_TOKEN).toBe(8);
    expect(await openStreams(metrics, 'alice')).toBe(8);

    // Another token is not affected.
    const bob = await open(app, 'bob');
    expect(bob.res.status).toBe(200);
    expect(await openStreams(metrics, 'bob')).toBe(1);

    // Closing one stream frees its slot.
    await held.pop()!.cancel();
    expect(await openStreams(metrics, 'alice')).toBe(7);
    const again = await open(app, 'alice');
    expect(again.res.status).toBe(200);
    held.push(again.reader!);
    expect((await app.request(`/v1/actions/${WAITING}/events`, as('alice'))).status).toBe(429);

    for (const r of [...held, bob.reader!]) await r.cancel();
    expect(await openStreams(metrics, 'alice')).toBe(0);
    expect(await openStreams(metrics, 'bob')).toBe(0);
  });

  it('takes the cap from the config, and frees the slot of a stream that ended (terminal status) or was refused', async () => {
    const { app, metrics } = appWith({ maxEventStreamsPerToken: 2 });
    for (let i = 0; i < 5; i++) {
      const res = await app.request(`/v1/actions/${FINISHED}/events`, as('alice'));
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('"status":"succeeded"');
    }
    // A stream that could not start (unknown plan, no read scope...) holds no slot either.
    expect((await app.request('/v1/actions/not-a-plan/events', as('alice'))).status).toBe(400);
    expect(await openStreams(metrics, 'alice')).toBe(0);
    const a = await open(app, 'alice');
    const b = await open(app, 'alice');
    expect([a.res.status, b.res.status]).toEqual([200, 200]);
    expect((await app.request(`/v1/actions/${WAITING}/events`, as('alice'))).status).toBe(429);
    await a.reader!.cancel();
    await b.reader!.cancel();
    expect(await openStreams(metrics, 'alice')).toBe(0);
  });

  it('frees the slot when the client\'s connection drops (real HTTP server)', async () => {
    const { app, metrics } = appWith({ maxEventStreamsPerToken: 2 });
    const { server, url } = await listenApi(app.fetch, { host: '127.0.0.1', port: 0 });
    const clients: AbortController[] = [];
    const connect = async () => {
      const abort = new AbortController();
      clients.push(abort);
      const res = await fetch(`${url}/v1/actions/${WAITING}/events`, { ...as('alice'), signal: abort.signal });
      if (res.status === 200) await res.body!.getReader().read();
      return res;
    };
    try {
      expect((await connect()).status).toBe(200);
      expect((await connect()).status).toBe(200);
      const refused = await connect();
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await openStreams(metrics, 'alice')).toBe(2);

      clients[0]!.abort(); // the client goes away without a word: the socket closes
      for (let i = 0; i < 200 && (await openStreams(metrics, 'alice')) > 1; i++) await new Promise((r) => setTimeout(r, 10));
      expect(await openStreams(metrics, 'alice')).toBe(1);
      expect((await connect()).status).toBe(200);
    } finally {
      for (const c of clients) c.abort();
      server.close();
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    }
  });
});

describe('server.maxEventStreamsPerToken', () => {
  it('is optional (the default applies), a positive integer when set', () => {
    expect(serverConfigSchema.parse({}).maxEventStreamsPerToken).toBeUndefined();
    expect(serverConfigSchema.parse({ maxEventStreamsPerToken: 2 }).maxEventStreamsPerToken).toBe(2);
    for (const bad of [0, -1, 1.5, '8']) expect(serverConfigSchema.safeParse({ maxEventStreamsPerToken: bad }).success).toBe(false);
  });
});
