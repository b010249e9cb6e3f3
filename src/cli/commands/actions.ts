/**
 * `proxmox-agent plan | apply | status`: request an action, apply it, and follow it to its end.
 *
 *   proxmox-agent plan --action vm.start --environment lab --vmid 101 --reason "…" [--param k=v …]
 *   proxmox-agent plan --file request.yaml [--apply] [--follow]
 *   proxmox-agent apply <planId> [--no-follow]
 *   proxmox-agent status <planId> [--follow]
 *
 * While following, one line shows status, approvals received/required and elapsed time: updated in
 * place on a terminal, one line per change otherwise. The exit code says the outcome (EXIT below).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { TERMINAL, type ActionRequestInput, type ApiClient, type Plan, type PlanStatus } from '../../client/index.js';
import { CliExit, client, EXIT_API, EXIT_USAGE, run, withConnectionOptions } from '../connection.js';
import { oneLine, planText } from '../plan-text.js';

/** Exit codes of plan, apply and status (documented in README and `--help`). */
export const EXIT = {
  succeeded: 0,
  /** Waits for approvals (or, approved, for apply): a human must act. Only when not following. */
  awaitingApproval: 10,
  /** Planned but not applied, or still applying. Only when not following. */
  inProgress: 11,
  denied: 20,
  rejected: 21,
  expired: 22,
  failed: 23,
  api: EXIT_API,
  usage: EXIT_USAGE,
  interrupted: 130,
} as const;

export const EXIT_HELP = `
Exit codes:
  0   succeeded (for plan: planned, ready to apply)
  10  awaiting approval, or approved and waiting for apply (not following)
  11  planned but not applied, or still applying (not following)
  20  denied by policy      21  rejected by an approver
  22  expired               23  failed (Proxmox refused, the task failed, or the plan was stale)
  1   the API refused the request or could not be reached
  2   usage (bad flags, no token, unreadable file)
  130 interrupted while following`;

export function exitCodeFor(status: PlanStatus, opts: { plan?: boolean } = {}): number {
  switch (status) {
    case 'succeeded':
      return EXIT.succeeded;
    case 'planned':
      return opts.plan ? EXIT.succeeded : EXIT.inProgress;
    case 'applying':
      return EXIT.inProgress;
    case 'awaiting_approval':
    case 'approved':
      return EXIT.awaitingApproval;
    case 'denied':
      return EXIT.denied;
    case 'rejected':
      return EXIT.rejected;
    case 'expired':
      return EXIT.expired;
    case 'failed':
      return EXIT.failed;
  }
}

export interface PlanOptions {
  file?: string;
  action?: string;
  environment?: string;
  vmid?: string;
  node?: string;
  param?: string[];
  params?: string;
  reason?: string;
  idempotencyKey?: string;
  apply?: boolean;
  follow?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  withConnectionOptions(program.command('plan'))
    .description('Plan an action: the policy decision, risk and approvals it needs, without changing anything')
    .option('-f, --file <path>', 'the request as JSON or YAML: {action, environment, target: {vmid, node?}, params, reason}')
    .option('-a, --action <name>', 'e.g. vm.start, vm.snapshot.create (GET /v1/catalog lists them)')
    .option('-e, --environment <name>', 'e.g. lab, prod')
    .option('--vmid <id>', 'the guest')
    .option('--node <node>', 'the node (default: where the guest is)')
    .option('-p, --param <key=value>', 'an action parameter (repeatable; the value is JSON if it parses, else a string)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--params <json>', 'all parameters as a JSON object')
    .option('-r, --reason <text>', 'why: recorded and shown to approvers')
    .option('--idempotency-key <key>', 'repeat the request safely: the same key and request return the same plan')
    .option('--apply', 'apply it right away when it is not denied')
    .option('--follow', 'with --apply: follow it to its end')
    .option('--json', 'print the API JSON')
    .addHelpText('after', EXIT_HELP)
    .action((opts: PlanOptions, cmd: Command) => run(() => planCommand(cmd, opts)));

  withConnectionOptions(program.command('apply <planId>'))
    .description("Apply a plan with the plan's own requestHash, then follow it to its end")
    .option('--no-follow', 'return once the apply is accepted')
    .option('--json', 'print the final plan as JSON')
    .addHelpText('after', EXIT_HELP)
    .action((planId: string, opts: { follow: boolean; json?: boolean }, cmd: Command) => run(() => applyCommand(cmd, planId, opts)));

