/**
 * proxmox-agent for the pi coding agent: Proxmox changes only through plan → policy → approval →
 * apply, never on the agent's own authority.
 *
 * Tools: proxmox_catalog, proxmox_inventory, proxmox_plan_action, proxmox_apply_action,
 * proxmox_action_status. There is no approve tool, and there never will be one: approvals come
 * from people, under their own identities, through the CLI, Slack or another bot.
 *
 * PROXMOX_AGENT_URL and PROXMOX_AGENT_TOKEN are read when pi loads the extension and then deleted
 * from process.env, so the agent's shell (the bash tool) never sees the token. A `tool_call` guard
 * blocks shell commands that would reach Proxmox directly (./guard.ts).
 */
import type { ExtensionAPI, ExtensionFactory } from '@mariozechner/pi-coding-agent';
import { StringEnum } from '@mariozechner/pi-ai';
import { Type } from 'typebox';
import { ApiProblemError, createApiClient, TERMINAL, type ApiClient, type Plan } from '../../../../src/client/index.js';
import { checkCommand } from './guard.js';

export { checkCommand };

export interface ProxmoxAgentExtensionOptions {
  /** Where the URL and token come from; default process.env. The two variables are deleted from it. */
  env?: NodeJS.ProcessEnv;
}

type Text = { type: 'text'; text: string };
const text = (t: string): Text => ({ type: 'text', text: t });

