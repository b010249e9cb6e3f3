/**
 * Settling an intent whose answer never came: which task, if any, did its request start?
 *
 * Safe by construction, not by timing, across plans: while an intent is open no other plan of this
 * service dispatches to its guest (journal.ts), and every task our dispatches started is claimed
 * before the guest is free again. So a task of the intent's type on its guest, started by our token
 * after the intent and claimed by no plan, can only be this intent's, unless an earlier request whose
 * outcome is unknown could have started it (then it is nobody's, and this intent's outcome is unknown
 * too).
 *
 * No timing assumption decides that a request started nothing. The dispatch sends within
 * DISPATCH_START_MS of the intent and abandons the request after DISPATCH_TIMEOUT_MS, so settling
 * starts at SETTLE_AFTER_MS; but a loaded pveproxy may hold a request longer before it runs it, and
 * does not drop it because the client hung up. So while no task is found the intent keeps holding the
 * guest, and its task is claimed if it appears; after HOLD_UNANSWERED_MS the intent is recorded
 * `unknown`: never sent again, the plan's outcome unknown.
 */
import type { DispatchEntry, DispatchJournal } from './journal.js';

/** The request is sent within this long after its intent was written, or not at all. */
export const DISPATCH_START_MS = 2_000;
/** ...and abandoned (the socket closed) this long after it was sent. */
export const DISPATCH_TIMEOUT_MS = 15_000;
/** An intent this old has no request in flight: its task, if any, is in the node's task list. */
export const SETTLE_AFTER_MS = DISPATCH_START_MS + DISPATCH_TIMEOUT_MS + 3_000;
/**
 * How long an unanswered intent keeps its guest while no task of it is found: a request held by a
 * loaded pveproxy may still start one. Then its outcome is recorded unknown.
 */
export const HOLD_UNANSWERED_MS = 5 * 60_000;
/** Tolerated difference between the journal's clock and the node's (task start times). */
export const CLOCK_SKEW_S = 60;

export interface ListedTask {
  upid: string;
  type: string;
  id?: string | number;
  user?: string;
  tokenid?: string;
  starttime: number;
}

/**
 * The task the intent started, if the list holds it: of one of its action's task types, on its guest,
 * by our token, started after the intent (less the skew), and not another plan's.
 */
export function taskOfIntent(
  entry: Pick<DispatchEntry, 'planId' | 'vmid' | 'intentAt'>,
  tasks: readonly ListedTask[],
  taskTypes: readonly string[],
  tokenId: string,
  claimed: ReadonlyMap<string, string>,
): ListedTask | undefined {
  const since = Math.floor(entry.intentAt / 1000) - CLOCK_SKEW_S;
  const [user, token] = tokenId.split('!') as [string, string | undefined];
  return tasks
    .filter((t) => taskTypes.includes(t.type) && String(t.id ?? '') === String(entry.vmid) && t.starttime >= since)
    .filter((t) => t.upid.includes(`:${tokenId}:`) || (t.user === user && (token === undefined || t.tokenid === token)))
    .filter((t) => (claimed.get(t.upid) ?? entry.planId) === entry.planId)
    .sort((a, b) => a.starttime - b.starttime || a.upid.localeCompare(b.upid))[0];
}

/**
 * The plans whose request, of unknown outcome, could have started this task: one of their action's
 * task types, on the same guest, started after their intent (less the skew). Their requests were sent
 * by our token too, and may still start a task at any time.
 */
export function couldBeUnknowns(
  task: ListedTask,
  unknowns: readonly Pick<DispatchEntry, 'planId' | 'action' | 'intentAt'>[],
  taskTypesOf: (action: string) => readonly string[],
): string[] {
  return unknowns
    .filter((u) => taskTypesOf(u.action).includes(task.type) && task.starttime >= Math.floor(u.intentAt / 1000) - CLOCK_SKEW_S)
    .map((u) => u.planId);
}

export interface SettleDeps {
  journal: DispatchJournal;
  /** The token our requests carry: tasks it started name it. */
  tokenId: string;
  /** What the action's request answers (define.ts `response`) and the task types it starts. */
  shape(action: string): { response: 'task' | 'sync' | 'task-or-sync'; taskTypes: readonly string[] };
  /** Tasks on the intent's node for its guest, since the given Unix time. */
  listTasks(entry: DispatchEntry, sinceSec: number): Promise<ListedTask[]>;
  /** Whether the guest shows the intent's change made (for calls that answer without a task). */
  changeVisible(entry: DispatchEntry): Promise<boolean>;
  /** Who settles (the attempt number recorded with the settlement). */
  attempt: number;
  /** How long an intent with no task found keeps its guest (default HOLD_UNANSWERED_MS; tests shorten it). */
  holdMs?: number;
}

/**
 * Looks once at an intent that is old enough (the caller waits for SETTLE_AFTER_MS): claims its task,
 * or records a synchronous change as done; a task that an unknown request could have started makes
 * this one unknown too; with nothing found it stays an open intent, holding the guest, until it is
 * HOLD_UNANSWERED_MS old, and is then recorded unknown. Never released: its request may have reached
 * Proxmox (a request that certainly did not is released by its dispatch, not here). The caller looks
 * again while the entry is still `intent`. Returns the entry as the journal has it afterwards
 * (someone else may have settled it first; the journal keeps the first claim, and a claim wins).
 */
export async function settleIntent(entry: DispatchEntry, deps: SettleDeps): Promise<DispatchEntry | undefined> {
  const { response, taskTypes } = deps.shape(entry.action);
  if (response !== 'sync') {
    const since = Math.floor(entry.intentAt / 1000) - CLOCK_SKEW_S;
    const [tasks, claimed, unknowns] = await Promise.all([deps.listTasks(entry, since), deps.journal.claimedOn(entry.guest), deps.journal.unknownOn(entry.guest)]);
    const task = taskOfIntent(entry, tasks, taskTypes, deps.tokenId, claimed);
    if (task) {
      const others = couldBeUnknowns(task, unknowns.filter((u) => u.planId !== entry.planId), (a) => deps.shape(a).taskTypes);
      if (others.length === 0) return deps.journal.claim(entry.planId, task.upid, deps.attempt);
      return deps.journal.unknown(
        entry.planId,
        deps.attempt,
        `task ${task.upid} may be this plan's, or the request of plan ${others.join(', ')} whose outcome is unknown: it is claimed by neither`,
      );
    }
  }
  // No task. A call that answers without one (config PUT; resize on old servers) made its change, if
  // the guest shows it: while the intent held the guest, no other plan of ours could have. A task
  // action's change made by someone else is not ours to claim: its retry will find it already done.
  if (response !== 'task' && (await deps.changeVisible(entry))) return deps.journal.complete(entry.planId, deps.attempt);
  const holdMs = deps.holdMs ?? HOLD_UNANSWERED_MS;
  if (entry.ageMs < holdMs) return entry; // a held request may still start: keep the guest, look again
  return deps.journal.unknown(
    entry.planId,
    deps.attempt,
    `the request may have reached Proxmox, and nothing of it appeared in ${Math.round(holdMs / 1000)} s: it is not sent again`,
  );
}
