/**
 * The dispatch journal: where each plan's one Proxmox mutation stands, shared by every worker.
 *
 * Proxmox takes no idempotency key, and a dispatch whose answer is lost (a dropped connection, a
 * worker killed between the POST and its record) leaves only a task in the node's task list, which
 * names its type, guest and API token but not the plan. The journal makes that task attributable by
 * construction:
 *
 * - before the request, the plan writes an *intent* on its guest. One mutation per guest is in
 *   flight at a time across all workers: an open intent, or a claimed task that has not ended,
 *   holds the guest, and no other plan of this service dispatches to it meanwhile (Proxmox locks the
 *   guest during most tasks anyway; waiting here turns "VM is locked" failures into turns);
 * - after the request, the plan *claims* the UPID it got (a UPID is claimed by one plan only) or
 *   records that the synchronous call is *done*; once the task has *ended* the guest is free again;
 * - an intent whose answer never came is *settled* once its request is no longer ours to abandon: the
 *   first task of its type on its guest, by our token, started after it and claimed by no other
 *   plan, is its task (src/dispatch/settle.ts). Anyone may settle it (the plan's own retry, or another
 *   plan waiting for the guest), and all reach the same answer;
 * - a request that may have reached Proxmox is never sent again for its plan: while no task of it is
 *   found the intent keeps holding the guest (a loaded pveproxy may still start it), and after a
 *   generous window it is recorded *unknown*, the plan's outcome is unknown, and the guest is free.
 *   Only a request that certainly did not reach Proxmox, or that Proxmox refused, is *released*.
 *
 * Backends: the file journal (one process, beside the file audit store) and PostgreSQL (any number
 * of workers, beside the PostgreSQL audit store). Both apply the rules below, written once.
 */

import type { Freeze, FreezeInput } from '../domain/freeze.js';

export type DispatchState =
  /** The request may have been sent; its answer is not known yet. Holds the guest. */
  | 'intent'
  /** A task was started; `upid` is this plan's. */
  | 'dispatched'
  /** The synchronous call (config PUT) was answered: the change is made. */
  | 'done'
  /** The request did not reach Proxmox, or was refused: nothing was started, and it may be sent again. */
  | 'not_dispatched'
  /**
   * The request may have reached Proxmox, and no task of it was found while the intent held the guest
   * (`note` says why): what it did cannot be known. It is never sent again; the guest is free, and a
   * later task that it could have started is nobody's (settle.ts).
   */
  | 'unknown'
  /** Nothing to send: the guest was already as the plan wants it (a recorded no-op, `note` says why). */
  | 'noop';

export interface DispatchEntry {
  planId: string;
  /** `<environment>/<vmid>`: the guest whose slot the intent holds. */
  guest: string;
  environment: string;
  vmid: number;
  /** The node the request went to (tasks are listed there). */
  node: string;
  /** Catalog action name. */
  action: string;
  /** The action's parameters, so that anyone settling a synchronous intent can tell whether it landed. */
  params: Record<string, unknown>;
  /** The activity attempt that wrote or settled the entry last. */
  attempt: number;
  state: DispatchState;
  /** When the latest intent was written (ms since the epoch, the journal's clock). */
  intentAt: number;
  /** How old the intent was when this entry was read (the journal's clock, so workers' clocks do not matter). */
  ageMs: number;
  upid?: string;
  /** The claimed task has stopped (seen by its plan, or by a plan waiting for the guest). */
  ended?: boolean;
  /** Why a no-op was one, or why an outcome is unknown. */
  note?: string;
}

/** Holds its guest: an open intent, or a claimed task that has not ended. */
export function inFlight(e: Pick<DispatchEntry, 'state' | 'ended'>): boolean {
  return e.state === 'intent' || (e.state === 'dispatched' && !e.ended);
}

export type DispatchIntent = Pick<DispatchEntry, 'planId' | 'environment' | 'vmid' | 'node' | 'action' | 'params' | 'attempt'>;

export type BeginResult =
  /** The intent is written: send the request now. */
  | { kind: 'begun'; entry: DispatchEntry }
  /** Another plan's mutation is in flight on the guest: wait for it (settle its intent once old enough). */
  | { kind: 'busy'; holder: DispatchEntry }
  /** This plan's own earlier intent is unsettled: settle it before anything is sent again. */
  | { kind: 'open'; entry: DispatchEntry }
  /** A later attempt of this plan has taken over: this attempt must not send anything. */
  | { kind: 'superseded'; entry: DispatchEntry }
  /** The environment is frozen (freeze.ts): nothing was written, nothing may be sent. */
  | { kind: 'frozen'; freeze: Freeze }
  /** This plan has dispatched (or completed, or its outcome is unknown) already: nothing is sent again. */
  | { kind: 'settled'; entry: DispatchEntry };

