/**
 * The replay cache shared by every API replica: a table in the PostgreSQL database of the audit store
 * (`audit.postgres`). A signed request accepted by one replica is refused as replayed by all others
 * within its lifetime, as the in-memory cache (nonce-cache.ts) does within one process.
 *
 * One claim is one call of a function created with the table: under a transaction-scoped advisory
 * lock it deletes up to CLEANUP_BATCH expired keys, answers 'replayed' for a live key, 'full' when
 * `maxEntries` keys are live, and otherwise inserts the key with INSERT … ON CONFLICT, which takes an
 * expired row over but never a live one. The lock serializes claims, so the bound on live keys is
 * exact; claims are rare (one per signed chat decision), so nothing waits on it for long. Expiry is
 * measured on the database's clock, so replicas whose clocks differ agree on it.
 *
 * Fails closed: when the database cannot answer, the claim is 'unavailable' and the request is refused
 * (503 `/problems/replay-store-unavailable`): accepting it unchecked could accept a replay.
 */
import type { Queryable } from '../api/access/shared-state.js';
import type { Logger } from '../logging.js';
import { DEFAULT_NONCE_MAX_ENTRIES, DEFAULT_NONCE_TTL_MS, type NonceCache, type NonceClaim } from './nonce-cache.js';

export const NONCE_TABLE = 'proxmox_agent_nonces';
const CLAIM_FUNCTION = 'proxmox_agent_claim_nonce';
/** Expired keys one claim deletes at most: the work of a claim stays bounded, and the table cannot outgrow live keys. */
export const CLEANUP_BATCH = 500;
// Serializes claims (any fixed 64-bit key of its own).
const CLAIM_LOCK_KEY = 0x70786167_6e6f6e63n;

export const NONCE_SCHEMA = `
CREATE TABLE IF NOT EXISTS ${NONCE_TABLE} (
  key        text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ${NONCE_TABLE}_expires_at ON ${NONCE_TABLE} (expires_at);
CREATE OR REPLACE FUNCTION ${CLAIM_FUNCTION}(p_key text, p_ttl_ms float8, p_max integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  live integer;
BEGIN
  PERFORM pg_advisory_xact_lock(${CLAIM_LOCK_KEY.toString()});
  DELETE FROM ${NONCE_TABLE} WHERE key IN (
    SELECT key FROM ${NONCE_TABLE} WHERE expires_at <= clock_timestamp() ORDER BY expires_at LIMIT ${CLEANUP_BATCH});
  IF EXISTS (SELECT 1 FROM ${NONCE_TABLE} WHERE key = p_key AND expires_at > clock_timestamp()) THEN
    RETURN 'replayed';
  END IF;
  SELECT count(*) INTO live FROM (SELECT 1 FROM ${NONCE_TABLE} WHERE expires_at > clock_timestamp() LIMIT p_max) AS l;
  IF live >= p_max THEN
    RETURN 'full';
  END IF;
  INSERT INTO ${NONCE_TABLE} AS n (key, expires_at) VALUES (p_key, clock_timestamp() + p_ttl_ms * interval '1 millisecond')
    ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE n.expires_at <= clock_timestamp();
  IF NOT FOUND THEN
    RETURN 'replayed';
  END IF;
  RETURN 'fresh';
END $$;
`;

export interface PostgresNonceCacheOptions {
  /** How long a key is remembered (default: the window on both sides of a timestamp). */
  ttlMs?: number;
  /** Upper bound on live keys; when reached, new keys are refused ('full'). */
  maxEntries?: number;
  log?: Logger;
}

/** Over a database whose schema includes NONCE_SCHEMA (src/api/access/shared-state.ts creates it). */
export function createPostgresNonceCache(db: Queryable, opts: PostgresNonceCacheOptions = {}): NonceCache {
  const ttlMs = opts.ttlMs ?? DEFAULT_NONCE_TTL_MS;
  const maxEntries = opts.maxEntries ?? DEFAULT_NONCE_MAX_ENTRIES;
  return {
    async claim(key) {
      try {
        const rows = (await db.query<{ claim: NonceClaim }>(`SELECT ${CLAIM_FUNCTION}($1, $2, $3) AS claim`, [key, ttlMs, maxEntries])).rows;
        const claim = rows[0]?.claim;
        if (claim === 'fresh' || claim === 'replayed' || claim === 'full') return claim;
        throw new Error(`unexpected answer from ${CLAIM_FUNCTION}: ${String(claim)}`);
      } catch (err) {
        opts.log?.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, 'the replay cache in PostgreSQL cannot be reached; refusing signed requests until it can');
        return 'unavailable';
      }
    },
  };
}
