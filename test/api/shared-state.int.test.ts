/**
 * Security state across API replicas (issue 13, item 6): two API apps, each with its own connection
 * pool to one PostgreSQL database, as two replicas behind a load balancer are. A signed approval
 * accepted by one is refused as replayed by the other; the per-token rate limit holds across both; the
 * replay cache fails closed and the rate limit falls back to each replica's own bucket (starting
 * empty) while the database cannot be reached. Both apps are opened the way the service opens them
 * (openSharedApiState over the config's `audit.postgres`), with a fake plan gateway.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createApp } from '../../src/api/http/app.js';
import { createAuthenticator } from '../../src/api/access/auth.js';
import type { PlanGateway } from '../../src/api/plans/plan-gateway.js';
import { ApiError } from '../../src/api/http/problems.js';
import { openPostgresApiState, openSharedApiState, type SharedApiState } from '../../src/api/access/shared-state.js';
import { CLEANUP_BATCH, NONCE_TABLE } from '../../src/channels/pg-nonce-cache.js';
import type { ChannelSettings } from '../../src/channels/settings.js';
import { slackSignature, webhookSignature } from '../../src/channels/signing.js';
import { encodeButtonValue } from '../../src/channels/slack.js';
import type { ApiTokenConfig } from '../../src/config/schema.js';
import { sha256Hex } from '../../src/domain/hashing.js';
import type { PlanView } from '../../src/domain/plan-view.js';
import { pendingPlan, slackClickBody } from '../channels/helpers/fixtures.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';

const BOT_SECRET = 'opsbot-secret';
const SLACK_SECRET = 'slack-signing-secret';
const settings: ChannelSettings = {
  slack: {
    signingSecret: SLACK_SECRET,
    users: new Map([['UALICE', { principal: 'human:alice', roles: [], environments: ['*'] }]]),
    responseUrlOrigins: ['https://hooks.slack.com'],
  },
  webhooks: [{ id: 'opsbot', secret: BOT_SECRET, approvers: new Map([['bob@example.com', { principal: 'human:bob', roles: [], environments: ['*'] }]]) }],
};
const token = (id: string): ApiTokenConfig => ({ id, principal: `agent:${id}`, secretSha256: sha256Hex(`${id}-secret`), scopes: ['read'], environments: ['*'], roles: [] });
const bearer = (id: string) => ({ authorization: `Bearer ${id}-secret` });

let server: TempPostgres;
const opened: SharedApiState[] = [];

/** One API replica: its own pool to the database at `url`, chosen as the service chooses it. */
async function replica(url: string, opts: { rateLimit?: { requestsPerSecond: number; burst: number } | false; rateLimitFallbackMs?: number; plan?: PlanView; calls?: string[] } = {}) {
  const state = await openSharedApiState(
    { audit: { file: 'unused.jsonl', postgres: { url: { env: 'PA_TEST_AUDIT_URL' } } }, server: { rateLimit: opts.rateLimit ?? { requestsPerSecond: 0.001, burst: 1000 } } },
    { env: { PA_TEST_AUDIT_URL: url }, ...(opts.rateLimitFallbackMs === undefined ? {} : { rateLimitFallbackMs: opts.rateLimitFallbackMs }) },
  );
  opened.push(state);
  const plan = opts.plan ?? pendingPlan();
  const calls = opts.calls ?? [];
  const plans = {
    state: async (planId: string) => {
      if (planId !== plan.planId) throw new ApiError('plan-not-found', `no plan ${planId}`);
      return structuredClone(plan);
    },
    approve: async (_planId: string, args: { principal: string; decision: string }) => {
      calls.push(`${args.principal}/${args.decision}`);
      return { view: structuredClone(plan), recorded: true };
    },
  } as unknown as PlanGateway;
  const app = createApp({
    plans,
    authenticate: createAuthenticator([token('agent'), token('other')]),
    environments: new Set(['lab', 'prod']),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: async () => {
      throw new Error('not used');
    },
    channels: { settings, nonces: state.nonces, respond: async () => undefined },
    ...(state.rateLimit ? { rateLimit: state.rateLimit } : {}),
  });
  return { app, state };
}

const WEBHOOK = '/v1/channels/webhook/approvals';
const SLACK = '/v1/channels/slack/interactions';
const nowS = (offset = 0) => String(Math.floor(Date.now() / 1000) + offset);

function signedWebhook(nonce: string, timestamp = nowS(-1)) {
  const plan = pendingPlan();
  const raw = JSON.stringify({ planId: plan.planId, requestHash: plan.requestHash, decision: 'approve', approver: 'bob@example.com', nonce });
  return { method: 'POST', headers: { 'content-type': 'application/json', 'x-pa-timestamp': timestamp, 'x-pa-signature': webhookSignature(BOT_SECRET, timestamp, raw) }, body: raw };
}

