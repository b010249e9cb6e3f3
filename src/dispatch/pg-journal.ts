import pg from 'pg';
import type { Logger } from '../logging.js';
import { openPool, transaction } from '../pg/pool.js';
import {
  applyClaim,
  decideBegin,
  decideNoop,
  guestKey,
  intentEntry,
  settleWithoutTask,
  type BeginResult,
  type DispatchEntry,
  type DispatchJournal,
} from './journal.js';
import { isActive, type Freeze, type FreezeInput } from '../domain/freeze.js';

export const DISPATCH_TABLE = 'proxmox_agent_dispatch';
export const FREEZE_TABLE = 'proxmox_agent_freezes';

/** Every DispatchState (journal.ts). */
const STATES = `'intent', 'dispatched', 'done', 'not_dispatched', 'noop', 'unknown'`;

/** `inFlight` (journal.ts) in SQL. */
const IN_FLIGHT = `(state = 'intent' OR (state = 'dispatched' AND NOT ended))`;

// Serializes schema creation by several workers starting at once (a fixed key of its own).
const SCHEMA_LOCK_KEY = 0x70786167_64697370n;

/**
 * One row per plan. The database enforces the journal's two invariants on its own, whatever a
 * writer does: a UPID belongs to one plan (unique), and a guest has at most one mutation in flight
 * (a partial unique index). The rules themselves (journal.ts) run inside a transaction that holds the
 * guest's advisory lock.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${DISPATCH_TABLE} (
  plan_id     text PRIMARY KEY,
  guest       text NOT NULL,
  environment text NOT NULL,
  vmid        integer NOT NULL,
  node        text NOT NULL,
  action      text NOT NULL,
  params      jsonb NOT NULL,
  attempt     integer NOT NULL,
  state       text NOT NULL CONSTRAINT ${DISPATCH_TABLE}_state_check CHECK (state IN (${STATES})),
  note        text,
  intent_at   timestamptz NOT NULL,
  upid        text UNIQUE,
  ended       boolean NOT NULL DEFAULT false,
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX IF NOT EXISTS ${DISPATCH_TABLE}_one_in_flight ON ${DISPATCH_TABLE} (guest) WHERE ${IN_FLIGHT};
CREATE INDEX IF NOT EXISTS ${DISPATCH_TABLE}_claims ON ${DISPATCH_TABLE} (guest) WHERE upid IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${DISPATCH_TABLE}_unknown ON ${DISPATCH_TABLE} (guest) WHERE state = 'unknown';
CREATE TABLE IF NOT EXISTS ${FREEZE_TABLE} (
  id          text PRIMARY KEY,
  environment text NOT NULL,
  reason      text NOT NULL,
  frozen_by   text NOT NULL,
  frozen_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  lifted_by   text,
  lifted_at   timestamptz
);
CREATE INDEX IF NOT EXISTS ${FREEZE_TABLE}_active ON ${FREEZE_TABLE} (environment) WHERE lifted_at IS NULL;
-- A table created before the 'unknown' state: its state CHECK (named by PostgreSQL's default, as
-- above) is replaced once.
DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_constraint
    WHERE conrelid = '${DISPATCH_TABLE}'::regclass AND conname = '${DISPATCH_TABLE}_state_check'
      AND pg_get_constraintdef(oid) LIKE '%unknown%'
  ) THEN
    ALTER TABLE ${DISPATCH_TABLE} DROP CONSTRAINT IF EXISTS ${DISPATCH_TABLE}_state_check;
    ALTER TABLE ${DISPATCH_TABLE} ADD CONSTRAINT ${DISPATCH_TABLE}_state_check CHECK (state IN (${STATES}));
  END IF;
END $$;
`;

const COLUMNS = `plan_id, guest, environment, vmid, node, action, params, attempt, state, upid, ended, note,
  (extract(epoch from intent_at) * 1000)::float8 AS intent_ms,
  (extract(epoch from (clock_timestamp() - intent_at)) * 1000)::float8 AS age_ms`;

interface Row {
  plan_id: string;
  guest: string;
  environment: string;
  vmid: number;
  node: string;
  action: string;
  params: Record<string, unknown>;
  attempt: number;
  state: DispatchEntry['state'];
  upid: string | null;
  ended: boolean;
  note: string | null;
  intent_ms: number;
  age_ms: number;
}

const toEntry = (r: Row): DispatchEntry => ({
  planId: r.plan_id,
  guest: r.guest,
  environment: r.environment,
  vmid: r.vmid,
  node: r.node,
  action: r.action,
  params: r.params,
  attempt: r.attempt,
  state: r.state,
  intentAt: Math.round(r.intent_ms),
  ageMs: Math.round(r.age_ms),
  ...(r.upid ? { upid: r.upid } : {}),
  ...(r.ended ? { ended: true } : {}),
  ...(r.note ? { note: r.note } : {}),
});

const FREEZE_COLUMNS = `id, environment, reason, frozen_by, to_char(frozen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at,
  lifted_by, to_char(lifted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS lifted_at`;

interface FreezeRow {
  id: string;
  environment: string;
  reason: string;
  frozen_by: string;
  at: string;
  lifted_by: string | null;
  lifted_at: string | null;
}

const toFreeze = (r: FreezeRow): Freeze => ({
  id: r.id,
  environment: r.environment,
  reason: r.reason,
  by: r.frozen_by,
  at: r.at,
  ...(r.lifted_at ? { liftedBy: r.lifted_by ?? '', liftedAt: r.lifted_at } : {}),
});

/**
 * An environment's freeze lock: every `begin` holds it shared while it reads the freezes and writes
 * its intent, a new freeze holds it exclusively, so each dispatch is ordered before or after each
 * freeze (freeze.ts).
 */
