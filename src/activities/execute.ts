import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { findAction } from '../domain/actions/catalog.js';
import type { ActionContext, ActionDefinition } from '../domain/actions/define.js';
import type { GuestState } from '../domain/guest-state.js';
import type { NormalizedRequest } from '../domain/request.js';
import type { PolicyDecision } from '../policy/engine.js';
import { guestKey, type DispatchEntry, type DispatchJournal } from '../dispatch/journal.js';
import { DISPATCH_START_MS, DISPATCH_TIMEOUT_MS, SETTLE_AFTER_MS, settleIntent } from '../dispatch/settle.js';
import { isNoSuchTask, isRetryableProxmoxError, parseUpid, ProxmoxProtocolError, ProxmoxTaskFailedError, type ProxmoxClient } from '../proxmox/index.js';
import { answeredSuccess, mayHaveReachedProxmox, OUTCOME_UNKNOWN, outcomeUnknown, toActivityFailure } from './execute-failures.js';
import { readGuest } from './guest-reader.js';
import { stopCancelledTask } from './task-stop.js';
import type { ExecuteInput, ExecuteProgress, ExecuteResult } from './types.js';
import { REFUSALS } from '../domain/refusals.js';

export interface ExecuteDeps {
  clientFor(environment: string): ProxmoxClient;
  /** The token id the client authenticates with: tasks it starts carry it in their UPID. */
  tokenIdFor(environment: string): string;
  /** Where each plan's dispatch stands, shared by every worker (src/dispatch/journal.ts). */
  journal: DispatchJournal;
  pollIntervalMs?: number;
  /** How long an intent must be before it is settled (tests shorten it; default SETTLE_AFTER_MS). */
  settleAfterMs?: number;
  /** When the request is abandoned (tests shorten it; default DISPATCH_TIMEOUT_MS, less than settleAfterMs). */
  dispatchTimeoutMs?: number;
  /** How long an unanswered intent with no task found keeps its guest before it is unknown (default HOLD_UNANSWERED_MS). */
  holdUnansweredMs?: number;
  /** Heartbeats while anything runs, so a slow Proxmox never looks like a dead worker (default 1 s). */
  heartbeatEveryMs?: number;
  /**
   * The policy's verdict on the request against the guest as read now (createActivities: the pure
   * engine over the current policy). Asked right before every dispatch: a guest may have changed
   * (a tag, a node) while the run waited after its apply-time check.
   */
  policyCheck(request: NormalizedRequest, state: GuestState): PolicyDecision | Promise<PolicyDecision>;
}

type Located = { node?: string; vmid: number };

/** More than an execute's maximum attempts: `round` n numbers its attempts from n × this. */
const ATTEMPTS_PER_ROUND = 1000;

/**
 * Run one action on Proxmox exactly once for its plan, although the activity may run several times
 * (retries, a worker killed or shut down, a lost answer). The dispatch journal decides, not timing:
 * 1. the journal says this plan dispatched: follow its task (or confirm its synchronous change);
 * 2. it holds an unsettled intent of this plan: settle it (its task, if Proxmox started one) first;
 * 3. otherwise the guest's state decides: already done → a recorded no-op (a desired state that
 *    holds, never someone else's creation: a clone finding its newid taken is refused); refused, or
 *    denied by the policy as the guest is now → a permanent failure; else take the guest in the
 *    journal (waiting while another plan's dispatch to it is unsettled), send the one request, and
 *    record its UPID (or its synchronous answer) as this plan's.
 * An HA task that ended OK without the guest ever showing the change is an unknown outcome, not done.
 * An answer that is lost is settled from the node's task list, the intent holding the guest while a
 * late start is still possible; a request that may have reached Proxmox is never sent again, and one
 * that cannot be settled is OutcomeUnknown. A task is stopped only when an operator cancelled the run;
 * a worker shutting down leaves it running for the next attempt to follow.
 */
