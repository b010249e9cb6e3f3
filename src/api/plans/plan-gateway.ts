import { randomUUID } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  QueryNotRegisteredError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  ApplicationFailure,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { actionWorkflow } from '../../workflows/action-workflow.js';
import { applyUpdate, approvalSignal, planUpdate, PLAN_MEMO, type ActionWorkflowInput, type ApplyAccepted, type ApplyArgs, type ApprovalArgs, type PlanView } from '../../workflows/messages.js';
import { applyRefusal, quorumMet, recordApproval, type ApprovalOutcome } from '../../workflows/plan-state.js';
import { isTerminal, type PlanStatus } from '../../domain/lifecycle.js';
import {
  ProxmoxAction,
  ProxmoxEnvironment,
  ProxmoxNode,
  ProxmoxPlanId,
  ProxmoxRequester,
  ProxmoxStatus,
  ProxmoxVmid,
} from '../../temporal/search-attributes.js';
import { ApiError, type ProblemCode } from '../http/problems.js';
import { REFUSALS } from '../../domain/refusals.js';

/** How the workflow's refusal types map to problems: once, here. */
const REFUSAL_PROBLEMS: Record<string, ProblemCode> = {
  [REFUSALS.idempotencyConflict]: 'idempotency-key-reused',
  [REFUSALS.hashMismatch]: 'request-hash-mismatch',
  [REFUSALS.expired]: 'plan-expired',
  [REFUSALS.denied]: 'plan-denied',
  [REFUSALS.rejected]: 'plan-rejected',
  [REFUSALS.finished]: 'plan-finished',
  [REFUSALS.stale]: 'plan-stale',
  [REFUSALS.forbidden]: 'forbidden',
  [REFUSALS.notReady]: 'plan-not-ready',
};

/**
 * The updateId of a run's one apply Update. Concurrent first applies, from this API process or
 * another, name the same Update, and the server hands every one of them that Update's outcome: at
 * most one apply Update is ever in flight on a run, and at most one is ever accepted into its history.
 */
export const APPLY_UPDATE_ID = 'apply';

/** How the apply path rides out a busy Temporal (and how long it waits for a run's re-check). */
export interface ApplyRetryOptions {
  /** Tries of one read or one Update before the caller gets 503 (default 6). */
  attempts?: number;
  /** The first pause between tries, doubled each time up to `maxDelayMs`, with ±20% jitter (default 100 ms). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** How long a repeated apply waits for the run to re-check a plan whose apply and approvals are in (default 30 s). */
  settleMs?: number;
}

export interface PlanGatewayOptions {
  client: Client;
  taskQueue: string;
  /** How long an approval's answer waits for the run to record the decision (default APPROVAL_RECORD_WAIT_MS). */
  approvalRecordWaitMs?: number;
  applyRetry?: ApplyRetryOptions;
}

/**
 * The Temporal adapter behind the HTTP routes: one workflow per plan, whose ID is the plan ID.
 * Temporal errors become ApiErrors here and nowhere else.
 */
