import pg from 'pg';
import { openPool, transaction } from '../pg/pool.js';
import type { Logger } from '../logging.js';
import { beginApplying, decideCharge, releaseCharge, WINDOW_MS, type Charge } from './ledger.js';
import type { BudgetStore } from './store.js';

export const BUDGET_TABLE = 'proxmox_agent_budget_charges';

// Serializes schema creation by several processes starting at once (a fixed key of its own).
const SCHEMA_LOCK_KEY = 0x70786167_62756467n;

/**
 * One row per admitted plan; the charge itself (ledger.ts) as JSON, with the columns the queries
 * select and prune on. Times are the database's clock, so replicas whose clocks differ agree on the
 * window.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${BUDGET_TABLE} (
  plan_id   text PRIMARY KEY,
  principal text NOT NULL,
  at        timestamptz NOT NULL,
  lapse_at  timestamptz NOT NULL,
  released  boolean NOT NULL DEFAULT false,
  charge    jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS ${BUDGET_TABLE}_principal ON ${BUDGET_TABLE} (principal, at);
`;

/** Charges that may still count: admitted within the hour, or holding a slot. */
const COUNTING = `(at > to_timestamp($2::float8 / 1000) - make_interval(secs => ${WINDOW_MS / 1000}) OR (NOT released AND lapse_at > to_timestamp($2::float8 / 1000)))`;
const NOW_MS = `SELECT (extract(epoch from clock_timestamp()) * 1000)::float8 AS now`;

/**
 * The ledger for several API replicas and workers, in the audit database. A charge is one
 * transaction holding the principal's advisory lock: it reads the principal's counting charges,
 * decides (ledger.ts, the same code as the file store) and inserts. Two charges of one principal
 * therefore never decide on the same state, on any replica; charges of different principals do not
 * wait for each other.
 */
export async function openPostgresBudgetStore(url: string, opts: { log?: Logger; poolSize?: number } = {}): Promise<BudgetStore> {
  const { pool, description } = await openPool(url, { name: 'proxmox-agent-budgets', what: 'the budget ledger', schema: SCHEMA, schemaLockKey: SCHEMA_LOCK_KEY, poolSize: opts.poolSize ?? 2, log: opts.log });
  // A charge is on disk before the plan it admits goes on.
  const durable = <T>(fn: (c: pg.PoolClient) => Promise<T>) => transaction(pool, fn, { durable: true });
  const nowOf = async (c: pg.PoolClient | pg.Pool) => Number((await c.query<{ now: number }>(NOW_MS)).rows[0]!.now);
  const counting = async (c: pg.PoolClient | pg.Pool, now: number, principal?: string): Promise<Charge[]> =>
    (
      await c.query<{ charge: Charge }>(
        `SELECT charge FROM ${BUDGET_TABLE} WHERE ($1::text IS NULL OR principal = $1) AND ${COUNTING} ORDER BY at`,
        [principal ?? null, now],
      )
    ).rows.map((r) => r.charge);

  return {
    description,
    charge: (limits, request) =>
      durable(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`budget:${request.principal}`]);
        const now = await nowOf(c);
        const own = (await c.query<{ charge: Charge }>(`SELECT charge FROM ${BUDGET_TABLE} WHERE plan_id = $1`, [request.planId])).rows[0]?.charge;
        const verdict = decideCharge(limits, own ? [own] : await counting(c, now, request.principal), request, now);
        if (verdict.admitted && !own) {
          const ch = verdict.charge;
          await c.query(
            `INSERT INTO ${BUDGET_TABLE} (plan_id, principal, at, lapse_at, charge) VALUES ($1, $2, to_timestamp($3::float8 / 1000), to_timestamp($4::float8 / 1000), $5)`,
            [ch.planId, ch.principal, ch.at, ch.lapseAt, JSON.stringify(ch)],
          );
          // Forget this principal's charges that count for nothing any more.
          await c.query(`DELETE FROM ${BUDGET_TABLE} WHERE principal = $1 AND NOT ${COUNTING}`, [request.principal, now]);
        }
        return verdict;
      }),
    beginApplying: (planId) =>
      durable(async (c) => {
        // Under the principal's lock, like a charge: decided at the expiry, the two must be one order
        // (a charge that counted this slot as given up, or a begin that holds it), never both.
        const principal = (await c.query<{ principal: string }>(`SELECT principal FROM ${BUDGET_TABLE} WHERE plan_id = $1`, [planId])).rows[0]?.principal;
        if (principal === undefined) return { ok: true as const };
        await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`budget:${principal}`]);
        const row = (await c.query<{ charge: Charge }>(`SELECT charge FROM ${BUDGET_TABLE} WHERE plan_id = $1 FOR UPDATE`, [planId])).rows[0];
        if (!row) return { ok: true as const };
        const begun = beginApplying(row.charge, await nowOf(c));
        if (!begun.ok) return { ok: false as const, lapsedAt: new Date(begun.lapsedAt).toISOString() };
        if (begun.charge !== row.charge) await c.query(`UPDATE ${BUDGET_TABLE} SET charge = $2 WHERE plan_id = $1`, [planId, JSON.stringify(begun.charge)]);
        return { ok: true as const };
      }),
    release: (planId, ended) =>
      durable(async (c) => {
        const row = (await c.query<{ charge: Charge }>(`SELECT charge FROM ${BUDGET_TABLE} WHERE plan_id = $1 FOR UPDATE`, [planId])).rows[0];
        if (!row || row.charge.releasedAt !== undefined) return;
        const released = releaseCharge(row.charge, ended, await nowOf(c));
        await c.query(`UPDATE ${BUDGET_TABLE} SET released = true, charge = $2 WHERE plan_id = $1`, [planId, JSON.stringify(released)]);
      }),
    snapshot: async () => {
      const now = await nowOf(pool);
      return { charges: await counting(pool, now), now };
    },
    close: () => pool.end(),
  };
}
