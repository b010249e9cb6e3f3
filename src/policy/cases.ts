import { z } from 'zod';
import { DECISIONS } from '../domain/lifecycle.js';
import { RISKS } from '../domain/risk.js';
import { normalizeRequest, RequestValidationError } from '../domain/request.js';
import type { GuestState } from '../domain/guest-state.js';
import type { Config } from '../config/schema.js';
import { evaluatePolicy, type PolicyDecision } from './engine.js';

/**
 * Policy test cases: a request (and, optionally, the target's state and the time) with the risk
 * and decision the policy must give. `proxmox-agent policy test FILE` runs them, so a policy change
 * is tested like code.
 */
const stateSchema = z.strictObject({
  exists: z.boolean().default(true),
  status: z.enum(['running', 'stopped']).default('running'),
  node: z.string().optional(),
  tags: z.array(z.string()).default([]),
  pool: z.string().optional(),
  lock: z.string().optional(),
  protection: z.boolean().default(false),
  haManaged: z.boolean().default(false),
});

const caseSchema = z.strictObject({
  name: z.string().min(1),
  request: z.record(z.string(), z.unknown()),
  state: stateSchema.optional(),
  at: z.iso.datetime({ offset: true }).optional(),
  expect: z.strictObject({
    risk: z.enum(RISKS).optional(),
    decision: z.enum(DECISIONS),
    approvals: z.number().int().min(0).optional().describe('Distinct approvers required at least'),
    rules: z.array(z.string()).optional().describe('Reason rule ids that must appear'),
  }),
});

export const casesFileSchema = z.strictObject({
  /** A config file whose environments and policy are tested; default: the service's config. */
  config: z.string().optional(),
  cases: z.array(caseSchema).min(1),
});

export type PolicyCase = z.output<typeof caseSchema>;

export interface CaseResult {
  name: string;
  ok: boolean;
  failures: string[];
  decision?: PolicyDecision;
}

export function runCases(config: Config, cases: PolicyCase[]): CaseResult[] {
  return cases.map((c) => runCase(config, c));
}

function runCase(config: Config, c: PolicyCase): CaseResult {
  let request;
  try {
    request = normalizeRequest({ reason: 'policy test', params: {}, ...c.request });
  } catch (err) {
    const message = err instanceof RequestValidationError ? err.message : String(err);
    return { name: c.name, ok: false, failures: [`request is not valid: ${message}`] };
  }
  const environment = config.environments[request.environment];
  if (!environment) return { name: c.name, ok: false, failures: [`unknown environment '${request.environment}'`] };
  const s = stateSchema.parse(c.state ?? {});
  const state: GuestState = {
    exists: s.exists,
    kind: request.action.startsWith('ct.') ? 'lxc' : 'qemu',
    node: s.node ?? request.target.node ?? 'node',
    vmid: request.target.vmid,
    status: s.status,
    tags: s.tags,
    ...(s.pool ? { pool: s.pool } : {}),
    ...(s.lock ? { lock: s.lock } : {}),
    haManaged: s.haManaged,
    template: false,
    protection: s.protection,
    snapshots: [],
  };
  const decision = evaluatePolicy(config.policy, {
    request,
    tier: environment.tier,
    state,
    assessment: { kind: 'proceed' },
    at: c.at ? new Date(c.at) : new Date(),
  });
  const failures: string[] = [];
  const want = c.expect;
  if (want.risk && decision.risk !== want.risk) failures.push(`risk: expected ${want.risk}, got ${decision.risk}`);
  if (decision.decision !== want.decision) failures.push(`decision: expected ${want.decision}, got ${decision.decision}`);
  if (want.approvals !== undefined && decision.approvalsRequired !== want.approvals)
    failures.push(`approvals: expected ${want.approvals}, got ${decision.approvalsRequired}`);
  for (const rule of want.rules ?? []) {
    if (!decision.reasons.some((r) => r.rule === rule)) failures.push(`reasons: expected rule ${rule}, got ${decision.reasons.map((r) => r.rule).join(', ')}`);
  }
  return { name: c.name, ok: failures.length === 0, failures, decision };
}