export function createPlanGateway({ client, taskQueue, approvalRecordWaitMs = APPROVAL_RECORD_WAIT_MS, applyRetry = {} }: PlanGatewayOptions) {
  const handle = (planId: string): WorkflowHandle<typeof actionWorkflow> => client.workflow.getHandle(planId);
  const retry = { attempts: 6, initialDelayMs: 100, maxDelayMs: 2_000, settleMs: 30_000, ...applyRetry };
  const backoff = (attempt: number) => Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);

  /**
   * The plan as its run last published it (PLAN_MEMO), read from the server: never through a query,
   * so a read answers at once whatever the worker is doing (a Proxmox call that hangs, a busy workflow
   * task, no worker at all), and shows what is known (docs/plan-apply-lifecycle.md, "Reading a plan").
   */
  async function published(planId: string): Promise<PlanView> {
    const described = await handle(planId).describe();
    const view = described.memo?.[PLAN_MEMO] as PlanView | undefined;
    if (!view) throw new ApiError('plan-not-ready', `plan ${planId} is still being evaluated; read it again shortly`, { planId });
    return view;
  }

  async function query(planId: string): Promise<PlanView> {
    try {
      return await published(planId);
    } catch (err) {
      throw mapError(err, planId);
    }
  }

  /**
   * `patient`: for the apply path. Concurrent reads of one plan share a query: a caller joins the
   * read that starts next, never one already under way, so it never sees the plan as it was before
   * it asked; and a read Temporal sheds (query buffer full, query timed out while the worker is busy)
   * is tried again, a bounded number of times with backoff, instead of answering 503 at once.
   */
  function state(planId: string, opts: { patient?: boolean } = {}): Promise<PlanView> {
    if (!opts.patient) return query(planId);
    const slot = reads.get(planId);
    if (slot) return (slot.next ??= slot.running.then(noop, noop).then(() => startRead(planId)));
    return startRead(planId);
  }
  const reads = new Map<string, { running: Promise<PlanView>; next?: Promise<PlanView> }>();
  function startRead(planId: string): Promise<PlanView> {
    const running: Promise<PlanView> = (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await published(planId);
        } catch (err) {
          if (attempt >= retry.attempts || !isBusy(err)) throw mapError(err, planId);
        }
        await sleep(backoff(attempt));
      }
    })().finally(() => {
      const slot = reads.get(planId);
      if (slot?.running === running && !slot.next) reads.delete(planId);
    });
    reads.set(planId, { running });
    return running;
  }

  /** The apply under way in this process, per plan: concurrent callers share it (single flight). */
  const applying = new Map<string, Promise<ApplyAccepted>>();

  /**
   * Brings the run to "apply requested" and answers as the run's apply handler does. The Update is
   * sent only while the run's state says no apply was requested, always under APPLY_UPDATE_ID; once
   * it was, the answer comes from the state. Temporal shedding load, an Update the worker did not
   * process, and a run that closed under the Update are answered by reading the state again and
   * deciding again, a bounded number of times with backoff.
   */
  async function applyOnce(planId: string, args: ApplyArgs, first: PlanView): Promise<ApplyAccepted> {
    let view = first;
    const settleBy = Date.now() + retry.settleMs;
    for (let attempt = 1, polls = 1; ; ) {
      const refusal = applyRefusal(view, args);
      if (refusal) throw applyRefusalProblem(refusal, planId);
      if (view.applyRequested) {
        const answer = answerFromState(view);
        if (answer) return answer;
        // Apply and approvals are in, and the run has not re-checked the target and policy yet: the
        // run's handler waits for that (a stale or denied plan is refused), and so does this answer.
        if (Date.now() >= settleBy) return { planId, status: view.status };
        await sleep(Math.min(1_000, 50 * 1.5 ** polls++));
      } else {
        try {
          return await handle(planId).executeUpdate(applyUpdate, { args: [args], updateId: APPLY_UPDATE_ID });
        } catch (err) {
          if (attempt >= retry.attempts || !(isBusy(err) || mustReread(err))) throw mapError(err, planId);
        }
        await sleep(backoff(attempt++));
      }
      view = await state(planId, { patient: true });
    }
  }

  return {
    state,

    /**
     * Update-with-Start: starts the run (or reuses the one this Idempotency-Key names) and returns
     * its plan in one round trip. A run that already closed answers a replay through its query.
     */
    async plan(input: ActionWorkflowInput): Promise<PlanView> {
      const { request } = input;
      const operation = new WithStartWorkflowOperation<typeof actionWorkflow>('actionWorkflow', {
        workflowId: input.planId,
        taskQueue,
        args: [input],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        staticSummary: `${request.action} ${request.environment}/${request.target.vmid}`,
        staticDetails: `Requested by ${input.requester.principal}: ${request.reason}`,
        memo: { summary: `${request.action} on ${request.environment} vmid ${request.target.vmid}`, reason: request.reason },
        typedSearchAttributes: [
          { key: ProxmoxPlanId, value: input.planId },
          { key: ProxmoxAction, value: request.action },
          { key: ProxmoxEnvironment, value: request.environment },
          { key: ProxmoxVmid, value: request.target.vmid },
          { key: ProxmoxRequester, value: input.requester.principal },
          { key: ProxmoxStatus, value: 'planning' },
          ...(request.target.node ? [{ key: ProxmoxNode, value: request.target.node }] : []),
        ],
      });
      try {
        return await client.workflow.executeUpdateWithStart(planUpdate, {
          // No fixed updateId: the run's validator refuses a replay once the plan is made (below).
          args: [{ requestHash: input.requestHash }],
          startWorkflowOperation: operation,
        });
      } catch (err) {
        // A replay on a running plan: the run refuses the update (no history event) and the plan
        // is read as it is now (status, approvals) as its run published it.
        const replay = err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type === REFUSALS.planExists;
        if (replay || err instanceof WorkflowExecutionAlreadyStartedError) {
          const view = await state(input.planId);
          if (view.requestHash !== input.requestHash)
            throw new ApiError('idempotency-key-reused', `this Idempotency-Key already names plan ${input.planId}, made for a different request`, { planId: input.planId });
          return view;
        }
        throw mapError(err, input.planId);
      }
    },

    /**
     * Concurrent and repeated applies of one plan are one apply. Every caller is checked on its own
     * against the run's state (`current`, read for this call, or read here) with the rule the run's
     * validator uses: token environments, requestHash, the plan's status. A plan whose apply was
     * already requested is answered from its state without an Update; otherwise the caller joins the
     * apply under way in this process, or starts it (one Update under APPLY_UPDATE_ID).
     */
    async apply(planId: string, args: ApplyArgs, current?: PlanView): Promise<ApplyAccepted> {
      const view = current ?? (await state(planId, { patient: true }));
      const refusal = applyRefusal(view, args);
      if (refusal) throw applyRefusalProblem(refusal, planId);
      const answer = view.applyRequested ? answerFromState(view) : undefined;
      if (answer) return answer;
      let shared = applying.get(planId);
      if (!shared) {
        shared = applyOnce(planId, args, view).finally(() => applying.delete(planId));
        applying.set(planId, shared);
      }
      return shared;
    },

    /**
     * Approvals travel as a signal, which cannot answer. So the outcome is predicted first with the
     * workflow's own rule on its current state, and refusals are reported before anything is sent;
     * then the answer waits (at most APPROVAL_RECORD_WAIT_MS) for the run to record the decision,
     * and says what the run did: a decision that arrived after the run moved on (a rejection once the
     * request was sent to Proxmox) is refused by the run, and the approver hears that, not "rejected".
     */
    async approve(planId: string, args: Omit<ApprovalArgs, 'requestHash'> & { requestHash?: string }): Promise<ApprovalAnswer> {
      const view = await state(planId);
      const signal: ApprovalArgs = { ...args, requestHash: args.requestHash ?? view.requestHash, decisionId: randomUUID() };
      const predicted = structuredClone(view);
      const outcome = recordApproval(predicted, signal, new Date().toISOString());
      if (outcome.kind === 'refused') throw refusalProblem(outcome.reason, view, args);
      try {
        await handle(planId).signal(approvalSignal, signal);
      } catch (err) {
        throw mapError(err, planId);
      }
      const deadline = Date.now() + approvalRecordWaitMs;
      for (let pause = 25; ; pause = Math.min(pause * 2, 200)) {
        const now = await state(planId).catch(() => undefined);
        // This decision's own entry (by its id): a twin sent at the same moment through another
        // channel may have been counted while this one was refused as a duplicate.
        const mine = now && ownEntry(now, signal.decisionId!);
        // A rejection the run counted ends the plan: the plan shows "rejected" once its outcome is
        // on the audit chain (a moment later, or after a re-check waiting on Proxmox), the approver
        // hears it now.
        if (mine === 'counted') return { view: signal.decision === 'reject' && !isTerminal(now!.status) ? { ...now!, status: 'rejected' } : now!, recorded: true };
        if (mine) throw refusalProblem(mine.reason as RefusalReason, now!, args);
        if (Date.now() >= deadline) return { view: predicted, recorded: false };
        await new Promise((r) => setTimeout(r, pause));
      }
    },
  };

}