  withConnectionOptions(program.command('status <planId>'))
    .description('Show a plan and its outcome; --follow waits for its end with a live progress line')
    .option('--follow', 'follow it until it ends')
    .option('--json', 'print the plan as JSON')
    .addHelpText('after', EXIT_HELP)
    .action((planId: string, opts: { follow?: boolean; json?: boolean }, cmd: Command) => run(() => statusCommand(cmd, planId, opts)));
}

async function planCommand(cmd: Command, opts: PlanOptions): Promise<void> {
  const api = client(cmd, 'api');
  const req = buildRequest(opts);
  const plan = await api.plan(req, opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {});
  await showPlanThenMaybeApply(api, plan, opts);
}

/** A plan just made (planned or undone): shown, then applied and followed when asked. */
export async function showPlanThenMaybeApply(api: ApiClient, plan: Plan, opts: { apply?: boolean; follow?: boolean; json?: boolean }): Promise<void> {
  if (opts.json && !opts.apply) console.log(JSON.stringify(plan, null, 2));
  else {
    console.log(planText(plan));
    console.log('');
  }
  if (!opts.apply || plan.status === 'denied') {
    if (!opts.json) console.log(nextStep(plan));
    process.exitCode = exitCodeFor(plan.status, { plan: true });
    return;
  }
  await applyAndMaybeFollow(api, plan, { follow: Boolean(opts.follow), json: Boolean(opts.json) });
}

async function applyCommand(cmd: Command, planId: string, opts: { follow: boolean; json?: boolean }): Promise<void> {
  const api = client(cmd, 'api');
  const plan = await api.get(planId);
  if (!opts.json) console.log(`${planId}: ${oneLine(plan)}; ${plan.status}`);
  await applyAndMaybeFollow(api, plan, { follow: opts.follow, json: Boolean(opts.json) });
}

async function applyAndMaybeFollow(api: ApiClient, plan: Plan, opts: { follow: boolean; json: boolean }): Promise<void> {
  // The hash is the plan's own: what is applied is exactly what was planned (and approved).
  console.error(`Applying ${plan.planId} with requestHash ${plan.requestHash}`);
  const accepted = await api.apply(plan.planId, plan.requestHash);
  if (!opts.follow) {
    if (opts.json) console.log(JSON.stringify(accepted, null, 2));
    else console.log(`Accepted: ${accepted.status}.${accepted.status === 'awaiting_approval' ? ` It runs when the approvals are in (${plan.approval.received}/${plan.approval.required}).` : ''} Follow it with: proxmox-agent status ${plan.planId} --follow`);
    process.exitCode = exitCodeFor(accepted.status);
    return;
  }
  const final = await follow(api, plan.planId);
  report(final, opts.json);
}

async function statusCommand(cmd: Command, planId: string, opts: { follow?: boolean; json?: boolean }): Promise<void> {
  const api = client(cmd, 'api');
  const plan = opts.follow ? await follow(api, planId) : await api.get(planId);
  report(plan, Boolean(opts.json), !opts.follow);
}

function report(plan: Plan, json: boolean, full = false): void {
  if (json) console.log(JSON.stringify(plan, null, 2));
  else if (full) console.log(planText(plan));
  else console.log(outcomeLine(plan));
  process.exitCode = exitCodeFor(plan.status);
}

/** Follows a plan to a terminal status over the event stream, showing progress on stderr. */
export async function follow(api: ApiClient, planId: string, out: NodeJS.WriteStream = process.stderr): Promise<Plan> {
  const started = Date.now();
  const tty = Boolean(out.isTTY);
  let last: Plan | undefined;
  let lastLine = '';
  const show = () => {
    if (!last) return;
    const line = progressLine(last, Date.now() - started);
    if (tty) out.write(`\r\x1b[2K${line}`);
    else if (line.replace(/ \d+s$/, '') !== lastLine.replace(/ \d+s$/, '')) out.write(`${line}\n`);
    lastLine = line;
  };
  const ticker = tty ? setInterval(show, 1000) : undefined;
  const stop = new AbortController();
  const interrupted = () => stop.abort();
  process.once('SIGINT', interrupted);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        for await (const plan of api.events(planId, { signal: stop.signal })) {
          last = plan;
          show();
        }
        if (last && TERMINAL.includes(last.status)) return last;
      } catch (err) {
        if (stop.signal.aborted) throw new CliExit(`stopped following ${planId}; it goes on: proxmox-agent status ${planId} --follow`, EXIT.interrupted);
        // A broken stream: fall back to the long poll until the end.
        if (attempt >= 3 || !(err instanceof Error) || err.name !== 'ApiUnreachableError') throw err;
      }
      if (stop.signal.aborted) throw new CliExit(`stopped following ${planId}; it goes on: proxmox-agent status ${planId} --follow`, EXIT.interrupted);
      last = await api.wait(planId, { waitSeconds: 30, ...(last ? { status: last.status } : {}) });
      show();
      if (TERMINAL.includes(last.status)) return last;
    }
  } finally {
    if (ticker) clearInterval(ticker);
    process.removeListener('SIGINT', interrupted);
    if (tty && lastLine) out.write('\n');
  }
}

