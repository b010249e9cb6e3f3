import { z } from '@hono/zod-openapi';
import { actorSchema, approvalSchema, planViewSchema, reasonSchema } from '../../domain/plan-view.js';
import { actionRequestSchema, actionRequestVariants } from '../../domain/request.js';
import { PLAN_ID_PATTERN } from '../../domain/plan-id.js';
import { PLAN_STATUSES } from '../../domain/lifecycle.js';
import { WAIT_PATTERN } from '../plans/plan-watch.js';

/**
 * Request and response schemas of the HTTP API: validation, TypeScript types and OpenAPI at once.
 * Domain schemas are built with plain zod before @hono/zod-openapi extends it, so they are named
 * with zod's own `.meta({ id })`, which zod-to-openapi reads as the component name.
 */

export const planRequestSchema = actionRequestVariants().meta({
  id: 'PlanRequest',
  example: {
    action: 'vm.snapshot.create',
    environment: 'lab',
    target: { node: 'pve-lab', vmid: 100 },
    params: { snapname: 'before-upgrade' },
    reason: 'Snapshot before the kernel upgrade (ticket OPS-1234)',
  },
});

export const planIdSchema = z.string().regex(PLAN_ID_PATTERN, 'a plan id: plan_ followed by 26 base32 characters');

export const planIdParams = z.object({
  planId: planIdSchema.openapi({ param: { name: 'planId', in: 'path' }, example: 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G' }),
});

export const idempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, '1-255 visible ASCII characters')
    .optional()
    .openapi({ description: 'Repeat a request safely: the same key and body return the same plan; the same key with another body is refused (422).' }),
});

/**
 * Which client sent an approval: `api` (default) or `cli`. The header only selects among the channels
 * the token is granted in the config (`tokens[].channels`, default `api` only); naming another is
 * refused (403 channel-not-allowed), so a `channels: [cli]` policy requirement cannot be met by
 * claiming it. `chat` cannot be named at all: only the signature-verified endpoints under
 * /v1/channels record it.
 */
export const channelHeaders = z.object({
  'x-proxmox-agent-channel': z
    .enum(['api', 'cli'])
    .optional()
    .openapi({
      description:
        "The client that sends this approval: api (default) or cli. It must be one of the token's configured channels (tokens[].channels, default api only), else 403 /problems/channel-not-allowed. chat is only recorded by /v1/channels/*.",
    }),
});

/** The long poll of GET /v1/actions/{planId}. */
export const waitQuery = z.object({
  wait: z
    .string()
    .regex(WAIT_PATTERN, 'a duration: 30s, 500ms, 1m or seconds')
    .optional()
    .openapi({ description: 'Long poll: wait up to this long (at most 60 s; more is capped) for the status to change', example: '30s' }),
  status: z
    .enum(PLAN_STATUSES)
    .optional()
    .openapi({ description: 'With wait: the status you know; the answer comes when the plan is in any other. Default: its status when the call arrives.' }),
});

export const undoRequestSchema = z
  .strictObject({ reason: actionRequestSchema.shape.reason.describe('Why the change is taken back; the undo plan\'s reason') })
  .openapi('UndoRequest');

export const applyRequestSchema = z
  .strictObject({
    planId: planIdSchema,
    requestHash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex>').describe('The requestHash the plan returned'),
  })
  .openapi('ApplyRequest');

export const approvalRequestSchema = z
  .strictObject({
    decision: z.enum(['approve', 'reject']),
    comment: z.string().max(2000).optional(),
    requestHash: z
      .string()
      .regex(/^sha256:[0-9a-f]{64}$/)
      .optional()
      .describe('The requestHash you reviewed; if given, the approval counts only for exactly that request'),
  })
  .openapi('ApprovalRequest');

export const planResponseSchema = planViewSchema
  .extend({
    links: z.object({ self: z.string(), temporalUi: z.string().optional() }),
  })
  .meta({ id: 'Plan' });

export const applyResponseSchema = z
  .object({ planId: z.string(), status: z.enum(PLAN_STATUSES), links: z.object({ self: z.string() }) })
  .openapi('ApplyAccepted');

export const approvalResponseSchema = z
  .object({
    planId: z.string(),
    status: z.enum(PLAN_STATUSES),
    approval: z.object({ required: z.number().int(), received: z.number().int(), approvers: z.array(approvalSchema) }),
    recorded: z
      .boolean()
      .optional()
      .describe('true: the run recorded the decision and this is the plan as it stands. false: the run had not recorded it within 5 s (it was busy); this is the predicted outcome, and the plan shows the real one'),
  })
  .openapi('ApprovalAccepted');

export { actorSchema, reasonSchema };
