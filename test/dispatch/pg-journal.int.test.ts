import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { DISPATCH_TABLE, openPostgresDispatchJournal } from '../../src/dispatch/pg-journal.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { journalContract } from './journal-contract.js';

let server: TempPostgres;
let url: string;

describePostgres('PostgreSQL dispatch journal', () => {
  beforeAll(async () => {
    server = await startTempPostgres();
    url = await server.createDatabase();
  });
  afterAll(async () => {
    await server?.stop();
  });

  journalContract(() => openPostgresDispatchJournal(url));

  it('a table created before the `unknown` state is brought up to date on open', async () => {
    const old = await server.createDatabase();
    const client = new pg.Client({ connectionString: old });
    await client.connect();
    try {
      // The table as the first release created it (its state CHECK without `unknown`).
      await client.query(`CREATE TABLE ${DISPATCH_TABLE} (
        plan_id text PRIMARY KEY, guest text NOT NULL, environment text NOT NULL, vmid integer NOT NULL, node text NOT NULL,
        action text NOT NULL, params jsonb NOT NULL, attempt integer NOT NULL,
        state text NOT NULL CHECK (state IN ('intent', 'dispatched', 'done', 'not_dispatched', 'noop')),
        note text, intent_at timestamptz NOT NULL, upid text UNIQUE, ended boolean NOT NULL DEFAULT false,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    } finally {
      await client.end();
    }
    const j = await openPostgresDispatchJournal(old);
    await j.begin({ planId: 'old-1', environment: 'lab', vmid: 101, node: 'pve-lab', action: 'vm.start', params: {}, attempt: 1 });
    expect(await j.unknown('old-1', 1, 'no task')).toMatchObject({ state: 'unknown', note: 'no task' });
    await j.close();
    // Opening again changes nothing more.
    const again = await openPostgresDispatchJournal(old);
    expect(await again.get('old-1')).toMatchObject({ state: 'unknown' });
    await again.close();
  });

  it('two workers (two pools) racing for one guest: one takes it, and the database itself refuses a second mutation in flight', async () => {
    const [w1, w2] = await Promise.all([openPostgresDispatchJournal(url), openPostgresDispatchJournal(url)]);
    const intent = (planId: string) => ({ planId, environment: 'prod', vmid: 900, node: 'pve-prod-1', action: 'vm.start', params: {}, attempt: 1 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, k) => (k % 2 ? w1 : w2).begin(intent(`race-${k}`))));
    expect(results.filter((r) => r.kind === 'begun')).toHaveLength(1);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await expect(
        client.query(
          `INSERT INTO ${DISPATCH_TABLE} (plan_id, guest, environment, vmid, node, action, params, attempt, state, intent_at) VALUES ('rogue', 'prod/900', 'prod', 900, 'n', 'vm.start', '{}', 1, 'intent', now())`,
        ),
      ).rejects.toThrow(/one_in_flight/);
    } finally {
      await client.end();
    }
    await Promise.all([w1.close(), w2.close()]);
  });
});
