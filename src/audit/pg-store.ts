import pg from 'pg';
import type { Logger } from '../logging.js';
import { openPool, transaction } from '../pg/pool.js';
import { sealBatch, type AuditHead, type AuditRecord } from './record.js';
import type { SignedCheckpoint } from './signing.js';
import { createAuditStore, errorSummary, newest, type AuditBackend, type AuditStore, type SigningPolicy } from './store.js';
import type { AuditReceipt } from './events.js';

export const PG_TABLES = {
  records: 'proxmox_agent_audit',
  head: 'proxmox_agent_audit_head',
  checkpoints: 'proxmox_agent_audit_checkpoints',
} as const;

// Serializes concurrent schema creation by several workers starting at once (any fixed 64-bit key).
const SCHEMA_LOCK_KEY = 0x70786167_61756469n;

/**
 * Created on open, idempotently. The head row is the chain's lock: every append takes it FOR UPDATE,
 * so appends from any number of workers queue on it and produce one chain. `seq` (primary key),
 * `event_id` and `hash` are unique, so even a writer that bypassed the lock could not fork the chain
 * or write an event twice. A trigger refuses UPDATE, DELETE and TRUNCATE on the records and
 * checkpoints: not a defence against the database owner (who can drop it), a guard against mistakes;
 * the hash chain and signed checkpoints are what detect tampering.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${PG_TABLES.records} (
  seq        bigint PRIMARY KEY,
  event_id   text NOT NULL UNIQUE,
  plan_id    text NOT NULL,
  hash       text NOT NULL UNIQUE,
  record     text NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ${PG_TABLES.records}_plan_id ON ${PG_TABLES.records} (plan_id, seq);
CREATE TABLE IF NOT EXISTS ${PG_TABLES.head} (
  id   smallint PRIMARY KEY CHECK (id = 1),
  seq  bigint NOT NULL,
  hash text NOT NULL
);
INSERT INTO ${PG_TABLES.head} (id, seq, hash) VALUES (1, 0, 'sha256:${'0'.repeat(64)}') ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS ${PG_TABLES.checkpoints} (
  id         bigserial PRIMARY KEY,
  seq        bigint NOT NULL,
  checkpoint text NOT NULL
);
CREATE OR REPLACE FUNCTION proxmox_agent_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the proxmox-agent audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END $$;
CREATE OR REPLACE TRIGGER ${PG_TABLES.records}_append_only BEFORE UPDATE OR DELETE ON ${PG_TABLES.records}
  FOR EACH ROW EXECUTE FUNCTION proxmox_agent_audit_append_only();
CREATE OR REPLACE TRIGGER ${PG_TABLES.records}_no_truncate BEFORE TRUNCATE ON ${PG_TABLES.records}
  FOR EACH STATEMENT EXECUTE FUNCTION proxmox_agent_audit_append_only();
CREATE OR REPLACE TRIGGER ${PG_TABLES.checkpoints}_append_only BEFORE UPDATE OR DELETE ON ${PG_TABLES.checkpoints}
  FOR EACH ROW EXECUTE FUNCTION proxmox_agent_audit_append_only();
CREATE OR REPLACE TRIGGER ${PG_TABLES.checkpoints}_no_truncate BEFORE TRUNCATE ON ${PG_TABLES.checkpoints}
  FOR EACH STATEMENT EXECUTE FUNCTION proxmox_agent_audit_append_only();
`;

/**
 * The shared audit store for several workers: PostgreSQL. Each batch of appends is one transaction
 * that locks the head row, skips events already written (by any worker), inserts the sealed records,
 * moves the head and commits with synchronous_commit on, so `append` resolves only once the records
 * are in the WAL on disk.
 */
export async function openPostgresAuditStore(url: string, opts: { signing?: SigningPolicy; log?: Logger; poolSize?: number } = {}): Promise<AuditStore> {
  const backend = await openPostgresBackend(url, opts);
  try {
    return await createAuditStore(backend, opts);
  } catch (err) {
    await backend.close();
    throw err;
  }
}

