/**
 * The shared stores' behaviour when PostgreSQL does not answer, over a stand-in for the pool (the
 * same paths against a real database: shared-state.int.test.ts). The replay cache fails closed; the
 * rate limit decides each token's concurrent requests with one statement, refuses what a busy pool
 * could not decide, and falls back to the replica's own bucket (starting empty) only while the database
 * is unreachable, then asks it again.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BUSY_RETRY_AFTER_SECONDS, createPostgresRateLimiter, isBusyError } from '../../src/api/access/pg-rate-limit.js';
import type { RateLimiter, RateVerdict } from '../../src/api/access/rate-limit.js';
import type { Queryable } from '../../src/api/access/shared-state.js';
import { DEFAULT_NONCE_MAX_ENTRIES, DEFAULT_NONCE_TTL_MS } from '../../src/channels/nonce-cache.js';
import { createPostgresNonceCache } from '../../src/channels/pg-nonce-cache.js';
import { REPLAY_WINDOW_SECONDS } from '../../src/channels/signing.js';
import type { Logger } from '../../src/logging.js';

/** A pool whose answers the test decides: `up` false throws as an unreachable database does. */
function fakeDb(answer: (text: string, values: unknown[]) => Record<string, unknown>) {
  const state = { up: true, calls: [] as { text: string; values: unknown[] }[] };
  const db: Queryable = {
    query: async <R,>(text: string, values: unknown[] = []) => {
      state.calls.push({ text, values });
      if (!state.up) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      return { rows: [answer(text, values) as R] };
    },
  } as Queryable;
  return { db, state };
}

function capturingLog() {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (a: unknown, b?: unknown) => lines.push({ level, msg: String(typeof a === 'string' ? a : b) });
  return { log: { warn: at('warn'), info: at('info') } as unknown as Logger, lines };
}

describe('replay cache in PostgreSQL', () => {
  it('passes the default lifetime (twice the signature window) and bound, and returns the database’s answer', async () => {
    const { db, state } = fakeDb(() => ({ claim: 'replayed' }));
    const cache = createPostgresNonceCache(db);
    expect(await cache.claim('webhook:opsbot:n1')).toBe('replayed');
    expect(state.calls[0]!.values).toEqual(['webhook:opsbot:n1', DEFAULT_NONCE_TTL_MS, DEFAULT_NONCE_MAX_ENTRIES]);
    expect(DEFAULT_NONCE_TTL_MS).toBe(2 * REPLAY_WINDOW_SECONDS * 1000);
  });

  it('fails closed: an unreachable database or an answer it does not know is "unavailable", and says so in the log', async () => {
    const { log, lines } = capturingLog();
    const { db, state } = fakeDb(() => ({ claim: 'maybe' }));
    const cache = createPostgresNonceCache(db, { log });
    expect(await cache.claim('k')).toBe('unavailable');
    state.up = false;
    expect(await cache.claim('k')).toBe('unavailable');
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(2);
    expect(lines[1]!.msg).toMatch(/refusing signed requests/);
  });
});

