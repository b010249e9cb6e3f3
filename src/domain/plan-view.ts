import { z } from 'zod';
import { DECISIONS, PLAN_STATUSES } from './lifecycle.js';
import { RISKS } from './risk.js';
import type { Freeze } from './freeze.js';

/**
 * The shapes a plan is reported in: the workflow's state, the API's responses and the OpenAPI
 * document all derive from these schemas. Workflow code imports only their inferred types.
 */
export const channelSchema = z.enum(['api', 'cli', 'chat']);

export const actorSchema = z.object({
  principal: z.string().describe('Who acted, e.g. agent:pi or human:alice'),
  tokenId: z.string().describe('The API token used'),
  channel: channelSchema,
});

export const reasonSchema = z.object({
  rule: z.string().describe('Machine-readable rule id, e.g. catalog.base_risk, policy.prod-freeze, approval.required'),
  message: z.string(),
  hint: z.string().optional().describe('What would change this outcome, so an agent can adapt instead of retrying'),
  nodes: z
    .array(
      z.object({
        node: z.string().optional().describe("The node's name; absent when the guest's node could not be read (the rule then matches, failing closed)"),
        role: z.enum(['source', 'destination']).describe("source: the node the guest is on; destination: the node a migrate or clone puts it on (params.target)"),
      }),
    )
    .optional()
    .describe('For a rule with `nodes`: each node of the action that the rule matched, and why it counts'),
  budget: z
    .object({
      principal: z.string(),
      name: z.enum(['destructive', 'guests', 'concurrent']).describe('destructive and guests: per sliding hour; concurrent: plans not yet ended'),
      limit: z.number().int(),
      used: z.number().int().describe('What counts against the budget now'),
      freesAt: z.string().describe('When the budget has room again (ISO 8601); at the latest (for concurrent: the earliest expiry of the plans holding it, or the lapse of one applying; sooner if one ends, later if one begins applying before then)'),
      heldBy: z.array(z.string()).optional().describe('For concurrent: the plans holding its slots'),
    })
    .optional()
    .describe('For a `budget.<name>` refusal: which budget of which principal is used up, and when it frees (docs/policy.md, "Budgets")'),
});

/** One condition of the approval gate; the gate is open when every requirement is met. */
export const approvalRequirementSchema = z.object({
  id: z.string().describe('risk.<risk> for the default, policy.<rule id> for a rule'),
  count: z.number().int().describe('Distinct approvers (never the requester) needed'),
  roles: z.array(z.string()).optional().describe('Only approvers holding one of these roles count'),
  channels: z.array(z.enum(['api', 'cli', 'chat'])).optional().describe('Only approvals through these channels count (step-up)'),
});

export const approvalSchema = z.object({
  principal: z.string(),
  tokenId: z.string(),
  roles: z.array(z.string()).default([]).describe("The approver's roles when the approval was given"),
  channel: channelSchema,
  decision: z.enum(['approve', 'reject']),
  comment: z.string().optional(),
  at: z.string().describe('ISO 8601 time the run recorded it'),
  decisionId: z.string().optional().describe('Names the request that carried this decision'),
});

export const guestStateSchema = z.object({
  exists: z.boolean(),
  kind: z.enum(['qemu', 'lxc']),
  node: z.string(),
  vmid: z.number().int(),
  name: z.string().optional(),
  status: z.enum(['running', 'stopped']).optional(),
  qmpstatus: z.string().optional(),
  lock: z.string().optional(),
  tags: z.array(z.string()),
  pool: z.string().optional(),
  haManaged: z.boolean(),
  template: z.boolean(),
  protection: z.boolean(),
  digest: z.string().optional(),
  config: z.record(z.string(), z.string()).optional().describe('The config keys the action compares (sizing, names, flags, disks)'),
  snapshots: z.array(z.string()),
  peer: z
    .object({
      vmid: z.number().int(),
      exists: z.boolean(),
      kind: z.enum(['qemu', 'lxc']).optional(),
      node: z.string().optional(),
      name: z.string().optional(),
      lock: z.string().optional(),
    })
    .optional()
    .describe('The other guest the action depends on: the clone target id'),
  snapshotSupport: z
    .object({ capable: z.boolean(), reason: z.string().optional() })
    .optional()
    .describe("Whether every disk's storage takes snapshots: read when policy asks for `safeguard: snapshot`"),
  backupStorage: z
    .object({
      storage: z.string(),
      exists: z.boolean(),
      acceptsBackups: z.boolean(),
      backups: z.array(z.object({ volid: z.string(), ctime: z.number(), notes: z.string().optional() })),
    })
    .optional()
    .describe("The backup target and this guest's backups in it"),
});

export const fingerprintSchema = z.object({
  exists: z.boolean(),
  status: z.string().optional(),
  lock: z.string().optional(),
  digest: z.string().optional(),
});

export const preflightSchema = z.object({
  state: guestStateSchema.optional().describe('The target as Proxmox reported it when checked'),
  fingerprint: fingerprintSchema.optional().describe('The fields whose change between plan and apply makes the plan stale'),
  assessment: z.object({
    kind: z.enum(['proceed', 'already_done', 'blocked', 'unavailable']),
    reason: z.string().optional(),
    note: z.string().optional(),
  }),
  checkedAt: z.string(),
});