export async function executeAction(deps: ExecuteDeps, input: ExecuteInput): Promise<ExecuteResult> {
  const ctx = Context.current();
  const found = findAction(input.request.action);
  if (!found) throw ApplicationFailure.nonRetryable(`unknown action ${input.request.action}`, 'ActionBlocked');
  // A safeguard snapshot is held to the planned config like the action it guards, and reads the
  // config after it so that the action can be held to the digest the snapshot left.
  const action: ActionDefinition = input.safeguard && input.plannedDigest !== undefined ? { ...found, needs: { ...found.needs, config: true }, digestGuard: 'checked' } : found;
  let progress: ExecuteProgress | undefined;
  const beat = () => ctx.heartbeat(progress);
  beat();
  const ticker = setInterval(beat, deps.heartbeatEveryMs ?? 1000);
  try {
    const run = new Execution(deps, input, action, ctx, (p) => {
      progress = p;
      beat();
    });
    return await run.execute();
  } catch (err) {
    throw toActivityFailure(err, ctx);
  } finally {
    clearInterval(ticker);
  }
}

/**
 * After an operator cancelled a run while it applied, and its execute activity could not say what
 * became of the request (it was between attempts, or its worker died): settle the plan's intent if
 * it is still open, stop its task if it still runs, and say what the journal and Proxmox show.
 */
export async function stopPlanDispatch(deps: ExecuteDeps, input: { planId: string }): Promise<StoppedDispatch> {
  const ctx = Context.current();
  const entry = await deps.journal.get(input.planId);
  if (!entry) return { state: 'none' };
  const action = findAction(entry.action);
  if (!action) throw ApplicationFailure.nonRetryable(`unknown action ${entry.action}`, 'ActionBlocked');
  const request = { action: entry.action, environment: entry.environment, target: { vmid: entry.vmid }, params: entry.params, reason: '' } as unknown as ExecuteInput['request'];
  const ticker = setInterval(() => ctx.heartbeat(), deps.heartbeatEveryMs ?? 1000);
  try {
    return await new Execution(deps, { planId: input.planId, request, node: entry.node }, action, ctx, () => undefined).stopAfterCancel(entry);
  } catch (err) {
    throw toActivityFailure(err, ctx);
  } finally {
    clearInterval(ticker);
  }
}

/**
 * A read Proxmox did not answer usably: load (503), a dropped connection, or a body cut short (a 200
 * that is not JSON). It changed nothing, so it is no answer yet and is asked again; never the end of
 * a plan that is looking for its task or waiting for the guest.
 */
const unansweredRead = (err: unknown): boolean => isRetryableProxmoxError(err) || err instanceof ProxmoxProtocolError;

/** What became of a cancelled run's dispatch (stopPlanDispatch). */
export interface StoppedDispatch {
  state: 'none' | DispatchEntry['state'];
  upid?: string;
  /** The task's exit status once it was seen stopped. */
  exitstatus?: string;
  note?: string;
}

class Execution {
  private readonly client: ProxmoxClient;
  private readonly journal: DispatchJournal;
  private readonly params: Record<string, unknown>;
  /** `node`: where the plan found the guest; only a fallback, the guest is read where it is now. */
  private readonly target: { node: string; vmid: number };
  /**
   * The guest is looked for anywhere in the cluster (`/cluster/resources`), never on the planned node
   * alone: PVE's load balancer and HA move guests on their own, so the guest may be elsewhere by the
   * time the plan is applied (and a migrate that already ran left it on its target). A vmid is unique
   * in a cluster, so this is the same guest; the dispatch goes to the node it is on now.
   */
  private readonly locate: Located;
  private readonly run: ActionContext;
  private readonly intervalMs: number;
  private readonly attempt: number;
  private readonly signal: AbortSignal;
  /** Other plans' intents this attempt has logged settling (once each). */
  private readonly warnedAbout = new Set<string>();

  constructor(
    private readonly deps: ExecuteDeps,
    private readonly input: ExecuteInput,
    private readonly action: ActionDefinition,
    private readonly ctx: Context,
    private readonly progress: (p: ExecuteProgress) => void,
  ) {
    this.client = deps.clientFor(input.request.environment);
    this.journal = deps.journal;
    this.params = input.request.params;
    this.target = { node: input.node, vmid: input.request.target.vmid };
    this.locate = { vmid: this.target.vmid };
    this.run = { planId: input.planId, ...(input.plannedDigest === undefined ? {} : { plannedDigest: input.plannedDigest }) };
    this.intervalMs = deps.pollIntervalMs ?? 1000;
    // A run that was held by a freeze schedules its execute again: its attempts count on from the
    // earlier execute's, so the journal never takes them for an older attempt (superseded).
    this.attempt = (input.round ?? 0) * ATTEMPTS_PER_ROUND + ctx.info.attempt;
    this.signal = ctx.cancellationSignal;
  }

