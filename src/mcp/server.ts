/**
 * The proxmox-agent MCP server: the pi extension's five tools, two resources and a plan resource that
 * can be subscribed to, over any transport (src/mcp/http.ts for /mcp, src/mcp/stdio.ts for
 * `proxmox-agent mcp`). Every tool and resource is a call to the REST API through the typed client:
 * in process for /mcp, over the network for stdio. So a token's scopes, environments, action
 * patterns and rate limit hold exactly as through REST, and the API's problems come back as tool
 * errors. There is no approve tool.
 */
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError, SubscribeRequestSchema, UnsubscribeRequestSchema, type CallToolResult, type ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import packageJson from '../../package.json' with { type: 'json' };
import { catalogSchema } from '../api/routes/catalog.js';
import { inventorySchema } from '../api/routes/inventory.js';
import { applyRequestSchema, applyResponseSchema, idempotencyHeaders, planIdSchema, planResponseSchema, waitQuery } from '../api/openapi/schemas.js';
import { AGENT_TOOLS, describePlan, nextStep, refusalText, TOOL_DESCRIPTIONS, type NextStep } from '../client/agent-guidance.js';
import { ApiProblemError, ApiUnreachableError, type ApiClient, type Plan } from '../client/index.js';
import { ACTION_NAMES } from '../domain/actions/catalog.js';
import { actionRequestSchema, environmentName } from '../domain/request.js';
import { followPlan, isFinal, progressLine } from './follow.js';
import { watchSubscriptions } from './subscriptions.js';

/** What every agent is told when it connects: SKILL.md's rules, for MCP clients. */
export const INSTRUCTIONS = `proxmox-agent is the only way to change Proxmox VE virtual machines (vm.* actions) and containers (ct.* actions) here. It reads the guest, applies policy, waits for human approvals when policy asks for them, runs the change exactly once and records audit evidence. You act under your own token and never on Proxmox directly.

The flow:
1. Find the action: proxmox_catalog lists the actions with their base risk; proxmox_catalog {action} shows one action's params. proxmox_inventory {environment} lists the guests if you do not know the vmid.
2. Plan: proxmox_plan_action with action, environment, target {vmid}, params and a reason an approver can judge (what, why now, the ticket). Planning changes nothing. Read decision:
   - allowed: go to step 3.
   - requires_approval: still go to step 3. Apply now; the action runs by itself once approved.
   - denied: stop. Do not plan the same thing again and do not look for another way. Tell the user the reasons and the hints, which say what would change the outcome.
3. Apply: proxmox_apply_action with the planId and requestHash the plan returned. It applies exactly the planned request.
4. Follow: proxmox_action_status with the planId until the status is final (succeeded, failed, rejected, expired, denied). Each call waits up to waitSeconds for a change, so calling it again is cheap; until "end" follows every change and sends progress notifications. Or subscribe to the resource proxmox-agent://plans/{planId}.
5. Report the outcome: on success the Proxmox task id (UPID), on failure the error.

While approval is pending, tell the user once and clearly: how many approvals are still needed; who can approve (people other than you who hold the approve scope, with any role or channel the plan lists); how (\`proxmox-agent approvals approve <planId>\`, the REST API, or the Approve button in Slack); and when the plan expires. Then keep following it.
- Never try to approve. There is no approve tool, you hold no approve scope, and self-approval is refused anyway.
- Do not re-plan and do not apply again to hurry it: that makes duplicate requests for the approvers.
- Do not change the guest in other ways while its plan waits: the plan would go stale and fail at apply.
If the plan is rejected, report the approver's comment. If it expired, tell the user, and plan again only if they still want the change.

Every tool result ends with next: what to do now (next.tool and next.arguments name the call; next.tellUser is what to tell the user). A refusal names a problem type such as /problems/plan-stale, whose page on the API says what to do.`;

const nextSchema = z.object({
  instruction: z.string().describe('What to do now'),
  tool: z.enum(AGENT_TOOLS).optional().describe('The tool to call next, if any'),
  arguments: z.record(z.string(), z.unknown()).optional().describe('Its arguments'),
  tellUser: z.string().optional().describe('What to tell the user now (who must approve and how; the outcome)'),
  done: z.boolean().describe('true: the plan is final, nothing more to call'),
});

const planResult = planResponseSchema.extend({ next: nextSchema });

