/**
 * The per-token rate limit shared by every API replica: one token bucket per token id, a row in the
 * PostgreSQL database of the audit store (`audit.postgres`). N replicas together allow what one does.
 *
 * One statement per token per replica at a time. Requests of one token that arrive while that token's
 * statement is in flight wait and are decided together by the next one: a call of a function created
 * with the table that creates the bucket full if it is missing, locks its row (FOR UPDATE), refills it
 * for the time since its last take on the database's clock (so replicas whose clocks differ agree), and
 * takes up to n tokens, answering how many it granted. The first `granted` waiters are allowed, the
 * others refused. So a flood of one token costs each replica one connection, never the whole pool: the
 * pool cannot be exhausted by one token, and its timeouts cannot be provoked by one.
 *
 * When the database cannot answer, the cause decides:
 * - busy (no connection free in time, a connection or statement timeout, too many connections): the
 *   requests that statement decided are refused (429, retry in 1 s), not allowed; the database is
 *   asked again for the next ones. Only if it stays like that for `unreachableAfterMs` (no answer at all,
 *   e.g. a network that drops packets) is it treated as unreachable;
 * - unreachable (refused, reset, unknown host, shut down, not accepting connections, or any other
 *   error): this replica decides with its own in-memory bucket for `fallbackMs`, then asks the database
 *   again. That bucket starts EMPTY each time the replica switches to it and refills at the configured
 *   rate: during the fallback each replica allows the sustained rate but no burst, so N replicas allow at
 *   most N x rate x (time in fallback) on top of the shared bucket, never N bursts. The limit protects
 *   Temporal and Proxmox from one token's flood and authenticates no one, so an outage of the audit
 *   database does not take every API call down with it. Each switch is logged.
 */
import type { Logger } from '../../logging.js';
import { createRateLimiter, retryAfterSeconds, type MemoryRateLimiter, type RateLimiter, type RateVerdict } from './rate-limit.js';
import type { Queryable } from './shared-state.js';

export const RATE_TABLE = 'proxmox_agent_rate_buckets';
export const TAKE_FUNCTION = 'proxmox_agent_rate_take_n';

export const RATE_SCHEMA = `
CREATE TABLE IF NOT EXISTS ${RATE_TABLE} (
  key    text PRIMARY KEY,
  tokens float8 NOT NULL,
  at     timestamptz NOT NULL
);
CREATE OR REPLACE FUNCTION ${TAKE_FUNCTION}(p_key text, p_burst float8, p_rps float8, p_n integer, OUT granted integer, OUT remaining float8) LANGUAGE plpgsql AS $$
DECLARE
  b ${RATE_TABLE}%ROWTYPE;
  t timestamptz;
BEGIN
  INSERT INTO ${RATE_TABLE} (key, tokens, at) VALUES (p_key, p_burst, clock_timestamp()) ON CONFLICT (key) DO NOTHING;
  SELECT * INTO b FROM ${RATE_TABLE} WHERE key = p_key FOR UPDATE;
  t := greatest(b.at, clock_timestamp());
  remaining := least(p_burst, b.tokens + extract(epoch FROM t - b.at) * p_rps);
  granted := greatest(0, least(p_n, floor(remaining)::integer));
  remaining := remaining - granted;
  UPDATE ${RATE_TABLE} SET tokens = remaining, at = t WHERE key = p_key;
END $$;
`;

export interface PostgresRateLimiterOptions {
  requestsPerSecond: number;
  burst: number;
  /** How long to use the in-memory bucket after the database was found unreachable (default 5 s). */
  fallbackMs?: number;
  /** How long the database may stay busy (timeouts only, no answer) before it counts as unreachable (default 5 s). */
  unreachableAfterMs?: number;
  log?: Logger;
  now?: () => number;
}

/** Retry-After for requests refused because the database was busy. */
export const BUSY_RETRY_AFTER_SECONDS = 1;

// pg-pool: no client free in time / a new connection not made in time; pg: query_timeout.
const BUSY_MESSAGES = [/timeout exceeded when trying to connect/i, /connection timeout/i, /query read timeout/i];
// statement_timeout (query_canceled) and insufficient resources (too many connections, out of memory...).
const isBusyCode = (code: string) => code === '57014' || code.startsWith('53');

