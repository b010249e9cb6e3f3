import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  ApplicationFailure,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { actionWorkflow } from '../workflows/action-workflow.js';
import {
  applyUpdate,
  approvalSignal,
  planUpdate,
  REFUSALS,
  stateQuery,
  type ActionWorkflowInput,
  type ApplyAccepted,
  type ApplyArgs,
  type ApprovalArgs,
  type PlanView,
} from '../workflows/messages.js';
import { applyRefusal, recordApproval, type ApprovalOutcome } from '../workflows/plan-state.js';
import {
  ProxmoxAction,
  ProxmoxEnvironment,
  ProxmoxNode,
  ProxmoxPlanId,
  ProxmoxRequester,
  ProxmoxStatus,
  ProxmoxVmid,
} from '../temporal/search-attributes.js';
import { ApiError, type ProblemCode } from './problems.js';

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

export interface PlanGatewayOptions {
  client: Client;
  taskQueue: string;
  /** How long an approval's answer waits for the run to record the decision (default APPROVAL_RECORD_WAIT_MS). */
  approvalRecordWaitMs?: number;
}

/**
 * The Temporal adapter behind the HTTP routes: one workflow per plan, whose ID is the plan ID.
 * Temporal errors become ApiErrors here and nowhere else.
 */
export function createPlanGateway({ client, taskQueue, approvalRecordWaitMs = APPROVAL_RECORD_WAIT_MS }: PlanGatewayOptions) {
  const handle = (planId: string): WorkflowHandle<typeof actionWorkflow> => client.workflow.getHandle(planId);

  async function state(planId: string): Promise<PlanView> {
    try {
      return await handle(planId).query(stateQuery);
    } catch (err) {
      throw mapError(err, planId);
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
        // is read as it is now (status, approvals) through the state query.
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

    async apply(planId: string, args: ApplyArgs): Promise<ApplyAccepted> {
      try {
        return await handle(planId).executeUpdate(applyUpdate, { args: [args] });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError) || !(await exists(planId))) throw mapError(err, planId);
      }
      // The run has closed: answer from its final state, as the workflow itself would have.
      const view = await state(planId);
      const refusal = applyRefusal(view, args);
      if (refusal) throw new ApiError(REFUSAL_PROBLEMS[refusal.type] ?? 'plan-finished', refusal.message, { planId });
      return { planId, status: view.status };
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
      const signal: ApprovalArgs = { ...args, requestHash: args.requestHash ?? view.requestHash };
      const predicted = structuredClone(view);
      const outcome = recordApproval(predicted, signal, new Date().toISOString());
      if (outcome.kind === 'refused') throw refusalProblem(outcome.reason, view, args);
      const before = decisionsBy(view, args.principal);
      try {
        await handle(planId).signal(approvalSignal, signal);
      } catch (err) {
        throw mapError(err, planId);
      }
      const deadline = Date.now() + approvalRecordWaitMs;
      for (let pause = 25; ; pause = Math.min(pause * 2, 200)) {
        const now = await state(planId).catch(() => undefined);
        if (now && decisionsBy(now, args.principal) > before) {
          const refused = now.approval.refused.filter((r) => r.principal === args.principal).at(-1);
          const counted = now.approval.approvers.some((a) => a.principal === args.principal) || now.approval.rejectedBy?.principal === args.principal;
          if (!counted && refused) throw refusalProblem(refused.reason as RefusalReason, now, args);
          return { view: now, recorded: true };
        }
        if (Date.now() >= deadline) return { view: predicted, recorded: false };
        await new Promise((r) => setTimeout(r, pause));
      }
    },
  };

  async function exists(planId: string): Promise<boolean> {
    try {
      await handle(planId).describe();
      return true;
    } catch {
      return false;
    }
  }
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

/** Decisions the run holds from this identity: counted, rejecting, or refused. */
function decisionsBy(view: PlanView, principal: string): number {
  const a = view.approval;
  return a.approvers.filter((x) => x.principal === principal).length + (a.rejectedBy?.principal === principal ? 1 : 0) + a.refused.filter((x) => x.principal === principal).length;
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
            ? `plan ${planId} is ${view.status}: its request had been sent to Proxmox when this decision arrived, so it was not counted`
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
  if (err instanceof ApplicationFailure && err.type && REFUSAL_PROBLEMS[err.type]) {
    return new ApiError(REFUSAL_PROBLEMS[err.type]!, err.message, { planId });
  }
  return err;
}