function signedSlackClick() {
  const plan = pendingPlan();
  const body = slackClickBody({ userId: 'UALICE', actionId: 'approve', value: encodeButtonValue(plan.planId, plan.requestHash), responseUrl: 'https://hooks.slack.com/actions/T1/1/x' });
  const timestamp = nowS(-1);
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': timestamp, 'x-slack-signature': slackSignature(SLACK_SECRET, timestamp, body) }, body };
}

/** Makes the database at `url` refuse connections and drops the ones it has; returns the undo. */
async function takeDown(url: string): Promise<() => Promise<void>> {
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
  } finally {
    await admin.end();
  }
  return async () => {
    const again = new pg.Client({ connectionString: server.url() });
    await again.connect();
    try {
      await again.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    } finally {
      await again.end();
    }
  };
}

describePostgres('API security state shared across replicas (PostgreSQL)', () => {
  beforeAll(async () => {
    server = await startTempPostgres();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a signed webhook approval accepted by one replica is refused as replayed by the other, even re-signed', async () => {
    const url = await server.createDatabase();
    const calls: string[] = [];
    const [a, b] = [await replica(url, { calls }), await replica(url, { calls })];

    const request = signedWebhook('n-replica-0123456789');
    expect((await a.app.request(WEBHOOK, request)).status).toBe(202);
    const replay = await b.app.request(WEBHOOK, request);
    expect(replay.status).toBe(409);
    expect(replay.headers.get('content-type')).toBe('application/problem+json');
    expect(await replay.json()).toMatchObject({ type: '/problems/request-replayed', status: 409 });
    // The same nonce under a new signature and timestamp, back on the first replica and on the second.
    for (const r of [a, b]) expect((await r.app.request(WEBHOOK, signedWebhook('n-replica-0123456789', nowS(-9)))).status).toBe(409);
    expect(calls).toEqual(['human:bob/approve']);

    // A new nonce is a new request, on either replica.
    expect((await b.app.request(WEBHOOK, signedWebhook('n-replica-fresh-000001'))).status).toBe(202);
    // Opened as the service opens it from the config; the password is not in its description.
    expect(a.state.description).toMatch(/^postgres postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:/);
  });

  it('a Slack click accepted by one replica is refused as replayed by the other', async () => {
    const url = await server.createDatabase();
    const calls: string[] = [];
    const [a, b] = [await replica(url, { calls }), await replica(url, { calls })];
    const click = signedSlackClick();
    expect((await a.app.request(SLACK, click)).status).toBe(200);
    const replay = await b.app.request(SLACK, click);
    expect(replay.status).toBe(409);
    expect(await replay.json()).toMatchObject({ type: '/problems/request-replayed' });
    expect(calls).toEqual(['human:alice/approve']);
  });

  it('one signed request sent to both replicas at once is accepted by exactly one', async () => {
    const url = await server.createDatabase();
    const calls: string[] = [];
    const [a, b] = [await replica(url, { calls }), await replica(url, { calls })];
    const request = signedWebhook('n-race-0123456789abcd');
    const statuses = await Promise.all(Array.from({ length: 10 }, (_, k) => Promise.resolve((k % 2 ? a : b).app.request(WEBHOOK, request)).then((r) => r.status)));
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(9);
    expect(calls).toHaveLength(1);
  });

  it('the per-token rate limit holds across both replicas: together they allow the burst, not twice it', async () => {
    const url = await server.createDatabase();
    // 0.001/s: no token comes back while the test runs.
    const limit = { requestsPerSecond: 0.001, burst: 5 };
    const [a, b] = [await replica(url, { rateLimit: limit }), await replica(url, { rateLimit: limit })];
    const get = async (r: typeof a, id = 'agent') => r.app.request('/v1/catalog', { headers: bearer(id) });

    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await get(i % 2 ? b : a)).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(limit.burst);
    expect(statuses.filter((s) => s === 429)).toHaveLength(12 - limit.burst);

    const limited = await get(a);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited.json()).toMatchObject({ type: '/problems/rate-limited', status: 429 });
    expect((await get(b)).status).toBe(429);

    // Concurrent requests from both replicas for another token: still no more than the burst.
    const parallel = await Promise.all(Array.from({ length: 20 }, (_, k) => get(k % 2 ? a : b, 'other').then((r) => r.status)));
    expect(parallel.filter((s) => s === 200)).toHaveLength(limit.burst);
    expect(parallel.filter((s) => s === 429)).toHaveLength(20 - limit.burst);
  });

  it('database unreachable: signed requests are refused (503), the rate limit falls back to each replica’s own bucket; both recover', async () => {
    const url = await server.createDatabase();
    const calls: string[] = [];
    const limit = { requestsPerSecond: 0.001, burst: 3 };
    // fallbackMs 0: every request asks the database first, so recovery is seen at once.
    const [a, b] = [await replica(url, { calls, rateLimit: limit, rateLimitFallbackMs: 0 }), await replica(url, { calls, rateLimit: limit, rateLimitFallbackMs: 0 })];
    const get = async (r: typeof a) => r.app.request('/v1/catalog', { headers: bearer('agent') });
    expect((await get(a)).status).toBe(200); // one of the shared bucket's 3

    const bringBack = await takeDown(url);
    try {
      const refused = await a.app.request(WEBHOOK, signedWebhook('n-outage-0123456789ab'));
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(await refused.json()).toMatchObject({ type: '/problems/replay-store-unavailable', status: 503 });
      expect((await b.app.request(SLACK, signedSlackClick())).status).toBe(503);
      expect(calls).toEqual([]);

      // Each replica limits on its own, with a bucket that starts empty (no burst during an outage) and
      // refills at the rate (0.001/s: nothing while the test runs); the database is not what refuses.
      for (const r of [a, b]) {
        const statuses: number[] = [];
        for (let i = 0; i < 4; i++) statuses.push((await get(r)).status);
        expect(statuses).toEqual([429, 429, 429, 429]);
        const limited = await get(r);
        expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(100);
      }
    } finally {
      await bringBack();
    }

    // Back: the request refused during the outage was never claimed, and the shared bucket has 2 left.
    expect((await b.app.request(WEBHOOK, signedWebhook('n-outage-0123456789ab'))).status).toBe(202);
    expect((await a.app.request(WEBHOOK, signedWebhook('n-outage-0123456789ab', nowS(-3)))).status).toBe(409);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(i % 2 ? a : b)).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('without audit.postgres each process keeps its own state in memory (the single-process deployment)', async () => {
    const state = await openSharedApiState({ audit: { file: 'unused.jsonl' }, server: { rateLimit: false } });
    opened.push(state);
    expect(state.description).toBe('memory');
    expect(state.rateLimit).toBeUndefined();
    expect(await state.nonces.claim('k')).toBe('fresh');
    expect(await state.nonces.claim('k')).toBe('replayed');
  });

  describe('the replay table', () => {
    it('forgets a key once it expires, fails closed when full, and deletes expired keys in bounded batches', async () => {
      const url = await server.createDatabase();
      const [a, b] = [await openPostgresApiState(url, { nonces: { maxEntries: 2 } }), await openPostgresApiState(url, { nonces: { maxEntries: 2 } })];
      opened.push(a, b);
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      try {
        expect(await a.nonces.claim('k1')).toBe('fresh');
        expect(await b.nonces.claim('k2')).toBe('fresh');
        expect(await b.nonces.claim('k3')).toBe('full');
        expect(await a.nonces.claim('k1')).toBe('replayed');

        // k1's lifetime ends (on the database's clock): it may be used again, and room is made for k3.
        await db.query(`UPDATE ${NONCE_TABLE} SET expires_at = clock_timestamp() - interval '1 second' WHERE key = 'k1'`);
        expect(await b.nonces.claim('k1')).toBe('fresh');
        await db.query(`UPDATE ${NONCE_TABLE} SET expires_at = clock_timestamp() - interval '1 second' WHERE key = 'k2'`);
        expect(await a.nonces.claim('k3')).toBe('fresh');
        expect(await a.nonces.claim('k2')).toBe('full');

        // A backlog of expired keys is worked off CLEANUP_BATCH per claim.
        await db.query(`INSERT INTO ${NONCE_TABLE} (key, expires_at) SELECT 'old-' || g, clock_timestamp() - interval '1 minute' FROM generate_series(1, $1::int) g`, [CLEANUP_BATCH * 2 + 10]);
        const count = async () => Number((await db.query(`SELECT count(*) AS n FROM ${NONCE_TABLE}`)).rows[0].n);
        expect(await count()).toBe(CLEANUP_BATCH * 2 + 12);
        expect(await a.nonces.claim('k1')).toBe('replayed');
        expect(await count()).toBe(CLEANUP_BATCH + 12);
        await b.nonces.claim('k1');
        await b.nonces.claim('k1');
        expect(await count()).toBe(2);
      } finally {
        await db.end();
      }
    });
  });
});
