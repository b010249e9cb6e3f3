import type { Reason } from '../domain/plan-view.js';
import type { BudgetRefusal } from './ledger.js';

const WHAT = {
  destructive: (n: number) => `${n} destructive plan(s) in the last hour`,
  guests: (n: number) => `${n} distinct guest(s) in the last hour`,
  concurrent: (n: number) => `${n} plan(s) not yet ended`,
} as const;

/** A refusal as a plan decision's reason: `budget.<name>`, with the budget, limit, use and `freesAt`. */
export function budgetReason(r: BudgetRefusal): Reason {
  const held = r.heldBy?.length ? ` (held by ${r.heldBy.join(', ')})` : '';
  return {
    rule: `budget.${r.budget}`,
    message: `${r.principal} has used its budget of ${WHAT[r.budget](r.limit)}: ${r.used} of ${r.limit}${held}`,
    hint:
      r.budget === 'concurrent'
        ? `a slot frees when one of these plans ends (apply, reject or let it expire), by ${r.freesAt} at the latest unless one of them begins applying before then; plan again after that`
        : `plan again at or after ${r.freesAt}; GET /v1/budgets shows the usage`,
    budget: { principal: r.principal, name: r.budget, limit: r.limit, used: r.used, freesAt: r.freesAt, ...(r.heldBy ? { heldBy: r.heldBy } : {}) },
  };
}