  async execute(): Promise<ExecuteResult> {
    let entry = await this.journal.get(this.input.planId);
    if (entry?.state === 'intent') entry = await this.settleOwn(entry);
    const decided = entry && this.decided(entry);
    if (decided) return decided;

    for (;;) {
      this.checkCancelled();
      // Another plan's mutation of this guest in flight (it would lock the guest): read after it.
      const holder = await this.otherHolder();
      if (holder) {
        await this.waitForGuest(holder);
        continue;
      }
      const state = await readGuest(this.client, this.action, this.locate, this.params, { signal: this.signal });
      const assessment = this.action.assess(state, this.params, this.run);
      if (assessment.kind === 'already_done' && this.input.safeguard) {
        // The journal has no dispatch of this plan (checked above): the snapshot is someone else's,
        // however it got this plan's name. It holds nothing this plan can vouch for.
        throw ApplicationFailure.nonRetryable(
          `a snapshot named '${String(this.params.snapname)}' is already on ${describeTarget(state)}, and this plan did not take it: it is not this plan's safeguard`,
          'ActionBlocked',
        );
      }
      if (assessment.kind === 'already_done') {
        // A change someone started may still be under way: report it once finished.
        if (this.action.settled && !this.action.settled(state, this.params)) await this.waitWhileAlreadyDone();
        // Recorded, so that a later attempt (this one's answer lost) says the same, whatever the
        // guest looks like by then; unless another attempt of this plan got further meanwhile.
        const recorded = await this.journal.noop(this.intentFor(state), assessment.reason);
        const decided = this.decided(recorded);
        if (decided) return decided;
        continue;
      }
      if (assessment.kind === 'blocked') {
        // Another plan may have taken the guest between the look at the journal above and this read:
        // its task's lock (`VM is locked (snapshot)`) is a turn to wait for, not a refusal.
        const taker = await this.otherHolder();
        if (taker) {
          await this.waitForGuest(taker);
          continue;
        }
        throw ApplicationFailure.nonRetryable(assessment.reason, 'ActionBlocked');
      }
      assertPlannedDigest(this.action, state, this.input.plannedDigest);
      await this.assertPolicyAllows(state);

      const beginning = performance.now();
      const begun = await this.journal.begin(this.intentFor(state));
      switch (begun.kind) {
        case 'begun':
          return this.dispatch(begun.entry, state, beginning);
        case 'busy':
          await this.waitForGuest(begun.holder);
          continue; // the other plan's dispatch may have changed the guest: read it again
        case 'open': {
          const settled = await this.settleOwn(begun.entry);
          const decided = settled && this.decided(settled);
          if (decided) return decided;
          continue;
        }
        case 'frozen':
          // Nothing was written and nothing is sent: the run waits for the freeze to be lifted.
          throw ApplicationFailure.nonRetryable(
            `environment ${begun.freeze.environment} is frozen (${begun.freeze.reason}, by ${begun.freeze.by}): nothing was sent to Proxmox`,
            REFUSALS.frozen,
            begun.freeze,
          );
        case 'superseded':
          throw ApplicationFailure.retryable(`attempt ${this.attempt} of plan ${this.input.planId} was overtaken by attempt ${begun.entry.attempt}`, 'AttemptSuperseded');
        case 'settled':
          return (await this.decided(begun.entry))!;
      }
    }
  }

  /** Another plan's dispatch holding this guest in the journal, if any. */
  private async otherHolder(): Promise<DispatchEntry | undefined> {
    const holder = await this.journal.holder(guestKey(this.input.request.environment, this.target.vmid));
    return holder && holder.planId !== this.input.planId ? holder : undefined;
  }

