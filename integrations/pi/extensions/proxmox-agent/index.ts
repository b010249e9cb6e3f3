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
import { describePlan, refusalText, TOOL_DESCRIPTIONS } from '../../../../src/client/agent-guidance.js';
import { ApiProblemError, createApiClient, TERMINAL, type ApiClient } from '../../../../src/client/index.js';
import { checkCommand } from './guard.js';

export { checkCommand, describePlan };

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
      description: TOOL_DESCRIPTIONS.proxmox_catalog,
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
      description: TOOL_DESCRIPTIONS.proxmox_inventory,
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
      description: TOOL_DESCRIPTIONS.proxmox_plan_action,
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
      description: TOOL_DESCRIPTIONS.proxmox_apply_action,
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
      description: TOOL_DESCRIPTIONS.proxmox_action_status,
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
    if (err instanceof ApiProblemError) throw new Error(refusalText(err));
    throw err;
  }
}

/** What pi loads: the extension with the environment of the process. */
export default function proxmoxAgent(pi: ExtensionAPI): void {
  createProxmoxAgentExtension()(pi);
}
