import { expect } from 'vitest';
import type { BudgetStore } from '../../../src/budgets/store.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const req = (planId: string, principal: string, expiresInMs: number) => ({ planId, principal, destructive: false, guest: 'lab/100', expiresAt: Date.now() + expiresInMs });

/**
 * What every budget store does with `beginApplying` (ledger.ts): a charge marked applying holds its
 * concurrency slot past its expiry; one not applying by its expiry frees the slot then, and may no
 * longer begin; a plan never charged is free to go.
 */
export async function expectApplyingContract(store: BudgetStore): Promise<void> {
  const limits = { concurrent: 1 };
  expect((await store.charge(limits, req('applying', 'agent:a', 400))).admitted).toBe(true);
  expect((await store.charge(limits, req('idle', 'agent:b', 400))).admitted).toBe(true);
  expect(await store.beginApplying('applying')).toEqual({ ok: true });
  await sleep(700);
  // Past both expiries: the applying plan still holds its slot, the idle one gave it up.
  expect(await store.charge(limits, req('after-applying', 'agent:a', 60_000))).toMatchObject({ admitted: false, refusals: [{ budget: 'concurrent', heldBy: ['applying'] }] });
  const lapsed = await store.beginApplying('idle');
  expect(lapsed).toMatchObject({ ok: false, lapsedAt: expect.any(String) });
  expect(Date.parse((lapsed as { lapsedAt: string }).lapsedAt)).toBeLessThanOrEqual(Date.now());
  expect((await store.charge(limits, req('after-idle', 'agent:b', 60_000))).admitted).toBe(true);
  // Retried, the applying plan's step goes on; a plan never charged is not held back.
  expect(await store.beginApplying('applying')).toEqual({ ok: true });
  expect(await store.beginApplying('never-charged')).toEqual({ ok: true });
  await store.release('applying', { sent: true });
  expect((await store.charge(limits, req('after-release', 'agent:a', 60_000))).admitted).toBe(true);
}