/** `plan_… vm.delete prod/201  applying  approvals 2/2  task UPID:…  12s` */
export function progressLine(p: Plan, elapsedMs: number): string {
  const parts = [p.planId, `${p.action} ${p.environment}/${p.target.vmid}`, p.status];
  if (p.approval.required > 0) parts.push(`approvals ${p.approval.received}/${p.approval.required}`);
  if (p.result?.upid) parts.push(`task ${p.result.upid}`);
  parts.push(`${Math.floor(elapsedMs / 1000)}s`);
  return parts.join('  ');
}

export function outcomeLine(p: Plan): string {
  const r = p.result;
  switch (p.status) {
    case 'succeeded':
      return `${p.planId} succeeded${r?.outcome === 'noop' ? ' (nothing to do)' : ''}${r?.upid ? `: ${r.upid}` : ''}`;
    case 'failed':
      return `${p.planId} failed${r?.errorType ? ` (${r.errorType})` : ''}: ${r?.message ?? 'see the plan'}`;
    case 'denied':
      return `${p.planId} denied: ${p.reasons.map((x) => `${x.message}${x.hint ? ` (${x.hint})` : ''}`).join('; ')}`;
    case 'rejected':
      return `${p.planId} rejected by ${p.approval.rejectedBy?.principal ?? 'an approver'}${p.approval.rejectedBy?.comment ? `: ${p.approval.rejectedBy.comment}` : ''}`;
    case 'expired':
      return `${p.planId} expired at ${p.expiresAt}`;
    default:
      return `${p.planId} ${p.status}${p.approval.required > 0 ? `, approvals ${p.approval.received}/${p.approval.required}` : ''}`;
  }
}

function nextStep(p: Plan): string {
  switch (p.status) {
    case 'planned':
      return `Next: proxmox-agent apply ${p.planId}`;
    case 'awaiting_approval':
      return `Needs ${p.approval.required - p.approval.received} more approval(s) from people with the approve scope (proxmox-agent approvals approve ${p.planId}). Apply now and it runs when they are in: proxmox-agent apply ${p.planId}`;
    case 'denied':
      return 'Denied: read the reasons and hints above; a retry of the same request is denied again.';
    default:
      return `Status: ${p.status}`;
  }
}

/** The request from --file, then the flags over it. */
export function buildRequest(opts: PlanOptions): ActionRequestInput {
  let base: Record<string, unknown> = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new CliExit(`cannot read ${opts.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
    }
    try {
      const parsed: unknown = parseYaml(text); // JSON is YAML too
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      base = parsed as Record<string, unknown>;
    } catch (err) {
      throw new CliExit(`${opts.file} is not a JSON or YAML object: ${(err as Error).message}`, EXIT.usage);
    }
  }
  const target = { ...((base.target as Record<string, unknown> | undefined) ?? {}) };
  if (opts.vmid !== undefined) {
    const vmid = Number(opts.vmid);
    if (!Number.isInteger(vmid)) throw new CliExit(`--vmid must be a number, got '${opts.vmid}'`, EXIT.usage);
    target.vmid = vmid;
  }
  if (opts.node !== undefined) target.node = opts.node;
  let params = { ...((base.params as Record<string, unknown> | undefined) ?? {}) };
  if (opts.params !== undefined) {
    try {
      params = { ...params, ...(JSON.parse(opts.params) as Record<string, unknown>) };
    } catch {
      throw new CliExit('--params must be a JSON object', EXIT.usage);
    }
  }
  for (const kv of opts.param ?? []) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new CliExit(`--param must be key=value, got '${kv}'`, EXIT.usage);
    const raw = kv.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      /* a plain string */
    }
    params[kv.slice(0, eq)] = value;
  }
  const req = {
    ...base,
    ...(opts.action !== undefined ? { action: opts.action } : {}),
    ...(opts.environment !== undefined ? { environment: opts.environment } : {}),
    ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
    target,
    params,
  };
  const missing = ['action', 'environment', 'reason'].filter((k) => !(req as Record<string, unknown>)[k]);
  if (target.vmid === undefined) missing.push('vmid');
  if (missing.length) throw new CliExit(`missing ${missing.join(', ')}: give them as flags or in --file`, EXIT.usage);
  return req as ActionRequestInput;
}
