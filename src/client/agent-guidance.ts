/**
 * What an AI agent is told by every proxmox-agent tool, whatever it runs in: the pi extension
 * (integrations/pi) and the MCP server (src/mcp) share these words, so every agent learns the rules of
 * SKILL.md the same way: plan first; apply even when approval is needed; tell the user who must approve
 * and how; never re-plan or retry around a pending approval or a denial; never approve.
 */
import type { Plan } from './index.js';

export const AGENT_TOOLS = ['proxmox_catalog', 'proxmox_inventory', 'proxmox_plan_action', 'proxmox_apply_action', 'proxmox_action_status'] as const;
export type AgentTool = (typeof AGENT_TOOLS)[number];

/** The tools' descriptions: what each does and what comes after it. */
export const TOOL_DESCRIPTIONS: Record<AgentTool, string> = {
  proxmox_catalog:
    "Lists the actions proxmox-agent can perform on Proxmox VE guests (vm.* for QEMU VMs, ct.* for LXC containers): name, summary, base risk per tier (nonprod/prod), whether destructive. Give `action` to get one action's full description and its params as JSON Schema. Start here before planning.",
  proxmox_inventory: 'Lists the guests of one environment (node, vmid, type, name, status, lock, tags), so you can name the right target. Read-only; needs no approval.',
  proxmox_plan_action: [
    'Step 1 of every Proxmox change. Plans one action on one guest: proxmox-agent reads the guest, applies policy and returns a plan with planId, requestHash, risk, decision (allowed | requires_approval | denied), the reasons (with hints) and the approvals needed. Planning changes nothing.',
    'Then: allowed → call proxmox_apply_action with the planId. requires_approval → call proxmox_apply_action right away too (the action then runs by itself once people approve), tell the user who must approve and how, and follow it with proxmox_action_status. denied → do not retry the same request; read the hints and tell the user.',
    'Never plan the same change twice to get around a pending approval or a denial.',
  ].join('\n'),
  proxmox_apply_action: [
    'Step 2: asks proxmox-agent to execute a plan made by proxmox_plan_action, exactly as planned (bound to its requestHash). Accepted before approval too: the action then runs when the required people approve, unless the plan expires first.',
    'After applying, follow it with proxmox_action_status until it ends. If approval is pending, tell the user who must approve; do not apply again, re-plan or try another way around it.',
  ].join('\n'),
  proxmox_action_status: [
    'Step 3: the state of a plan (planned, awaiting_approval, approved, applying, succeeded, failed, rejected, expired, denied), its approvals so far and its result. Waits up to waitSeconds (default 20, at most 60) for the status to change before answering, so calling it again is cheap.',
    'While it is awaiting_approval, keep the user informed and call it again; there is nothing else to do. Stop when the status is final (succeeded, failed, rejected, expired, denied) and report the outcome.',
  ].join('\n'),
};

/** What to do after a tool answered with this plan. */
export interface NextStep {
  /** The instruction, the line after `next:`. */
  instruction: string;
  /** The tool to call next, with its arguments, when there is one. */
  tool?: AgentTool;
  arguments?: Record<string, unknown>;
  /** What to tell the user now: who must approve and how, or the outcome. */
  tellUser?: string;
  /** The plan is final: nothing more to call. */
  done: boolean;
}

type After = 'plan' | 'apply' | 'status';