export type PlanGateway = ReturnType<typeof createPlanGateway>;

/** How long an approval's answer waits for the run to record the decision. */
export const APPROVAL_RECORD_WAIT_MS = 5_000;

/** What became of an approval: the plan as the run recorded it, or (not recorded in time) as predicted. */
export interface ApprovalAnswer {
  view: PlanView;
  recorded: boolean;
}

type RefusalReason = Extract<ApprovalOutcome, { kind: 'refused' }>['reason'];

/** What the run made of one decision, by its id: counted (or the rejection), refused (why), or not yet seen. */
function ownEntry(view: PlanView, decisionId: string): 'counted' | { reason: string } | undefined {
  const a = view.approval;
  if (a.approvers.some((x) => x.decisionId === decisionId) || a.rejectedBy?.decisionId === decisionId) return 'counted';
  return a.refused.find((x) => x.decisionId === decisionId);
}

/** A refused decision as the problem the approver gets, whether predicted or decided by the run. */
function refusalProblem(reason: RefusalReason, view: PlanView, args: { principal: string; roles?: string[] | undefined; channel: string }): ApiError {
  const planId = view.planId;
  switch (reason) {
    case 'self_approval':
      return new ApiError('self-approval', `${args.principal} requested plan ${planId} and cannot approve or reject it`, { planId });
    case 'hash_mismatch':
      return new ApiError('request-hash-mismatch', `plan ${planId} has requestHash ${view.requestHash}`, { planId });
    case 'duplicate':
      return new ApiError('approval-not-counted', `${args.principal} has already decided on plan ${planId}; one identity counts once`, { planId });
    case 'not_required':
      return new ApiError('approval-not-counted', `plan ${planId} needs no approval`, { planId });
    case 'not_eligible':
      return new ApiError('approval-not-counted', `plan ${planId} needs ${describeOpen(view)}; this approval (roles: ${(args.roles ?? []).join(', ') || 'none'}, channel: ${args.channel}) meets none of them`, { planId });
    case 'not_open':
      return (
        statusProblem(view) ??
        new ApiError(
          'approval-not-counted',
          view.status === 'applying' || view.status === 'succeeded' || view.status === 'failed'
            ? `plan ${planId} is ${view.status}: its run had begun applying it (sending to Proxmox, or waiting for its turn on the guest) when this decision arrived, so it was not counted`
            : `plan ${planId} is ${view.status} and takes no more approvals`,
          { planId },
        )
      );
  }
}

