import { ApplicationFailure, Context } from '@temporalio/activity';
import { findAction } from '../domain/actions/catalog.js';
import type { ActionContext, ActionDefinition } from '../domain/actions/define.js';
import type { GuestState } from '../domain/guest-state.js';
import {
  isRetryableProxmoxError,
  ProxmoxError,
  ProxmoxStaleConfigError,
  ProxmoxTaskFailedError,
  type ProxmoxClient,
} from '../proxmox/index.js';
import { REFUSALS } from '../workflows/messages.js';
import { readGuest } from './guest-reader.js';
import type { ExecuteInput, ExecuteProgress, ExecuteResult } from './types.js';

export interface ExecuteDeps {
  clientFor(environment: string): ProxmoxClient;
  /** The token id the client authenticates with: tasks it starts carry it in their UPID. */
  tokenIdFor(environment: string): string;
  pollIntervalMs?: number;
}

type Located = { node?: string; vmid: number };

/**
 * Run one action on Proxmox, exactly once, although the activity itself may run several times:
 * 1. a retry that already knows its UPID (heartbeat details) resumes waiting on it;
 * 2. a retry that does not (crash between dispatch and heartbeat) first looks for the task it may
 *    have started, in the node's task list, and adopts it;
 * 3. otherwise the current state decides: already done → a recorded no-op (after waiting for a
 *    creation an earlier attempt left unfinished); else dispatch once, heartbeat the UPID at once,
 *    and wait. A polling error re-polls; it never re-sends.
 * Synchronous calls (config PUT) answer `null`: done, no task, and a re-read confirms it. Digest-
 * guarded actions run only against the config the plan read.
 */
export async function executeAction(deps: ExecuteDeps, input: ExecuteInput): Promise<ExecuteResult> {
  const ctx = Context.current();
  const action = findAction(input.request.action);
  if (!action) throw ApplicationFailure.nonRetryable(`unknown action ${input.request.action}`, 'ActionBlocked');
  const client = deps.clientFor(input.request.environment);
  const params = input.request.params;
  const target = { node: input.node, vmid: input.request.target.vmid };
  // A migrate that already ran left the guest on its target: look for it anywhere in the cluster.
  const locate: Located = action.destination ? { vmid: target.vmid } : target;
  const run: ActionContext = { planId: input.planId, ...(input.plannedDigest === undefined ? {} : { plannedDigest: input.plannedDigest }) };
  const intervalMs = deps.pollIntervalMs ?? 1000;
  try {
    let upid = (ctx.info.heartbeatDetails as ExecuteProgress | undefined)?.upid;
    let note: string | undefined;
    if (!upid && ctx.info.attempt > 1 && action.taskTypes.length > 0) {
      upid = await findDispatchedTask(client, action, target, deps.tokenIdFor(input.request.environment), ctx.info.scheduledTimestampMs);
      if (upid) note = 'adopted the task an earlier attempt had started';
    }
    if (!upid) {
      const state = await readGuest(client, action, locate, params);
      const assessment = action.assess(state, params, run);
      if (assessment.kind === 'already_done') {
        // A creation an earlier attempt started may still be running (a clone holds its lock).
        if (action.settled && !action.settled(state, params)) {
          await waitForEarlierAttempt(client, action, locate, params, run, intervalMs, () => ctx.heartbeat(), ctx.cancellationSignal);
        }
        return { outcome: 'noop', note: assessment.reason };
      }
      if (assessment.kind === 'blocked') throw ApplicationFailure.nonRetryable(assessment.reason, 'ActionBlocked');
      assertPlannedDigest(action, state, input.plannedDigest);
      const data = await client.request(
        action.proxmox.method,
        action.proxmox.path as never,
        action.pathParams(state, params) as never,
        action.proxmoxParams(params, state, run),
      );
      if (data === null && action.response !== 'task') {
        const confirmed = !action.settled || (await waitUntilSettled(client, action, locate, params, intervalMs, () => ctx.heartbeat()));
        return { outcome: 'applied', ...(confirmed ? {} : { note: 'Proxmox answered OK, but a re-read does not show the change yet' }) };
      }
      if (typeof data !== 'string') throw ApplicationFailure.nonRetryable(`Proxmox returned no task id for ${action.name}`, 'ProxmoxProtocolError');
      upid = data;
      ctx.heartbeat({ phase: 'dispatched', upid } satisfies ExecuteProgress);
    }
    const progress: ExecuteProgress = { phase: 'dispatched', upid };
    const done = await client
      .waitForTask(target.node, upid, { intervalMs, signal: ctx.cancellationSignal, onPoll: () => ctx.heartbeat(progress) })
      .catch(async (err: unknown) => {
        if (ctx.cancellationSignal.aborted) await stopCancelledTask(client, target.node, upid!);
        throw err;
      });
    if (action.settled) await waitUntilSettled(client, action, locate, params, intervalMs, () => ctx.heartbeat(progress));
    return { outcome: 'applied', upid, exitstatus: done.exitstatus, ...(note ? { note } : {}) };
  } catch (err) {
    throw toActivityFailure(err);
  }
}

