import { ApplicationFailure, Context } from '@temporalio/activity';
import { findAction } from '../domain/actions/catalog.js';
import type { ActionDefinition } from '../domain/actions/define.js';
import { isRetryableProxmoxError, ProxmoxError, ProxmoxTaskFailedError, type ProxmoxClient } from '../proxmox/index.js';
import { readGuest } from './guest-reader.js';
import type { ExecuteInput, ExecuteProgress, ExecuteResult } from './types.js';

export interface ExecuteDeps {
  clientFor(environment: string): ProxmoxClient;
  /** The token id the client authenticates with: tasks it starts carry it in their UPID. */
  tokenIdFor(environment: string): string;
  pollIntervalMs?: number;
}

/**
 * Run one action on Proxmox, exactly once, although the activity itself may run several times:
 * 1. a retry that already knows its UPID (heartbeat details) resumes waiting on it;
 * 2. a retry that does not (crash between dispatch and heartbeat) first looks for the task it may
 *    have started, in the node's task list, and adopts it;
 * 3. otherwise the current state decides: already done → a recorded no-op; else dispatch once,
 *    heartbeat the UPID at once, and wait. A polling error re-polls; it never re-sends.
 */
export async function executeAction(deps: ExecuteDeps, input: ExecuteInput): Promise<ExecuteResult> {
  const ctx = Context.current();
  const action = findAction(input.request.action);
  if (!action) throw ApplicationFailure.nonRetryable(`unknown action ${input.request.action}`, 'ActionBlocked');
  const client = deps.clientFor(input.request.environment);
  const target = { node: input.node, vmid: input.request.target.vmid };
  try {
    let upid = (ctx.info.heartbeatDetails as ExecuteProgress | undefined)?.upid;
    let note: string | undefined;
    if (!upid && ctx.info.attempt > 1) {
      upid = await findDispatchedTask(client, action, target, deps.tokenIdFor(input.request.environment), ctx.info.scheduledTimestampMs);
      if (upid) note = 'adopted the task an earlier attempt had started';
    }
    if (!upid) {
      const state = await readGuest(client, action, target);
      const assessment = action.assess(state, input.request.params);
      if (assessment.kind === 'already_done') return { outcome: 'noop', note: assessment.reason };
      if (assessment.kind === 'blocked') throw ApplicationFailure.nonRetryable(assessment.reason, 'ActionBlocked');
      const data = await client.request(
        action.proxmox.method,
        action.proxmox.path as never,
        action.pathParams(state, input.request.params) as never,
        action.proxmoxParams(input.request.params, state),
      );
      if (typeof data !== 'string') throw ApplicationFailure.nonRetryable(`Proxmox returned no task id for ${action.name}`, 'ProxmoxProtocolError');
      upid = data;
      ctx.heartbeat({ phase: 'dispatched', upid } satisfies ExecuteProgress);
    }
    const progress: ExecuteProgress = { phase: 'dispatched', upid };
    const done = await client.waitForTask(target.node, upid, {
      intervalMs: deps.pollIntervalMs ?? 1000,
      signal: ctx.cancellationSignal,
      onPoll: () => ctx.heartbeat(progress),
    });
    if (action.settled) await waitUntilSettled(client, action, target, input.request.params, deps.pollIntervalMs ?? 1000, () => ctx.heartbeat(progress));
    return { outcome: 'applied', upid, exitstatus: done.exitstatus, ...(note ? { note } : {}) };
  } catch (err) {
    throw toActivityFailure(err);
  }
}

/**
 * The task list is the only record Proxmox keeps of a dispatch whose response we lost. A task of
 * this action's type, on this guest, started by our token since the activity was first scheduled,
 * is ours.
 */
async function findDispatchedTask(
  client: ProxmoxClient,
  action: ActionDefinition,
  target: { node: string; vmid: number },
  tokenId: string,
  firstScheduledMs: number,
): Promise<string | undefined> {
  const sinceSec = Math.floor(firstScheduledMs / 1000) - 60; // tolerate clock skew between us and the node
  const tasks = (await client.listTasks(target.node, { vmid: target.vmid, source: 'all', since: sinceSec, limit: 500 })) as {
    upid: string;
    type: string;
    id?: string;
    user?: string;
    tokenid?: string;
    starttime: number;
  }[];
  const [user, token] = tokenId.split('!') as [string, string | undefined];
  const ours = tasks
    .filter((t) => action.taskTypes.includes(t.type) && String(t.id ?? '') === String(target.vmid) && t.starttime >= sinceSec)
    .filter((t) => t.upid.includes(`:${tokenId}:`) || (t.user === user && (token === undefined || t.tokenid === token)))
    .sort((a, b) => a.starttime - b.starttime);
  return ours[0]?.upid;
}

/** HA-managed guests: the task ends when ha-manager accepted the request, not when the guest changed. */
async function waitUntilSettled(
  client: ProxmoxClient,
  action: ActionDefinition,
  target: { node: string; vmid: number },
  params: Record<string, unknown>,
  intervalMs: number,
  beat: () => void,
): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const state = await readGuest(client, action, target);
    if (action.settled!(state, params)) return;
    if (!state.haManaged && i > 2) break; // not HA: the task result was authoritative
    beat();
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Transient Proxmox errors are rethrown as retryable failures (the retry policy handles them);
 * permanent ones become non-retryable, carrying Proxmox's own words and the task's details.
 */
function toActivityFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof ProxmoxError) {
    const details = err instanceof ProxmoxTaskFailedError ? [{ upid: err.upid, exitstatus: err.exitstatus, logTail: err.logTail }] : [];
    return ApplicationFailure.create({
      type: err.name,
      message: err.message,
      nonRetryable: !isRetryableProxmoxError(err),
      details,
    });
  }
  return err;
}
