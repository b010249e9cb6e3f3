import { findAction } from '../domain/actions/catalog.js';
import type { EnvironmentTier } from '../domain/actions/define.js';
import type { Decision } from '../domain/lifecycle.js';
import { riskRank, stricterRisk, type Risk } from '../domain/risk.js';
import type { GuestState } from '../domain/guest-state.js';
import type { NormalizedRequest } from '../domain/request.js';
import type { ApprovalRequirement, Reason } from '../domain/plan-view.js';
import { canonicalJson, sha256Hex } from '../domain/hashing.js';
import type { PolicyConfig, PolicyRule, RuleRequirement } from './schema.js';
import { windowsMatch } from './windows.js';
import { globMatch } from './glob.js';
import { safeguardSnapshotName, SAFEGUARDED_ACTIONS } from '../domain/safeguard.js';

export type PolicyReason = Reason;

export interface PolicyDecision {
  risk: Risk;
  decision: Decision;
  /** Distinct approvers needed at least: the largest requirement. */
  approvalsRequired: number;
  /** Every condition of the approval gate; empty when no approval is needed. */
  requirements: ApprovalRequirement[];
  reasons: PolicyReason[];
  /** SHA-256 of the canonical policy: which policy made this decision. */
  policyVersion: string;
  evaluatedAt: string;
  /**
   * A rule asked for a snapshot before the action (docs/policy.md, "Safeguards"); its name follows
   * from the plan id, absent when the evaluation had none (the pre-dispatch check).
   */
  safeguard?: { kind: 'snapshot'; name?: string };
}

export interface PolicyInput {
  request: NormalizedRequest;
  tier: EnvironmentTier;
  /** The target as the preflight saw it; absent when the preflight could not read it. */
  state?: GuestState;
  /** What the catalog concluded from the state (proceed / already done / blocked). */
  assessment?: { kind: 'proceed' | 'already_done' | 'blocked' | 'unavailable'; reason?: string };
  /** The moment the decision is made: time-window rules are evaluated at it. */
  at: Date;
  /** The plan being decided: a safeguard snapshot is named after it. */
  planId?: string;
}

/**
 * Evaluation order (docs/policy.md):
 * 1. base risk from the catalog for the environment's tier;
 * 2. every matching rule, in file order: `risk` raises the risk, `approvals` adds requirements,
 *    `decision: require_approval` asks for at least one approver, `decision: deny` denies;
 *    rules never lower anything, so their order cannot weaken a decision;
 * 3. the risk's default requirement (`approvalsByRisk`) is added;
 * 4. deny (a rule, a blocked preflight, an unreadable target) wins over everything; otherwise any
 *    requirement means `requires_approval`; otherwise `allowed`.
 * Pure and deterministic: the same input, time and policy give the same decision.
 */