/**
 * Whether a failed statement says the database is busy (it may be up but did not answer in time) rather
 * than unreachable. Exported for tests.
 */
export function isBusyError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  if (typeof e?.code === 'string' && isBusyCode(e.code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return BUSY_MESSAGES.some((re) => re.test(message));
}

type Decide = (index: number) => RateVerdict;

/** Over a database whose schema includes RATE_SCHEMA (src/api/access/shared-state.ts creates it). */
export function createPostgresRateLimiter(db: Queryable, opts: PostgresRateLimiterOptions): RateLimiter {
  const now = opts.now ?? (() => performance.now());
  const fallbackMs = opts.fallbackMs ?? 5_000;
  const unreachableAfterMs = opts.unreachableAfterMs ?? 5_000;
  const emptyLocal = () => createRateLimiter({ requestsPerSecond: opts.requestsPerSecond, burst: opts.burst, initialTokens: 0, now });
  let local: MemoryRateLimiter = emptyLocal();
  /** Until when the local bucket decides; undefined while the database answers. */
  let localUntil: number | undefined;
  /** Since when every statement failed as busy; undefined after an answer. */
  let busySince: number | undefined;
  /** Per token: the requests waiting for the next statement, and whether one is in flight. */
  const queues = new Map<string, { waiting: ((v: RateVerdict) => void)[] }>();
  const errInfo = (err: unknown) => ({ err: { name: (err as Error)?.name, message: (err as Error)?.message, code: (err as { code?: unknown })?.code } });
  const inFallback = () => localUntil !== undefined && now() < localUntil;

  const fallBack = (err: unknown): void => {
    if (localUntil === undefined) {
      local = emptyLocal();
      opts.log?.warn(errInfo(err), 'the shared rate limit in PostgreSQL cannot be reached; this replica limits each token on its own (starting with an empty bucket) until it can');
    }
    localUntil = now() + fallbackMs;
  };

  /** One statement deciding `n` requests of `key`; never throws. */
  async function ask(key: string, n: number): Promise<Decide> {
    try {
      const row = (await db.query<{ granted: number; remaining: number }>(`SELECT granted, remaining FROM ${TAKE_FUNCTION}($1, $2, $3, $4)`, [key, opts.burst, opts.requestsPerSecond, n])).rows[0];
      if (!row) throw new Error(`no answer from ${TAKE_FUNCTION}`);
      if (localUntil !== undefined || busySince !== undefined) {
        opts.log?.info('the shared rate limit in PostgreSQL answers again; limits are shared across API replicas again');
        localUntil = undefined;
        busySince = undefined;
      }
      const granted = Number(row.granted);
      const refused: RateVerdict = { ok: false, retryAfterSeconds: retryAfterSeconds(Number(row.remaining), opts.requestsPerSecond) };
      return (i) => (i < granted ? { ok: true } : refused);
    } catch (err) {
      if (isBusyError(err)) {
        const t = now();
        if (busySince === undefined) {
          busySince = t;
          opts.log?.warn(errInfo(err), 'the shared rate limit in PostgreSQL is busy; refusing (429) the requests it could not decide rather than allowing them');
        }
        if (t - busySince < unreachableAfterMs) {
          const refused: RateVerdict = { ok: false, retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS };
          return () => refused;
        }
      }
      fallBack(err);
      return () => local.take(key);
    }
  }

  async function drain(key: string, q: { waiting: ((v: RateVerdict) => void)[] }): Promise<void> {
    while (q.waiting.length > 0) {
      const batch = q.waiting.splice(0);
      if (inFallback()) {
        for (const resolve of batch) resolve(local.take(key));
        continue;
      }
      const decide = await ask(key, batch.length);
      batch.forEach((resolve, i) => resolve(decide(i)));
    }
    queues.delete(key);
  }

  return {
    take(key): RateVerdict | Promise<RateVerdict> {
      if (inFallback()) return local.take(key);
      return new Promise<RateVerdict>((resolve) => {
        const q = queues.get(key);
        if (q) {
          q.waiting.push(resolve);
          return;
        }
        const fresh = { waiting: [resolve] };
        queues.set(key, fresh);
        void drain(key, fresh);
      });
    },
  };
}
