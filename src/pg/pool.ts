import pg from 'pg';
import type { Logger } from '../logging.js';

/**
 * The one way the project opens PostgreSQL: the audit chain, the dispatch journal, the budget ledger
 * and the API's shared state each keep their own small pool (their own `application_name`, so
 * `pg_stat_activity` says who holds what), but open it, create their schema and run transactions
 * through this module.
 */
export interface OpenPoolOptions {
  /** `application_name`, e.g. `proxmox-agent-audit`. */
  name: string;
  /** What the pool is for, in messages: "the audit database". */
  what: string;
  /** Idempotent DDL (CREATE … IF NOT EXISTS), run once on open. */
  schema: string | readonly string[];
  /** A fixed advisory-lock key of the store's own: several processes starting at once create the schema one after another. */
  schemaLockKey: bigint;
  poolSize: number;
  log?: Logger | undefined;
  /**
   * Fail fast: how long to wait for a connection or a statement (connectionTimeoutMillis,
   * query_timeout and statement_timeout). Unset: wait as long as the database takes.
   */
  timeoutMs?: number | undefined;
}

export interface OpenedPool {
  pool: pg.Pool;
  /** `postgres <url without its secrets>`: what logs and health checks may show. */
  description: string;
}

export async function openPool(url: string, opts: OpenPoolOptions): Promise<OpenedPool> {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize,
    application_name: opts.name,
    ...(opts.timeoutMs === undefined ? {} : { connectionTimeoutMillis: opts.timeoutMs, query_timeout: opts.timeoutMs, statement_timeout: opts.timeoutMs }),
  });
  // An idle client's connection dropping must not crash the process; the next query reconnects.
  pool.on('error', (err) => opts.log?.warn({ err: { name: err.name, message: err.message } }, `${opts.what}: connection lost`));
  const description = `postgres ${redactUrl(url)}`;
  try {
    await transaction(pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [opts.schemaLockKey.toString()]);
      for (const ddl of typeof opts.schema === 'string' ? [opts.schema] : opts.schema) await c.query(ddl);
    });
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new Error(`cannot open ${opts.what} (${description}): ${(err as Error).message}`);
  }
  return { pool, description };
}

/**
 * One transaction on a pooled client, rolled back when `fn` throws. With `durable`, the commit waits
 * for the WAL on disk (synchronous_commit on), whatever the server's default: what the journal and
 * the chain promise survives a database crash.
 */
export async function transaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, opts: { durable?: boolean } = {}): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    if (opts.durable) await client.query('SET LOCAL synchronous_commit = on');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** postgres://user:secret@host/db → postgres://user:***@host/db, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) if (/pass|secret|key/i.test(key)) u.searchParams.set(key, '***');
    return u.toString();
  } catch {
    return '(unparseable connection string)';
  }
}
