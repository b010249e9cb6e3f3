import { z } from 'zod';
import { ACTION_NAMES, ACTIONS, findAction } from './actions/catalog.js';

/** Proxmox `pve-node` names. */
export const nodeName = z
  .string()
  .regex(/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/, 'must be a Proxmox node name (letters, digits and "-")')
  .max(63);

/** Proxmox `pve-vmid`. */
export const vmid = z.number().int().min(100).max(999_999_999);

export const ENVIRONMENT_NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;
export const environmentName = z.string().regex(ENVIRONMENT_NAME_RE, 'must be lowercase letters, digits and "-", starting with a letter');

export const targetSchema = z.strictObject({
  node: nodeName.optional().describe('Node the guest lives on; resolved from the cluster when omitted'),
  vmid: vmid.describe('Guest ID'),
});

/**
 * The action request as the agent sends it. Params are checked against the action's own schema in
 * `normalizeRequest`, because which schema applies depends on `action`.
 */
export const actionRequestSchema = z.strictObject({
  action: z.string().min(1).describe(`One of: ${ACTION_NAMES.join(', ')}`),
  environment: environmentName,
  target: targetSchema,
  params: z.record(z.string(), z.unknown()).default({}),
  reason: z.string().trim().min(1, 'say why this change is needed').max(2000),
});
export type ActionRequestInput = z.input<typeof actionRequestSchema>;

/**
 * The same request as one variant per catalog action, each with that action's own params schema
 * (OpenAPI: oneOf with a discriminator on `action`). This is what the API validates and documents,
 * so that a body valid by the published schema is one the service accepts; `extra` adds members
 * (e.g. `at` for policy evaluation). normalizeRequest still does the defaulting and hashing.
 */
export function actionRequestVariants<E extends z.core.$ZodLooseShape = Record<never, never>>(extra?: E) {
  const base = actionRequestSchema.shape;
  const variants = ACTIONS.map((a) =>
    z.strictObject({
      action: z.literal(a.name).describe(a.summary),
      environment: base.environment,
      target: base.target,
      // Optional (default {}) only where {} is valid params for the action; else required.
      params: a.params.safeParse({}).success ? (a.params as z.ZodType<Record<string, unknown>>).default({}) : (a.params as z.ZodType<Record<string, unknown>>),
      reason: base.reason,
      ...(extra ?? ({} as E)),
    }),
  );
  return z.discriminatedUnion('action', variants as unknown as [(typeof variants)[number], ...(typeof variants)[number][]], {
    error: (issue) =>
      issue.code === 'invalid_union' && 'note' in issue && issue.note === 'No matching discriminator'
        ? `unknown action '${String((issue.input as { action?: unknown } | undefined)?.action)}'; see GET /v1/catalog`
        : undefined,
  });
}

/** A request after validation and defaulting: the exact object that is hashed and approved. */
export interface NormalizedRequest {
  action: string;
  environment: string;
  target: { node?: string; vmid: number };
  params: Record<string, unknown>;
  reason: string;
}

export class RequestValidationError extends Error {
  override readonly name = 'RequestValidationError';
  constructor(readonly issues: { path: string; message: string }[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('; '));
  }
}

const toIssues = (error: z.ZodError, prefix: string[] = []) =>
  error.issues.map((i) => ({ path: [...prefix, ...i.path.map(String)].join('.') || '(body)', message: i.message }));

/**
 * Validate and normalize: unknown actions and unknown params are rejected, defaults are filled in,
 * so two requests that mean the same thing normalize (and hash) the same.
 */
export function normalizeRequest(input: unknown): NormalizedRequest {
  const base = actionRequestSchema.safeParse(input);
  if (!base.success) throw new RequestValidationError(toIssues(base.error));
  const action = findAction(base.data.action);
  if (!action) {
    throw new RequestValidationError([
      { path: 'action', message: `unknown action '${base.data.action}'; see GET /v1/catalog` },
    ]);
  }
  const params = action.params.safeParse(base.data.params);
  if (!params.success) throw new RequestValidationError(toIssues(params.error, ['params']));
  const { node, vmid: id } = base.data.target;
  return {
    action: action.name,
    environment: base.data.environment,
    target: node === undefined ? { vmid: id } : { node, vmid: id },
    params: params.data as Record<string, unknown>,
    reason: base.data.reason,
  };
}
