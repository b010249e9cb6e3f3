import { describe, expect, it } from 'vitest';
import { beginApplying, budgetUsage, decideCharge, isSpent, LAPSE_AFTER_EXPIRY_MS, releaseCharge, WINDOW_MS, type Charge, type ChargeRequest } from '../../src/budgets/ledger.js';
import { budgetReason } from '../../src/budgets/reasons.js';

const T0 = Date.parse('2026-12-06T12:00:00Z');
const MIN = 60_000;
const P = 'agent:pi-demo';
const req = (n: number, o: Partial<ChargeRequest> = {}): ChargeRequest => ({ planId: `p${n}`, principal: P, destructive: false, guest: `lab/${100 + n}`, expiresAt: T0 + 60 * MIN, ...o });

/** Charges the requests one after another, each at its own minute; returns the ledger and verdicts. */
function run(limits: Parameters<typeof decideCharge>[0], requests: ChargeRequest[], start = T0, ledger: Charge[] = []) {
  const verdicts = requests.map((r, i) => {
    const v = decideCharge(limits, ledger, r, start + i * MIN);
    if (v.admitted && !ledger.includes(v.charge)) ledger.push(v.charge);
    return v;
  });
  return { ledger, verdicts };
}

describe('budget ledger', () => {
  it('admits destructive plans up to the limit, then names the budget and when its oldest charge leaves the sliding hour', () => {
    const { ledger, verdicts } = run({ perHour: { destructive: 2 } }, [req(1, { destructive: true }), req(2, { destructive: false }), req(3, { destructive: true }), req(4, { destructive: true })]);
    expect(verdicts.map((v) => v.admitted)).toEqual([true, true, true, false]);
    const refused = verdicts[3]!;
    expect(refused).toEqual({ admitted: false, refusals: [{ principal: P, budget: 'destructive', limit: 2, used: 2, freesAt: new Date(T0 + WINDOW_MS).toISOString() }] });
    // At freesAt exactly, the first charge no longer counts: room again (sliding, not a fixed clock hour).
    expect(decideCharge({ perHour: { destructive: 2 } }, ledger, req(5, { destructive: true }), T0 + WINDOW_MS - 1).admitted).toBe(false);
    expect(decideCharge({ perHour: { destructive: 2 } }, ledger, req(5, { destructive: true }), T0 + WINDOW_MS).admitted).toBe(true);
  });

  it('counts distinct guests: a guest already touched within the hour is free, a new one is refused at the limit', () => {
    const same = { guest: 'lab/100' };
    const { ledger, verdicts } = run({ perHour: { guests: 2 } }, [req(1, same), req(2, { guest: 'lab/101' }), req(3, same), req(4, { guest: 'prod/100' })]);
    expect(verdicts.map((v) => v.admitted)).toEqual([true, true, true, false]);
    // lab/101 was touched at T0+1min, lab/100 last at T0+2min: the first to leave is lab/101.
    expect(verdicts[3]).toMatchObject({ refusals: [{ budget: 'guests', used: 2, limit: 2, freesAt: new Date(T0 + MIN + WINDOW_MS).toISOString() }] });
    expect(budgetUsage(P, { perHour: { guests: 2 } }, ledger, T0 + 3 * MIN)).toEqual([
      { principal: P, budget: 'guests', limit: 2, used: 2, freesAt: new Date(T0 + MIN + WINDOW_MS).toISOString() },
    ]);
  });

  it('holds a concurrency slot until the run ends; a release frees it at once, and the refusal names the holders', () => {
    const { ledger, verdicts } = run({ concurrent: 2 }, [req(1, { expiresAt: T0 + 30 * MIN }), req(2, { expiresAt: T0 + 20 * MIN }), req(3)]);
    expect(verdicts[2]).toEqual({
      admitted: false,
      refusals: [{ principal: P, budget: 'concurrent', limit: 2, used: 2, freesAt: new Date(T0 + 20 * MIN).toISOString(), heldBy: ['p1', 'p2'] }],
    });
    ledger[0] = releaseCharge(ledger[0]!, { sent: true }, T0 + 3 * MIN);
    expect(decideCharge({ concurrent: 2 }, ledger, req(3), T0 + 3 * MIN).admitted).toBe(true);
  });

  it('a run that sent nothing is refunded from the hourly budgets; one that sent keeps its charge', () => {
    const limits = { perHour: { destructive: 1 } };
    const { ledger } = run(limits, [req(1, { destructive: true })]);
    const sent = [releaseCharge(ledger[0]!, { sent: true }, T0 + MIN)];
    expect(decideCharge(limits, sent, req(2, { destructive: true }), T0 + 2 * MIN).admitted).toBe(false);
    const notSent = [releaseCharge(ledger[0]!, { sent: false }, T0 + MIN)];
    expect(decideCharge(limits, notSent, req(2, { destructive: true }), T0 + 2 * MIN).admitted).toBe(true);
    // Releasing twice changes nothing (a retried activity).
    expect(releaseCharge(notSent[0]!, { sent: true }, T0 + 5 * MIN)).toBe(notSent[0]);
  });

  it('charging a plan again answers its charge, whatever the budget says now (a retried activity)', () => {
    const { ledger } = run({ concurrent: 1 }, [req(1)]);
    const again = decideCharge({ concurrent: 1 }, ledger, req(1), T0 + MIN);
    expect(again).toEqual({ admitted: true, charge: ledger[0] });
  });

  it('names every budget a plan would overrun, and other principals do not count', () => {
    const limits = { perHour: { destructive: 1, guests: 1 }, concurrent: 1 };
    const { ledger } = run(limits, [req(1, { destructive: true }), req(9, { principal: 'agent:other', destructive: true })]);
    const v = decideCharge(limits, ledger, req(2, { destructive: true }), T0 + 5 * MIN);
    expect(v.admitted ? [] : v.refusals.map((r) => r.budget)).toEqual(['destructive', 'guests', 'concurrent']);
  });

  it('a charge nobody released and not applying stops holding its slot at its expiry: the freesAt told is true', () => {
    // The run could not say it ended (its records cannot be written): its plan has expired all the same.
    const { ledger } = run({ concurrent: 1 }, [req(1)]);
    const expiry = T0 + 60 * MIN;
    expect(decideCharge({ concurrent: 1 }, ledger, req(2), expiry - 1)).toMatchObject({ refusals: [{ freesAt: new Date(expiry).toISOString() }] });
    expect(decideCharge({ concurrent: 1 }, ledger, req(2), expiry).admitted).toBe(true);
    // And its run may no longer begin its Proxmox step: the slot may be p2's now. So the charge is
    // kept (not spent) past its hour, until its lapse, for beginApplying to find and refuse.
    expect(beginApplying(ledger[0]!, expiry)).toEqual({ ok: false, lapsedAt: expiry });
    expect(isSpent(ledger[0]!, T0 + WINDOW_MS + 10 * MIN)).toBe(false);
    expect(isSpent(ledger[0]!, ledger[0]!.lapseAt)).toBe(true);
    expect(isSpent(releaseCharge(ledger[0]!, { sent: false }, expiry), T0 + WINDOW_MS + 10 * MIN)).toBe(true);
  });

  it('an applying charge holds its slot past its expiry until it is released, or its lapse; spent charges can be forgotten', () => {
    const { ledger } = run({ concurrent: 1 }, [req(1)]);
    const begun = beginApplying(ledger[0]!, T0 + 59 * MIN);
    expect(begun).toMatchObject({ ok: true, charge: { applyingAt: T0 + 59 * MIN } });
    const applying = [(begun as { charge: Charge }).charge];
    // Idempotent: a retried step finds it applying, even past the expiry.
    expect(beginApplying(applying[0]!, T0 + 90 * MIN)).toEqual({ ok: true, charge: applying[0] });
    const lapse = T0 + 60 * MIN + LAPSE_AFTER_EXPIRY_MS;
    expect(decideCharge({ concurrent: 1 }, applying, req(2), T0 + 61 * MIN)).toMatchObject({ refusals: [{ freesAt: new Date(lapse).toISOString(), heldBy: ['p1'] }] });
    expect(decideCharge({ concurrent: 1 }, applying, req(2), lapse - 1).admitted).toBe(false);
    expect(decideCharge({ concurrent: 1 }, applying, req(2), lapse).admitted).toBe(true);
    expect(decideCharge({ concurrent: 1 }, [releaseCharge(applying[0]!, { sent: true }, T0 + 70 * MIN)], req(2), T0 + 70 * MIN).admitted).toBe(true);
    expect(isSpent(applying[0]!, lapse - 1)).toBe(false);
    expect(isSpent(applying[0]!, lapse)).toBe(true);
  });

  it('a refusal becomes a machine-readable budget.<name> reason with freesAt', () => {
    const reason = budgetReason({ principal: P, budget: 'destructive', limit: 3, used: 3, freesAt: '2026-12-06T13:00:00.000Z' });
    expect(reason).toMatchObject({ rule: 'budget.destructive', budget: { principal: P, name: 'destructive', limit: 3, used: 3, freesAt: '2026-12-06T13:00:00.000Z' } });
    expect(reason.hint).toContain('2026-12-06T13:00:00.000Z');
  });
});