/** What the agent reads after each call: the facts, then exactly what to do next. */
export function describePlan(p: Plan, after: After): string {
  const lines = [
    `plan ${p.planId}: ${p.action} on ${p.environment} vmid ${p.target.vmid}${p.preflight.state?.name ? ` (${p.preflight.state.name})` : ''}${p.target.node ? ` on ${p.target.node}` : ''}`,
    `status: ${p.status}; risk ${p.risk}; decision ${p.decision}; requestHash ${p.requestHash}; expires ${p.expiresAt}`,
    ...p.reasons.map((r) => `- ${r.rule}: ${r.message}${r.hint ? ` (hint: ${r.hint})` : ''}`),
  ];
  if (p.approval.required > 0) {
    lines.push(`approvals: ${p.approval.received} of ${p.approval.required}${p.approval.approvers.length ? ` (${p.approval.approvers.map((a) => `${a.principal} via ${a.channel}`).join(', ')})` : ''}`);
    for (const r of stillNeeded(p)) lines.push(`  still needed: ${r}`);
  }
  if (p.result) lines.push(`result: ${p.result.outcome}${p.result.upid ? ` task ${p.result.upid}` : ''}${p.result.message ? `: ${p.result.message}` : ''}${p.result.errorType ? ` (${p.result.errorType})` : ''}`);
  const next = nextStep(p, after);
  if (next.tellUser) lines.push(`tell the user: ${next.tellUser}`);
  lines.push(`next: ${next.instruction}`);
  return lines.join('\n');
}

/** Each open approval requirement, e.g. `1 approver(s) with role dba via api or cli`. */
function stillNeeded(p: Plan): string[] {
  return p.approval.requirements
    .filter((x) => x.received < x.count)
    .map((r) => `${r.count - r.received} approver(s)${r.roles ? ` with role ${r.roles.join(' or ')}` : ''}${r.channels ? ` via ${r.channels.join(' or ')}` : ''}`);
}

export function nextStep(p: Plan, after: After): NextStep {
  const how = `\`proxmox-agent approvals approve ${p.planId}\`, or the approval message in Slack`;
  const who = `people other than you with the approve scope${p.approval.requirements.some((r) => r.roles) ? ' (and the roles above)' : ''}: ${how}`;
  const apply = { tool: 'proxmox_apply_action' as const, arguments: { planId: p.planId, requestHash: p.requestHash } };
  const follow = { tool: 'proxmox_action_status' as const, arguments: { planId: p.planId, status: p.status } };
  const subject = `${p.action} on ${p.environment} vmid ${p.target.vmid}`;
  switch (p.status) {
    case 'planned':
      return after === 'plan'
        ? { instruction: `allowed without approval: call proxmox_apply_action with planId ${p.planId}.`, ...apply, done: false }
        : { instruction: `call proxmox_apply_action with planId ${p.planId}, or let it expire at ${p.expiresAt}.`, ...apply, done: false };
    case 'awaiting_approval': {
      const missing = p.approval.required - p.approval.received;
      const tellUser = `${subject} waits for ${missing} more approval(s) (${stillNeeded(p).join('; ')}) from people other than ${p.requester.principal} who hold the approve scope, with ${how}. It runs by itself once approved, unless it expires at ${p.expiresAt}.`;
      if (after === 'plan')
        return {
          instruction: `needs approval. Call proxmox_apply_action with planId ${p.planId} now (it runs once approved), then tell the user it waits for ${missing} approval(s) from ${who}. Do not re-plan or retry; you cannot approve.`,
          ...apply,
          tellUser,
          done: false,
        };
      const applied = p.applyRequested || after === 'apply';
      return {
        instruction: `waiting for ${missing} more approval(s) from ${who}.${applied ? '' : ` Apply is not requested yet: call proxmox_apply_action.`} Tell the user who must approve, then call proxmox_action_status again. Do not re-plan or retry.`,
        ...(applied ? follow : apply),
        tellUser,
        done: false,
      };
    }
    case 'approved':
      return p.applyRequested || after === 'apply'
        ? { instruction: 'approved; it runs now: call proxmox_action_status.', ...follow, done: false }
        : { instruction: `approved: call proxmox_apply_action with planId ${p.planId}.`, ...apply, done: false };
    case 'applying':
      return { instruction: 'the Proxmox task is running: call proxmox_action_status again.', ...follow, done: false };
    case 'succeeded':
      return { instruction: 'done: report the outcome to the user.', tellUser: `${subject} succeeded${p.result?.upid ? ` (Proxmox task ${p.result.upid})` : ''}.`, done: true };
    case 'failed':
      return {
        instruction: 'failed: report the error to the user. If the plan was stale (the guest changed), plan again only if the user still wants the change.',
        tellUser: `${subject} failed${p.result?.message ? `: ${p.result.message}` : ''}.`,
        done: true,
      };
    case 'denied': {
      // Over a budget the same request may be fine later: say when, so the agent waits instead of looping.
      const budgets = p.reasons.flatMap((r) => (r.budget ? [r.budget] : []));
      if (budgets.length > 0) {
        const frees = budgets.map((b) => b.freesAt).sort().at(-1)!;
        const names = budgets.map((b) => `${b.name} (${b.used} of ${b.limit})`).join(', ');
        return {
          instruction: `refused: ${budgets[0]!.principal} has used up its budget: ${names}. Do not retry before ${frees}; tell the user, who may end open plans or wait.`,
          tellUser: `${subject} was refused: the budget ${names} is used up until ${frees}.`,
          done: true,
        };
      }
      return { instruction: 'denied by policy: do not retry the same request. Tell the user the reasons and hints above.', tellUser: `${subject} was denied by policy: ${p.reasons.map((r) => r.hint ?? r.message).join('; ')}.`, done: true };
    }
    case 'rejected': {
      const by = `${p.approval.rejectedBy?.principal ?? 'an approver'}${p.approval.rejectedBy?.comment ? ` ("${p.approval.rejectedBy.comment}")` : ''}`;
      return { instruction: `rejected by ${by}: do not retry; tell the user.`, tellUser: `${subject} was rejected by ${by}.`, done: true };
    }
    case 'expired':
      return { instruction: 'expired before it was applied and approved: tell the user; plan again only if they still want it.', tellUser: `${subject} expired before it was applied and approved.`, done: true };
  }
}