export async function openPostgresBackend(url: string, opts: { log?: Logger; poolSize?: number } = {}): Promise<AuditBackend> {
  const { pool, description } = await openPool(url, { name: 'proxmox-agent-audit', what: 'the audit database', schema: SCHEMA, schemaLockKey: SCHEMA_LOCK_KEY, poolSize: opts.poolSize ?? 4, log: opts.log });

  const parse = (rows: { record: string }[]) => rows.map((r) => JSON.parse(r.record) as AuditRecord);

  return {
    description,
    appendBatch: (events) =>
      transaction(
        pool,
        async (c) => {
          const headRow = await c.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${PG_TABLES.head} WHERE id = 1 FOR UPDATE`);
          const head: AuditHead = { seq: Number(headRow.rows[0]!.seq), hash: headRow.rows[0]!.hash };
          const ids = [...new Set(events.map((e) => e.eventId))];
          const existing = await c.query<{ event_id: string; seq: string; hash: string }>(
            `SELECT event_id, seq, hash FROM ${PG_TABLES.records} WHERE event_id = ANY($1::text[])`,
            [ids],
          );
          const known = new Map<string, AuditReceipt>(existing.rows.map((r) => [r.event_id, { seq: Number(r.seq), hash: r.hash }]));
          const sealed = sealBatch(head, events, (id) => known.get(id));
          if (sealed.records.length > 0) {
            await c.query(
              `INSERT INTO ${PG_TABLES.records} (seq, event_id, plan_id, hash, record)
               SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])`,
              [
                sealed.records.map((r) => r.seq),
                sealed.records.map((r) => r.eventId),
                sealed.records.map((r) => r.planId),
                sealed.records.map((r) => r.hash),
                sealed.records.map((r) => JSON.stringify(r)),
              ],
            );
            await c.query(`UPDATE ${PG_TABLES.head} SET seq = $1, hash = $2 WHERE id = 1`, [sealed.head.seq, sealed.head.hash]);
          }
          return { receipts: sealed.receipts, head: sealed.head, written: sealed.records.length };
        },
        { durable: true },
      ),
    async forPlan(planId) {
      return parse((await pool.query<{ record: string }>(`SELECT record FROM ${PG_TABLES.records} WHERE plan_id = $1 ORDER BY seq`, [planId])).rows);
    },
    async all() {
      return parse((await pool.query<{ record: string }>(`SELECT record FROM ${PG_TABLES.records} ORDER BY seq`)).rows);
    },
    async head() {
      const row = (await pool.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${PG_TABLES.head} WHERE id = 1`)).rows[0]!;
      return { seq: Number(row.seq), hash: row.hash };
    },
    async appendCheckpoint(checkpoint) {
      await pool.query(`INSERT INTO ${PG_TABLES.checkpoints} (seq, checkpoint) VALUES ($1, $2)`, [checkpoint.seq, JSON.stringify(checkpoint)]);
    },
    async checkpoints() {
      const rows = (await pool.query<{ checkpoint: string }>(`SELECT checkpoint FROM ${PG_TABLES.checkpoints} ORDER BY id`)).rows;
      return rows.map((r) => JSON.parse(r.checkpoint) as SignedCheckpoint);
    },
    async latestCheckpoint(keyId) {
      // The newest rows through the primary key (several workers' checkpoints interleave, so the highest
      // seq among them); the whole table only when none of them is this key's (a key rotated lately).
      const recent = (await pool.query<{ checkpoint: string }>(`SELECT checkpoint FROM ${PG_TABLES.checkpoints} ORDER BY id DESC LIMIT 64`)).rows;
      const mine = (rows: { checkpoint: string }[]) => rows.map((r) => JSON.parse(r.checkpoint) as SignedCheckpoint).filter((c) => c.keyId === keyId);
      const found = mine(recent);
      if (found.length > 0 || recent.length < 64) return newest(found);
      return newest(mine((await pool.query<{ checkpoint: string }>(`SELECT checkpoint FROM ${PG_TABLES.checkpoints} ORDER BY id`)).rows));
    },
    close: () => pool.end(),
  };
}

/** Read-only access for `audit verify` and the evidence of an API-only process: no schema changes. */
export async function readPostgresAudit(url: string): Promise<{ records: AuditRecord[]; checkpoints: SignedCheckpoint[] }> {
  const client = new pg.Client({ connectionString: url, application_name: 'proxmox-agent-audit-verify' });
  await client.connect();
  try {
    const records = (await client.query<{ record: string }>(`SELECT record FROM ${PG_TABLES.records} ORDER BY seq`)).rows;
    const checkpoints = (await client.query<{ checkpoint: string }>(`SELECT checkpoint FROM ${PG_TABLES.checkpoints} ORDER BY id`)).rows;
    return {
      records: records.map((r) => JSON.parse(r.record) as AuditRecord),
      checkpoints: checkpoints.map((r) => JSON.parse(r.checkpoint) as SignedCheckpoint),
    };
  } finally {
    await client.end();
  }
}

// Kept here too: the CLI and tests import it from the audit store.
export { redactUrl } from '../pg/pool.js';