export function evaluatePolicy(policy: PolicyConfig, input: PolicyInput): PolicyDecision {
  const policyVersion = policyVersionOf(policy);
  const evaluatedAt = input.at.toISOString();
  const action = findAction(input.request.action);
  if (!action) {
    return {
      risk: 'critical', decision: 'denied', approvalsRequired: 0, requirements: [], policyVersion, evaluatedAt,
      reasons: [{ rule: 'catalog.unknown_action', message: `unknown action '${input.request.action}'`, hint: 'see GET /v1/catalog' }],
    };
  }
  let risk = action.baseRisk[input.tier];
  const reasons: PolicyReason[] = [{ rule: 'catalog.base_risk', message: `${action.name} is ${risk} risk in ${input.tier} environments` }];
  const ruleRequirements: ApprovalRequirement[] = [];
  let denied = false;
  const touched = nodesTouched(input.request, input.state);
  const safeguardRules: string[] = [];
  for (const rule of policy.rules) {
    const matched = ruleMatches(rule, input, touched);
    if (!matched) continue;
    if (rule.safeguard) safeguardRules.push(rule.id);
    if (rule.risk) risk = stricterRisk(risk, rule.risk);
    const asked = requirementsOf(rule);
    ruleRequirements.push(...asked);
    if (rule.decision === 'deny') denied = true;
    const message = rule.message ?? rule.description ?? describeRule(rule, asked);
    reasons.push({
      rule: `policy.${rule.id}`,
      message: matched.nodes ? `${message} (${describeNodes(matched.nodes, input.request.action)})` : message,
      ...(rule.hint ? { hint: rule.hint } : rule.decision === 'deny' ? { hint: denyHint(rule) } : {}),
      ...(matched.nodes ? { nodes: matched.nodes } : {}),
    });
  }
  const safeguard = safeguardRules.length > 0 ? decideSafeguard(input, safeguardRules) : undefined;
  if (safeguard) {
    reasons.push(safeguard.reason);
    if (safeguard.denies) denied = true;
  }
  if (input.assessment?.kind === 'blocked') {
    denied = true;
    reasons.push({
      rule: 'preflight.blocked',
      message: `Proxmox would refuse this now: ${input.assessment.reason}`,
      hint: 'change the target first (or pick another action), then plan again',
    });
  } else if (input.assessment?.kind === 'unavailable') {
    // Fail closed: a target we cannot see is a target we will not change.
    denied = true;
    reasons.push({
      rule: 'preflight.unavailable',
      message: `could not read the target from Proxmox: ${input.assessment.reason}`,
      hint: 'plan again when the target is reachable and exists',
    });
  } else if (input.assessment?.kind === 'already_done') {
    reasons.push({ rule: 'preflight.noop', message: `nothing to do: ${input.assessment.reason}; apply records a no-op` });
  }
  if (denied) return { risk, decision: 'denied', approvalsRequired: 0, requirements: [], reasons, policyVersion, evaluatedAt };
  const asked = safeguard?.asked ? { safeguard: safeguard.asked } : {};

  const byRisk = policy.approvalsByRisk[risk];
  const requirements = [...(byRisk > 0 ? [{ id: `risk.${risk}`, count: byRisk }] : []), ...ruleRequirements];
  if (requirements.length === 0) return { risk, decision: 'allowed', approvalsRequired: 0, requirements, reasons, policyVersion, evaluatedAt, ...asked };
  const approvalsRequired = Math.max(...requirements.map((r) => r.count));
  reasons.push({
    rule: 'approval.required',
    message: `${risk} risk: needs ${requirements.map(describeRequirement).join(', and ')}`,
    hint: 'apply now if you like: the run executes as soon as the approvals arrive, until the plan expires; do not re-plan or retry',
  });
  return { risk, decision: 'requires_approval', approvalsRequired, requirements, reasons, policyVersion, evaluatedAt, ...asked };
}

/**
 * What the matching `safeguard: snapshot` rules mean for this request: a snapshot before the action;
 * nothing for an action a snapshot cannot take back (said, not silently dropped); a denial when the
 * preflight found a disk whose storage cannot be snapshotted (a safeguard that cannot be taken must
 * not turn into an action run without it).
 */
function decideSafeguard(input: PolicyInput, rules: string[]): { reason: PolicyReason; denies?: true; asked?: NonNullable<PolicyDecision['safeguard']> } {
  const by = `rule${rules.length > 1 ? 's' : ''} ${rules.join(', ')}`;
  const action = input.request.action;
  if (!SAFEGUARDED_ACTIONS.has(action)) {
    return { reason: { rule: 'safeguard.not_applicable', message: `${by} ask${rules.length > 1 ? '' : 's'} for a snapshot first, which applies only to config update, disk resize and snapshot rollback: ${action} runs without one` } };
  }
  const template = input.state?.exists && input.state.template;
  const support = template ? { capable: false, reason: "the guest is a template, and Proxmox takes no snapshot of a template" } : input.state?.exists ? input.state.snapshotSupport : undefined;
  if (support && !support.capable) {
    return {
      denies: true,
      reason: {
        rule: 'safeguard.unavailable',
        message: `${by} ask${rules.length > 1 ? '' : 's'} for a snapshot before ${action}, and the guest cannot be snapshotted: ${support.reason ?? 'its storage does not support snapshots'}`,
        hint: 'move the disk to storage that takes snapshots (lvmthin, zfspool, rbd, btrfs, or a qcow2 image on dir/nfs/cifs), or ask a policy owner; then plan again',
      },
    };
  }
  const name = input.planId ? safeguardSnapshotName(input.planId) : undefined;
  return {
    asked: { kind: 'snapshot', ...(name ? { name } : {}) },
    reason: { rule: 'safeguard.snapshot', message: `${by}: a snapshot${name ? ` '${name}'` : ''} of the guest is taken before ${action}, and the action runs only if it succeeds` },
  };
}

export function policyVersionOf(policy: PolicyConfig): string {
  return `sha256:${sha256Hex(canonicalJson(policy))}`;
}

/** The stricter of two risks, for callers comparing decisions. */
export function riskAtLeast(a: Risk, b: Risk): boolean {
  return riskRank(a) >= riskRank(b);
}

/** A node an action touches: the guest's own (`source`), or the one a migrate or clone puts it on. */
export interface TouchedNode {
  /** Absent: the guest's node could not be read. */
  node?: string;
  role: 'source' | 'destination';
}

/**
 * Every node the action touches. The source is the node the preflight found the guest on (or the
 * request's `target.node`); the destination is where a migrate moves it or a clone places the copy
 * (`params.target`). A rule on nodes applies when it matches any of them, so "deny on node X" also
 * stops a move onto X, and a move away from it.
 */
