/**
 * The refusals a plan's run raises to a message (apply, plan replay) or an execute, by failure type.
 * The workflow raises them, activities raise `frozen`, and the API maps each once to an HTTP problem.
 */
export const REFUSALS = {
  idempotencyConflict: 'IdempotencyKeyConflict',
  hashMismatch: 'RequestHashMismatch',
  expired: 'PlanExpired',
  denied: 'PlanDenied',
  rejected: 'PlanRejected',
  finished: 'PlanFinished',
  stale: 'PlanStale',
  forbidden: 'Forbidden',
  notReady: 'PlanNotReady',
  /** A plan request replayed on a run whose plan is made: answered from the state query. */
  planExists: 'PlanExists',
  /** An execute refused because its environment is frozen: the run holds until the freeze is lifted. */
  frozen: 'EnvironmentFrozen',
  /** An execute refused because the plan's budget slot lapsed at its expiry before it began (docs/policy.md). */
  budgetLapsed: 'BudgetSlotLapsed',
} as const;
