import { z } from 'zod';
import { RISKS } from '../domain/risk.js';

const risk = z.enum(RISKS);

/** A rule's match: every field given must match (AND); within a list any entry may match (OR). */
export const ruleMatchSchema = z.strictObject({
  actions: z.array(z.string().min(1)).min(1).optional().describe('Action names or globs, e.g. "vm.*"'),
  environments: z.array(z.string().min(1)).min(1).optional(),
  nodes: z.array(z.string().min(1)).min(1).optional(),
  vmids: z
    .array(z.union([z.number().int(), z.string().regex(/^\d+-\d+$/, 'a range like "200-299"')]))
    .min(1)
    .optional(),
  tags: z.array(z.string().min(1)).min(1).optional().describe('The guest carries any of these tags'),
});

export const policyRuleSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase id: letters, digits, ".", "_", "-"'),
  description: z.string().optional(),
  match: ruleMatchSchema,
  risk: risk.optional().describe('Raise (never lower) the risk'),
  decision: z.enum(['deny', 'require_approval']).optional(),
  approvals: z.number().int().min(1).max(10).optional().describe('Distinct approvers required'),
  message: z.string().optional(),
});

export const policySchema = z
  .strictObject({
    /** How long a plan stays valid: apply and approvals must arrive before it expires. */
    planTtlSeconds: z.number().int().min(1).max(7 * 24 * 3600).default(3600),
    /** Approvals required per risk when no rule says otherwise. */
    approvalsByRisk: z
      .strictObject({
        low: z.number().int().min(0).max(10),
        medium: z.number().int().min(0).max(10),
        high: z.number().int().min(0).max(10),
        critical: z.number().int().min(0).max(10),
      })
      .default({ low: 0, medium: 0, high: 1, critical: 2 }),
    rules: z.array(policyRuleSchema).default([]),
  })
  .superRefine((policy, ctx) => {
    const seen = new Set<string>();
    policy.rules.forEach((rule, i) => {
      if (seen.has(rule.id)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate rule id '${rule.id}'` });
      seen.add(rule.id);
      if (!rule.risk && !rule.decision && !rule.approvals)
        ctx.addIssue({ code: 'custom', path: ['rules', i], message: 'a rule must set risk, decision or approvals' });
    });
  });

export type PolicyConfig = z.output<typeof policySchema>;
export type PolicyRule = z.output<typeof policyRuleSchema>;