describe('rate limit in PostgreSQL', () => {
  const opts = { requestsPerSecond: 0.5, burst: 2 };

  it('decides with the database while it answers, with Retry-After from the tokens left', async () => {
    const { db, state } = fakeDb(() => ({ granted: 0, remaining: 0.25 }));
    const limiter = createPostgresRateLimiter(db, opts);
    // (1 - 0.25) / 0.5 = 1.5 → 2 s
    expect(await limiter.take('agent')).toEqual({ ok: false, retryAfterSeconds: 2 });
    expect(state.calls[0]!.values).toEqual(['agent', 2, 0.5, 1]);
  });

  it('an unreachable database: its own bucket, starting empty, for fallbackMs; then it asks the database again', async () => {
    let now = 0;
    const { log, lines } = capturingLog();
    const { db, state } = fakeDb(() => ({ granted: 1, remaining: 1 }));
    const limiter = createPostgresRateLimiter(db, { ...opts, fallbackMs: 5_000, now: () => now, log });
    expect(await limiter.take('agent')).toEqual({ ok: true });
    state.up = false;
    // The local bucket starts empty: no burst during an outage, only the rate (0.5/s: one every 2 s).
    expect(await limiter.take('agent')).toEqual({ ok: false, retryAfterSeconds: 2 });
    now = 1_000;
    expect(await limiter.take('agent')).toEqual({ ok: false, retryAfterSeconds: 1 });
    now = 2_000;
    expect(await limiter.take('agent')).toEqual({ ok: true });
    expect(await limiter.take('agent')).toMatchObject({ ok: false });
    // Within fallbackMs the database is not asked again (an outage does not cost every request a timeout).
    expect(state.calls).toHaveLength(2);
    expect(lines.map((l) => l.level)).toEqual(['warn']);
    expect(lines[0]!.msg).toMatch(/cannot be reached/);

    // Still down after fallbackMs: asked once, and the same local bucket goes on (no new burst).
    now = 5_500;
    expect(await limiter.take('agent')).toEqual({ ok: true });
    expect(await limiter.take('agent')).toMatchObject({ ok: false });
    expect(state.calls).toHaveLength(3);

    state.up = true;
    now = 10_500;
    expect(await limiter.take('agent')).toEqual({ ok: true });
    expect(state.calls).toHaveLength(4);
    expect(lines.map((l) => l.level)).toEqual(['warn', 'info']);
  });

  it('tells a busy database (timeouts, too many connections) from an unreachable one', () => {
    expect(isBusyError(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isBusyError(new Error('Connection terminated due to connection timeout'))).toBe(true);
    expect(isBusyError(new Error('Query read timeout'))).toBe(true);
    expect(isBusyError(Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }))).toBe(true);
    expect(isBusyError(Object.assign(new Error('sorry, too many clients already'), { code: '53300' }))).toBe(true);
    expect(isBusyError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))).toBe(false);
    expect(isBusyError(new Error('Connection terminated unexpectedly'))).toBe(false);
    expect(isBusyError(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(false);
    expect(isBusyError(Object.assign(new Error('database "x" is not currently accepting connections'), { code: '55000' }))).toBe(false);
  });
});

/**
 * A stand-in for pg.Pool over a simulated bucket table (the function's arithmetic on the fake clock):
 * `max` connections; a query waits for a free one at most `waitMs`, then fails as pg-pool does; each
 * statement takes `latencyMs`. `hold` occupies every connection (other users of the pool).
 */
function poolOverBuckets(buckets: Map<string, { tokens: number; at: number }>, o: { max: number; waitMs: number; latencyMs: number }) {
  const stats = { statements: 0, inFlight: 0, maxInFlight: 0, poolTimeouts: 0, down: undefined as Error | undefined };
  let free = o.max;
  const waiters: (() => void)[] = [];
  const acquire = () =>
    new Promise<void>((resolve, reject) => {
      if (free > 0) {
        free--;
        return resolve();
      }
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(wake), 1);
        stats.poolTimeouts++;
        reject(new Error('timeout exceeded when trying to connect'));
      }, o.waitMs);
      waiters.push(wake);
    });
  const release = () => {
    const next = waiters.shift();
    if (next) next();
    else free++;
  };
  const db = {
    query: async (_text: string, values: unknown[] = []) => {
      if (stats.down) throw stats.down;
      await acquire();
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        await new Promise((r) => setTimeout(r, o.latencyMs));
        stats.statements++;
        const [key, burst, rps, n] = values as [string, number, number, number];
        const t = Date.now();
        const b = buckets.get(key) ?? { tokens: burst, at: t };
        let remaining = Math.min(burst, b.tokens + ((t - b.at) / 1000) * rps);
        const granted = Math.max(0, Math.min(n, Math.floor(remaining)));
        remaining -= granted;
        buckets.set(key, { tokens: remaining, at: t });
        return { rows: [{ granted, remaining }] };
      } finally {
        stats.inFlight--;
        release();
      }
    },
  } as unknown as Queryable;
  const hold = async (ms: number) => {
    const held = await Promise.all(Array.from({ length: o.max }, acquire));
    await new Promise((r) => setTimeout(r, ms));
    held.forEach(release);
  };
  return { db, stats, hold };
}

