/**
 * Replay protection for signed requests: a nonce (or, for Slack, the signature itself) is accepted
 * once per replay window.
 *
 * A signed request is only valid for REPLAY_WINDOW_SECONDS either side of its timestamp, so an entry
 * can be forgotten once that window has passed; nothing older can be replayed. Two stores keep the
 * keys: this one, in the process's memory, for the one API process of a file-store deployment; and
 * PostgreSQL (pg-nonce-cache.ts), shared by every API replica, when `audit.postgres` is configured
 * (src/api/access/shared-state.ts picks). See docs/security.md, "Replicas".
 */
import { REPLAY_WINDOW_SECONDS } from './signing.js';

/** 'unavailable': the shared store could not be asked; the request is refused (fail closed). */
export type NonceClaim = 'fresh' | 'replayed' | 'full' | 'unavailable';

export interface NonceCache {
  /**
   * Records `key`; 'replayed' if it was seen within its lifetime, 'full' if the cache cannot take it,
   * 'unavailable' if a shared store could not answer. The in-memory cache answers at once.
   */
  claim(key: string): NonceClaim | Promise<NonceClaim>;
}

export interface MemoryNonceCache extends NonceCache {
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

export const DEFAULT_NONCE_TTL_MS = 2 * REPLAY_WINDOW_SECONDS * 1000;
export const DEFAULT_NONCE_MAX_ENTRIES = 100_000;

/** In memory, per process: a replica behind a load balancer with others does not see their keys. */
export function createNonceCache(opts: NonceCacheOptions = {}): MemoryNonceCache {
  const ttlMs = opts.ttlMs ?? DEFAULT_NONCE_TTL_MS;
  const maxEntries = opts.maxEntries ?? DEFAULT_NONCE_MAX_ENTRIES;
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