export function nodesTouched(request: NormalizedRequest, state?: GuestState): TouchedNode[] {
  const source = state?.node || request.target.node;
  const touched: TouchedNode[] = [source === undefined ? { role: 'source' } : { node: source, role: 'source' }];
  const action = findAction(request.action);
  const destination = action ? destinationOf(action, request.params) : undefined;
  if (destination !== undefined && destination !== source) touched.push({ node: destination, role: 'destination' });
  return touched;
}

/**
 * The node an action puts a guest on, other than its own: migrate's destination (the catalog's
 * `destination`) and clone's optional `target`. test/policy/engine.test.ts checks that every catalog
 * action with a `target` parameter is known here.
 */
function destinationOf(action: NonNullable<ReturnType<typeof findAction>>, params: Record<string, unknown>): string | undefined {
  if (action.destination) return action.destination(params);
  return action.name.endsWith('.clone') && typeof params.target === 'string' ? params.target : undefined;
}

/**
 * Rules only ever make a decision stricter, so a fact we could not read (no state, no node) counts
 * as matching: an unknown tag must not slip past a deny rule. A rule on nodes matches when any node
 * the action touches matches (or the guest's node is unknown); the match says which.
 */
function ruleMatches(rule: PolicyRule, { request, state, at }: PolicyInput, touched: TouchedNode[]): false | { nodes?: TouchedNode[] } {
  const m = rule.match;
  if (m.actions && !m.actions.some((p) => globMatch(p, request.action))) return false;
  if (m.environments && !m.environments.some((p) => globMatch(p, request.environment))) return false;
  let nodes: TouchedNode[] | undefined;
  if (m.nodes) {
    nodes = touched.filter((t) => t.node === undefined || m.nodes!.some((p) => globMatch(p, t.node!)));
    if (nodes.length === 0) return false;
  }
  if (m.vmids && !m.vmids.some((r) => inRange(r, request.target.vmid))) return false;
  if (m.tags && state?.exists && !m.tags.some((t) => state.tags.includes(t))) return false;
  if (m.pools && state?.exists && !(state.pool !== undefined && m.pools.includes(state.pool))) return false;
  if (m.when && !windowsMatch(m.when, at)) return false;
  return nodes ? { nodes } : {};
}

function describeNodes(nodes: TouchedNode[], action: string): string {
  const one = (t: TouchedNode) =>
    t.node === undefined
      ? "the guest's node could not be read, so the rule applies"
      : t.role === 'source'
        ? `node '${t.node}': the guest's node`
        : `node '${t.node}': where ${action} puts the guest`;
  return `matched ${nodes.map(one).join('; ')}`;
}

function requirementsOf(rule: PolicyRule): ApprovalRequirement[] {
  const list: RuleRequirement[] = rule.approvals === undefined ? [] : Array.isArray(rule.approvals) ? rule.approvals : [rule.approvals];
  const reqs = list.map((r, i) => {
    const base = typeof r === 'number' ? { count: r } : r;
    return { id: `policy.${rule.id}${list.length > 1 ? `#${i + 1}` : ''}`, ...base };
  });
  if (rule.decision === 'require_approval' && reqs.length === 0) reqs.push({ id: `policy.${rule.id}`, count: 1 });
  return reqs;
}

function describeRequirement(r: ApprovalRequirement): string {
  const who = r.roles ? ` with role ${r.roles.join(' or ')}` : '';
  const via = r.channels ? ` through ${r.channels.join(' or ')}` : '';
  return `${r.count} distinct approver${r.count > 1 ? 's' : ''}${who}${via} other than the requester`;
}

function describeRule(rule: PolicyRule, asked: ApprovalRequirement[]): string {
  if (rule.decision === 'deny') return `rule ${rule.id} denies this request`;
  const parts = [rule.risk ? `raises risk to ${rule.risk}` : '', ...asked.map(describeRequirement)].filter(Boolean);
  return `rule ${rule.id} matched${parts.length ? `: ${parts.join('; ')}` : ''}`;
}

function denyHint(rule: PolicyRule): string {
  const until = rule.match.when?.windows.map((w) => w.to).filter(Boolean).sort().at(-1);
  if (until) return `this rule applies in a time window; plan again after ${until}`;
  if (rule.match.when) return 'this rule applies in a time window; plan again outside it';
  return 'no approval can override this rule; ask a policy owner';
}

function inRange(range: number | string, id: number): boolean {
  if (typeof range === 'number') return range === id;
  const [lo, hi] = range.split('-').map(Number) as [number, number];
  return id >= lo && id <= hi;
}

export { globMatch };