export interface DispatchJournal {
  readonly description: string;
  get(planId: string): Promise<DispatchEntry | undefined>;
  /**
   * Atomically: take the guest for this plan's dispatch, or say why not (see BeginResult). A new
   * intent is refused while the environment is frozen; an entry of this plan that already stands
   * (dispatched, done, open) is followed whatever the freeze: it was sent before.
   */
  begin(intent: DispatchIntent): Promise<BeginResult>;
  /**
   * The UPID this plan's dispatch started: the entry becomes `dispatched`. Refused (DispatchClaimConflict)
   * when another plan holds the UPID: by construction that never happens, and it must never pass silently.
   */
  claim(planId: string, upid: string, attempt: number): Promise<DispatchEntry>;
  /** The synchronous call was answered: `done`. */
  complete(planId: string, attempt: number): Promise<DispatchEntry>;
  /**
   * This plan found nothing to do: `noop`, so that a later attempt reports the same instead of
   * deciding again on a guest that may have changed since. Only when nothing of this plan is in
   * flight or dispatched; otherwise the entry as it is (which the caller then follows).
   */
  noop(intent: DispatchIntent, note: string): Promise<DispatchEntry>;
  /**
   * The intent started nothing: `not_dispatched`, the guest is free. Only an entry still in `intent`
   * changes (a claim that got there first wins). Returns the entry as it is now.
   */
  release(planId: string, attempt: number): Promise<DispatchEntry | undefined>;
  /**
   * The intent's request may have reached Proxmox and no task of it can be attributed: `unknown`, for
   * good (never sent again), and the guest is free. Only an entry still in `intent` changes (a claim
   * that got there first wins). Returns the entry as it is now.
   */
  unknown(planId: string, attempt: number, note: string): Promise<DispatchEntry | undefined>;
  /** The claimed task has stopped: the guest is free. Idempotent. */
  end(planId: string): Promise<DispatchEntry | undefined>;
  /** The mutation in flight on this guest, if any (`inFlight`: an open intent or a running claimed task). */
  holder(guest: string): Promise<DispatchEntry | undefined>;
  /** UPIDs claimed on this guest, with the plan each belongs to. */
  claimedOn(guest: string): Promise<Map<string, string>>;
  /** Entries on this guest whose outcome is `unknown`: a later task could be theirs (settle.ts). */
  unknownOn(guest: string): Promise<DispatchEntry[]>;
  /** Freezes `environment` (freeze.ts); serialized with every `begin` in it. */
  freeze(input: FreezeInput): Promise<Freeze>;
  /**
   * Lifts a freeze; undefined when there is no such freeze. `lifted` says whether this call lifted it
   * (of several racing lifts exactly one does); a freeze lifted before is returned as it was lifted.
   */
  lift(id: string, by: string): Promise<{ freeze: Freeze; lifted: boolean } | undefined>;
  /** One freeze, active or lifted. */
  freezeById(id: string): Promise<Freeze | undefined>;
  /** Freezes, newest first: active ones only unless `includeLifted`. */
  freezes(opts?: { environment?: string; includeLifted?: boolean }): Promise<Freeze[]>;
  /** Open intents in an environment: requests that may be on their way to Proxmox right now. */
  sending(environment: string): Promise<DispatchEntry[]>;
  close(): Promise<void>;
}

export class DispatchClaimConflict extends Error {
  override readonly name = 'DispatchClaimConflict';
}

export const guestKey = (environment: string, vmid: number): string => `${environment}/${vmid}`;

/**
 * The one rule for `begin`, used by every backend inside its own atomic section: `own` is this
 * plan's entry, `holder` the mutation in flight on the guest (if any, possibly `own`).
 */
export function decideBegin(
  intent: DispatchIntent,
  own: DispatchEntry | undefined,
  holder: DispatchEntry | undefined,
): Exclude<BeginResult, { kind: 'begun' }> | { kind: 'write' } {
  if (own && (own.state === 'dispatched' || own.state === 'done' || own.state === 'noop' || own.state === 'unknown')) return { kind: 'settled', entry: own };
  if (own && own.attempt > intent.attempt) return { kind: 'superseded', entry: own };
  if (own?.state === 'intent') return { kind: 'open', entry: own };
  if (holder && holder.planId !== intent.planId) return { kind: 'busy', holder };
  return { kind: 'write' };
}

/** The one rule for `noop`: recorded over nothing or a released intent; any other entry stands. */
export function decideNoop(own: DispatchEntry | undefined): 'write' | 'keep' {
  return !own || own.state === 'not_dispatched' ? 'write' : 'keep';
}

/**
 * The one rule for `release` and `unknown`: only an open intent is settled so (a claim, a completion,
 * or an earlier settlement stands). Returns the entry to write, or undefined to keep the entry as it is.
 */
export function settleWithoutTask(
  own: DispatchEntry | undefined,
  state: 'not_dispatched' | 'unknown',
  attempt: number,
  note?: string,
): DispatchEntry | undefined {
  if (!own || own.state !== 'intent') return undefined;
  return { ...own, state, attempt: Math.max(own.attempt, attempt), ...(note !== undefined ? { note } : {}) };
}

/** The entry a `begin` writes. */
export function intentEntry(intent: DispatchIntent, now: number): DispatchEntry {
  return { ...intent, guest: guestKey(intent.environment, intent.vmid), state: 'intent', intentAt: now, ageMs: 0 };
}

/**
 * The one rule for `claim`: a UPID belongs to one plan. Returns the new entry, or throws when the
 * UPID is another plan's. A claim wins over `intent` and `not_dispatched` (the task exists, whatever
 * an earlier settlement concluded).
 */
export function applyClaim(own: DispatchEntry | undefined, upid: string, attempt: number, claimedBy: string | undefined, planId: string): DispatchEntry {
  if (!own) throw new Error(`no dispatch intent for plan ${planId}: a UPID is claimed only after an intent`);
  if (claimedBy !== undefined && claimedBy !== planId) {
    throw new DispatchClaimConflict(`task ${upid} is already claimed by plan ${claimedBy}; plan ${planId} cannot claim it`);
  }
  if (own.state === 'dispatched' && own.upid !== undefined && own.upid !== upid) {
    throw new DispatchClaimConflict(`plan ${planId} already claimed task ${own.upid}; it cannot claim ${upid} too`);
  }
  return { ...own, state: 'dispatched', upid, attempt: Math.max(own.attempt, attempt) };
}
