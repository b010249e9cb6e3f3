import { expect } from 'vitest';
import type { BudgetStore } from '../../../src/budgets/store.js';

const spinUntil = (t: number) => {
  while (Date.now() < t) {
    /* busy: timers are too coarse for the boundary */
  }
};

/**
 * probe19's race, on any budget store: with `concurrent: 1`, plan A is charged through `one` to expire
 * in 300 ms; right at that instant A's `beginApplying` (the execute activity about to send) runs
 * through `one` while `two` (another replica's store on the same ledger) charges B1, B2, … until one
 * is admitted. A round violates the promise when A began applying (it may send) and a B was admitted
 * beside it; the ledger's snapshot after each round counts the charges holding a slot.
 */
export async function expectNoTwoHoldersAtExpiry(one: BudgetStore, two: BudgetStore, { rounds: total, tag }: { rounds: number; tag: string }): Promise<void> {
  const limits = { concurrent: 1 };
  const rounds: { round: number; aBegan: boolean; bAdmitted?: string; holders: number }[] = [];
  for (let round = 0; round < total; round++) {
    const principal = `agent:${tag}-${round}`;
    const expiresAt = Date.now() + 300;
    expect((await one.charge(limits, { planId: `a-${round}`, principal, destructive: false, guest: 'lab/100', expiresAt })).admitted).toBe(true);
    // A's beginApplying fires a little before the expiry (varied per round), B's charges around it.
    const aAt = expiresAt - (round % 8);
    spinUntil(expiresAt - 10);
    const bs = (async () => {
      for (let i = 0; Date.now() < expiresAt + 40; i++) {
        const v = await two.charge(limits, { planId: `b-${round}-${i}`, principal, destructive: false, guest: 'lab/101', expiresAt: Date.now() + 60_000 });
        if (v.admitted) return v.charge.planId;
      }
      return undefined;
    })();
    spinUntil(aAt);
    const a = await one.beginApplying(`a-${round}`);
    const bAdmitted = await bs;
    const { charges, now } = await one.snapshot();
    const holders = charges.filter((c) => c.principal === principal && c.releasedAt === undefined && (c.applyingAt !== undefined ? c.lapseAt : c.expiresAt) > now).length;
    rounds.push({ round, aBegan: a.ok, ...(bAdmitted ? { bAdmitted } : {}), holders });
  }
  const bad = rounds.filter((r) => r.aBegan && r.bAdmitted);
  console.log(JSON.stringify({ rounds: total, aBegan: rounds.filter((r) => r.aBegan).length, bAdmitted: rounds.filter((r) => r.bAdmitted).length, bothRounds: bad.length, maxHolders: Math.max(...rounds.map((r) => r.holders)), bad: bad.slice(0, 5) }));
  expect(bad, 'rounds where A began applying (may send) and B was admitted beside it').toEqual([]);
  expect(Math.max(...rounds.map((r) => r.holders))).toBeLessThanOrEqual(1);
}