  /**
   * The policy, against the guest as read just now, right before the guest is taken: the apply-time
   * check may be long past (the run waited for another plan's task on the guest), and the guest may
   * since have been tagged, moved or entered a window the policy denies. A denial refuses the run
   * for good; nothing is sent. (A stricter risk that needs more approvals than the run has is not
   * re-gated here: see docs/idempotency.md.)
   */
  private async assertPolicyAllows(state: GuestState): Promise<void> {
    const verdict = await this.deps.policyCheck(this.input.request, state);
    if (verdict.decision !== 'denied') return;
    const why = verdict.reasons.filter((r) => r.rule !== 'catalog.base_risk').map((r) => `${r.rule}: ${r.message}`);
    throw ApplicationFailure.nonRetryable(
      `the policy now denies ${this.action.name} on ${describeTarget(state)}, as the guest is now (${why.join('; ') || 'denied'}); nothing was sent to Proxmox`,
      'ActionBlocked',
    );
  }

  /** See stopPlanDispatch. */
  async stopAfterCancel(found: DispatchEntry): Promise<StoppedDispatch> {
    // One look, not the whole hold: an intent with nothing found yet is reported as such (unknown).
    const entry = found.state === 'intent' ? await this.settleOwn(found, { hold: false }) : found;
    if (!entry) return { state: 'none' };
    if (entry.state !== 'dispatched') return { state: entry.state, ...(entry.note ? { note: entry.note } : {}) };
    const upid = entry.upid!;
    const node = parseUpid(upid)?.node ?? entry.node;
    const exitstatus = await stopCancelledTask(this.client, node, upid);
    if (exitstatus) await this.journal.end(this.input.planId);
    return { state: 'dispatched', upid, ...(exitstatus ? { exitstatus } : {}) };
  }

  /** What an entry of this plan already decided: follow its task, confirm its change, or its no-op. */
  private decided(entry: DispatchEntry): Promise<ExecuteResult> | undefined {
    switch (entry.state) {
      case 'dispatched':
        return this.follow(entry.upid!, 'followed the task this plan had started');
      case 'done':
        return this.confirmDone();
      case 'noop':
        return Promise.resolve({ outcome: 'noop', note: entry.note ?? 'nothing to do' });
      case 'unknown':
        return Promise.reject(outcomeUnknown(`what this plan's request did cannot be known, and it is never sent again: ${entry.note ?? 'no task of it can be found'}`));
      default:
        return undefined;
    }
  }

  private intentFor(state: GuestState) {
    return {
      planId: this.input.planId,
      environment: this.input.request.environment,
      vmid: this.target.vmid,
      node: state.node || this.target.node,
      action: this.action.name,
      params: this.params,
      attempt: this.attempt,
    };
  }

  /**
   * Sends the one request, within DISPATCH_START_MS of asking for the intent (else not at all), and
   * records what it started.
   */
  private async dispatch(entry: DispatchEntry, state: GuestState, beginning: number): Promise<ExecuteResult> {
    if (this.signal.aborted) {
      await this.journal.release(entry.planId, this.attempt);
      this.checkCancelled();
    }
    let data: unknown;
    try {
      if (performance.now() - beginning > DISPATCH_START_MS) {
        throw ApplicationFailure.retryable('the intent is too old to send its request: taking the guest again', 'DispatchLate');
      }
      data = await this.client.request(
        this.action.proxmox.method,
        this.action.proxmox.path as never,
        this.action.pathParams(state, this.params) as never,
        this.action.proxmoxParams(this.params, state, this.run),
        { signal: AbortSignal.timeout(this.deps.dispatchTimeoutMs ?? DISPATCH_TIMEOUT_MS) },
      );
    } catch (err) {
      if (!mayHaveReachedProxmox(err)) {
        await this.journal.release(entry.planId, this.attempt);
        throw err;
      }
      // The request may have started something, now or later: find out what; it is never sent again.
      const settled = await this.settleOwn(entry);
      if (settled?.state === 'dispatched') return this.follow(settled.upid!, 'the answer was lost; followed the task the request had started');
      if (settled?.state === 'done') return this.confirmDone('the answer was lost; the change is in place');
      this.checkCancelled(); // an operator's cancel while nothing of it was found: the run reports what the journal shows
      if (settled?.state === 'not_dispatched') throw err; // released by its own dispatch: nothing was started
      const why = settled?.note ?? 'no task of it can be found';
      if (answeredSuccess(err)) {
        throw outcomeUnknown(`Proxmox answered ${this.action.proxmox.method} ${this.action.proxmox.path} with success but an unusable body, and no task of it can be found (${why})`, err);
      }
      throw outcomeUnknown(`the answer to ${this.action.proxmox.method} ${this.action.proxmox.path} was lost, and no task of it can be found (${why})`, err);
    }
    if (data === null && this.action.response !== 'task') {
      await this.journal.complete(entry.planId, this.attempt);
      return this.confirmDone();
    }
    const upid = typeof data === 'string' && parseUpid(data) ? data : undefined;
    const nothing = upid ? undefined : this.action.startedNothing?.(data, state);
    if (nothing !== undefined) {
      // Proxmox answered before forking anything: certainly nothing started, and the guest is free.
      await this.journal.release(entry.planId, this.attempt);
      throw ApplicationFailure.nonRetryable(nothing, 'ActionBlocked');
    }
    if (!upid) {
      const settled = await this.settleOwn(entry);
      if (settled?.state === 'dispatched') return this.follow(settled.upid!, 'Proxmox answered without a task id; followed the task the request had started');
      if (settled?.state === 'done') return this.confirmDone('Proxmox answered without a task id; the change is in place');
      this.checkCancelled();
      throw outcomeUnknown(`Proxmox answered ${this.action.name} with ${JSON.stringify(data)?.slice(0, 80)}, not a task id, and no task of it can be found`);
    }
    await this.journal.claim(entry.planId, upid, this.attempt);
    return this.follow(upid);
  }

