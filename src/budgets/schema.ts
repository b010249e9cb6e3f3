import { z } from 'zod';

/**
 * Budgets per principal (docs/policy.md, "Budgets"): how much one principal may do, whatever its
 * plans look like one by one. Keyed by principal (`agent:pi-demo`), as tokens name it; every limit is
 * optional and a positive integer (a limit of 0 would be a deny rule: write one in `policy`).
 */
const limit = z.number().int().min(1).max(100_000);

export const budgetLimitsSchema = z.strictObject({
  perHour: z
    .strictObject({
      destructive: limit.optional().describe('Plans of actions the catalog marks destructive, admitted in the last hour (sliding)'),
      guests: limit.optional().describe('Distinct guests (environment + vmid) targeted by plans admitted in the last hour (sliding)'),
    })
    .optional(),
  concurrent: limit.optional().describe('Plans of this principal admitted and not yet ended'),
});

export const budgetsSchema = z.record(z.string().min(1), budgetLimitsSchema).default({});

export type BudgetLimits = z.output<typeof budgetLimitsSchema>;
export type BudgetsConfig = z.output<typeof budgetsSchema>;

export const BUDGET_NAMES = ['destructive', 'guests', 'concurrent'] as const;
export type BudgetName = (typeof BUDGET_NAMES)[number];

/** The configured limit of one budget, if any. */
export function limitOf(limits: BudgetLimits, budget: BudgetName): number | undefined {
  return budget === 'concurrent' ? limits.concurrent : limits.perHour?.[budget];
}
