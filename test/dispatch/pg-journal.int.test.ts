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
