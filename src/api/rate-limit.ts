/**
 * A token bucket per API token, in memory: each token may send `burst` requests at once and
 * `requestsPerSecond` sustained. Keys are configured token ids, so the map is bounded by the config.
 * One process's view only: behind several API processes each enforces its own bucket.
 */
export interface RateLimiter {
  /** Take one request from `key`'s bucket; when empty, say how long until one is available. */
  take(key: string): { ok: true } | { ok: false; retryAfterSeconds: number };
}

export function createRateLimiter(opts: { requestsPerSecond: number; burst: number; now?: () => number }): RateLimiter {
  const now = opts.now ?? (() => performance.now());
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key) {
      const t = now();
      const bucket = buckets.get(key) ?? { tokens: opts.burst, at: t };
      bucket.tokens = Math.min(opts.burst, bucket.tokens + ((t - bucket.at) / 1000) * opts.requestsPerSecond);
      bucket.at = t;
      buckets.set(key, bucket);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / opts.requestsPerSecond)) };
    },
  };
}
