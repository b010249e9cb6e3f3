/**
 * Replay protection for signed requests: a nonce (or, for Slack, the signature itself) is accepted
 * once per replay window.
 *
 * In memory, per process. A signed request is only valid for REPLAY_WINDOW_SECONDS either side of
 * its timestamp, so an entry can be forgotten once that window has passed; nothing older can be
 * replayed. With several API replicas each keeps its own cache, so a replay routed to another replica
 * inside the window is not caught here. That is acceptable because it changes nothing: the workflow
 * counts one identity once and ignores a second decision on a closed gate, so a replayed approval is
 * refused there (and audited as `approval.refused`). A shared store would only move the refusal earlier;
 * see docs/approvals.md.
 */
import { REPLAY_WINDOW_SECONDS } from './signing.js';

export type NonceClaim = 'fresh' | 'replayed' | 'full';

export interface NonceCache {
  /** Records `key`; 'replayed' if it was seen within its lifetime, 'full' if the cache cannot take it. */
  claim(key: string): NonceClaim;
  readonly size: number;
}

export interface NonceCacheOptions {
  /** How long a key is remembered (default: the window on both sides of a timestamp). */
  ttlMs?: number;
  /** Upper bound on remembered keys; when reached after evicting expired ones, new keys are refused. */
  maxEntries?: number;
  now?: () => number;
}

export function createNonceCache(opts: NonceCacheOptions = {}): NonceCache {
  const ttlMs = opts.ttlMs ?? 2 * REPLAY_WINDOW_SECONDS * 1000;
  const maxEntries = opts.maxEntries ?? 100_000;
  const now = opts.now ?? Date.now;
  // Insertion order is expiry order (one fixed TTL), so eviction walks from the front.
  const expiries = new Map<string, number>();

  const evictExpired = (t: number) => {
    for (const [key, expiresAt] of expiries) {
      if (expiresAt > t) break;
      expiries.delete(key);
    }
  };

  return {
    claim(key) {
      const t = now();
      evictExpired(t);
      if (expiries.has(key)) return 'replayed';
      // Fail closed: forgetting a live key would let it be replayed.
      if (expiries.size >= maxEntries) return 'full';
      expiries.set(key, t + ttlMs);
      return 'fresh';
    },
    get size() {
      return expiries.size;
    },
  };
}
