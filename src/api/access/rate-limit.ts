/**
 * A token bucket per API token: each token may send `burst` requests at once and `requestsPerSecond`
 * sustained. This one is in memory, for the one API process of a file-store deployment; with
 * `audit.postgres` the bucket lives in the database, shared by every API replica (pg-rate-limit.ts,
 * chosen by shared-state.ts), and falls back to one of these, starting empty, while the database cannot
 * be reached.
 * Keys are configured token ids, so the map is bounded by the config.
 */
export type RateVerdict = { ok: true } | { ok: false; retryAfterSeconds: number };

export interface RateLimiter {
  /** Take one request from `key`'s bucket; when empty, say how long until one is available. */
  take(key: string): RateVerdict | Promise<RateVerdict>;
}

export interface MemoryRateLimiter extends RateLimiter {
  take(key: string): RateVerdict;
}

/** Seconds until a bucket holding `tokens` (< 1) has one again; at least 1. */
export const retryAfterSeconds = (tokens: number, requestsPerSecond: number): number =>
  Math.max(1, Math.ceil((1 - tokens) / requestsPerSecond));

/** `initialTokens`: what a key's bucket holds when first used (default: full, `burst`). */
export function createRateLimiter(opts: { requestsPerSecond: number; burst: number; initialTokens?: number; now?: () => number }): MemoryRateLimiter {
  const now = opts.now ?? (() => performance.now());
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key) {
      const t = now();
      const bucket = buckets.get(key) ?? { tokens: opts.initialTokens ?? opts.burst, at: t };
      bucket.tokens = Math.min(opts.burst, bucket.tokens + ((t - bucket.at) / 1000) * opts.requestsPerSecond);
      bucket.at = t;
      buckets.set(key, bucket);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterSeconds: retryAfterSeconds(bucket.tokens, opts.requestsPerSecond) };
    },
  };
}

/**
 * Concurrent long-lived requests (event streams) per API token, in memory: at most `maxPerToken` at
 * once. `acquire` takes a slot or says how many are open; the slot's `release` is idempotent and must
 * run when the stream ends for any reason (finished, client gone, server draining). Unlike the rate
 * limit, always one process's view, even with several replicas (each counts the streams it serves):
 * keys are configured token ids, so the map is bounded by the config.
 */
export interface StreamLimiter {
  acquire(key: string): { ok: true; release: () => void } | { ok: false; open: number };
  /** Streams `key` holds now. */
  open(key: string): number;
}

export function createStreamLimiter(opts: { maxPerToken: number; onChange?: (key: string, open: number) => void }): StreamLimiter {
  const open = new Map<string, number>();
  const set = (key: string, n: number) => {
    if (n === 0) open.delete(key);
    else open.set(key, n);
    opts.onChange?.(key, n);
  };
  return {
    acquire(key) {
      const n = open.get(key) ?? 0;
      if (n >= opts.maxPerToken) return { ok: false, open: n };
      set(key, n + 1);
      let released = false;
      return {
        ok: true,
        release() {
          if (released) return;
          released = true;
          set(key, (open.get(key) ?? 1) - 1);
        },
      };
    },
    open: (key) => open.get(key) ?? 0,
  };
}
