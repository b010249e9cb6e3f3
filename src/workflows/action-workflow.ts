import {
  ActivityFailure,
  ApplicationFailure,
  ActivityCancellationType,
  CancellationScope,
  allHandlersFinished,
  isCancellation,
  condition,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { ProxmoxNode, ProxmoxRisk, ProxmoxStatus } from '../temporal/search-attributes.js';
// Type-only: activity code never enters the workflow bundle.
import type { createActivities } from '../activities/index.js';
import type { AssessResult, AuditEventInput, ExecuteAudit, PolicyResult } from '../activities/types.js';
import type { PlanStatus } from '../domain/lifecycle.js';
import { stricterRisk } from '../domain/risk.js';
import {
  applyUpdate,
  approvalSignal,
  auditEventId,
  environmentTaskQueue,
  LOCAL_ACTIVITY_ATTEMPTS,
  planUpdate,
  REFUSALS,
  stateQuery,
  type ActionResult,
  type ActionWorkflowInput,
  type PlanView,
  type Preflight,
} from './messages.js';
import { applyRefusal, mergeRequirements, quorumMet, recordApproval, setRequirements, staleFields } from './plan-state.js';

type Activities = ReturnType<typeof createActivities>;

// Reads, policy and audit appends are short and idempotent: local activities keep a plan to one
// workflow task (no extra server round trips) while still being recorded in history.
const local = proxyLocalActivities<Activities>({
  startToCloseTimeout: '20s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: LOCAL_ACTIVITY_ATTEMPTS },
});

// The Proxmox mutation: long-running, heartbeating, retried on transient errors only.
const EXECUTE_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '2h',
  // A cancelled run waits until the activity has asked Proxmox to stop its task.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  // Task polls heartbeat every second; a worker that dies mid-task is noticed within 10 s.
  heartbeatTimeout: '10s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 25,
    nonRetryableErrorTypes: ['ProxmoxPermanentError', 'ProxmoxTaskFailedError', 'ActionBlocked'],
  },
};

// Approval requests posted to webhooks (notifyApprovers): retried, bounded, never failing the plan.
const notifier = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '10m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', nonRetryableErrorTypes: ['NotificationRejected'] },
});

const nowIso = () => new Date().toISOString();

/**
 * One action request, from plan to outcome (docs/plan-apply-lifecycle.md):
 * preflight → policy → plan returned → wait for apply (+ approvals) until expiry → re-check →
 * execute on Proxmox → audit. Returns the final plan view.
 */