/** The longest single long poll of a follow; a change that keeps the status is seen within it. */
export const FOLLOW_SLICE_SECONDS = 10;

export interface McpServerOptions {
  /** Long-poll slice of follows (tests shorten it; default FOLLOW_SLICE_SECONDS). */
  followSliceSeconds?: number;
  /** Resource subscriptions one connection may hold (default 32). */
  maxSubscriptions?: number;
}

/** The MCP server, and a way to wait for the tool calls and reads under way (stdio's end of input). */
export type ProxmoxMcpServer = McpServer & { settled(): Promise<void> };

/** An MCP server over one API client (one token). Closing it ends its subscriptions. */
export function createMcpServer(api: ApiClient, opts: McpServerOptions = {}): ProxmoxMcpServer {
  const slice = opts.followSliceSeconds ?? FOLLOW_SLICE_SECONDS;
  const pending = new Set<Promise<unknown>>();
  /** Tracks a call until it settles. */
  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => undefined);
    return p;
  };
  const answer = (fn: () => Promise<CallToolResult>) => track(toolAnswer(fn));
  const read = (uri: URL, fn: () => Promise<object>) => track(readAnswer(uri, fn));
  const server = new McpServer(
    { name: 'proxmox-agent', title: 'proxmox-agent: policy-gated Proxmox VE changes', version: packageJson.version },
    { instructions: INSTRUCTIONS, capabilities: { resources: { subscribe: true } } },
  );

  server.registerTool(
    'proxmox_catalog',
    {
      title: 'Proxmox actions',
      description: TOOL_DESCRIPTIONS.proxmox_catalog,
      inputSchema: z.object({ action: z.enum(ACTION_NAMES).optional().describe('One action, e.g. vm.snapshot.create, for its full description and params schema') }),
      outputSchema: catalogSchema.extend({ next: nextSchema }),
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async ({ action }) =>
      answer(async () => {
        const catalog = await api.catalog();
        if (action) {
          const a = catalog.actions.find((x) => x.name === action)!;
          const next: NextStep = { instruction: `plan it with proxmox_plan_action: action ${a.name}, the environment, target {vmid}, these params and a reason.`, tool: 'proxmox_plan_action', done: false };
          const text = `${a.name} (${a.kind}): ${a.summary}\n${a.description}\nbase risk: nonprod ${a.baseRisk.nonprod}, prod ${a.baseRisk.prod}; destructive: ${a.destructive}; reversible: ${a.reversible}\nparams (JSON Schema): ${JSON.stringify(a.params)}`;
          return structured(text, { actions: [a] }, next);
        }
        const lines = catalog.actions.map((a) => `${a.name}: ${a.summary} [risk ${a.baseRisk.nonprod}/${a.baseRisk.prod}${a.destructive ? ', destructive' : ''}]`);
        const next: NextStep = { instruction: 'call proxmox_catalog with one action for its params; proxmox_inventory finds the vmid; then proxmox_plan_action.', tool: 'proxmox_catalog', done: false };
        return structured(`${catalog.actions.length} actions (risk nonprod/prod):\n${lines.join('\n')}`, catalog, next);
      }),
  );

  server.registerTool(
    'proxmox_inventory',
    {
      title: 'Proxmox guests',
      description: TOOL_DESCRIPTIONS.proxmox_inventory,
      inputSchema: z.object({ environment: environmentName.describe('e.g. lab or prod') }),
      outputSchema: inventorySchema.extend({ next: nextSchema }),
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    },
    async ({ environment }) =>
      answer(async () => {
        const inv = await api.inventory(environment);
        const lines = inv.guests.map((g) => `${g.type} ${g.vmid} ${g.name ?? ''} on ${g.node}: ${g.status ?? '?'}${g.lock ? ` (lock ${g.lock})` : ''}${g.tags.length ? ` tags ${g.tags.join(',')}` : ''}`);
        const next: NextStep = { instruction: 'plan a change with proxmox_plan_action on one of these vmids (vm.* actions for qemu, ct.* for lxc).', tool: 'proxmox_plan_action', done: false };
        return structured(`${inv.guests.length} guest(s) in ${environment}:\n${lines.join('\n')}`, inv, next);
      }),
  );

  server.registerTool(
    'proxmox_plan_action',
    {
      title: 'Plan a Proxmox action',
      description: TOOL_DESCRIPTIONS.proxmox_plan_action,
      // The REST request (POST /v1/actions/plan) and its Idempotency-Key header. Each action's params
      // are checked by the API against that action's schema (proxmox_catalog {action} shows it).
      inputSchema: actionRequestSchema.extend({
        idempotencyKey: idempotencyHeaders.shape['idempotency-key'].describe('Repeat this exact request safely: the same key and request give the same plan'),
      }),
      outputSchema: planResult,
      // Starts a run and writes audit records, never a change on Proxmox; each call without a key is a new plan.
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    async ({ idempotencyKey, ...request }) => answer(async () => planAnswer(await api.plan(request, idempotencyKey ? { idempotencyKey } : {}), 'plan')),
  );

  server.registerTool(
    'proxmox_apply_action',
    {
      title: 'Apply a Proxmox plan',
      description: TOOL_DESCRIPTIONS.proxmox_apply_action,
      inputSchema: applyRequestSchema,
      // REST's answer to POST /v1/actions/apply, and the plan as it stands when the token may read it.
      outputSchema: applyResponseSchema.extend({ plan: planResponseSchema.optional().describe('The plan after the apply (absent when the token may not read plans)'), next: nextSchema }),
      // It may delete a guest; applying a plan again is the same one apply.
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
    },
    async ({ planId, requestHash }) =>
      answer(async () => {
        const accepted = await api.apply(planId, requestHash);
        // Applying needs the apply scope only, as through REST: a token that may not read still applied.
        const plan = await api.get(planId).catch(() => undefined);
        if (!plan) {
          const next: NextStep = { instruction: `apply accepted (status ${accepted.status}); this token may not read the plan, so ask the user to follow plan ${planId}.`, tellUser: `plan ${planId} was applied (status ${accepted.status}).`, done: false };
          return structured(`apply of ${planId} accepted: status ${accepted.status}\nnext: ${next.instruction}`, accepted, next);
        }
        return structured(describePlan(plan, 'apply'), { ...accepted, plan }, nextStep(plan, 'apply'));
      }),
  );

  server.registerTool(
    'proxmox_action_status',
    {
      title: 'Follow a Proxmox plan',
      description: `${TOOL_DESCRIPTIONS.proxmox_action_status}\nWith until "end" it keeps following through every change until the plan is final or waitSeconds pass. When your client sends a progressToken, each change seen (an approval, the status, the Proxmox task) and a heartbeat every ${slice} s arrive as progress notifications.`,
      inputSchema: z.object({
        planId: planIdSchema,
        waitSeconds: z.number().int().min(0).max(60).default(20).describe('Wait this long for a change (default 20; 0 answers at once)'),
        status: waitQuery.shape.status.describe('The status you know; the answer comes when the plan is in any other. Default: its status now'),
        until: z.enum(['change', 'end']).default('change').describe('change: answer at the first status change (default); end: follow until the plan is final'),
      }),
      outputSchema: planResult,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async ({ planId, waitSeconds, status, until }, extra) =>
      answer(async () => {
        let plan = await api.get(planId);
        const known = status ?? plan.status;
        const token = extra._meta?.progressToken;
        let step = 0;
        const progress = (p: Plan, message = progressLine(p)) =>
          token === undefined ? undefined : extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: ++step, message } }).catch(() => undefined);
        const waits = waitSeconds > 0 && !isFinal(plan.status) && (until === 'end' || plan.status === known);
        if (waits) {
          await progress(plan, `${progressLine(plan)}; following for up to ${waitSeconds} s`);
          plan = await followPlan(api, planId, {
            start: plan,
            known,
            until,
            deadline: Date.now() + waitSeconds * 1000,
            // Without progress notifications there is nothing to tell between status changes: one long poll.
            sliceSeconds: token === undefined ? 60 : slice,
            signal: extra.signal,
            onChange: (p) => progress(p),
            onIdle: (p) => progress(p, `${progressLine(p)}; still waiting`),
          });
        }
        return planAnswer(plan, 'status');
      }),
  );
  // No approve tool: an agent never approves, not even "for the user".

  server.registerResource(
    'catalog',
    'proxmox-agent://catalog',
    { title: 'Action catalog', description: 'Every action an agent may request, with its params as JSON Schema, its Proxmox call and base risk per tier (GET /v1/catalog)', mimeType: 'application/json' },
    async (uri) => read(uri, () => api.catalog()),
  );
  server.registerResource(
    'risk-matrix',
    'proxmox-agent://policy/risk-matrix',
    {
      title: 'Policy risk matrix',
      description: "The running policy's default risk, decision and approvals for every action in each of your environments, and the rules that can make a cell stricter (GET /v1/policy/matrix)",
      mimeType: 'application/json',
    },
    async (uri) => read(uri, () => api.riskMatrix()),
  );
  server.registerResource(
    'plan',
    new ResourceTemplate(PLAN_URI_TEMPLATE, { list: undefined }),
    {
      title: 'A plan',
      description: 'A plan, its approvals and its result (GET /v1/actions/{planId}). Subscribe to it: every change (status, an approval, the result) sends notifications/resources/updated until it is final.',
      mimeType: 'application/json',
    },
    async (uri, { planId }) => read(uri, () => api.get(String(planId))),
  );

  const subscriptions = watchSubscriptions({
    maxSubscriptions: opts.maxSubscriptions ?? 32,
    sliceSeconds: slice,
    planIdOf,
    staticResource: (uri) => STATIC_RESOURCES.has(uri),
    read: (planId) => api.get(planId).catch((err: unknown) => Promise.reject(resourceError(err, `proxmox-agent://plans/${planId}`))),
    wait: api.wait,
    updated: (uri) => server.server.sendResourceUpdated({ uri }),
  });
  server.server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    await subscriptions.subscribe(req.params.uri);
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscriptions.unsubscribe(req.params.uri);
    return {};
  });
  const closed = server.server.onclose;
  server.server.onclose = () => {
    subscriptions.close();
    closed?.();
  };
  return Object.assign(server, {
    async settled(): Promise<void> {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  });
}