export function createProxmoxAgentExtension(options: ProxmoxAgentExtensionOptions = {}): ExtensionFactory {
  const env = options.env ?? process.env;
  const baseUrl = env.PROXMOX_AGENT_URL ?? 'http://127.0.0.1:8787';
  const token = env.PROXMOX_AGENT_TOKEN?.trim();
  // Hidden from every process pi starts from now on (bash tool, user ! commands).
  delete env.PROXMOX_AGENT_URL;
  delete env.PROXMOX_AGENT_TOKEN;

  let api: ApiClient | undefined;
  const client = (): ApiClient => {
    if (!token) throw new Error('proxmox-agent is not configured: PROXMOX_AGENT_TOKEN was not set when pi started. Ask the user to restart pi with it set.');
    api ??= createApiClient({ baseUrl, token, channel: 'api' });
    return api;
  };

  return (pi: ExtensionAPI) => {
    pi.on('tool_call', async (event) => {
      if (event.toolName !== 'bash') return undefined;
      const command = (event.input as { command?: unknown }).command;
      if (typeof command !== 'string') return undefined;
      const verdict = checkCommand(command);
      return verdict.block ? { block: true, reason: verdict.reason! } : undefined;
    });

    pi.registerTool({
      name: 'proxmox_catalog',
      label: 'Proxmox catalog',
      description:
        'Lists the actions proxmox-agent can perform on Proxmox VE guests (vm.* for QEMU VMs, ct.* for LXC containers): name, summary, base risk per tier (nonprod/prod), whether destructive. Give `action` to get one action\'s full description and its params as JSON Schema. Start here before planning.',
      promptSnippet: 'List the Proxmox actions proxmox-agent offers, with their params',
      promptGuidelines: [
        'For any change to Proxmox VMs or containers, use proxmox_plan_action and proxmox_apply_action; never run qm, pct, pvesh or call the Proxmox API (port 8006) from bash.',
        'Use proxmox_catalog to find the action name and its params before proxmox_plan_action.',
      ],
      parameters: Type.Object({
        action: Type.Optional(Type.String({ description: 'One action name, e.g. vm.snapshot.create, for its full description and params schema' })),
      }),
      async execute(_id, params) {
        const catalog = await call(() => client().catalog());
        if (params.action) {
          const a = catalog.actions.find((x) => x.name === params.action);
          if (!a) throw new Error(`no action ${params.action}; known: ${catalog.actions.map((x) => x.name).join(', ')}`);
          return { content: [text(`${a.name} (${a.kind}): ${a.summary}\n${a.description}\nbase risk: nonprod ${a.baseRisk.nonprod}, prod ${a.baseRisk.prod}; destructive: ${a.destructive}; reversible: ${a.reversible}\nparams (JSON Schema): ${JSON.stringify(a.params)}`)], details: a as unknown };
        }
        const lines = catalog.actions.map((a) => `${a.name}: ${a.summary} [risk ${a.baseRisk.nonprod}/${a.baseRisk.prod}${a.destructive ? ', destructive' : ''}]`);
        return { content: [text(`${catalog.actions.length} actions (risk nonprod/prod):\n${lines.join('\n')}`)], details: { count: catalog.actions.length } as unknown };
      },
    });

    pi.registerTool({
      name: 'proxmox_inventory',
      label: 'Proxmox inventory',
      description: 'Lists the guests of one environment (node, vmid, type, name, status, lock, tags), so you can name the right target. Read-only; needs no approval.',
      promptSnippet: 'List the VMs and containers of a Proxmox environment',
      parameters: Type.Object({ environment: Type.String({ description: 'e.g. lab or prod' }) }),
      async execute(_id, params) {
        const inv = await call(() => client().inventory(params.environment));
        const guests = Array.isArray(inv.guests) ? inv.guests : [];
        const lines = guests.map((g) => `${g.type} ${g.vmid} ${g.name ?? ''} on ${g.node}: ${g.status ?? '?'}${g.lock ? ` (lock ${g.lock})` : ''}${g.tags?.length ? ` tags ${g.tags.join(',')}` : ''}`);
        return { content: [text(`${guests.length} guest(s) in ${params.environment}:\n${lines.join('\n')}`)], details: inv };
      },
    });

    pi.registerTool({
      name: 'proxmox_plan_action',
      label: 'Plan a Proxmox action',
      description: [
        'Step 1 of every Proxmox change. Plans one action on one guest: proxmox-agent reads the guest, applies policy and returns a plan with planId, requestHash, risk, decision (allowed | requires_approval | denied), the reasons (with hints) and the approvals needed. Planning changes nothing.',
        'Then: allowed → call proxmox_apply_action with the planId. requires_approval → call proxmox_apply_action right away too (the action then runs by itself once people approve), tell the user who must approve and how, and follow it with proxmox_action_status. denied → do not retry the same request; read the hints and tell the user.',
        'Never plan the same change twice to get around a pending approval or a denial.',
      ].join('\n'),
      promptSnippet: 'Plan a change to a Proxmox VM or container (policy decides risk and approvals)',
      promptGuidelines: [
        'Use proxmox_plan_action first for every Proxmox change, with a reason a human approver can judge (ticket, why now).',
        'When proxmox_plan_action says requires_approval, call proxmox_apply_action, tell the user which approvals are needed, then poll proxmox_action_status; do not re-plan, and never try to approve.',
      ],
      parameters: Type.Object({
        action: Type.String({ description: 'An action name from proxmox_catalog, e.g. vm.start, ct.snapshot.create, vm.delete' }),
        environment: Type.String({ description: 'e.g. lab or prod' }),
        vmid: Type.Integer({ description: 'The guest id' }),
        node: Type.Optional(Type.String({ description: 'The node; default: where the guest is' })),
        params: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "The action's params (see proxmox_catalog); {} if none" })),
        reason: Type.String({ description: 'Why, for the approvers and the audit log' }),
        idempotencyKey: Type.Optional(Type.String({ description: 'Repeat this exact request safely (same key and request → same plan)' })),
      }),
      async execute(_id, p) {
        const plan = await call(() =>
          client().plan(
            { action: p.action, environment: p.environment, target: { vmid: p.vmid, ...(p.node ? { node: p.node } : {}) }, params: p.params ?? {}, reason: p.reason },
            p.idempotencyKey ? { idempotencyKey: p.idempotencyKey } : {},
          ),
        );
        return { content: [text(describePlan(plan, 'plan'))], details: plan };
      },
    });

    pi.registerTool({
      name: 'proxmox_apply_action',
      label: 'Apply a Proxmox plan',
      description: [
        'Step 2: asks proxmox-agent to execute a plan made by proxmox_plan_action, exactly as planned (bound to its requestHash). Accepted before approval too: the action then runs when the required people approve, unless the plan expires first.',
        'After applying, follow it with proxmox_action_status until it ends. If approval is pending, tell the user who must approve; do not apply again, re-plan or try another way around it.',
      ].join('\n'),
      promptSnippet: 'Apply a planned Proxmox action (it waits for approvals if needed)',
      parameters: Type.Object({
        planId: Type.String({ description: 'From proxmox_plan_action' }),
        requestHash: Type.Optional(Type.String({ description: "The plan's requestHash, if you have it: applying is refused when it differs" })),
      }),
      async execute(_id, p) {
        const api = client();
        const plan = await call(() => api.get(p.planId));
        if (p.requestHash && p.requestHash !== plan.requestHash)
          throw new Error(`plan ${p.planId} has requestHash ${plan.requestHash}, not ${p.requestHash}: it is not the request you planned. Do not apply it; plan again if the request changed.`);
        const accepted = await call(() => api.apply(p.planId, plan.requestHash));
        const now = { ...plan, status: accepted.status };
        return { content: [text(describePlan(now, 'apply'))], details: { ...accepted, requestHash: plan.requestHash } };
      },
    });

    pi.registerTool({
      name: 'proxmox_action_status',
      label: 'Proxmox action status',
      description: [
        'Step 3: the state of a plan (planned, awaiting_approval, approved, applying, succeeded, failed, rejected, expired, denied), its approvals so far and its result. Waits up to waitSeconds (default 20, at most 60) for the status to change before answering, so calling it again is cheap.',
        'While it is awaiting_approval, keep the user informed and call it again; there is nothing else to do. Stop when the status is final (succeeded, failed, rejected, expired, denied) and report the outcome.',
      ].join('\n'),
      promptSnippet: 'Follow a Proxmox plan until it ends',
      parameters: Type.Object({
        planId: Type.String(),
        waitSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 60, description: 'Wait this long for a change (default 20; 0 answers at once)' })),
      }),
      async execute(_id, p, signal, onUpdate) {
        const api = client();
        const waitSeconds = p.waitSeconds ?? 20;
        let plan = await call(() => api.get(p.planId));
        if (waitSeconds > 0 && !TERMINAL.includes(plan.status)) {
          onUpdate?.({ content: [text(`${p.planId}: ${plan.status}; waiting up to ${waitSeconds}s for a change…`)], details: plan });
          if (!signal?.aborted) plan = await call(() => api.wait(p.planId, { waitSeconds, status: plan.status }));
        }
        return { content: [text(describePlan(plan, 'status'))], details: plan };
      },
    });
    // No proxmox_approve tool: an agent never approves, not even "for the user".
  };
}

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiProblemError) {
      const fields = err.errors?.map((e) => `${e.path}: ${e.message}`).join('; ');
      throw new Error(`proxmox-agent refused (HTTP ${err.status}, ${err.type}): ${err.detail ?? err.title}${fields ? ` [${fields}]` : ''}. See ${err.type} for what to do.`);
    }
    throw err;
  }
}

