import { afterAll, beforeAll, expect, it } from 'vitest';
import { openPostgresBudgetStore } from '../../src/budgets/pg-store.js';
import type { ChargeRequest } from '../../src/budgets/ledger.js';
import { expectApplyingContract } from './support/applying-contract.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';

let server: TempPostgres;
const req = (planId: string, o: Partial<ChargeRequest> = {}): ChargeRequest => ({ planId, principal: 'agent:pi', destructive: true, guest: 'lab/100', expiresAt: Date.now() + 3_600_000, ...o });

describePostgres('PostgreSQL budget ledger', () => {
  beforeAll(async () => {
    server = await startTempPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('admits exactly the limit when 40 charges race on two replicas, each with its own connections', async () => {
    const url = await server.createDatabase();
    // Two replicas, ten connections each: up to twenty transactions deciding at once.
    const [a, b] = [await openPostgresBudgetStore(url, { poolSize: 10 }), await openPostgresBudgetStore(url, { poolSize: 10 })];
    const verdicts = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).charge({ perHour: { destructive: 3 }, concurrent: 30 }, req(`p${i}`, { guest: `lab/${i}` }))));
    const admitted = verdicts.filter((v) => v.admitted);
    expect(admitted).toHaveLength(3);
    for (const v of verdicts) if (!v.admitted) expect(v.refusals).toEqual([expect.objectContaining({ budget: 'destructive', limit: 3, used: 3 })]);
    expect((await a.snapshot()).charges).toHaveLength(3);
    await Promise.all([a.close(), b.close()]);
  });

  it('answers a plan charged again with its charge, releases once, and frees the slot', async () => {
    const url = await server.createDatabase();
    const store = await openPostgresBudgetStore(url);
    const first = await store.charge({ concurrent: 1 }, req('one'));
    expect(await store.charge({ concurrent: 1 }, req('one'))).toEqual(first);
    expect(await store.charge({ concurrent: 1 }, req('two'))).toMatchObject({ admitted: false, refusals: [{ budget: 'concurrent', heldBy: ['one'] }] });
    await store.release('one', { sent: false });
    await store.release('one', { sent: true }); // a retried release changes nothing
    const [charge] = (await store.snapshot()).charges;
    expect(charge).toMatchObject({ planId: 'one', refunded: true, releasedAt: expect.any(Number) });
    expect((await store.charge({ concurrent: 1 }, req('two'))).admitted).toBe(true);
    await store.close();
  });

  it('an applying charge holds its slot past its expiry; one not applying by then gives it up and may not begin', async () => {
    const store = await openPostgresBudgetStore(await server.createDatabase());
    await expectApplyingContract(store);
    await store.close();
  });
});