  /** Waits for this plan's task; a poll error polls again, it never re-sends. */
  private async follow(upid: string, note?: string): Promise<ExecuteResult> {
    this.progress({ phase: 'dispatched', upid });
    const node = parseUpid(upid)?.node ?? this.target.node;
    const done = await this.client.waitForTask(node, upid, { intervalMs: this.intervalMs, signal: this.signal }).catch(async (err: unknown) => {
      // Only an operator's cancel of the run stops the task; a worker shutting down, a timeout or a
      // reset leaves it running, and the next attempt follows it through the journal.
      if (this.signal.aborted && this.ctx.cancellationDetails?.cancelRequested) {
        const ended = await stopCancelledTask(this.client, node, upid);
        if (ended) await this.journal.end(this.input.planId);
        // The run reports what became of the task: stopped before it changed anything, finished, or unknown.
        throw new CancelledFailure('the run was cancelled: Proxmox was asked to stop its task', [{ upid, ...(ended ? { exitstatus: ended } : {}) }]);
      }
      if (err instanceof ProxmoxTaskFailedError) await this.journal.end(this.input.planId);
      throw err;
    });
    // The task has stopped: the guest is free for the next plan.
    await this.journal.end(this.input.planId);
    let after: GuestState | undefined;
    if (this.action.settled) {
      const seen = await this.waitUntilSettled();
      if (seen.settled) after = seen.state;
      if (!seen.settled && seen.state.haManaged) {
        // The task only handed the request to ha-manager, which has not carried it out: not done. It
        // may still do it later (or never), so the outcome is unknown, with what was seen; the
        // request is never sent again (the journal has it dispatched; this failure is not retried).
        throw ApplicationFailure.create({
          type: OUTCOME_UNKNOWN,
          nonRetryable: true,
          message:
            `the HA manager accepted the request (task ${parseUpid(upid)?.type ?? upid} ${done.exitstatus ?? 'OK'}), but ${describeGuest(seen.state)} after ` +
            `${Math.round(seen.waitedMs / 1000)} s: the change was not seen, and ha-manager may still carry it out, or never (check its resource state)`,
          details: [{ upid, ...(done.exitstatus ? { exitstatus: done.exitstatus } : {}) }],
        });
      }
      if (!seen.settled) note = note ? `${note}; a re-read does not show the change yet` : 'the task ended OK, but a re-read does not show the change yet';
    }
    if (this.input.safeguard) {
      const held = await this.heldBySnapshot(after);
      return { outcome: 'applied', upid, exitstatus: done.exitstatus, ...(note || held.note ? { note: [note, held.note].filter(Boolean).join('; ') } : {}), ...held.digest };
    }
    return { outcome: 'applied', upid, exitstatus: done.exitstatus, ...(note ? { note } : {}), ...this.digestAfter(after) };
  }