/** What the agent reads after each call: the facts, then exactly what to do next. */
export function describePlan(p: Plan, after: 'plan' | 'apply' | 'status'): string {
  const lines = [
    `plan ${p.planId}: ${p.action} on ${p.environment} vmid ${p.target.vmid}${p.preflight.state?.name ? ` (${p.preflight.state.name})` : ''}${p.target.node ? ` on ${p.target.node}` : ''}`,
    `status: ${p.status}; risk ${p.risk}; decision ${p.decision}; requestHash ${p.requestHash}; expires ${p.expiresAt}`,
    ...p.reasons.map((r) => `- ${r.rule}: ${r.message}${r.hint ? ` (hint: ${r.hint})` : ''}`),
  ];
  if (p.approval.required > 0) {
    lines.push(`approvals: ${p.approval.received} of ${p.approval.required}${p.approval.approvers.length ? ` (${p.approval.approvers.map((a) => `${a.principal} via ${a.channel}`).join(', ')})` : ''}`);
    for (const r of p.approval.requirements.filter((x) => x.received < x.count))
      lines.push(`  still needed: ${r.count - r.received} approver(s)${r.roles ? ` with role ${r.roles.join(' or ')}` : ''}${r.channels ? ` via ${r.channels.join(' or ')}` : ''}`);
  }
  if (p.result) lines.push(`result: ${p.result.outcome}${p.result.upid ? ` task ${p.result.upid}` : ''}${p.result.message ? `: ${p.result.message}` : ''}${p.result.errorType ? ` (${p.result.errorType})` : ''}`);
  lines.push(`next: ${nextStep(p, after)}`);
  return lines.join('\n');
}

function nextStep(p: Plan, after: 'plan' | 'apply' | 'status'): string {
  const who = `people other than you with the approve scope${p.approval.requirements.some((r) => r.roles) ? ' (and the roles above)' : ''}: \`proxmox-agent approvals approve ${p.planId}\`, or the approval message in Slack`;
  switch (p.status) {
    case 'planned':
      return after === 'plan' ? `allowed without approval: call proxmox_apply_action with planId ${p.planId}.` : `call proxmox_apply_action with planId ${p.planId}, or let it expire at ${p.expiresAt}.`;
    case 'awaiting_approval':
      return after === 'plan'
        ? `needs approval. Call proxmox_apply_action with planId ${p.planId} now (it runs once approved), then tell the user it waits for ${p.approval.required - p.approval.received} approval(s) from ${who}. Do not re-plan or retry; you cannot approve.`
        : `waiting for ${p.approval.required - p.approval.received} more approval(s) from ${who}.${p.applyRequested || after === 'apply' ? '' : ` Apply is not requested yet: call proxmox_apply_action.`} Tell the user who must approve, then call proxmox_action_status again. Do not re-plan or retry.`;
    case 'approved':
      return p.applyRequested || after === 'apply' ? 'approved; it runs now: call proxmox_action_status.' : `approved: call proxmox_apply_action with planId ${p.planId}.`;
    case 'applying':
      return 'the Proxmox task is running: call proxmox_action_status again.';
    case 'succeeded':
      return 'done: report the outcome to the user.';
    case 'failed':
      return 'failed: report the error to the user. If the plan was stale (the guest changed), plan again only if the user still wants the change.';
    case 'denied':
      return 'denied by policy: do not retry the same request. Tell the user the reasons and hints above.';
    case 'rejected':
      return `rejected by ${p.approval.rejectedBy?.principal ?? 'an approver'}${p.approval.rejectedBy?.comment ? ` ("${p.approval.rejectedBy.comment}")` : ''}: do not retry; tell the user.`;
    case 'expired':
      return 'expired before it was applied and approved: tell the user; plan again only if they still want it.';
  }
}

/** What pi loads: the extension with the environment of the process. */
export default function proxmoxAgent(pi: ExtensionAPI): void {
  createProxmoxAgentExtension()(pi);
}