function describeOpen(view: PlanView): string {
  const open = view.approval.requirements.filter((r) => r.received < r.count);
  return open
    .map((r) => `${r.count - r.received} more approver(s)${r.roles ? ` with role ${r.roles.join('/')}` : ''}${r.channels ? ` via ${r.channels.join('/')}` : ''}`)
    .join(' and ') || 'no more approvals';
}

/** Statuses of a plan whose apply and approvals are in but which the run has not re-checked yet. */
const BEFORE_RECHECK: readonly PlanStatus[] = ['planned', 'awaiting_approval', 'approved'];

/**
 * The answer to an apply of a plan whose apply was already requested, by the rule of the run's apply
 * handler: its status, unless the approvals are in and the run has not re-checked the plan yet
 * (undefined: wait), or the re-check found it stale (409).
 */
function answerFromState(view: PlanView): ApplyAccepted | undefined {
  if (!quorumMet(view) || view.status === 'rejected') return { planId: view.planId, status: view.status };
  if (BEFORE_RECHECK.includes(view.status)) return undefined;
  if (view.result?.errorType === REFUSALS.stale) throw applyRefusalProblem({ type: REFUSALS.stale, message: view.result.message ?? `plan ${view.planId} is stale` }, view.planId);
  return { planId: view.planId, status: view.status };
}

function applyRefusalProblem(refusal: { type: string; message: string }, planId: string): ApiError {
  return new ApiError(REFUSAL_PROBLEMS[refusal.type] ?? 'plan-finished', refusal.message, { planId });
}

const noop = () => {};
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The gRPC status under an SDK error (the SDK wraps it as `cause` of a ServiceError). */
function causeOf(err: unknown): { code?: number; message?: string } {
  const e = err as { code?: number; message?: string; cause?: { code?: number; message?: string } } | undefined;
  return typeof e?.code === 'number' ? e : (e?.cause ?? e ?? {});
}

