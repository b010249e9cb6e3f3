import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chargeBudget } from '../../src/budgets/charge.js';
import { openFileBudgetStore } from '../../src/budgets/file-store.js';
import type { BudgetRefusal } from '../../src/budgets/ledger.js';
import type { PolicyResult } from '../../src/activities/types.js';
import { normalizeRequest } from '../../src/domain/request.js';

const policy = (decision: PolicyResult['decision']): PolicyResult => ({
  risk: 'medium',
  decision,
  approvalsRequired: 0,
  requirements: [],
  reasons: [{ rule: 'catalog.base_risk', message: 'medium' }],
  policyVersion: 'v',
  evaluatedAt: new Date().toISOString(),
  planTtlSeconds: 3600,
});
const request = (vmid: number) => normalizeRequest({ action: 'vm.delete', environment: 'lab', target: { vmid }, params: {}, reason: 'test' });

describe('charging a plan', () => {
  it('charges what policy admits, denies past the budget with a budget reason, and leaves denied plans and unbudgeted principals alone', async () => {
    const ledger = await openFileBudgetStore(join(mkdtempSync(join(tmpdir(), 'pa-charge-')), 'ledger.json'));
    const refusals: BudgetRefusal[] = [];
    const deps = { store: ledger, limits: () => ({ 'agent:pi': { perHour: { destructive: 1 } } }), onRefusal: (r: BudgetRefusal) => refusals.push(r) };

    expect(await chargeBudget(deps, { planId: 'p1', principal: 'agent:pi', request: request(100), policy: policy('allowed') })).toMatchObject({ budgeted: true, policy: { decision: 'allowed' } });
    // Denied by policy: never charged, so it does not use up the budget.
    expect(await chargeBudget(deps, { planId: 'p0', principal: 'agent:pi', request: request(101), policy: policy('denied') })).toMatchObject({ budgeted: false });
    const over = await chargeBudget(deps, { planId: 'p2', principal: 'agent:pi', request: request(101), policy: policy('requires_approval') });
    expect(over.budgeted).toBe(false);
    expect(over.policy.decision).toBe('denied');
    expect(over.policy.reasons.map((r) => r.rule)).toEqual(['catalog.base_risk', 'budget.destructive']);
    expect(refusals).toEqual([expect.objectContaining({ principal: 'agent:pi', budget: 'destructive', limit: 1, used: 1 })]);
    // Another principal has no budgets: not charged.
    expect(await chargeBudget(deps, { planId: 'p3', principal: 'agent:free', request: request(100), policy: policy('allowed') })).toMatchObject({ budgeted: false, policy: { decision: 'allowed' } });
    expect((await ledger.snapshot()).charges.map((c) => c.planId)).toEqual(['p1']);
  });
});