  /**
   * The digest the action is held to after its safeguard snapshot: the guest's config now, but only
   * while it holds what the snapshot holds. The guest is free once the snapshot task stops, and a
   * retried attempt reads it whenever it gets to (a worker killed meanwhile): another plan or an
   * operator may have changed it since. Then no digest is reported, the action stays held to the
   * planned one, and it is refused as stale: nothing runs on a config its snapshot does not hold.
   */
  private async heldBySnapshot(after: GuestState | undefined): Promise<{ digest: { digestAfter?: string }; note?: string }> {
    if (!after?.exists || after.digest === undefined) return { digest: {} };
    const snapname = String(this.params.snapname);
    const read = (query: { snapshot?: string }) =>
      this.client.guestConfig(after.node, after.kind, this.target.vmid, query, { signal: this.signal }) as Promise<Record<string, unknown>>;
    // Both with their pending changes applied (the default view): a snapshot keeps the changes pending
    // a reboot too, so one made since (by another plan, say) is a change the snapshot does not hold.
    const [now, kept] = await Promise.all([read({}), read({ snapshot: snapname })]);
    const changed = configDifference(now, kept);
    if (changed.length === 0 && typeof now.digest === 'string') return { digest: { digestAfter: now.digest } };
    return { digest: {}, note: `the guest changed after the safeguard snapshot '${snapname}' (${changed.join(', ') || 'digest unreadable'}): the action stays held to the planned config` };
  }

  /** The synchronous call was answered (now or by an earlier attempt): a re-read confirms it. */
  private async confirmDone(note?: string): Promise<ExecuteResult> {
    const seen = this.action.settled ? await this.waitUntilSettled() : undefined;
    const after = seen?.settled ? seen.state : undefined;
    const confirmed = !this.action.settled || after !== undefined;
    const said = confirmed ? note : 'Proxmox answered OK, but a re-read does not show the change yet';
    const waiting = after ? await this.pendingUntilRestart(after) : [];
    if (waiting.length === 0) return { outcome: 'applied', ...(said ? { note: said } : {}), ...this.digestAfter(after) };
    const noun = this.action.kind === 'qemu' ? 'VM' : 'container';
    const pendingNote = `pending until reboot: ${waiting.join(', ')} (the running ${noun} keeps its current values until its next start or reboot)`;
    return { outcome: 'applied', note: said ? `${said}; ${pendingNote}` : pendingNote, pendingUntilRestart: waiting, ...this.digestAfter(after) };
  }

  /**
   * Of the keys this action wrote, those a running guest keeps in [PENDING] (GET …/pending). The
   * default config view already shows them, so only this read tells "applied" from "waits for a
   * restart". A failed read says nothing rather than failing a change that was made.
   */
  private async pendingUntilRestart(state: GuestState): Promise<string[]> {
    if (!this.action.pendingKeys || state.status !== 'running') return [];
    const keys = new Set(this.action.pendingKeys(this.params));
    const entries = await this.client.pendingConfig(state.node || this.target.node, this.action.kind, this.target.vmid, { signal: this.signal }).catch(() => []);
    return entries.filter((e) => keys.has(e.key) && (e.pending !== undefined || e.delete !== undefined)).map((e) => e.key).sort();
  }

  /** The config digest the change left, for digest-guarded actions: their undo is guarded by it. */
  private digestAfter(settled: GuestState | undefined): { digestAfter?: string } {
    return this.action.digestGuard && settled?.digest !== undefined ? { digestAfter: settled.digest } : {};
  }

  /**
   * Settles this plan's own intent once our client has abandoned its request: its task, its change, or,
   * while nothing of it is found, holding the guest (`hold`) until the intent is recorded unknown
   * (settle.ts). An operator's cancel does not interrupt a look: what the request started must be known
   * (and stopped) before the run may say what became of it; it ends the holding, leaving the intent
   * open (the run then reports an unknown outcome). Any other interruption leaves it to the next attempt.
   */
  private async settleOwn(entry: DispatchEntry, opts: { hold?: boolean } = {}): Promise<DispatchEntry | undefined> {
    let current: DispatchEntry | undefined = entry;
    while (current?.state === 'intent') {
      const wait = this.settleAfterMs - current.ageMs;
      if (wait <= 0) {
        // One look only (after a cancel): a transient error is no answer, and fails the attempt so that
        // it is retried, never taken for "nothing of it found".
        current = await this.lookAt(current, { retryTransient: opts.hold !== false });
        if (current?.state !== 'intent') return current;
        if (opts.hold === false || this.cancelledByOperator()) return current;
        await this.sleep(this.heldPollMs, { unlessCancelledByOperator: true });
      } else {
        await this.sleep(Math.min(wait, 1000), { unlessCancelledByOperator: true });
      }
      current = await this.journal.get(entry.planId);
    }
    return current;
  }