export const PLAN_URI_TEMPLATE = 'proxmox-agent://plans/{planId}';

/** The resources that do not change while the service runs: subscribing to them is accepted and sends nothing. */
const STATIC_RESOURCES = new Set(['proxmox-agent://catalog', 'proxmox-agent://policy/risk-matrix']);

/** The planId of a plan resource's URI, or undefined for another resource. */
export function planIdOf(uri: string): string | undefined {
  return /^proxmox-agent:\/\/plans\/(plan_[0-9A-Za-z]+)$/.exec(uri)?.[1];
}

function planAnswer(plan: Plan, after: 'plan' | 'apply' | 'status'): CallToolResult {
  return structured(describePlan(plan, after), plan, nextStep(plan, after));
}

/** A result an agent reads as text and a client as data; both end with what to do next. */
function structured(text: string, data: object, next: NextStep): CallToolResult {
  return { content: [{ type: 'text', text }], structuredContent: { ...data, next } };
}

/** A refusal of the API is a tool error the agent reads (with the problem in _meta), not a protocol error. */
async function toolAnswer(fn: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiProblemError) {
      return { content: [{ type: 'text', text: refusalText(err) }], isError: true, _meta: { 'proxmox-agent/problem': problemOf(err) } };
    }
    if (err instanceof ApiUnreachableError) {
      return { content: [{ type: 'text', text: `proxmox-agent cannot be reached: ${err.message}\nnext: tell the user; try again later.` }], isError: true };
    }
    throw err;
  }
}

async function readAnswer(uri: URL, fn: () => Promise<object>): Promise<ReadResourceResult> {
  try {
    return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(await fn(), null, 2) }] };
  } catch (err) {
    throw resourceError(err, uri.href);
  }
}

/** MCP's "resource not found" (-32002) for a plan this token cannot see; other refusals as invalid requests. */
const RESOURCE_NOT_FOUND = -32002;

function resourceError(err: unknown, uri: string): unknown {
  if (err instanceof ApiProblemError) {
    const code = err.status === 404 ? RESOURCE_NOT_FOUND : err.status >= 500 ? ErrorCode.InternalError : ErrorCode.InvalidRequest;
    return new McpError(code, `${uri}: ${refusalText(err)}`, { uri, problem: problemOf(err) });
  }
  if (err instanceof ApiUnreachableError) return new McpError(ErrorCode.InternalError, `${uri}: ${err.message}`);
  return err;
}

function problemOf(err: ApiProblemError) {
  return {
    type: err.type,
    status: err.status,
    code: err.code,
    title: err.title,
    ...(err.detail ? { detail: err.detail } : {}),
    ...(err.errors ? { errors: err.errors } : {}),
    ...(err.planId ? { planId: err.planId } : {}),
  };
}
