/**
 * The per-token rate limit shared by every API replica: one token bucket per token id, a row in the
 * PostgreSQL database of the audit store (`audit.postgres`). N replicas together allow what one does.
 *
 * One take is one call of a function created with the table: it creates the bucket full if it is
 * missing, locks its row (FOR UPDATE), refills it for the time since its last take on the database's
 * clock (so replicas whose clocks differ agree), and takes one token if there is one. Concurrent takes
 * for one token queue on the row; takes for different tokens do not meet.
 *
 * When the database cannot answer, requests are NOT refused: this replica falls back to its own
 * in-memory bucket (rate-limit.ts) for `fallbackMs`, then asks the database again. The limit exists to
 * protect Temporal and Proxmox from one token's flood, not to authenticate anyone, so an outage of the
 * audit database should not take every API call down with it; during it each replica enforces the limit
 * on its own (N replicas allow N times the rate), which is still a bound. Each switch is logged.
 */
import type { Logger } from '../logging.js';
import { createRateLimiter, retryAfterSeconds, type RateLimiter, type RateVerdict } from './rate-limit.js';
import type { Queryable } from './shared-state.js';

export const RATE_TABLE = 'proxmox_agent_rate_buckets';
const TAKE_FUNCTION = 'proxmox_agent_rate_take';

export const RATE_SCHEMA = `
CREATE TABLE IF NOT EXISTS ${RATE_TABLE} (
  key    text PRIMARY KEY,
  tokens float8 NOT NULL,
  at     timestamptz NOT NULL
);
CREATE OR REPLACE FUNCTION ${TAKE_FUNCTION}(p_key text, p_burst float8, p_rps float8, OUT allowed boolean, OUT remaining float8) LANGUAGE plpgsql AS $$
DECLARE
  b ${RATE_TABLE}%ROWTYPE;
  t timestamptz;
BEGIN
  INSERT INTO ${RATE_TABLE} (key, tokens, at) VALUES (p_key, p_burst, clock_timestamp()) ON CONFLICT (key) DO NOTHING;
  SELECT * INTO b FROM ${RATE_TABLE} WHERE key = p_key FOR UPDATE;
  t := greatest(b.at, clock_timestamp());
  remaining := least(p_burst, b.tokens + extract(epoch FROM t - b.at) * p_rps);
  allowed := remaining >= 1;
  IF allowed THEN
    remaining := remaining - 1;
  END IF;
  UPDATE ${RATE_TABLE} SET tokens = remaining, at = t WHERE key = p_key;
END $$;
`;

export interface PostgresRateLimiterOptions {
  requestsPerSecond: number;
  burst: number;
  /** How long to use the in-memory bucket after the database failed to answer (default 5 s). */
  fallbackMs?: number;
  log?: Logger;
  now?: () => number;
}

/** Over a database whose schema includes RATE_SCHEMA (src/api/shared-state.ts creates it). */
export function createPostgresRateLimiter(db: Queryable, opts: PostgresRateLimiterOptions): RateLimiter {
  const now = opts.now ?? (() => performance.now());
  const fallbackMs = opts.fallbackMs ?? 5_000;
  const local = createRateLimiter({ requestsPerSecond: opts.requestsPerSecond, burst: opts.burst, now });
  /** Until when the local bucket decides; undefined while the database answers. */
  let localUntil: number | undefined;

  return {
    async take(key): Promise<RateVerdict> {
      if (localUntil !== undefined && now() < localUntil) return local.take(key);
      try {
        const row = (await db.query<{ allowed: boolean; remaining: number }>(`SELECT allowed, remaining FROM ${TAKE_FUNCTION}($1, $2, $3)`, [key, opts.burst, opts.requestsPerSecond])).rows[0];
        if (!row) throw new Error(`no answer from ${TAKE_FUNCTION}`);
        if (localUntil !== undefined) {
          localUntil = undefined;
          opts.log?.info('the shared rate limit in PostgreSQL answers again; limits are shared across API replicas again');
        }
        return row.allowed ? { ok: true } : { ok: false, retryAfterSeconds: retryAfterSeconds(Number(row.remaining), opts.requestsPerSecond) };
      } catch (err) {
        if (localUntil === undefined)
          opts.log?.warn(
            { err: { name: (err as Error).name, message: (err as Error).message } },
            'the shared rate limit in PostgreSQL cannot be reached; this replica limits each token on its own until it can',
          );
        localUntil = now() + fallbackMs;
        return local.take(key);
      }
    },
  };
}