export const actionResultSchema = z.object({
  outcome: z
    .enum(['applied', 'noop', 'failed', 'outcome_unknown'])
    .describe('outcome_unknown: something was sent to Proxmox and what it did cannot be known (see message and upid); never reported as success or a clean failure'),
  upid: z.string().optional().describe('The Proxmox task id'),
  exitstatus: z.string().optional(),
  message: z.string().optional(),
  errorType: z.string().optional().describe('Machine-readable failure type (Proxmox error class or PlanStale)'),
  logTail: z.array(z.string()).optional(),
  digestAfter: z.string().optional().describe('Config digest the change left (config update, disk resize): an undo runs only against this config'),
  pendingUntilRestart: z
    .array(z.string())
    .optional()
    .describe('Config keys the running guest could not take live: Proxmox keeps them pending until its next start or reboot (the message says so)'),
  safeguard: z
    .object({ snapshot: z.string(), upid: z.string().optional() })
    .optional()
    .describe('The snapshot taken before the action (policy `safeguard: snapshot`), and its task; on a SafeguardFailed result, the one that could not be taken'),
  finishedAt: z.string(),
});

/** A freeze of an environment (src/domain/freeze.ts): while active, no apply starts there. */
export const freezeSchema = z.object({
  id: z.string().describe('frz_ + 20 hex digits'),
  environment: z.string(),
  reason: z.string(),
  by: z.string().describe('The admin who froze the environment'),
  at: z.string().describe('ISO 8601'),
  liftedBy: z.string().optional(),
  liftedAt: z.string().optional().describe('ISO 8601; absent while the freeze holds'),
});

export const planViewSchema = z.object({
  planId: z.string(),
  requestHash: z.string().describe('sha256 over the RFC 8785 canonical JSON of the normalized request'),
  action: z.string(),
  environment: z.string(),
  target: z.object({ node: z.string().optional(), vmid: z.number().int() }),
  params: z.record(z.string(), z.unknown()),
  reason: z.string(),
  requester: actorSchema,
  status: z.enum(PLAN_STATUSES),
  risk: z.enum(RISKS),
  decision: z.enum(DECISIONS),
  reasons: z.array(reasonSchema),
  policyVersion: z.string(),
  approval: z.object({
    required: z.number().int().describe('Distinct approvers needed at least (the largest requirement)'),
    received: z.number().int().describe('Distinct approvers counted so far'),
    requirements: z.array(approvalRequirementSchema.extend({ received: z.number().int() })),
    approvers: z.array(approvalSchema),
    rejectedBy: approvalSchema.optional(),
    refused: z.array(z.object({ principal: z.string(), reason: z.string(), at: z.string(), decisionId: z.string().optional() })),
  }),
  preflight: preflightSchema,
  applyRequested: z.boolean(),
  appliedBy: actorSchema.optional(),
  createdAt: z.string(),
  expiresAt: z.string(),
  updatedAt: z.string(),
  result: actionResultSchema.optional(),
  frozen: freezeSchema
    .optional()
    .describe('The freeze (kill switch) of the environment, when the plan was made under it or its run is held by it: it runs once the freeze is lifted, unless it expires first'),
  safeguard: z
    .object({
      kind: z.literal('snapshot'),
      name: z.string().describe('The snapshot name on Proxmox, derived from the plan id'),
      taken: z
        .object({ upid: z.string().optional(), digestAfter: z.string().optional() })
        .optional()
        .describe('Once the snapshot is taken: its task, and the config digest it left (what the action is held to)'),
    })
    .optional()
    .describe('Policy asked for a snapshot of the guest, under this name, before the action runs (docs/policy.md, "Safeguards")'),
  undoes: z.string().optional().describe('This plan is the undo of that plan (POST /v1/actions/{planId}/undo)'),
  undoneBy: z.string().optional().describe('The undo plan of this plan, once one was requested'),
  undo: z
    .object({
      inverse: z
        .object({ action: z.string(), target: z.object({ vmid: z.number().int() }), params: z.record(z.string(), z.unknown()) })
        .nullable()
        .describe('The request that takes this plan back; null when the action cannot be undone'),
      reason: z.string().describe('What the inverse does, or why there is none'),
    })
    .optional()
    .describe("The plan's inverse, from its params and the state its preflight read"),
});

export type Channel = z.infer<typeof channelSchema>;
export type Actor = z.infer<typeof actorSchema>;
export type Reason = z.infer<typeof reasonSchema>;
export type Approval = z.infer<typeof approvalSchema>;
export type ApprovalRequirement = z.infer<typeof approvalRequirementSchema>;
export type Preflight = z.infer<typeof preflightSchema>;
export type ActionResult = z.infer<typeof actionResultSchema>;
export type PlanView = z.infer<typeof planViewSchema>;

// The view's freeze is the journal's (src/domain/freeze.ts): a drift between the two fails to compile.
const _sameFreeze: [z.infer<typeof freezeSchema>, Freeze] extends [Freeze, z.infer<typeof freezeSchema>] ? true : never = true;
void _sameFreeze;

/** The preflight of a target that could not be read (Proxmox failed, or did not answer in time): no state, no fingerprint. */
export function unreadablePreflight(reason: string, checkedAt: string): Preflight {
  return { assessment: { kind: 'unavailable', reason }, checkedAt };
}
