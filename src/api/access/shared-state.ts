/**
 * The API's security state that must hold across replicas: the replay cache of signed chat requests
 * and the per-token rate limit. Where it lives follows the audit store (docs/security.md, "Several API
 * replicas"):
 *
 * - `audit.postgres`: tables in that database (pg-nonce-cache.ts, pg-rate-limit.ts), created on open.
 *   This is the only configuration in which several API replicas run (the one with several writers),
 *   the database is already there, highly available or not, backed up and secured by the operator, and
 *   both checks are one short statement each; a second store (Redis) would be one more thing to run and
 *   secure for no gain, and Temporal is the wrong tool for a per-request check.
 * - otherwise (the file store: one writer process): in the API process's memory.
 */
import pg from 'pg';
import { openPool } from '../../pg/pool.js';
import { createNonceCache, type NonceCache } from '../../channels/nonce-cache.js';
import { createPostgresNonceCache, NONCE_SCHEMA } from '../../channels/pg-nonce-cache.js';
import { resolveSecret } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../logging.js';
import { createPostgresRateLimiter, RATE_SCHEMA } from './pg-rate-limit.js';
import { createRateLimiter, type RateLimiter } from './rate-limit.js';

/** What the shared stores need of a pg.Pool (tests pass one that fails). */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

export interface SharedApiState {
  /** `memory` or `postgres <url without password>`. */
  description: string;
  nonces: NonceCache;
  /** Absent when `server.rateLimit` is false. */
  rateLimit?: RateLimiter;
  close(): Promise<void>;
}

export interface SharedApiStateOptions {
  log?: Logger;
  /** Replay cache bounds (defaults: twice the signature window; 100 000 keys). */
  nonces?: { ttlMs?: number; maxEntries?: number };
  /** How long the rate limit uses this replica's own bucket after the database failed (default 5 s). */
  rateLimitFallbackMs?: number;
  /** How long to wait for a connection or a statement before calling the database unreachable (default 2 s). */
  timeoutMs?: number;
}

// Serializes schema creation by several replicas starting at once (a fixed key of its own).
const SCHEMA_LOCK_KEY = 0x70786167_61706973n;

/** The store the config implies: PostgreSQL with `audit.postgres`, else memory. */
export async function openSharedApiState(
  config: { audit: Config['audit']; server: Pick<Config['server'], 'rateLimit'> },
  opts: SharedApiStateOptions & { configPath?: string | undefined; env?: NodeJS.ProcessEnv } = {},
): Promise<SharedApiState> {
  const rateLimit = config.server.rateLimit || undefined;
  if (config.audit.postgres) {
    const url = resolveSecret(config.audit.postgres.url, 'audit.postgres.url', opts.env, opts.configPath);
    return openPostgresApiState(url, { ...opts, ...(rateLimit ? { rateLimit } : {}) });
  }
  return {
    description: 'memory',
    nonces: createNonceCache(opts.nonces ?? {}),
    ...(rateLimit ? { rateLimit: createRateLimiter(rateLimit) } : {}),
    close: async () => undefined,
  };
}

export async function openPostgresApiState(
  url: string,
  opts: SharedApiStateOptions & { rateLimit?: { requestsPerSecond: number; burst: number }; poolSize?: number } = {},
): Promise<SharedApiState> {
  const timeoutMs = opts.timeoutMs ?? 2_000;
  // Every authenticated request waits on this pool: an unreachable database must fail fast, not hang.
  const { pool, description } = await openPool(url, {
    name: 'proxmox-agent-api',
    what: 'the API state database',
    schema: [NONCE_SCHEMA, RATE_SCHEMA],
    schemaLockKey: SCHEMA_LOCK_KEY,
    poolSize: opts.poolSize ?? 8,
    log: opts.log,
    timeoutMs,
  });
  return {
    description,
    nonces: createPostgresNonceCache(pool, { ...opts.nonces, ...(opts.log ? { log: opts.log } : {}) }),
    ...(opts.rateLimit
      ? {
          rateLimit: createPostgresRateLimiter(pool, {
            ...opts.rateLimit,
            ...(opts.rateLimitFallbackMs === undefined ? {} : { fallbackMs: opts.rateLimitFallbackMs }),
            ...(opts.log ? { log: opts.log } : {}),
          }),
        }
      : {}),
    close: () => pool.end(),
  };
}