/** What to do after the API refused a call, by problem code (SKILL.md, "Errors"). */
const AFTER_REFUSAL: Partial<Record<string, string>> = {
  'validation-failed': 'fix the request (see proxmox_catalog with the action for its params) and call again.',
  'unknown-environment': 'use one of the environments named above.',
  unauthenticated: 'the token is missing, unknown or expired: tell the user; nothing else will work until they fix it.',
  forbidden: 'this token may not do it: tell the user. Do not look for another way around it.',
  'plan-not-found': 'check the planId; plans of environments your token may not see are not found either.',
  'plan-stale': 'the guest changed since the plan: plan again only if the user still wants the change.',
  'request-hash-mismatch': 'you are applying a different request than the one planned: plan again.',
  'plan-denied': 'denied by policy: do not retry; tell the user the reasons.',
  'plan-rejected': 'rejected by an approver: do not retry; tell the user.',
  'plan-expired': 'the plan expired: tell the user; plan again only if they still want it.',
  'plan-finished': 'the plan has ended: call proxmox_action_status for its outcome.',
  'idempotency-key-reused': 'this idempotencyKey names another request: use a new key, or none.',
  'rate-limited': 'too many requests: wait the Retry-After seconds, then call again.',
  'temporal-unavailable': 'the service is briefly unavailable: call again in a few seconds.',
  'proxmox-unavailable': 'Proxmox did not answer the read: call again in a few seconds, or tell the user.',
};

/** A problem the API answered, as the agent reads it: what was refused and why, then what to do next. */
export function refusalText(err: { status: number; type: string; code: string; title: string; detail?: string; errors?: { path: string; message: string }[] }): string {
  const fields = err.errors?.map((e) => `${e.path}: ${e.message}`).join('; ');
  const next = AFTER_REFUSAL[err.code] ?? `see ${err.type} for what to do.`;
  return `proxmox-agent refused (HTTP ${err.status}, ${err.type}): ${err.detail ?? err.title}${fields ? ` [${fields}]` : ''}.\nnext: ${next}`;
}
