import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { buildEvidenceBundle, EVIDENCE_FORMAT } from '../../audit/evidence.js';
import type { AuditStore } from '../../audit/store.js';
import type { NormalizedRequest } from '../../domain/request.js';
import { planViewSchema } from '../../domain/plan-view.js';
import type { ApiDeps, AppEnv } from '../http/context.js';
import { ApiError, problemResponses } from '../http/problems.js';
import { planIdParams } from '../openapi/schemas.js';
import { withUndoLinks } from '../plans/undo-links.js';
import { readVisiblePlan } from '../plans/visibility.js';

const head = z.object({ seq: z.number().int(), hash: z.string() });

const checkpointSchema = head
  .extend({
    type: z.literal('proxmox-agent.audit.checkpoint.v1'),
    time: z.string(),
    keyId: z.string().describe('First 16 hex digits of SHA-256 over the public key (SPKI DER)'),
    signature: z.string().describe('Base64 Ed25519 signature over the RFC 8785 JSON of the other fields'),
  })
  .openapi('AuditCheckpoint');

const auditRecordSchema = z
  .looseObject({
    seq: z.number().int(),
    time: z.string(),
    eventId: z.string(),
    planId: z.string(),
    event: z.string(),
    actor: z.string().optional(),
    channel: z.string().optional(),
    requestHash: z.string(),
    upid: z.string().optional(),
    outcome: z.string().optional(),
    prevHash: z.string(),
    hash: z.string().describe('sha256 over the RFC 8785 JSON of every other field'),
  })
  .openapi('AuditRecord');

export const evidenceSchema = z
  .object({
    format: z.literal(EVIDENCE_FORMAT),
    generatedAt: z.string(),
    planId: z.string(),
    request: z
      .object({
        action: z.string(),
        environment: z.string(),
        target: z.object({ node: z.string().optional(), vmid: z.number().int() }),
        params: z.record(z.string(), z.unknown()),
        reason: z.string(),
      })
      .optional()
      .describe('The normalized request the run was started with: RFC 8785 JSON of it hashes to requestHash'),
    requestHash: z.string(),
    requester: planViewSchema.shape.requester,
    decision: planViewSchema.pick({ risk: true, decision: true, policyVersion: true, reasons: true }),
    approval: planViewSchema.shape.approval,
    proxmox: z.object({
      node: z.string().optional(),
      upid: z.string().optional(),
      exitstatus: z.string().optional(),
      taskLog: z.object({ lines: z.array(z.string()), total: z.number().int().optional(), truncated: z.boolean() }).optional(),
      taskLogError: z.string().optional(),
    }),
    outcome: z.object({ status: planViewSchema.shape.status, result: planViewSchema.shape.result }),
    undo: planViewSchema.shape.undo
      .unwrap()
      .extend({ undoes: planViewSchema.shape.undoes, undoneBy: planViewSchema.shape.undoneBy })
      .optional()
      .describe("The plan's inverse (null: none, and why), the plan it undoes, and the plan that undid it"),
    safeguard: planViewSchema.shape.safeguard.describe('The snapshot policy asked for before the action (`safeguard: snapshot`): its name, and its task once taken'),
    audit: z.object({
      records: z.array(auditRecordSchema),
      head,
      // The newest checkpoint written, when it is at or after the run's last record (it covers the run);
      // absent when none does yet (checkpointNote) or signing is off. (No describe(): it would land on
      // the AuditCheckpoint component.)
      checkpoint: checkpointSchema.optional(),
      checkpointNote: z
        .string()
        .optional()
        .describe(
          "Present when signing is on but no signed checkpoint covers the run's last record yet (then `checkpoint` is absent): which record, the newest checkpoint, and when to ask again. The store signs on its own schedule, never for a request",
        ),
      publicKey: z.string().optional().describe('PEM (SPKI) of the key that signed the checkpoint'),
    }),
  })
  .openapi('EvidenceBundle');

const evidenceRoute = createRoute({
  method: 'get',
  path: '/v1/actions/{planId}/evidence',
  tags: ['audit'],
  summary: "A run's evidence bundle, verifiable offline",
  description:
    'The request and its hash, the policy decision and reasons, approvals with identities and channels, the Proxmox task id and log, the outcome, and the audit records with their chain hashes and the newest signed chain head that covers them (when signing is configured; until the store has signed one, `audit.checkpointNote` says so instead). Reading it writes nothing. Check it with `proxmox-agent audit verify --bundle`.',
  security: [{ bearer: [] }],
  request: { params: planIdParams },
  responses: {
    200: { description: 'The evidence bundle', content: { 'application/json': { schema: evidenceSchema } } },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'plan-not-found', 'rate-limited', 'temporal-unavailable'),
  },
});

export function registerEvidenceRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  app.openapi(evidenceRoute, async (c) => {
    const caller = c.get('caller');
    const { planId } = c.req.valid('param');
    const view = await withUndoLinks(deps.plans, await readVisiblePlan(deps.plans, planId, caller));
    const evidence = deps.evidence;
    if (!evidence) throw new ApiError('not-found', 'this API process has no access to the audit log');
    // Head first, then records (so every record of the run up to the head is included), then the newest
    // checkpoint already written: it covers the run if it is at or after the last record. A GET reads
    // only; it never signs (the store signs every N records and T seconds after an unsigned append).
    const head = await evidence.audit.head();
    const records = await evidence.audit.forPlan(planId);
    const [request, latestCheckpoint] = await Promise.all([evidence.runRequest(planId), evidence.audit.latestCheckpoint()]);
    const bundle = await buildEvidenceBundle({
      view,
      ...(request ? { request } : {}),
      records,
      head,
      ...(latestCheckpoint ? { latestCheckpoint } : {}),
      signing: evidence.audit.publicKeyPem !== undefined,
      ...(evidence.audit.publicKeyPem ? { publicKeyPem: evidence.audit.publicKeyPem } : {}),
      taskLog: (node, upid) => evidence.taskLog(view.environment, node, upid),
    });
    return c.json(bundle as z.infer<typeof evidenceSchema>, 200);
  });
}

/** What the evidence endpoint reads besides the plan itself. */
export interface EvidenceDeps {
  audit: Pick<AuditStore, 'forPlan' | 'head' | 'latestCheckpoint' | 'publicKeyPem'>;
  /** The normalized request the run was started with (its workflow input), if it can be read. */
  runRequest(planId: string): Promise<NormalizedRequest | undefined>;
  /** A Proxmox task's log lines, through the environment's client. */
  taskLog(environment: string, node: string, upid: string): Promise<{ lines: string[]; total?: number }>;
}