  /**
   * One look at an unsettled intent (settleIntent). A look is repeated every heldPollMs while the
   * intent holds its guest, for up to HOLD_UNANSWERED_MS: a transient Proxmox error on one look (a 503
   * from load, a 596) is no answer yet, looked at again, never the attempt's failure (a retried attempt
   * would only start the same looks over, and a busy Proxmox could fail every attempt).
   */
  private async lookAt(entry: DispatchEntry, { retryTransient = true }: { retryTransient?: boolean } = {}): Promise<DispatchEntry | undefined> {
    try {
      return await settleIntent(entry, this.settleDeps());
    } catch (err) {
      if (!unansweredRead(err) || this.signal.aborted) throw err;
      if (retryTransient) return entry;
      throw ApplicationFailure.retryable(`Proxmox did not answer the look for the plan's task (${(err as Error).message}); the next attempt looks again`, 'LookUnanswered');
    }
  }

  private cancelledByOperator(): boolean {
    return this.signal.aborted && Boolean(this.ctx.cancellationDetails?.cancelRequested);
  }

  /** How often a held intent's node is asked again for its task. */
  private get heldPollMs(): number {
    return Math.min(2_000, Math.max(250, this.intervalMs));
  }

  /** The activity's signal, except that an operator's cancel does not abort a settlement. */
  private settleSignal(): AbortSignal | undefined {
    return this.signal.aborted && this.ctx.cancellationDetails?.cancelRequested ? undefined : this.signal;
  }

  /**
   * Another plan's mutation of the guest is in flight: wait for its task to stop (and mark it ended,
   * whoever sees it first), or settle its intent once it is old enough.
   */
  private async waitForGuest(holder: DispatchEntry): Promise<void> {
    this.progress({ phase: 'waiting_for_guest', planId: holder.planId });
    if (holder.state === 'dispatched') {
      if (await this.taskStopped(holder)) await this.journal.end(holder.planId);
      else await this.sleep(Math.min(this.intervalMs, 1000));
      return;
    }
    const wait = this.settleAfterMs - holder.ageMs;
    if (wait <= 0) {
      if (!this.warnedAbout.has(holder.planId)) {
        this.warnedAbout.add(holder.planId);
        Context.current().log.warn('settling another plan\'s unsettled dispatch on the guest', { holder: holder.planId, guest: holder.guest });
      }
      // Nothing of it found yet: it holds the guest while a late start is possible (settle.ts).
      if ((await this.lookAt(holder))?.state === 'intent') await this.sleep(this.heldPollMs);
      return;
    }
    await this.sleep(Math.min(wait, 250));
  }

  /**
   * Whether Proxmox reports the holder's task stopped. A task it no longer knows runs no more either,
   * once past the moments after its start when a task may not be visible yet.
   */
  private async taskStopped(holder: DispatchEntry): Promise<boolean> {
    const upid = holder.upid!;
    const node = parseUpid(upid)?.node ?? holder.node;
    try {
      return (await this.client.taskStatus(node, upid, { signal: this.signal })).status === 'stopped';
    } catch (err) {
      if (this.signal.aborted) throw err;
      if (isNoSuchTask(err)) return holder.ageMs > 30_000;
      if (unansweredRead(err)) return false;
      throw err;
    }
  }

  private settleDeps() {
    return {
      journal: this.journal,
      tokenId: this.deps.tokenIdFor(this.input.request.environment),
      attempt: this.attempt,
      ...(this.deps.holdUnansweredMs !== undefined ? { holdMs: this.deps.holdUnansweredMs } : {}),
      shape: (name: string) => {
        const a = findAction(name);
        return { response: a?.response ?? 'task', taskTypes: a?.taskTypes ?? [] };
      },
      listTasks: async (e: DispatchEntry, sinceSec: number) =>
        (await this.client.listTasks(e.node, { vmid: e.vmid, source: 'all', since: sinceSec, limit: 500 }, { signal: this.settleSignal() })) as never,
      changeVisible: async (e: DispatchEntry) => {
        const a = findAction(e.action);
        if (!a?.settled) return false;
        const state = await readGuest(this.client, a, { vmid: e.vmid }, e.params, { signal: this.settleSignal() });
        return a.settled(state, e.params);
      },
    };
  }

