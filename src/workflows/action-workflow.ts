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
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { ProxmoxNode, ProxmoxRisk, ProxmoxStatus } from '../temporal/search-attributes.js';
// Type-only: activity code never enters the workflow bundle.
import type { createActivities } from '../activities/index.js';
import type { PolicyResult } from '../activities/types.js';
import type { PlanStatus } from '../domain/lifecycle.js';
import { stricterRisk } from '../domain/risk.js';
import {
  applyUpdate,
  approvalSignal,
  environmentTaskQueue,
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
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 5 },
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
  let view: PlanView | undefined;
  let planRecorded = false;
  let auditSeq = 0;

  const audit = (event: string, extra: { actor?: string; channel?: string; upid?: string; outcome?: string; detail?: Record<string, unknown> } = {}) =>
    local.recordAudit({
      eventId: `${planId}/${++auditSeq}/${event}`,
      planId,
      event,
      requestHash,
      ...(view ? { decision: { risk: view.risk, decision: view.decision, policyVersion: view.policyVersion, reasons: view.reasons } } : {}),
      ...(view && view.approval.approvers.length ? { approvals: view.approval.approvers } : {}),
      ...extra,
    });

  // Operators filter runs in the Web UI by these; kept in step with the plan as it moves.
  const setStatus = (status: PlanStatus) => {
    if (!view) return;
    view.status = status;
    view.updatedAt = nowIso();
    upsertSearchAttributes([
      { key: ProxmoxStatus, value: status },
      { key: ProxmoxRisk, value: view.risk },
    ]);
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
        await audit('apply.requested', { actor: args.actor.principal, channel: args.actor.channel });
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
    if (view.status !== before) setStatus(view.status);
    view.updatedAt = nowIso();
    const event = outcome.kind === 'counted' ? 'approval.granted' : outcome.kind === 'rejected' ? 'approval.rejected' : 'approval.refused';
    await audit(event, {
      actor: args.principal,
      channel: args.channel,
      detail: { ...(args.comment ? { comment: args.comment } : {}), ...(outcome.kind === 'refused' ? { reason: outcome.reason } : {}) },
    });
  });

  // 1. Preflight and policy.
  const preflight = await readTarget();
  const policy = await local.evaluatePolicy({ request, preflight });
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
  setStatus(view.status);
  if (view.target.node) upsertSearchAttributes([{ key: ProxmoxNode, value: view.target.node }]);
  await audit(view.status === 'denied' ? 'plan.denied' : 'plan.created', { actor: requester.principal, channel: requester.channel });
  planRecorded = true;
  // Not awaited here: the plan is returned while approvers are notified; cancelled if still retrying at the end.
  const notifying = view.status === 'awaiting_approval' ? new CancellationScope() : undefined;
  const notified = notifying?.run(() => notifier.notifyApprovers({ plan: view! })).catch(() => undefined);

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
    notifying?.cancel();
    await notified;
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

  async function readTarget(): Promise<Preflight> {
    try {
      return await local.preflight({ request });
    } catch (err) {
      return { assessment: { kind: 'unavailable', reason: failureMessage(err) }, checkedAt: nowIso() };
    }
  }

  async function awaitApplyThenExecute(v: PlanView): Promise<void> {
    for (;;) {
      const remaining = Date.parse(v.expiresAt) - Date.now();
      const ready = remaining > 0 && (await condition(() => v.status === 'rejected' || (v.applyRequested && quorumMet(v)), remaining));
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
      const fresh = await readTarget();
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
      const again: PolicyResult = await local.evaluatePolicy({ request, preflight: fresh });
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
        continue;
      }
      break;
    }
    // 3. Execute exactly once on Proxmox.
    setStatus('applying');
    await audit('apply.started', { actor: v.appliedBy?.principal, channel: v.appliedBy?.channel });
    v.result = await execute(v);
    setStatus(v.result.outcome === 'failed' ? 'failed' : 'succeeded');
    await audit(`action.${v.result.outcome}`, { ...(v.result.upid ? { upid: v.result.upid } : {}), outcome: v.status, detail: v.result.message ? { message: v.result.message } : {} });
  }

  async function execute(v: PlanView): Promise<ActionResult> {
    try {
      // Runs on the environment's own task queue (rate-limited per Proxmox cluster). Runs started
      // before this change scheduled it on the workflow's queue: their histories keep doing so.
      const proxmox = patched('per-environment-task-queue')
        ? proxyActivities<Activities>({ ...EXECUTE_OPTIONS, taskQueue: environmentTaskQueue(workflowInfo().taskQueue, request.environment) })
        : proxyActivities<Activities>(EXECUTE_OPTIONS);
      const r = await proxmox.executeAction({ planId, request, node: v.target.node ?? v.preflight.state?.node ?? '', plannedDigest: v.preflight.fingerprint?.digest });
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

function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}
