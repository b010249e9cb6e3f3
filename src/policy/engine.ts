import { findAction } from '../domain/actions/catalog.js';
import type { EnvironmentTier } from '../domain/actions/define.js';
import type { Decision } from '../domain/lifecycle.js';
import { stricterRisk, type Risk } from '../domain/risk.js';
import type { GuestState } from '../domain/guest-state.js';
import type { NormalizedRequest } from '../domain/request.js';
import type { PolicyConfig, PolicyRule } from './schema.js';
import { canonicalJson, sha256Hex } from '../domain/hashing.js';

export interface PolicyReason {
  rule: string;
  message: string;
}

export interface PolicyDecision {
  risk: Risk;
  decision: Decision;
  approvalsRequired: number;
  reasons: PolicyReason[];
  /** SHA-256 of the canonical policy: which policy made this decision. */
  policyVersion: string;
}

export interface PolicyInput {
  request: NormalizedRequest;
  tier: EnvironmentTier;
  /** The target as the preflight saw it; absent when the preflight could not read it. */
  state?: GuestState;
  /** What the catalog concluded from the state (proceed / already done / blocked). */
  assessment?: { kind: 'proceed' | 'already_done' | 'blocked' | 'unavailable'; reason?: string };
}

/**
 * Evaluation order (docs/plan-apply-lifecycle.md):
 * 1. base risk from the catalog for the environment's tier;
 * 2. every matching rule, in file order, may raise risk, require approval, set approvals, or deny;
 * 3. approvals = max(approvalsByRisk[risk], rule approvals);
 * 4. deny wins over everything; a blocked preflight denies; otherwise approvals > 0 requires approval.
 * Pure and deterministic: the same input and policy give the same decision.
 */
export function evaluatePolicy(policy: PolicyConfig, input: PolicyInput): PolicyDecision {
  const policyVersion = policyVersionOf(policy);
  const action = findAction(input.request.action);
  if (!action) {
    return { risk: 'critical', decision: 'denied', approvalsRequired: 0, policyVersion, reasons: [{ rule: 'catalog.unknown_action', message: `unknown action '${input.request.action}'` }] };
  }
  let risk = action.baseRisk[input.tier];
  const reasons: PolicyReason[] = [
    { rule: 'catalog.base_risk', message: `${action.name} is ${risk} risk in ${input.tier} environments` },
  ];
  let denied = false;
  let ruleApprovals = 0;
  for (const rule of policy.rules) {
    if (!ruleMatches(rule, input)) continue;
    if (rule.risk) risk = stricterRisk(risk, rule.risk);
    if (rule.approvals) ruleApprovals = Math.max(ruleApprovals, rule.approvals);
    if (rule.decision === 'require_approval') ruleApprovals = Math.max(ruleApprovals, 1);
    if (rule.decision === 'deny') denied = true;
    reasons.push({ rule: `policy.${rule.id}`, message: rule.message ?? rule.description ?? `rule ${rule.id} matched` });
  }
  const approvalsRequired = Math.max(policy.approvalsByRisk[risk], ruleApprovals);
  if (input.assessment?.kind === 'blocked') {
    denied = true;
    reasons.push({ rule: 'preflight.blocked', message: `Proxmox would refuse this now: ${input.assessment.reason}` });
  } else if (input.assessment?.kind === 'unavailable') {
    // Fail closed: a target we cannot see is a target we will not change.
    denied = true;
    reasons.push({ rule: 'preflight.unavailable', message: `could not read the target from Proxmox: ${input.assessment.reason}; plan again when it is reachable` });
  } else if (input.assessment?.kind === 'already_done') {
    reasons.push({ rule: 'preflight.noop', message: `nothing to do: ${input.assessment.reason}; apply records a no-op` });
  }
  if (denied) return { risk, decision: 'denied', approvalsRequired: 0, reasons, policyVersion };
  if (approvalsRequired > 0) {
    reasons.push({
      rule: 'approval.required',
      message: `${risk} risk needs ${approvalsRequired} distinct approver${approvalsRequired > 1 ? 's' : ''} other than the requester`,
    });
    return { risk, decision: 'requires_approval', approvalsRequired, reasons, policyVersion };
  }
  return { risk, decision: 'allowed', approvalsRequired: 0, reasons, policyVersion };
}

export function policyVersionOf(policy: PolicyConfig): string {
  return `sha256:${sha256Hex(canonicalJson(policy))}`;
}

/**
 * Rules only ever make a decision stricter, so a fact we could not read (no state, no node) counts
 * as matching: an unknown tag must not slip past a deny rule.
 */
function ruleMatches(rule: PolicyRule, { request, state }: PolicyInput): boolean {
  const m = rule.match;
  if (m.actions && !m.actions.some((p) => globMatch(p, request.action))) return false;
  if (m.environments && !m.environments.some((p) => globMatch(p, request.environment))) return false;
  const node = state?.node ?? request.target.node;
  if (m.nodes && node !== undefined && !m.nodes.some((p) => globMatch(p, node))) return false;
  if (m.vmids && !m.vmids.some((r) => inRange(r, request.target.vmid))) return false;
  if (m.tags && state && !m.tags.some((t) => state.tags.includes(t))) return false;
  return true;
}

function inRange(range: number | string, id: number): boolean {
  if (typeof range === 'number') return range === id;
  const [lo, hi] = range.split('-').map(Number) as [number, number];
  return id >= lo && id <= hi;
}

/** `*` matches any run of characters; everything else is literal. */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  return re.test(value);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