/** Failure types the server gives an Update it did not complete, while the run itself is fine. */
const UPDATE_NOT_COMPLETED = ['UnprocessedUpdate', 'AcceptedUpdateCompletedWorkflow'];

/**
 * Temporal shedding load, not down: the per-run caps (in-flight Updates, the one buffered query while
 * a workflow task runs) give RESOURCE_EXHAUSTED; a query the busy worker did not answer in time gives
 * DEADLINE_EXCEEDED; an Update the server dropped with its workflow task gives UNAVAILABLE "workflow
 * update was aborted" or FAILED_PRECONDITION "unexpected workflow task failure".
 */
function isBusy(err: unknown): boolean {
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return true;
  const { code, message = '' } = causeOf(err);
  return (
    code === 8 /* RESOURCE_EXHAUSTED */ ||
    code === 4 /* DEADLINE_EXCEEDED */ ||
    (code === 14 /* UNAVAILABLE */ && /update was aborted/i.test(message)) ||
    (code === 9 /* FAILED_PRECONDITION */ && /unexpected workflow task failure/i.test(message))
  );
}

/**
 * An Update that did not complete while the run is fine (the worker did not process it; the run
 * closed under it) or a run that closed: the state, read again, decides.
 */
function mustReread(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  return err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && UPDATE_NOT_COMPLETED.includes(err.cause.type ?? '');
}

/** Busy signals that are not an outage (UNAVAILABLE and DEADLINE_EXCEEDED stay "not reachable", in app.ts). */
function isShedding(err: unknown): boolean {
  if (err instanceof WorkflowUpdateFailedError) return err.cause instanceof ApplicationFailure && UPDATE_NOT_COMPLETED.includes(err.cause.type ?? '');
  const { code } = causeOf(err);
  return isBusy(err) && code !== 14 && code !== 4 && !(err instanceof WorkflowUpdateRPCTimeoutOrCancelledError);
}

function statusProblem(view: PlanView): ApiError | undefined {
  const code: Partial<Record<PlanView['status'], ProblemCode>> = {
    denied: 'plan-denied',
    rejected: 'plan-rejected',
    expired: 'plan-expired',
  };
  const c = code[view.status];
  return c ? new ApiError(c, `plan ${view.planId} is ${view.status}`, { planId: view.planId }) : undefined;
}

/**
 * Temporal refuses Updates (plan, apply) while a run's workflow task keeps failing or timing out,
 * e.g. after the worker running it was killed mid-task. The run is intact and recovers when a worker
 * completes the task, so this is "retry shortly", not an internal error.
 */
function isWorkflowTaskFailing(err: unknown): boolean {
  const e = err as { code?: number; message?: string } | undefined;
  return e?.code === 9 /* FAILED_PRECONDITION */ && /workflow task in failed state/i.test(e.message ?? '');
}

function mapError(err: unknown, planId: string): unknown {
  if (err instanceof ApiError) return err;
  if (isShedding(err)) {
    // What is left of a busy Temporal after the apply path's bounded retries: "retry shortly", not a 500.
    return new ApiError('temporal-unavailable', `plan ${planId} is busy in Temporal; retry shortly`, { planId }, { 'retry-after': '1' });
  }
  if (isWorkflowTaskFailing(err)) {
    return new ApiError(
      'temporal-unavailable',
      `plan ${planId} cannot take requests while its workflow task is retried (a worker stopped mid-task); retry shortly (with the same Idempotency-Key when planning)`,
      { planId },
      { 'retry-after': '2' },
    );
  }
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
    const code = REFUSAL_PROBLEMS[err.cause.type ?? ''];
    if (code) return new ApiError(code, err.cause.message, { planId });
  }
  if (err instanceof WorkflowNotFoundError) return new ApiError('plan-not-found', `no plan ${planId}`, { planId });
  // The run exists, but its first workflow task has not run yet (no handler registered): it is being evaluated.
  if (err instanceof QueryNotRegisteredError) return new ApiError('plan-not-ready', `plan ${planId} is still being evaluated; read it again shortly`, { planId });
  if (err instanceof ApplicationFailure && err.type && REFUSAL_PROBLEMS[err.type]) {
    return new ApiError(REFUSAL_PROBLEMS[err.type]!, err.message, { planId });
  }
  return err;
}