export async function actionWorkflow(input: ActionWorkflowInput): Promise<PlanView> {
  const { planId, request, requestHash, requester } = input;
  // Runs that recorded this patch keep their history short (docs/benchmarks.md): one local activity
  // per decision point (assess: pending audit records + preflight + policy [+ the plan's record]), one
  // search-attribute upsert per status, an expiry timer left to lapse instead of being cancelled, the
  // execute activity recording its own start and success, no notifier when no channel is configured,
  // and the per-environment task queue without its own patch. Runs started before it replay the path
  // they were recorded with; both paths are pinned by the replay test's fixtures.
  const compact = patched('compact-history');
  let view: PlanView | undefined;
  let planRecorded = false;
  let auditSeq = 0;
  /** Audit records decided in this workflow task, written by the next assess (compact runs). */
  const pendingAudit: AuditEventInput[] = [];
  /** The main loop waits for apply/approvals: a message that lets it go on leaves its records to it. */
  let waitingForApply = false;

  type AuditExtra = Pick<AuditEventInput, 'actor' | 'channel' | 'upid' | 'outcome' | 'detail'>;
  /** What every record of the run carries: the plan, and the decision and approvals as they stand. */
  const auditFields = (extra: AuditExtra = {}) => ({
    planId,
    requestHash,
    ...(view ? { decision: { risk: view.risk, decision: view.decision, policyVersion: view.policyVersion, reasons: view.reasons } } : {}),
    ...(view && view.approval.approvers.length ? { approvals: view.approval.approvers } : {}),
    ...extra,
  });
  const auditRecord = (event: string, extra: AuditExtra = {}, seq = ++auditSeq): AuditEventInput => ({ eventId: auditEventId(planId, seq, event), event, ...auditFields(extra) });
  const audit = async (event: string, extra: AuditExtra = {}, seq?: number): Promise<void> => {
    const record = auditRecord(event, extra, seq);
    if (compact && pendingAudit.length) await flushing((before) => local.recordAudits([...before, record]));
    else await local.recordAudit(record);
  };
  /** Hands the pending records to a local activity; they stay pending (for the next one) if it does not complete. */
  const flushing = async <T>(fn: (before: AuditEventInput[]) => Promise<T>): Promise<T> => {
    const before = [...pendingAudit];
    const out = await fn(before);
    pendingAudit.splice(0, before.length);
    return out;
  };
  /**
   * Compact runs: a message that lets the waiting main loop go on to apply leaves its audit record and
   * its status upsert to the main loop, which writes them with its next assess and upsert.
   */
  const mainLoopTakesOver = (): boolean => compact && waitingForApply && view !== undefined && view.status !== 'rejected' && readyToGoOn(view);
  /** A record from a message handler: deferred to the main loop's next assess when it takes over. */
  const auditFromHandler = async (event: string, extra: AuditExtra): Promise<void> => {
    if (mainLoopTakesOver()) pendingAudit.push(auditRecord(event, extra));
    else await audit(event, extra);
  };

  // Operators filter runs in the Web UI by these; kept in step with the plan as it moves.
  const setStatus = (status: PlanStatus, more: { key: typeof ProxmoxNode; value: string }[] = []) => {
    if (!view) return;
    view.status = status;
    view.updatedAt = nowIso();
    upsertSearchAttributes([{ key: ProxmoxStatus, value: status }, { key: ProxmoxRisk, value: view.risk }, ...more]);
  };

  setHandler(stateQuery, () => {
    if (!view) throw ApplicationFailure.nonRetryable('plan is still being evaluated', REFUSALS.notReady);
    return view;
  });

  setHandler(
    planUpdate,
    async () => {
      await condition(() => view !== undefined && planRecorded);
      return view!;
    },
    {
      validator: (args) => {
        // Same Idempotency-Key, different body: never hand back a plan for another request.
        if (args.requestHash !== requestHash)
          throw ApplicationFailure.nonRetryable(
            `this Idempotency-Key already names plan ${planId}, made for a different request`,
            REFUSALS.idempotencyConflict,
          );
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
        await auditFromHandler('apply.requested', { actor: args.actor.principal, channel: args.actor.channel });
      }
      if (!quorumMet(v) || v.status === 'rejected') return { planId, status: v.status };
      // Approvals are in: wait until the run has re-checked the target and policy, so a stale
      // plan is refused to the caller instead of failing silently later.
      await condition(() => !quorumMet(v) || !['planned', 'approved', 'awaiting_approval'].includes(v.status));
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

  setHandler(approvalSignal, async (args) => {
    if (!view) return;
    const before = view.status;
    const outcome = recordApproval(view, args, nowIso());
    // A quorum that lets the main loop go on is upserted with the status it moves to next.
    if (view.status !== before && !mainLoopTakesOver()) setStatus(view.status);
    view.updatedAt = nowIso();
    const event = outcome.kind === 'counted' ? 'approval.granted' : outcome.kind === 'rejected' ? 'approval.rejected' : 'approval.refused';
    await auditFromHandler(event, {
      actor: args.principal,
      channel: args.channel,
      detail: { ...(args.comment ? { comment: args.comment } : {}), ...(outcome.kind === 'refused' ? { reason: outcome.reason } : {}) },
    });
  });

  // 1. Preflight and policy (compact: and the plan's audit record, in one local activity).
  const planSeq = compact ? ++auditSeq : undefined;
  const planned = compact
    ? await tryAssess(() => local.assess({ request, record: { planId, requestHash, actor: requester.principal, channel: requester.channel, seq: planSeq! } }))
    : undefined;
  const preflight = planned ? planned.preflight : await readTarget();
  const policy = planned ? planned.policy : await local.evaluatePolicy({ request, preflight });
  const createdAt = nowIso();
  view = {
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
    reasons: policy.reasons,
    policyVersion: policy.policyVersion,
    approval: { required: 0, received: 0, requirements: [], approvers: [], refused: [] },
    preflight,
    applyRequested: false,
    createdAt,
    expiresAt: new Date(Date.now() + policy.planTtlSeconds * 1000).toISOString(),
    updatedAt: createdAt,
  };
  setRequirements(view, policy.requirements);
  if (compact) {
    setStatus(view.status, view.target.node ? [{ key: ProxmoxNode, value: view.target.node }] : []);
  } else {
    setStatus(view.status);
    if (view.target.node) upsertSearchAttributes([{ key: ProxmoxNode, value: view.target.node }]);
  }
  // Written by assess when it completed; otherwise here, under the same event id (the store keeps one).
  if (!planned) await audit(view.status === 'denied' ? 'plan.denied' : 'plan.created', { actor: requester.principal, channel: requester.channel }, planSeq);
  planRecorded = true;
  // Not awaited here: the plan is returned while approvers are notified; cancelled if still retrying at the end.
  const notifications: { scope: CancellationScope; done: Promise<unknown> }[] = [];
  const notifyApprovers = (v: PlanView) => {
    const scope = new CancellationScope();
    const round = notifications.length + 1;
    notifications.push({ scope, done: scope.run(() => notifier.notifyApprovers({ plan: v, ...(round > 1 ? { round } : {}) })).catch(() => undefined) });
  };
  if (view.status === 'awaiting_approval' && (!planned || planned.notifies)) notifyApprovers(view);

  if (view.status !== 'denied') {
    try {
      await awaitApplyThenExecute(view);
    } catch (err) {
      // An operator cancelled the run (Temporal Web UI or CLI): record it, then finish normally.
      if (!isCancellation(err)) throw err;
      await CancellationScope.nonCancellable(() => recordCancellation(view!));
    }
  }
  await CancellationScope.nonCancellable(async () => {
    await condition(allHandlersFinished);
    for (const n of notifications) n.scope.cancel();
    await Promise.all(notifications.map((n) => n.done));
  });
  return view;

  async function recordCancellation(v: PlanView): Promise<void> {
    const during = v.status;
    v.result = {
      outcome: 'failed',
      errorType: 'Cancelled',
      message: during === 'applying' ? 'the run was cancelled while Proxmox ran the task; Proxmox was asked to stop it' : `the run was cancelled while ${during}`,
      finishedAt: nowIso(),
    };
    setStatus('failed');
    await audit('run.cancelled', { detail: { during } });
  }

  /**
   * Compact runs' assess, or undefined when it did not complete (all attempts failed, e.g. a hung
   * Proxmox outlasting its 20 s): the caller then takes the separate steps, which record an unreadable
   * target instead of failing the run. Its pending audit records stay pending for the next write.
   */
  async function tryAssess(fn: () => Promise<AssessResult>): Promise<AssessResult | undefined> {
    try {
      return await fn();
    } catch (err) {
      if (isCancellation(err)) throw err;
      return undefined;
    }
  }

  async function readTarget(): Promise<Preflight> {
    try {
      return await local.preflight({ request });
    } catch (err) {
      return { assessment: { kind: 'unavailable', reason: failureMessage(err) }, checkedAt: nowIso() };
    }
  }

  async function awaitApplyThenExecute(v: PlanView): Promise<void> {
    // Compact runs: one expiry timer for the plan's life, never cancelled (a timer still pending when
    // the run ends costs no history event; cancelling it costs one).
    let expired = false;
    if (compact) {
      const remaining = Date.parse(v.expiresAt) - Date.now();
      if (remaining > 0) void sleep(remaining).then(() => void (expired = true), () => undefined);
      else expired = true;
    }
    for (;;) {
      let ready: boolean;
      if (compact) {
        waitingForApply = true;
        await condition(() => expired || readyToGoOn(v));
        waitingForApply = false;
        ready = readyToGoOn(v);
      } else {
        const remaining = Date.parse(v.expiresAt) - Date.now();
        ready = remaining > 0 && (await condition(() => readyToGoOn(v), remaining));
      }
      if (!ready) {
        setStatus('expired');
        await audit('plan.expired');
        return;
      }
      if (v.status === 'rejected') {
        await audit('plan.rejected', { actor: v.approval.rejectedBy?.principal });
        return;
      }
      // 2. Re-check at apply: the target must still be what was planned, and policy may have changed.
      const reassessed = compact ? await tryAssess(() => flushing((before) => local.assess({ request, before }))) : undefined;
      const fresh = reassessed ? reassessed.preflight : await readTarget();
      // A target that could not be read has no fingerprint: that is not a change, and is said as such.
      const unreadable = fresh.assessment.kind === 'unavailable' ? fresh.assessment.reason : undefined;
      const changed = unreadable === undefined ? staleFields(v.preflight.fingerprint, fresh.fingerprint) : [];
      if (changed.length > 0 || unreadable !== undefined) {
        const message = unreadable === undefined ? `target changed since the plan (${changed.join(', ')}); plan again` : `could not re-read the target: ${unreadable}`;
        v.result = { outcome: 'failed', errorType: REFUSALS.stale, message, finishedAt: nowIso() };
        setStatus('failed');
        await audit('apply.refused_stale', { detail: { changed } });
        return;
      }
      const again: PolicyResult = reassessed ? reassessed.policy : await local.evaluatePolicy({ request, preflight: fresh });
      if (again.policyVersion !== v.policyVersion || again.risk !== v.risk) v.reasons = [...v.reasons, ...again.reasons.map((r) => ({ ...r, rule: `reevaluated.${r.rule}` }))];
      if (again.decision === 'denied') {
        v.decision = 'denied';
        setStatus('denied');
        await audit('apply.denied');
        return;
      }
      // The stricter decision wins: more approvals may now be needed before anything runs.
      v.risk = stricterRisk(v.risk, again.risk);
      setRequirements(v, mergeRequirements(v.approval.requirements, again.requirements));
      if (!quorumMet(v)) {
        v.decision = 'requires_approval';
        setStatus('awaiting_approval');
        await audit('approval.required_again');
        // Compact runs tell the approvers, as for a plan that needed approval from the start.
        if (planned?.notifies) notifyApprovers(v);
        continue;
      }
      break;
    }
    // 3. Execute exactly once on Proxmox.
    setStatus('applying');
    const started = { actor: v.appliedBy?.principal, channel: v.appliedBy?.channel };
    // Compact runs: the activity records its start and its success itself; a failure is recorded here.
    let executeAudit: ExecuteAudit | undefined;
    if (compact) {
      // The outcome's record: its sequence number is reserved now, its event named by the outcome.
      executeAudit = { started: auditRecord('apply.started', started), finished: { ...auditFields(), seq: ++auditSeq } };
    } else {
      await audit('apply.started', started);
    }
    v.result = await execute(v, executeAudit);
    setStatus(v.result.outcome === 'failed' ? 'failed' : 'succeeded');
    if (!executeAudit || v.result.outcome === 'failed')
      await audit(
        `action.${v.result.outcome}`,
        { ...(v.result.upid ? { upid: v.result.upid } : {}), outcome: v.status, detail: v.result.message ? { message: v.result.message } : {} },
        executeAudit?.finished.seq,
      );
  }

  async function execute(v: PlanView, executeAudit: ExecuteAudit | undefined): Promise<ActionResult> {
    try {
      // Runs on the environment's own task queue (rate-limited per Proxmox cluster). Runs started
      // before that change scheduled it on the workflow's queue: their histories keep doing so.
      const proxmox =
        compact || patched('per-environment-task-queue')
          ? proxyActivities<Activities>({ ...EXECUTE_OPTIONS, taskQueue: environmentTaskQueue(workflowInfo().taskQueue, request.environment) })
          : proxyActivities<Activities>(EXECUTE_OPTIONS);
      const r = await proxmox.executeAction({
        planId,
        request,
        node: v.target.node ?? v.preflight.state?.node ?? '',
        plannedDigest: v.preflight.fingerprint?.digest,
        ...(executeAudit ? { audit: executeAudit } : {}),
      });
      return { ...r, ...(r.note ? { message: r.note } : {}), finishedAt: nowIso() };
    } catch (err) {
      if (isCancellation(err)) throw err;
      const cause = err instanceof ActivityFailure ? err.cause : err;
      const details = cause instanceof ApplicationFailure ? (cause.details?.[0] as Partial<ActionResult> | undefined) : undefined;
      return {
        outcome: 'failed',
        errorType: cause instanceof ApplicationFailure ? (cause.type ?? 'ApplicationFailure') : 'Unknown',
        message: failureMessage(err),
        ...(details?.upid ? { upid: details.upid } : {}),
        ...(details?.exitstatus ? { exitstatus: details.exitstatus } : {}),
        ...(details?.logTail ? { logTail: details.logTail } : {}),
        finishedAt: nowIso(),
      };
    }
  }
}

/** The main loop may go on: the plan was rejected, or applied with its approvals in. */
function readyToGoOn(v: PlanView): boolean {
  return v.status === 'rejected' || (v.applyRequested && quorumMet(v));
}

function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}
