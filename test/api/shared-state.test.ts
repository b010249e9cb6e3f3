/**
 * The shared stores' behaviour when PostgreSQL does not answer, over a stand-in for the pool (the
 * same paths against a real database: shared-state.int.test.ts). The replay cache fails closed; the
 * rate limit falls back to the replica's own bucket for a while, then asks the database again.
 */
import { describe, expect, it } from 'vitest';
import { createPostgresRateLimiter } from '../../src/api/pg-rate-limit.js';
import type { Queryable } from '../../src/api/shared-state.js';
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
    const { db, state } = fakeDb(() => ({ allowed: false, remaining: 0.25 }));
    const limiter = createPostgresRateLimiter(db, opts);
    // (1 - 0.25) / 0.5 = 1.5 → 2 s
    expect(await limiter.take('agent')).toEqual({ ok: false, retryAfterSeconds: 2 });
    expect(state.calls[0]!.values).toEqual(['agent', 2, 0.5]);
  });

  it('falls back to its own bucket while the database does not answer, then asks it again', async () => {
    let now = 0;
    const { log, lines } = capturingLog();
    const { db, state } = fakeDb(() => ({ allowed: true, remaining: 1 }));
    const limiter = createPostgresRateLimiter(db, { ...opts, fallbackMs: 5_000, now: () => now, log });
    expect(await limiter.take('agent')).toEqual({ ok: true });
    state.up = false;
    // The local bucket: full (2), then empty; requests are answered, not refused for the outage.
    expect(await limiter.take('agent')).toEqual({ ok: true });
    expect(await limiter.take('agent')).toEqual({ ok: true });
    expect(await limiter.take('agent')).toEqual({ ok: false, retryAfterSeconds: 2 });
    // Within fallbackMs the database is not asked again (an outage does not cost every request a timeout).
    expect(state.calls).toHaveLength(2);
    expect(lines.map((l) => l.level)).toEqual(['warn']);

    state.up = true;
    now = 5_000;
    expect(await limiter.take('agent')).toEqual({ ok: true });
    expect(state.calls).toHaveLength(3);
    expect(lines.map((l) => l.level)).toEqual(['warn', 'info']);
  });
});