  private get settleAfterMs(): number {
    return this.deps.settleAfterMs ?? SETTLE_AFTER_MS;
  }

  /**
   * HA-managed guests: the task ends when ha-manager accepted the request, not when the guest changed.
   * Without HA the task (or the synchronous answer) is authoritative, so a few re-reads suffice.
   * Returns whether the guest was seen settled, the last state read and how long it was waited for.
   */
  private async waitUntilSettled(): Promise<{ settled: boolean; state: GuestState; waitedMs: number }> {
    const start = performance.now();
    let state!: GuestState;
    for (let i = 0; i < HA_SETTLE_READS; i++) {
      if (i > 0) await this.sleep(this.intervalMs);
      state = await readGuest(this.client, this.action, this.locate, this.params, { signal: this.signal });
      if (this.action.settled!(state, this.params)) return { settled: true, state, waitedMs: performance.now() - start };
      if (!state.haManaged && i > 2) break;
    }
    return { settled: false, state, waitedMs: performance.now() - start };
  }

  /**
   * Already done, but not finished: a guard for an action whose "already done" can still be under
   * way (none in the catalog since clone refuses any guest at newid). Wait while it stays "already
   * done"; if it stops being so, a retry reads the guest and decides again.
   */
  private async waitWhileAlreadyDone(): Promise<void> {
    for (;;) {
      await this.sleep(this.intervalMs);
      const state = await readGuest(this.client, this.action, this.locate, this.params, { signal: this.signal });
      if (this.action.settled!(state, this.params)) return;
      if (this.action.assess(state, this.params, this.run).kind !== 'already_done') {
        throw ApplicationFailure.retryable(`what was already under way for ${this.action.name} did not finish; reading the guest again`, 'EarlierAttemptUnfinished');
      }
    }
  }

  private checkCancelled(): void {
    if (this.signal.aborted) throw this.signal.reason;
  }

  /** Sleeps, interrupted by the activity's cancellation (but for an operator's, when told so). */
  private sleep(ms: number, opts: { unlessCancelledByOperator?: boolean } = {}): Promise<void> {
    const interrupts = () => !opts.unlessCancelledByOperator || !this.ctx.cancellationDetails?.cancelRequested;
    return new Promise((resolve, reject) => {
      if (this.signal.aborted && interrupts()) return reject(this.signal.reason);
      const timer = setTimeout(() => {
        this.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        if (!interrupts()) return;
        clearTimeout(timer);
        reject(this.signal.reason);
      };
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Re-reads of an HA-managed guest after its task (one per poll interval: 10 minutes by default). */
const HA_SETTLE_READS = 600;

function describeTarget(state: GuestState): string {
  return `${state.kind === 'lxc' ? 'CT' : 'VM'} ${state.vmid}`;
}

/** What a re-read shows of the guest, for a message. */
function describeGuest(state: GuestState): string {
  const label = state.kind === 'lxc' ? 'CT' : 'VM';
  if (!state.exists) return `${label} ${state.vmid} does not exist`;
  return `${label} ${state.vmid} is still ${state.status}${state.node ? ` on node '${state.node}'` : ''}`;
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
 * Keys of a snapshot's bookkeeping, not of the guest: a snapshot section carries its own time,
 * parent, state and description; the guest's config carries its digest, lock and current parent.
 */
const SNAPSHOT_BOOKKEEPING = new Set(['digest', 'lock', 'parent', 'snaptime', 'snapstate', 'vmstate', 'description', 'runningmachine', 'runningcpu']);

/** The config keys whose values differ between the guest now and a snapshot of it. */
export function configDifference(now: Record<string, unknown>, kept: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(now), ...Object.keys(kept)]);
  return [...keys].filter((k) => !SNAPSHOT_BOOKKEEPING.has(k) && String(now[k] ?? '') !== String(kept[k] ?? '')).sort();
}