describe('rate limit in PostgreSQL under a flood of one token (two replicas, a stand-in pool each)', () => {
  const limit = { requestsPerSecond: 10, burst: 40 };
  const pool = { max: 8, waitMs: 2_000, latencyMs: 30 };
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** `waves` waves of `perWave` requests per replica, `everyMs` apart; settles and counts. */
  async function flood(replicas: RateLimiter[], waves: number, perWave: number, everyMs: number) {
    const answers: Promise<RateVerdict>[] = [];
    const t0 = Date.now();
    for (let w = 0; w < waves; w++) {
      for (const r of replicas) for (let i = 0; i < perWave; i++) answers.push(Promise.resolve(r.take('agent')));
      await vi.advanceTimersByTimeAsync(everyMs);
    }
    let settled = false;
    const all = Promise.all(answers).then((v) => ((settled = true), v));
    while (!settled) await vi.advanceTimersByTimeAsync(10);
    const verdicts = await all;
    const elapsedS = (Date.now() - t0) / 1000;
    return {
      allowed: verdicts.filter((v) => v.ok).length,
      refused: verdicts.filter((v) => !v.ok),
      bound: limit.burst + Math.ceil(limit.requestsPerSecond * elapsedS),
      elapsedS,
    };
  }

  it('one statement per token per replica at a time: a flood cannot exhaust the pool, and gets no more than one bucket', async () => {
    const buckets = new Map<string, { tokens: number; at: number }>();
    const pools = [poolOverBuckets(buckets, pool), poolOverBuckets(buckets, pool)];
    const { log, lines } = capturingLog();
    const replicas = pools.map((p) => createPostgresRateLimiter(p.db, { ...limit, now: () => Date.now(), log }));
    // 2 000 per replica at once, then 200 per replica every 100 ms for 5 s.
    const first = await flood(replicas, 1, 2_000, 0);
    expect(first.allowed).toBeLessThanOrEqual(first.bound);
    const rest = await flood(replicas, 50, 200, 100);
    expect(first.allowed + rest.allowed).toBeLessThanOrEqual(limit.burst + Math.ceil(limit.requestsPerSecond * (first.elapsedS + rest.elapsedS)));
    expect(rest.allowed).toBeGreaterThanOrEqual(Math.floor(limit.requestsPerSecond * rest.elapsedS) - 2);
    for (const p of pools) {
      expect(p.stats.maxInFlight).toBe(1);
      expect(p.stats.poolTimeouts).toBe(0);
      // 2 200 requests per replica, a few dozen statements.
      expect(p.stats.statements).toBeLessThan(200);
    }
    expect(lines).toEqual([]);
  });

  it('a pool busy with others (its wait times out): the requests are refused, not allowed from a bucket of its own', async () => {
    const buckets = new Map<string, { tokens: number; at: number }>();
    const pools = [poolOverBuckets(buckets, pool), poolOverBuckets(buckets, pool)];
    const { log, lines } = capturingLog();
    const replicas = pools.map((p) => createPostgresRateLimiter(p.db, { ...limit, now: () => Date.now(), log }));
    // Both pools held for 4.5 s (the statements wait 2 s and fail): twice in a row, then free.
    const held = Promise.all(pools.map((p) => p.hold(4_500)));
    const r = await flood(replicas, 60, 100, 100);
    await held;
    expect(pools.every((p) => p.stats.poolTimeouts > 0)).toBe(true);
    expect(r.allowed).toBeLessThanOrEqual(r.bound);
    expect(r.refused.some((v) => !v.ok && v.retryAfterSeconds === BUSY_RETRY_AFTER_SECONDS)).toBe(true);
    expect(lines.filter((l) => /cannot be reached/.test(l.msg))).toEqual([]);
    expect(lines.filter((l) => /busy/.test(l.msg)).length).toBeGreaterThan(0);
    expect(lines.filter((l) => /answers again/.test(l.msg)).length).toBeGreaterThan(0);
  });

  it('busy for longer than unreachableAfterMs counts as unreachable: the fallback starts empty, so it overshoots by at most the rate for its time', async () => {
    const buckets = new Map<string, { tokens: number; at: number }>();
    const pools = [poolOverBuckets(buckets, pool), poolOverBuckets(buckets, pool)];
    const { log, lines } = capturingLog();
    const replicas = pools.map((p) => createPostgresRateLimiter(p.db, { ...limit, now: () => Date.now(), log, fallbackMs: 5_000, unreachableAfterMs: 5_000 }));
    const held = Promise.all(pools.map((p) => p.hold(20_000)));
    const r = await flood(replicas, 200, 50, 100);
    await held;
    expect(lines.filter((l) => /cannot be reached/.test(l.msg))).toHaveLength(2);
    // Each replica's own bucket only refills: at most rate × time per replica on top of the shared one.
    expect(r.allowed).toBeLessThanOrEqual(r.bound + replicas.length * Math.ceil(limit.requestsPerSecond * r.elapsedS));
    // ... and never a burst: what the pools gave before they were held is the shared burst only.
    expect(r.allowed).toBeLessThan(limit.burst + replicas.length * limit.requestsPerSecond * 20 + 5);
  });
});