const lockFreezes = (c: pg.PoolClient, environment: string, mode: 'shared' | 'exclusive') =>
  c.query(`SELECT ${mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock'}(hashtext($1))`, [`freeze:${environment}`]);

/**
 * The journal for several workers, in the audit database. Ages are measured on the database's clock,
 * so workers whose clocks differ still agree on when an intent is old enough to settle.
 */
export async function openPostgresDispatchJournal(url: string, opts: { log?: Logger; poolSize?: number } = {}): Promise<DispatchJournal> {
  const { pool, description } = await openPool(url, { name: 'proxmox-agent-dispatch', what: 'the dispatch journal', schema: SCHEMA, schemaLockKey: SCHEMA_LOCK_KEY, poolSize: opts.poolSize ?? 2, log: opts.log });
  // Every journal transaction is on disk before it answers: a dispatch it records survives a crash.
  const durable = <T>(fn: (c: pg.PoolClient) => Promise<T>) => transaction(pool, fn, { durable: true });

  const one = async (c: pg.PoolClient | pg.Pool, where: string, args: unknown[], lock = ''): Promise<DispatchEntry | undefined> => {
    const rows = (await c.query<Row>(`SELECT ${COLUMNS} FROM ${DISPATCH_TABLE} WHERE ${where} ${lock}`, args)).rows;
    return rows[0] && toEntry(rows[0]);
  };
  const save = async (c: pg.PoolClient, e: DispatchEntry, intentAtNow = false): Promise<DispatchEntry> => {
    await c.query(
      `INSERT INTO ${DISPATCH_TABLE} (plan_id, guest, environment, vmid, node, action, params, attempt, state, intent_at, upid, ended, note)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $12::boolean THEN clock_timestamp() ELSE to_timestamp($10::float8 / 1000) END, $11, $13, $14)
       ON CONFLICT (plan_id) DO UPDATE SET guest = EXCLUDED.guest, environment = EXCLUDED.environment, vmid = EXCLUDED.vmid,
         node = EXCLUDED.node, action = EXCLUDED.action, params = EXCLUDED.params, attempt = EXCLUDED.attempt,
         state = EXCLUDED.state, intent_at = EXCLUDED.intent_at, upid = EXCLUDED.upid, ended = EXCLUDED.ended, note = EXCLUDED.note, updated_at = clock_timestamp()`,
      [e.planId, e.guest, e.environment, e.vmid, e.node, e.action, JSON.stringify(e.params), e.attempt, e.state, e.intentAt, e.upid ?? null, intentAtNow, e.ended ?? false, e.note ?? null],
    );
    return (await one(c, 'plan_id = $1', [e.planId]))!;
  };
  /** A change to one plan's entry, under its guest's lock. */
  const onPlan = <T>(planId: string, fn: (c: pg.PoolClient, own: DispatchEntry | undefined) => Promise<T>): Promise<T> =>
    durable(async (c) => {
      const guest = (await one(c, 'plan_id = $1', [planId]))?.guest;
      if (guest) await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [guest]);
      return fn(c, await one(c, 'plan_id = $1', [planId], 'FOR UPDATE'));
    });

  return {
    description,
    get: (planId) => one(pool, 'plan_id = $1', [planId]),
    begin: (intent) =>
      durable(async (c): Promise<BeginResult> => {
        const guest = guestKey(intent.environment, intent.vmid);
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [guest]);
        const own = await one(c, 'plan_id = $1', [intent.planId], 'FOR UPDATE');
        const holder = await one(c, `guest = $1 AND ${IN_FLIGHT}`, [guest]);
        const decided = decideBegin(intent, own, holder);
        if (decided.kind !== 'write') return decided;
        await lockFreezes(c, intent.environment, 'shared');
        const frozen = (await c.query<FreezeRow>(`SELECT ${FREEZE_COLUMNS} FROM ${FREEZE_TABLE} WHERE environment = $1 AND lifted_at IS NULL ORDER BY frozen_at LIMIT 1`, [intent.environment])).rows[0];
        if (frozen) return { kind: 'frozen', freeze: toFreeze(frozen) };
        return { kind: 'begun', entry: await save(c, intentEntry(intent, 0), true) };
      }),
    claim: (planId, upid, attempt) =>
      onPlan(planId, async (c, own) => {
        const claimedBy = (await c.query<{ plan_id: string }>(`SELECT plan_id FROM ${DISPATCH_TABLE} WHERE upid = $1`, [upid])).rows[0]?.plan_id;
        return save(c, applyClaim(own, upid, attempt, claimedBy, planId));
      }),
    complete: (planId, attempt) =>
      onPlan(planId, async (c, own) => {
        if (!own) throw new Error(`no dispatch intent for plan ${planId}`);
        if (own.state === 'done') return own;
        return save(c, { ...own, state: 'done', attempt: Math.max(own.attempt, attempt) });
      }),
    noop: (intent, note) =>
      durable(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [guestKey(intent.environment, intent.vmid)]);
        const own = await one(c, 'plan_id = $1', [intent.planId], 'FOR UPDATE');
        if (decideNoop(own) === 'keep') return own!;
        return save(c, { ...intentEntry(intent, 0), state: 'noop', note }, true);
      }),
    release: (planId, attempt) =>
      onPlan(planId, async (c, own) => {
        const settled = settleWithoutTask(own, 'not_dispatched', attempt);
        return settled ? save(c, settled) : own;
      }),
    unknown: (planId, attempt, note) =>
      onPlan(planId, async (c, own) => {
        const settled = settleWithoutTask(own, 'unknown', attempt, note);
        return settled ? save(c, settled) : own;
      }),
    end: (planId) =>
      onPlan(planId, async (c, own) => {
        if (!own || own.state !== 'dispatched' || own.ended) return own;
        return save(c, { ...own, ended: true });
      }),
    holder: (guest) => one(pool, `guest = $1 AND ${IN_FLIGHT}`, [guest]),
    async claimedOn(guest) {
      const rows = (await pool.query<{ upid: string; plan_id: string }>(`SELECT upid, plan_id FROM ${DISPATCH_TABLE} WHERE guest = $1 AND upid IS NOT NULL`, [guest])).rows;
      return new Map(rows.map((r) => [r.upid, r.plan_id]));
    },
    async unknownOn(guest) {
      return (await pool.query<Row>(`SELECT ${COLUMNS} FROM ${DISPATCH_TABLE} WHERE guest = $1 AND state = 'unknown' ORDER BY intent_at`, [guest])).rows.map(toEntry);
    },
    freeze: (input: FreezeInput) =>
      durable(async (c) => {
        await lockFreezes(c, input.environment, 'exclusive');
        const rows = await c.query<FreezeRow>(
          `INSERT INTO ${FREEZE_TABLE} (id, environment, reason, frozen_by) VALUES ($1, $2, $3, $4) RETURNING ${FREEZE_COLUMNS}`,
          [input.id, input.environment, input.reason, input.by],
        );
        return toFreeze(rows.rows[0]!);
      }),
    lift: (id, by) =>
      durable(async (c) => {
        const row = (await c.query<FreezeRow>(`SELECT ${FREEZE_COLUMNS} FROM ${FREEZE_TABLE} WHERE id = $1 FOR UPDATE`, [id])).rows[0];
        if (!row) return undefined;
        const found = toFreeze(row);
        if (!isActive(found)) return { freeze: found, lifted: false };
        const lifted = await c.query<FreezeRow>(
          `UPDATE ${FREEZE_TABLE} SET lifted_by = $2, lifted_at = clock_timestamp() WHERE id = $1 RETURNING ${FREEZE_COLUMNS}`,
          [id, by],
        );
        return { freeze: toFreeze(lifted.rows[0]!), lifted: true };
      }),
    async freezeById(id) {
      const row = (await pool.query<FreezeRow>(`SELECT ${FREEZE_COLUMNS} FROM ${FREEZE_TABLE} WHERE id = $1`, [id])).rows[0];
      return row && toFreeze(row);
    },
    async freezes({ environment, includeLifted } = {}) {
      const rows = await pool.query<FreezeRow>(
        `SELECT ${FREEZE_COLUMNS} FROM ${FREEZE_TABLE} WHERE ($1::text IS NULL OR environment = $1) AND ($2 OR lifted_at IS NULL) ORDER BY frozen_at DESC, id`,
        [environment ?? null, includeLifted ?? false],
      );
      return rows.rows.map(toFreeze);
    },
    async sending(environment) {
      return (await pool.query<Row>(`SELECT ${COLUMNS} FROM ${DISPATCH_TABLE} WHERE environment = $1 AND state = 'intent'`, [environment])).rows.map(toEntry);
    },
    close: () => pool.end(),
  };
}

