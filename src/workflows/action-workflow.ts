import {
  ActivityFailure,
  ApplicationFailure,
  ActivityCancellationType,
  CancellationScope,
  CancelledFailure,
  allHandlersFinished,
  isCancellation,
  condition,
  makeContinueAsNewFunc,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { ProxmoxFrozen, ProxmoxNode, ProxmoxRisk, ProxmoxStatus } from '../temporal/search-attributes.js';
// Type-only: activity code never enters the workflow bundle.
import type { createActivities } from '../activities/index.js';
import type { AssessInput, AssessResult, ExecuteResult, FinalDecision } from '../activities/types.js';
import type { StoppedDispatch } from '../activities/execute.js';
import { isTerminal, type PlanStatus } from '../domain/lifecycle.js';
import { freezeReason, type Freeze } from '../domain/freeze.js';
import { stricterRisk } from '../domain/risk.js';
import { safeguardJournalId, safeguardRequest } from '../domain/safeguard.js';
import { isOutcome } from '../channels/outcome.js';
import { AuditTrail } from './audit-trail.js';
import { cancelledResult, failedResult, failureDetails, failureType } from './outcomes.js';
import { applyUpdate, approvalSignal, freezeLiftedSignal, planUpdate, stateQuery, PLAN_MEMO, type ActionResult, type ActionWorkflowInput, type PlanView } from './messages.js';
import { applyRefusal, mergeRequirements, quorumMet, readyToGoOn, recordApproval, setRequirements, staleFields } from './plan-state.js';
import type { FinalEvent } from '../audit/events.js';
import type { OutcomeFields } from '../audit/records.js';
import { environmentTaskQueue } from '../temporal/task-queues.js';
import { REFUSALS } from '../domain/refusals.js';
import { HOLD_UNANSWERED_MS } from '../dispatch/settle.js';

type Activities = ReturnType<typeof createActivities>;

// Decision points (target read, policy, audit writes) are short: local activities keep each to one
// history marker. The target read bounds itself (ASSESS_READ_MS), so only the audit store can fail
// them, and then the run waits and tries again: nothing goes on without its records.
const local = proxyLocalActivities<Activities>({
  startToCloseTimeout: '20s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '2s', maximumAttempts: 3 },
});
/**
 * The apply-time re-check reads Proxmox, which may hang: a regular activity, so that the workflow
 * task ends at once and approvals, rejections and the published plan move on while it runs (a local
 * activity holds its workflow task, and every message behind it, for as long as Proxmox takes).
 */
const checks = proxyActivities<Activities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 3 },
});
const AUDIT_RETRY_PAUSE = '15s';

// The Proxmox mutation: long-running, heartbeating, retried on transient errors only; the dispatch
// journal makes every attempt after the first follow what the first started (docs/idempotency.md).
const EXECUTE_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '2h',
  // A cancelled run waits until the activity has asked Proxmox to stop its task.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  // The activity heartbeats every second while it runs: a worker that dies is noticed within 10 s.
  heartbeatTimeout: '10s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 25,
    nonRetryableErrorTypes: ['ProxmoxPermanentError', 'ProxmoxTaskFailedError', 'ActionBlocked', 'OutcomeUnknown'],
  },
};

// After an operator's cancel: settle and stop what the run's request started. Tried again while
// Proxmox does not answer (its task list down, a worker gone), for as long as an unanswered request
// holds its guest (HOLD_UNANSWERED_MS): a task that is there must not be reported as nothing found.
// Then the run records what it found, or an unknown outcome.
const STOP_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '2m',
  scheduleToCloseTimeout: HOLD_UNANSWERED_MS + 60_000,
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s' },
};

// Approval requests posted to webhooks (notifyApprovers): retried, bounded, never failing the plan.
const notifier = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '10m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', nonRetryableErrorTypes: ['NotificationRejected'] },
});

// The requester told (notifyOutcome): each outcome once, in order, awaited before the run ends.
const teller = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '5m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', nonRetryableErrorTypes: ['NotificationRejected'] },
});

/** Failure types that say for certain what happened on Proxmox: nothing was started, or the task failed. */
const DEFINITE_FAILURES = new Set(['ActionBlocked', REFUSALS.stale, 'ProxmoxTaskFailedError', 'UnknownEnvironment']);

/**
 * A waiting run continues as new past this many history events, or when the server suggests it
 * (limit.historyCount.suggestContinueAsNew, 4 Ki events by default), well before its hard limits.
 */
const HISTORY_EVENTS_BEFORE_CONTINUING = 2_000;
const historyIsLong = (): boolean => {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength > HISTORY_EVENTS_BEFORE_CONTINUING;
};