/**
 * The run was cancelled while its Proxmox task ran: ask Proxmox to stop it (DELETE the task), as far
 * as Proxmox allows; a task that already ended, or cannot be stopped, is left as it is.
 */
async function stopCancelledTask(client: ProxmoxClient, node: string, upid: string): Promise<void> {
  const log = Context.current().log;
  try {
    await client.stopTask(node, upid);
    log.warn('run cancelled: asked Proxmox to stop its task', { upid });
  } catch (err) {
    log.warn('run cancelled: Proxmox did not stop the task', { upid, error: (err as Error).message });
  }
}

/**
 * The digest must be the one the plan's preflight read, not one read now: reading it again here
 * would accept any change made since the plan, which is what the guard exists to refuse.
 */
function assertPlannedDigest(action: ActionDefinition, state: GuestState, planned: string | undefined): void {
  if (!action.digestGuard) return;
  if (planned === undefined) {
    throw ApplicationFailure.nonRetryable(`${action.name} needs the config digest read at plan time, and the plan has none; plan again`, REFUSALS.stale);
  }
  if (state.digest !== planned) {
    throw ApplicationFailure.nonRetryable(
      `the guest config changed since the plan (digest ${planned.slice(0, 12)}… is now ${state.digest?.slice(0, 12) ?? 'unknown'}…); plan again`,
      REFUSALS.stale,
    );
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

/**
 * HA-managed guests: the task ends when ha-manager accepted the request, not when the guest changed.
 * Without HA the task (or the synchronous answer) is authoritative, so a few re-reads suffice.
 * Returns whether the guest was seen settled.
 */
async function waitUntilSettled(
  client: ProxmoxClient,
  action: ActionDefinition,
  locate: Located,
  params: Record<string, unknown>,
  intervalMs: number,
  beat: () => void,
): Promise<boolean> {
  for (let i = 0; i < 600; i++) {
    const state = await readGuest(client, action, locate, params);
    if (action.settled!(state, params)) return true;
    if (!state.haManaged && i > 2) return false;
    beat();
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}

/**
 * Already done, but not finished: what an earlier attempt started (a clone, still locked) is still
 * running. Wait for it as long as it stays "already done"; if it stops being so (the clone failed and
 * Proxmox removed it), a retry finds that attempt's task and reports its outcome.
 */
async function waitForEarlierAttempt(
  client: ProxmoxClient,
  action: ActionDefinition,
  locate: Located,
  params: Record<string, unknown>,
  run: ActionContext,
  intervalMs: number,
  beat: () => void,
  signal: AbortSignal,
): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    beat();
    await new Promise((r) => setTimeout(r, intervalMs));
    const state = await readGuest(client, action, locate, params);
    if (action.settled!(state, params)) return;
    if (action.assess(state, params, run).kind !== 'already_done') {
      throw ApplicationFailure.retryable(`what an earlier attempt of ${action.name} started did not finish; looking for its task`, 'EarlierAttemptUnfinished');
    }
  }
}

/**
 * Transient Proxmox errors are rethrown as retryable failures (the retry policy handles them);
 * permanent ones become non-retryable, carrying Proxmox's own words and the task's details. A digest
 * Proxmox refused is the same staleness the run checks before dispatch, and is reported the same way.
 */
function toActivityFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof ProxmoxStaleConfigError) {
    return ApplicationFailure.create({
      type: REFUSALS.stale,
      message: `the guest config changed since the plan; plan again (Proxmox: ${err.proxmoxMessage.trim() || err.message})`,
      nonRetryable: true,
    });
  }
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
