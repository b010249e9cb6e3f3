import { findAction } from '../domain/actions/catalog.js';
import type { NormalizedRequest } from '../domain/request.js';
import type { PolicyResult } from '../activities/types.js';
import { guestKey, type BudgetRefusal } from './ledger.js';
import { budgetReason } from './reasons.js';
import type { BudgetsConfig } from './schema.js';
import type { BudgetStore } from './store.js';

/**
 * A plan's run ends a little after its expiry (the expiry is recorded, then the charge released): a
 * concurrency slot's `freesAt` is the expiry plus this, so it is a time by which the slot is free.
 */
const RELEASE_SLACK_MS = 60_000;

export interface BudgetDeps {
  store: BudgetStore;
  /** Read at every charge, like the policy, so a config reload applies to the next plan. */
  limits: () => BudgetsConfig;
  /** Told of each budget a refused plan would overrun (the refusals metric). */
  onRefusal?: (refusal: BudgetRefusal) => void;
}

/**
 * Charges a plan policy admitted against its principal's budgets. Over budget, the plan is denied
 * with one `budget.<name>` reason per budget it would overrun; a plan policy denies, or a principal
 * without budgets, is not charged at all.
 */
export async function chargeBudget(
  deps: BudgetDeps,
  plan: { planId: string; principal: string; request: NormalizedRequest; policy: PolicyResult },
): Promise<{ policy: PolicyResult; budgeted: boolean; expiresBy?: string }> {
  const limits = deps.limits()[plan.principal];
  const { policy, request } = plan;
  if (!limits || policy.decision === 'denied') return { policy, budgeted: false };
  const verdict = await deps.store.charge(limits, {
    planId: plan.planId,
    principal: plan.principal,
    destructive: findAction(request.action)?.destructive ?? true,
    guest: guestKey(request.environment, request.target.vmid),
    expiresAt: Date.now() + policy.planTtlSeconds * 1000 + RELEASE_SLACK_MS,
  });
  // The plan must expire no later than its charge says (a retried or late assessment finds the
  // charge made the first time): that is what makes the `freesAt` told to others true.
  if (verdict.admitted) return { policy, budgeted: true, expiresBy: new Date(verdict.charge.expiresAt - RELEASE_SLACK_MS).toISOString() };
  for (const r of verdict.refusals) deps.onRefusal?.(r);
  return { policy: { ...policy, decision: 'denied', reasons: [...policy.reasons, ...verdict.refusals.map(budgetReason)] }, budgeted: false };
}