const nowIso = () => new Date().toISOString();

/**
 * How often a run held by a freeze asks whether it still holds: soon after it is first held (a lift
 * that came meanwhile may not have found it in visibility), then each minute. A lift also signals
 * the runs it held, at once and a few times more.
 */
const FREEZE_FIRST_RECHECK = '10s';
const FREEZE_RECHECK = '1m';

/**
 * One action request, from plan to outcome (docs/plan-apply-lifecycle.md):
 * assess (target + policy) → plan returned → wait for apply and approvals until expiry → re-check
 * → execute on Proxmox → outcome. Message handlers change the plan's state only; the main loop
 * below does every write, so each record and status change happens in one place.
 */
export async function actionWorkflow(input: ActionWorkflowInput): Promise<PlanView> {
  const { planId, request, requestHash, requester } = input;
  let view: PlanView | undefined = input.resume?.view;
  const trail = new AuditTrail(planId, requestHash, () => view, input.resume?.trail);
  /** The status operators filter on in the Web UI, as last upserted. */
  let shownStatus: PlanStatus | undefined = input.resume?.view.status;
  /** Whether approval requests go anywhere (a chat or webhook target is configured). */
  let notifies = input.resume?.notifies ?? false;
  /** Whether the plan was charged against its principal's budgets (released when the run ends). */
  let budgeted = input.resume?.budgeted ?? false;
  const notifications: { scope: CancellationScope; done: Promise<unknown> }[] = [];
  /** Approval requests still being posted: an outcome waits for them (briefly) to learn the Slack message. */
  let requestsInFlight = 0;
  let slackMessage = input.resume?.slackMessage;
  const told = new Set<string>(input.resume?.told ?? []);
  /** The outcome notifications, one after another, so a later outcome never lands before an earlier one. */
  let telling: Promise<unknown> = Promise.resolve();
  /** The task an operator's cancel stopped, as the execute activity last saw it. */
  let stoppedTask: { upid: string; exitstatus?: string } | undefined;
  /** The outcome record's fields and reserved number, once the run went on to execute. */
  let outcomeFields: OutcomeFields | undefined;
  /** Apply-time re-checks done: an apply call answers once the run has re-checked after it. */
  let rechecks = 0;
  /** A lift signalled while the run was held by a freeze. */
  let liftSignalled = false;
  /** Executes scheduled (a freeze that refused one at dispatch makes the run schedule another). */
  let executes = input.resume?.executes ?? 0;
  /** Safeguard snapshot executes scheduled (counted apart: they have their own journal entry). */
  let safeguardExecutes = input.resume?.safeguardExecutes ?? 0;
  /** The plan's expiry has passed (its one timer fired). */
  let pastExpiry = false;
  const expired = () => pastExpiry;

  setHandler(stateQuery, () => {
    if (!view) throw ApplicationFailure.nonRetryable('plan is still being evaluated', REFUSALS.notReady);
    return visible(view);
  });

  // The plan as readers see it (PLAN_MEMO): published whenever it changed, in the workflow task that
  // changed it. Before return and continue-as-new it is published explicitly too.
  // A final status is published only once the run's outcome is on the audit chain: a reader told
  // "rejected" or "succeeded" finds its record there. Until then (a rejection counted while the
  // re-check waits on Proxmox, the outcome record being written) readers see the status the run was
  // in, with what changed (the rejection in `approval.rejectedBy`).
  let outcomeOnChain = false;
  let openStatus: PlanStatus | undefined = input.resume?.view.status;
  const visible = (v: PlanView): PlanView => {
    if (!isTerminal(v.status)) openStatus = v.status;
    return isTerminal(v.status) && !outcomeOnChain && openStatus ? { ...v, status: openStatus } : v;
  };
  let published: string | undefined;
  const publish = (): void => {
    if (!view) return;
    const shown = visible(view);
    const json = JSON.stringify(shown);
    if (json === published) return;
    published = json;
    upsertMemo({ [PLAN_MEMO]: shown });
  };
  // Not cancellable: an operator's cancel must not reject it (an unhandled rejection fails the
  // workflow task), and what the cancelled run records is published too.
  void CancellationScope.nonCancellable(async () => {
    for (;;) {
      await condition(() => view !== undefined && JSON.stringify(visible(view)) !== published);
      publish();
    }
  });

  setHandler(
    planUpdate,
    async () => {
      await condition(() => view !== undefined);
      return view!;
    },
    {
      validator: (args) => {
        // Same Idempotency-Key, different body: never hand back a plan for another request.
        if (args.requestHash !== requestHash)
          throw ApplicationFailure.nonRetryable(`this Idempotency-Key already names plan ${planId}, made for a different request`, REFUSALS.idempotencyConflict);
        // A replay of a plan already made is answered from the published plan: no update, no history.
        if (view) throw ApplicationFailure.nonRetryable(`plan ${planId} exists; read it`, REFUSALS.planExists);
      },
    },
  );

  setHandler(
    applyUpdate,
    async (args) => {
      const v = view!;
      if (!v.applyRequested) {
        v.applyRequested = true;
        v.appliedBy = args.actor;
        v.updatedAt = nowIso();
        trail.add('apply.requested', { actor: args.actor.principal, channel: args.actor.channel });
      }
      if (!quorumMet(v) || v.status === 'rejected') return { planId, status: v.status };
      // Approvals are in: wait until the run has re-checked the target and policy, so a stale
      // plan is refused to the caller instead of failing silently later (a freeze holding the run
      // is answered too: the caller reads it in the plan).
      const seen = rechecks;
      await condition(() => !quorumMet(v) || !['planned', 'approved', 'awaiting_approval'].includes(v.status) || rechecks > seen);
      if (v.result?.errorType === REFUSALS.stale) throw ApplicationFailure.nonRetryable(v.result.message ?? 'stale plan', REFUSALS.stale);
      if (v.status === 'denied') throw ApplicationFailure.nonRetryable(`plan ${planId} is denied by the current policy`, REFUSALS.denied);
      return { planId, status: v.status };
    },
    {
      validator: (args) => {
        if (!view) throw ApplicationFailure.nonRetryable('plan is still being evaluated', REFUSALS.notReady);
        const refusal = applyRefusal(view, args);
        if (refusal) throw ApplicationFailure.nonRetryable(refusal.message, refusal.type);
      },
    },
  );

  setHandler(freezeLiftedSignal, () => {
    liftSignalled = true;
  });

  setHandler(approvalSignal, (args) => {
    if (!view) return;
    const outcome = recordApproval(view, args, nowIso());
    view.updatedAt = nowIso();
    const event = outcome.kind === 'counted' ? 'approval.granted' : outcome.kind === 'rejected' ? 'approval.rejected' : 'approval.refused';
    trail.add(event, {
      actor: args.principal,
      channel: args.channel,
      detail: { ...(args.comment ? { comment: args.comment } : {}), ...(outcome.kind === 'refused' ? { reason: outcome.reason } : {}) },
    });
  });

  try {
    if (!view) view = await plan();
    if (view.status !== 'denied') await awaitApplyThenExecute(view);
  } catch (err) {
    // An operator cancelled the run (Temporal Web UI or CLI): record it, then finish normally.
    if (!isCancellation(err) || !view) throw err;
    await CancellationScope.nonCancellable(() => recordCancellation(view!));
  }
  await CancellationScope.nonCancellable(async () => {
    await condition(allHandlersFinished);
    // Records of messages that came in at the very end (a late approval, refused).
    if (trail.hasPending) await flush();
    // Every record is written: whatever the run ended as is on the chain.
    outcomeOnChain = true;
    // The run has ended: its budget slot frees now, not after the notices below (which may retry
    // for minutes); the hourly charges too if nothing reached Proxmox (no execute of the action or
    // of its safeguard was ever scheduled: counted conservatively, a refund never frees too much).
    if (budgeted) await releaseBudget(outcomeFields !== undefined || executes > 0 || safeguardExecutes > 0);
    if (view) tellRequester(view);
    await telling;
    for (const n of notifications) n.scope.cancel();
    await Promise.all(notifications.map((n) => n.done));
  });
  publish();
  return view!;

  /** Reads the target, evaluates policy and records the plan, in one local activity. */
  async function plan(): Promise<PlanView> {
    const seq = trail.reserve();
    const record = { planId, requestHash, actor: requester.principal, channel: requester.channel, seq, stage: 'plan' } as const;
    const { preflight, policy, ...more } = await assess({ request, record, ...(input.undoes ? { undoes: input.undoes } : {}) });
    const createdAt = nowIso();
    const v: PlanView = {
      planId,
      requestHash,
      action: request.action,
      environment: request.environment,
      target: preflight.state ? { node: preflight.state.node, vmid: request.target.vmid } : request.target,
      params: request.params,
      reason: request.reason,
      requester,
      status: policy.decision === 'denied' ? 'denied' : policy.decision === 'requires_approval' ? 'awaiting_approval' : 'planned',
      risk: policy.risk,
      decision: policy.decision,
      reasons: more.frozen ? [...policy.reasons, freezeReason(more.frozen)] : policy.reasons,
      policyVersion: policy.policyVersion,
      approval: { required: 0, received: 0, requirements: [], approvers: [], refused: [] },
      preflight,
      applyRequested: false,
      createdAt,
      expiresAt: new Date(Math.min(Date.now() + policy.planTtlSeconds * 1000, more.expiresBy ? Date.parse(more.expiresBy) : Infinity)).toISOString(),
      updatedAt: createdAt,
      ...(more.frozen ? { frozen: more.frozen } : {}),
      ...(input.undoes ? { undoes: input.undoes.planId } : {}),
      ...(policy.safeguard?.name ? { safeguard: { kind: policy.safeguard.kind, name: policy.safeguard.name } } : {}),
    };
    setRequirements(v, policy.requirements);
    notifies = more.notifies;
    budgeted = more.budgeted ?? false;
    view = v;
    // A plan denied outright: its decision record (plan.created) is what assess just wrote.
    if (v.status === 'denied') outcomeOnChain = true;
    else openStatus = v.status;
    showStatus(v.target.node ? [{ key: ProxmoxNode, value: v.target.node }] : []);
    if (v.status === 'awaiting_approval') notifyApprovers(v);
    return v;
  }

  async function awaitApplyThenExecute(v: PlanView): Promise<void> {
    // One expiry timer for the plan's life, never cancelled (a timer still pending when the run
    // ends costs no history event; cancelling it costs one).
    pastExpiry = Date.parse(v.expiresAt) <= Date.now();
    if (!pastExpiry) void sleep(Date.parse(v.expiresAt) - Date.now()).then(() => void (pastExpiry = true), () => undefined);
    for (;;) {
      await condition(() => expired() || readyToGoOn(v) || trail.hasPending);
      if (v.status === 'approved') tellRequester(v);
      // A "no" while a freeze (or a call for more approvals) held a run whose safeguard snapshot was
      // taken stops the action; the snapshot stays on the guest, and the record says so.
      if (v.status === 'rejected') return finishAs('rejected', 'plan.rejected', { actor: v.approval.rejectedBy?.principal, ...safeguardLeft(v) });
      // A plan not applied with its approvals in by its expiry never runs, whatever arrives with the expiry.
      if (expired()) return finishAs('expired', 'plan.expired', safeguardLeft(v));
      if (!readyToGoOn(v)) {
        // An approval (or an apply still short of approvals): on the chain and on the UI now.
        await flush();
        showStatus();
        // Only messages grow a waiting run: when its history is long, go on in a new run.
        if (historyIsLong() && allHandlersFinished()) await continueWaitingRun(v);
        continue;
      }

      // Re-check at apply: the target must still be what was planned, and policy may have changed.
      const again = await recheckUnlessRejected(v);
      rechecks++;
      // Rejected while the target was read: the re-check was abandoned, the rejection ends the run.
      if (!again) continue;
      // No freeze holds the plan any more (lifted since it was made or held): said once, before anything else.
      if (v.frozen && !again.frozen) {
        trail.add('apply.resumed', { detail: { freezeId: v.frozen.id } });
        v.frozen = undefined;
      }
      // A rejection that arrived while the target was read wins: nothing has been sent. (A handler
      // changed the status while this loop awaited: read it through a call, not a narrowed field.)
      if (statusOf(v) === 'rejected') continue;
      const fresh = again.preflight;
      // A target that could not be read has no fingerprint: that is not a change, and is said as such.
      const unreadable = fresh.assessment.kind === 'unavailable' ? fresh.assessment.reason : undefined;
      // After the safeguard snapshot (a freeze then held the action), the config is the one the snapshot left.
      const snapshotDigest = v.safeguard?.taken?.digestAfter;
      const planned = snapshotDigest && v.preflight.fingerprint ? { ...v.preflight.fingerprint, digest: snapshotDigest } : v.preflight.fingerprint;
      const changed = unreadable === undefined ? staleFields(planned, fresh.fingerprint) : [];
      if (changed.length > 0 || unreadable !== undefined) {
        const message = unreadable === undefined ? `target changed since the plan (${changed.join(', ')}); plan again` : `could not re-read the target: ${unreadable}`;
        v.result = { outcome: 'failed', errorType: REFUSALS.stale, message, finishedAt: nowIso() };
        return finishAs('failed', 'apply.refused_stale', { detail: { changed } });
      }
      const policy = again.policy;
      if (policy.policyVersion !== v.policyVersion || policy.risk !== v.risk) v.reasons = [...v.reasons, ...policy.reasons.map((r) => ({ ...r, rule: `reevaluated.${r.rule}` }))];
      if (policy.decision === 'denied') {
        v.decision = 'denied';
        return finishAs('denied', 'apply.denied');
      }
      // The stricter decision wins: more approvals may now be needed before anything runs, and a
      // safeguard asked for since the plan is taken too.
      v.risk = stricterRisk(v.risk, policy.risk);
      if (!v.safeguard && policy.safeguard?.name) v.safeguard = { kind: policy.safeguard.kind, name: policy.safeguard.name };
      setRequirements(v, mergeRequirements(v.approval.requirements, policy.requirements));
      if (!quorumMet(v)) {
        v.decision = 'requires_approval';
        v.status = 'awaiting_approval';
        trail.add('approval.required_again');
        told.add(`required-again@${told.size}`); // unique: `told` only grows, and survives continue-as-new
        showStatus();
        notifyApprovers(v);
        continue;
      }
      // The kill switch: nothing starts in a frozen environment; the run waits for the lift.
      if (again.frozen) {
        await holdWhileFrozen(v, again.frozen);
        continue;
      }
      // Execute exactly once on Proxmox: the safeguard snapshot first, when policy asked for one.
      const waitingAs = v.status;
      v.status = 'applying';
      showStatus();
      if (v.safeguard && !v.safeguard.taken) {
        const taken = await takeSafeguard(v, v.safeguard.name);
        if ('held' in taken) {
          v.status = waitingAs;
          await holdWhileFrozen(v, taken.held);
          continue;
        }
        if ('failed' in taken) {
          v.result = taken.failed;
          return finishAs('failed', 'safeguard.failed', { detail: { snapshot: v.safeguard.name, errorType: taken.failed.errorType } });
        }
      }
      const done = await execute(v);
      if ('held' in done) {
        // A freeze came between the re-check and the dispatch: nothing was sent.
        v.status = waitingAs;
        outcomeFields = undefined;
        await holdWhileFrozen(v, done.held);
        continue;
      }
      const taken = v.safeguard?.taken;
      v.result = taken ? { ...done, safeguard: { snapshot: v.safeguard!.name, ...(taken.upid ? { upid: taken.upid } : {}) } } : done;
      v.status = v.result.outcome === 'applied' || v.result.outcome === 'noop' ? 'succeeded' : 'failed';
      // The execute activity wrote the outcome record (a failure's, settleOutcome).
      outcomeOnChain = true;
      showStatus();
      return;
    }
  }

  /**
   * The safeguard snapshot (policy `safeguard: snapshot`), right before the action: a Proxmox
   * mutation like the action, so it goes through the dispatch journal under its own key
   * (safeguardJournalId): a retried activity, a lost answer or a crashed worker follows the snapshot
   * the first attempt started, and never takes a second. Its records (started, taken) are on the
   * chain; a snapshot that failed, or whose outcome cannot be known, fails the plan: the action
   * never runs without it. A freeze met at its dispatch holds the run as for the action.
   */
  async function takeSafeguard(v: PlanView, name: string): Promise<{ taken: true } | { held: Freeze } | { failed: ActionResult }> {
    trail.add('safeguard.started', { actor: v.appliedBy?.principal, channel: v.appliedBy?.channel, detail: { snapshot: name } });
    await flush();
    const proxmox = proxyActivities<Activities>({ ...EXECUTE_OPTIONS, taskQueue: environmentTaskQueue(workflowInfo().taskQueue, request.environment) });
    const digest = v.preflight.fingerprint?.digest;
    try {
      const r = await proxmox.executeAction({
        planId: safeguardJournalId(planId),
        request: safeguardRequest(request, planId, name),
        node: v.target.node ?? v.preflight.state?.node ?? '',
        // Held to the planned config: a snapshot of a config changed since the plan is not the one to keep.
        ...(digest !== undefined ? { plannedDigest: digest } : {}),
        safeguard: true,
        ...(safeguardExecutes > 0 ? { round: safeguardExecutes } : {}),
      });
      v.safeguard = { kind: 'snapshot', name, taken: { ...(r.upid ? { upid: r.upid } : {}), ...(r.digestAfter ? { digestAfter: r.digestAfter } : {}) } };
      trail.add('safeguard.taken', { ...(r.upid ? { upid: r.upid } : {}), outcome: 'succeeded', detail: { snapshot: name, outcome: r.outcome, ...(r.note ? { note: r.note } : {}) } });
      return { taken: true };
    } catch (err) {
      if (isCancellation(err)) throw err;
      if (failureType(err) === REFUSALS.frozen) return { held: failureDetails(err) as Freeze };
      const cause = failedResult(err);
      return {
        failed: {
          outcome: 'failed',
          errorType: 'SafeguardFailed',
          message: `the safeguard snapshot '${name}' was not taken (${cause.errorType ?? 'error'}: ${cause.message ?? 'unknown'}); the action was not run`,
          // The snapshot's task, if it started one: not the action's (`upid` is the action's task).
          safeguard: { snapshot: name, ...(cause.upid ? { upid: cause.upid } : {}) },
          finishedAt: nowIso(),
        },
      };
    } finally {
      safeguardExecutes++;
    }
  }

  /**
   * The run would apply, but its environment is frozen: it says so (view, audit, a search attribute
   * operators filter on) and waits until no freeze holds it (signalled by the lift, checked every
   * FREEZE_RECHECK), a rejection, or its expiry. The caller then re-checks everything as usual.
   */
  async function holdWhileFrozen(v: PlanView, freeze: Freeze): Promise<void> {
    trail.add('apply.held', { detail: { freeze } });
    v.frozen = freeze;
    showStatus([{ key: ProxmoxFrozen, value: freeze.id }]);
    await flush();
    for (let checks = 0; ; checks++) {
      liftSignalled = false;
      await condition(() => expired() || statusOf(v) === 'rejected' || liftSignalled, checks === 0 ? FREEZE_FIRST_RECHECK : FREEZE_RECHECK);
      if (expired() || statusOf(v) === 'rejected') break;
      const still = await activeFreeze();
      if (!still) break;
      if (still.id !== v.frozen?.id) {
        trail.add('apply.held', { detail: { freeze: still } });
        v.frozen = still;
        showStatus([{ key: ProxmoxFrozen, value: still.id }]);
        await flush();
      }
      if (historyIsLong() && allHandlersFinished()) await continueWaitingRun(v);
    }
    upsertSearchAttributes([{ key: ProxmoxFrozen, value: null }]);
  }

  /** The environment's active freeze now; asked again after a pause while the journal cannot answer. */
  async function activeFreeze(): Promise<Freeze | undefined> {
    for (;;) {
      try {
        return await local.activeFreeze({ environment: request.environment });
      } catch (err) {
        if (isCancellation(err)) throw err;
        await sleep(AUDIT_RETRY_PAUSE);
      }
    }
  }

  /**
   * The execute activity writes the pending records and `apply.started` before it touches Proxmox,
   * and on success the run's outcome record; a failure's outcome record is written here, under the
   * same reserved number, so a run never has two outcomes.
   */
  async function execute(v: PlanView): Promise<ActionResult | { held: Freeze }> {
    trail.add('apply.started', { actor: v.appliedBy?.principal, channel: v.appliedBy?.channel });
    const outcome = (outcomeFields = { ...trail.fields(), seq: trail.reserve() });
    const proxmox = proxyActivities<Activities>({ ...EXECUTE_OPTIONS, taskQueue: environmentTaskQueue(workflowInfo().taskQueue, request.environment) });
    try {
      const r: ExecuteResult = await trail.writing((before) =>
        proxmox.executeAction({
          planId,
          request,
          node: v.target.node ?? v.preflight.state?.node ?? '',
          // After a safeguard snapshot, the config the snapshot left (it rewrote the config file).
          plannedDigest: v.safeguard?.taken?.digestAfter ?? v.preflight.fingerprint?.digest,
          audit: { before, outcome },
          ...(executes > 0 ? { round: executes } : {}),
        }),
      );
      return { ...r, ...(r.note ? { message: r.note } : {}), finishedAt: nowIso() };
    } catch (err) {
      if (isCancellation(err)) {
        // What the activity saw of the task it was told to stop, for the cancellation's record.
        const cause = err instanceof ActivityFailure ? err.cause : err;
        if (cause instanceof CancelledFailure) stoppedTask = cause.details?.[0] as typeof stoppedTask;
        throw err;
      }
      if (failureType(err) === REFUSALS.frozen) return { held: failureDetails(err) as Freeze };
      return settleOutcome(outcome, failedResult(err), !DEFINITE_FAILURES.has(failureType(err)));
    } finally {
      executes++;
    }
  }

  /**
   * Records the run's outcome after a failed or cancelled execute, and returns it as recorded: a
   * failure that does not say for certain what happened on Proxmox is checked against the dispatch
   * journal (a recorded dispatch makes it `outcome_unknown`, never a clean failure), and a second run
   * of the activity (its workflow task lost) gets the outcome recorded the first time.
   */
  async function settleOutcome(fields: OutcomeFields, proposed: ActionResult, consultJournal: boolean): Promise<ActionResult> {
    if (trail.hasPending) await flush();
    for (;;) {
      try {
        return await local.recordOutcome({ fields, proposed, consultJournal });
      } catch (err) {
        if (isCancellation(err)) throw err;
        await sleep(AUDIT_RETRY_PAUSE);
      }
    }
  }

  /**
   * An operator cancelled the run. Before anything was sent: a failure, nothing changed. While its
   * task ran: what the execute activity saw after asking Proxmox to stop it (stopped in time: failed;
   * finished first: applied), or, when that was not seen, what the journal says was sent (outcome
   * unknown), never a clean failure for a task that may have run.
   */
  async function recordCancellation(v: PlanView): Promise<void> {
    const during = v.status;
    let result: ActionResult = { outcome: 'failed', errorType: 'Cancelled', message: `the run was cancelled while ${during}`, finishedAt: nowIso() };
    if (during === 'applying' && outcomeFields) {
      // What the execute activity saw after stopping the task; or, when it could not say (it was
      // between attempts, or its worker died), what settling and stopping the dispatch finds.
      let seen: StoppedDispatch | undefined = stoppedTask?.exitstatus !== undefined ? { state: 'dispatched', ...stoppedTask } : undefined;
      if (!seen) {
        const stopper = proxyActivities<Activities>({ ...STOP_OPTIONS, taskQueue: environmentTaskQueue(workflowInfo().taskQueue, request.environment) });
        seen = await stopper.stopDispatch({ planId }).catch(() => undefined);
      }
      // Could not be told (Proxmox or the worker unreachable): the journal decides between a
      // failure and an unknown outcome.
      result = await settleOutcome(outcomeFields, seen ? cancelledResult(seen) : cancelledResult({ state: 'none', ...(stoppedTask?.upid ? { upid: stoppedTask.upid } : {}) }), !seen);
    }
    v.result = result;
    v.status = result.outcome === 'applied' || result.outcome === 'noop' ? 'succeeded' : 'failed';
    showStatus();
    trail.add('run.cancelled', { detail: { during, outcome: result.outcome }, ...(result.upid ? { upid: result.upid } : {}) });
    await flush();
    outcomeOnChain = true;
  }

  /**
   * Ends the run without an execute. The decision is recorded once per run (recordFinal): a run that
   * decides again after a lost workflow task takes the decision already on the chain.
   */
  async function finishAs(status: FinalDecision['status'], event: FinalEvent, extra: Parameters<AuditTrail['add']>[1] = {}): Promise<void> {
    const v = view!;
    v.status = status;
    showStatus();
    const final: FinalDecision = { status, event, ...(v.result ? { result: v.result } : {}) };
    const record = trail.final(event, extra);
    for (;;) {
      try {
        const decided = await trail.writing((before) => local.recordFinal({ before, record, final }));
        outcomeOnChain = true;
        if (decided.status !== status) {
          v.status = decided.status;
          if (decided.result) v.result = decided.result;
          showStatus();
        }
        return;
      } catch (err) {
        if (isCancellation(err)) throw err;
        await sleep(AUDIT_RETRY_PAUSE);
      }
    }
  }

  /**
   * The apply-time re-check, abandoned as soon as a rejection is counted: a Proxmox that hangs must
   * not hold a human "no" off the audit chain (and the plan's final status with it) for minutes.
   * The abandoned activity's answer is dropped; its pending records stay pending for the next write.
   */
  async function recheckUnlessRejected(v: PlanView): Promise<AssessResult | undefined> {
    const scope = new CancellationScope();
    let settled = false;
    const checking = scope.run(() => assess({ request, record: { planId, requestHash, seq: trail.reserve(), stage: 'apply' } }, { withPending: true, remote: true }));
    void checking.then(
      () => void (settled = true),
      () => void (settled = true),
    );
    await condition(() => settled || statusOf(v) === 'rejected');
    if (settled) return await checking;
    scope.cancel();
    try {
      await checking;
    } catch (err) {
      if (!isCancellation(err)) throw err;
    }
    return undefined;
  }

  /** The assess activity (`remote`: a regular activity, see `checks`), with the pending records; retried after a pause while the audit store fails. */
  async function assess(args: AssessInput, opts: { withPending?: boolean; remote?: boolean } = {}): Promise<AssessResult> {
    const run = opts.remote ? checks.assess : local.assess;
    for (;;) {
      try {
        return opts.withPending ? await trail.writing((before) => run({ ...args, before })) : await run(args);
      } catch (err) {
        if (isCancellation(err)) throw err;
        await sleep(AUDIT_RETRY_PAUSE);
      }
    }
  }

  /** Releases the plan's budget charge; retried after a pause while the ledger fails (a held slot must not leak). */
  async function releaseBudget(sent: boolean): Promise<void> {
    for (;;) {
      try {
        return await local.releaseBudget({ planId, sent });
      } catch {
        await sleep(AUDIT_RETRY_PAUSE);
      }
    }
  }

  /** Writes the pending records; retried after a pause while the audit store fails. */
  async function flush(): Promise<void> {
    for (;;) {
      try {
        await trail.writing((records) => local.recordAudits(records));
        return;
      } catch (err) {
        if (isCancellation(err)) throw err;
        await sleep(AUDIT_RETRY_PAUSE);
      }
    }
  }

  /**
   * The plan goes on waiting in a new run of the same workflow id, with its state and its audit
   * records' numbering (approvals and the apply so far, the expiry as it was). Messages reach the new
   * run: the API addresses runs by workflow id.
   */
  async function continueWaitingRun(v: PlanView): Promise<never> {
    await telling;
    for (const n of notifications) n.scope.cancel();
    publish();
    // The plan goes with the run: the new run starts with it in its memo, readable at once.
    return makeContinueAsNewFunc<typeof actionWorkflow>({ memo: { [PLAN_MEMO]: visible(v) } })({
      ...input,
      resume: { view: v, trail: trail.carry(), notifies, ...(budgeted ? { budgeted } : {}), ...(slackMessage ? { slackMessage } : {}), ...(told.size ? { told: [...told] } : {}), ...(executes ? { executes } : {}), ...(safeguardExecutes ? { safeguardExecutes } : {}) },
    });
  }

  /** Upserts the status (and risk) operators filter on, when it changed since the last upsert. */
  function showStatus(more: { key: typeof ProxmoxNode; value: string }[] = []): void {
    const v = view!;
    v.updatedAt = nowIso();
    if (shownStatus === v.status && more.length === 0) return;
    shownStatus = v.status;
    upsertSearchAttributes([{ key: ProxmoxStatus, value: v.status }, { key: ProxmoxRisk, value: v.risk }, ...more]);
  }

  /** Not awaited: the plan is returned while approvers are notified; cancelled if still retrying at the end. */
  function notifyApprovers(v: PlanView): void {
    if (!notifies) return;
    const scope = new CancellationScope();
    const round = notifications.length + 1;
    requestsInFlight++;
    const done = scope
      .run(() => notifier.notifyApprovers({ plan: v, ...(round > 1 ? { round } : {}) }))
      .then((r) => void (r.slackMessage && (slackMessage = r.slackMessage)))
      .catch(() => undefined)
      .finally(() => void requestsInFlight--);
    notifications.push({ scope, done });
  }

  /**
   * The requester told: the outcome of a plan that asked for approvals (approved, rejected, expired,
   * succeeded, failed) goes to the notification targets and rewrites the Slack message, once per
   * outcome (`told` survives continue-as-new). The plan is copied as it stands now: the notice says
   * this outcome even if the run has moved on by the time it is sent.
   */
  function tellRequester(v: PlanView): void {
    if (!notifies || !isOutcome(v.status) || v.approval.requirements.length === 0) return;
    // "Approved" is told once per approval round: again only after the re-check asked for more
    // approvals (approval.required_again), never for an extra approval of a plan already approved.
    const rounds = [...told].filter((k) => k.startsWith('required-again@')).length;
    const key = v.status === 'approved' ? `approved@${rounds}` : v.status;
    if (told.has(key)) return;
    const round = v.status === 'approved' ? rounds + 1 : 1;
    told.add(key);
    const plan = JSON.parse(JSON.stringify(v)) as PlanView;
    telling = telling.then(async () => {
      // The Slack message is known once its approval request was posted: wait for that, not forever.
      if (requestsInFlight > 0) await condition(() => requestsInFlight === 0, '1m');
      await teller.notifyOutcome({ plan, ...(round > 1 ? { round } : {}), ...(slackMessage ? { slackMessage } : {}) }).catch(() => undefined);
    });
  }
}

const statusOf = (v: PlanView): PlanStatus => v.status;

/** The safeguard snapshot a run took before it ended without its action: named in the final record. */
function safeguardLeft(v: PlanView): { detail?: { safeguard: { snapshot: string; upid?: string; left: true } } } {
  const taken = v.safeguard?.taken;
  return taken ? { detail: { safeguard: { snapshot: v.safeguard!.name, ...(taken.upid ? { upid: taken.upid } : {}), left: true } } } : {};
}
