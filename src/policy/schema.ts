import { z } from 'zod';
import { RISKS } from '../domain/risk.js';
import { SAFEGUARDED_ACTIONS } from '../domain/safeguard.js';
import { globMatch } from './glob.js';

const risk = z.enum(RISKS);
const channel = z.enum(['api', 'cli', 'chat']);
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof DAYS)[number];

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time like "18:00"');
const instant = z.iso.datetime({ offset: true });

/**
 * A window matches when all of its fields match: `days` (in the rule's timezone), `between` a daily
 * start and end (the end may be past midnight), and `from`/`to` absolute instants (a change freeze).
 */
const windowSchema = z
  .strictObject({
    days: z.array(z.enum(DAYS)).min(1).optional(),
    between: z.tuple([hhmm, hhmm]).optional(),
    from: instant.optional(),
    to: instant.optional(),
  })
  .refine((w) => Object.keys(w).length > 0, 'an empty window would match always; give days, between or from/to')
  .refine((w) => !(w.from && w.to) || Date.parse(w.from) < Date.parse(w.to), 'from must be before to')
  .refine((w) => !w.between || w.between[0] !== w.between[1], 'between needs two different times');

const whenSchema = z.strictObject({
  timezone: z
    .string()
    .default('UTC')
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'an IANA time zone such as "Europe/Berlin"'),
  windows: z.array(windowSchema).min(1),
});

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
  pools: z.array(z.string().min(1)).min(1).optional().describe('The guest is in any of these pools'),
  when: whenSchema.optional().describe('Only inside these time windows (e.g. a change freeze)'),
});

/**
 * What approval a rule asks for. A number is shorthand for `{count}`. `roles` restricts who counts;
 * `channels` restricts where the approval came from (step-up: e.g. at least one from api/cli, not chat).
 */
const requirementSchema = z.union([
  z.number().int().min(1).max(10),
  z.strictObject({
    count: z.number().int().min(1).max(10),
    roles: z.array(z.string().min(1)).min(1).optional(),
    channels: z.array(channel).min(1).optional(),
  }),
]);

export const policyRuleSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase id: letters, digits, ".", "_", "-"'),
    description: z.string().optional(),
    match: ruleMatchSchema,
    risk: risk.optional().describe('Raise (never lower) the risk'),
    decision: z.enum(['allow', 'require_approval', 'deny']).optional(),
    approvals: z.union([requirementSchema, z.array(requirementSchema).min(1)]).optional(),
    message: z.string().optional().describe('Shown in the decision reasons'),
    hint: z.string().optional().describe('What would change the decision, for the agent'),
    safeguard: z
      .literal('snapshot')
      .optional()
      .describe('Take a snapshot of the guest, named after the plan, before a config update, disk resize or rollback; the plan is denied if the guest cannot be snapshotted'),
  })
  .refine((r) => r.risk || r.decision || r.approvals || r.safeguard, 'a rule must set risk, decision, approvals or safeguard')
  .refine((r) => !(r.decision === 'deny' && r.safeguard), 'a deny rule cannot also ask for a safeguard (nothing runs)')
  // A rule that names only actions a snapshot cannot take back is a mistake in the file; a glob that
  // also matches others (`*`, `vm.*`) is fine: those plans say the safeguard does not apply.
  .refine(
    (r) => !r.safeguard || !r.match.actions || r.match.actions.some((p) => [...SAFEGUARDED_ACTIONS].some((a) => globMatch(p, a))),
    { message: `safeguard: snapshot applies only to ${[...SAFEGUARDED_ACTIONS].join(', ')}; this rule's actions match none of them`, path: ['safeguard'] },
  )
  .refine((r) => !(r.decision === 'deny' && r.approvals), 'a deny rule cannot also ask for approvals (ambiguous)')
  .refine((r) => !(r.decision === 'allow' && r.approvals), 'an allow rule cannot ask for approvals (use require_approval)');

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
    });
    const a = policy.approvalsByRisk;
    if (!(a.low <= a.medium && a.medium <= a.high && a.high <= a.critical))
      ctx.addIssue({ code: 'custom', path: ['approvalsByRisk'], message: 'approvals must not decrease as risk rises' });
  });

export type PolicyConfig = z.output<typeof policySchema>;
export type PolicyRule = z.output<typeof policyRuleSchema>;
export type PolicyWindow = z.output<typeof windowSchema>;
export type RuleRequirement = z.output<typeof requirementSchema>;
