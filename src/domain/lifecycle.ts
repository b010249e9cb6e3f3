/**
 * Plan lifecycle states (docs/plan-apply-lifecycle.md). Workflow-safe: no imports.
 */
export const PLAN_STATUSES = [
  'planned',
  'awaiting_approval',
  'approved',
  'applying',
  'succeeded',
  'failed',
  'rejected',
  'expired',
  'denied',
] as const;
export type PlanStatus = (typeof PLAN_STATUSES)[number];

export const TERMINAL_STATUSES: readonly PlanStatus[] = ['succeeded', 'failed', 'rejected', 'expired', 'denied'];

export function isTerminal(status: PlanStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export const DECISIONS = ['allowed', 'requires_approval', 'denied'] as const;
export type Decision = (typeof DECISIONS)[number];
