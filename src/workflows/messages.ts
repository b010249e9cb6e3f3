/**
 * The contract between the API, the worker and the workflow: message definitions and their payloads.
 * Workflow-safe: only `@temporalio/workflow` definitions and type imports.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { PlanStatus } from '../domain/lifecycle.js';
import type { NormalizedRequest } from '../domain/request.js';
import type { Actor, Channel, PlanView } from '../domain/plan-view.js';
import type { AuditEventInput } from '../audit/events.js';

export type { ActionResult, Actor, Approval, ApprovalRequirement, Channel, PlanView, Preflight, Reason } from '../domain/plan-view.js';

export interface ActionWorkflowInput {
  planId: string;
  request: NormalizedRequest;
  requestHash: string;
  requester: Actor;
  /** An undo plan: the plan it takes back (and the config digest it is held to); see src/domain/undo.ts. */
  undoes?: { planId: string; digest?: string };
  /** A run continued as new while it waited: the plan as it stood, and its audit records' state. */
  resume?: {
    view: PlanView;
    trail: { seq: number; pending: AuditEventInput[] };
    notifies: boolean;
    /** The plan holds a budget charge its run releases at the end. */
    budgeted?: boolean;
    /** The Slack message the approval request was posted as (chat.update target), once known. */
    slackMessage?: { channel: string; ts: string };
    /** The outcomes the requester was already told (tellRequester's keys). */
    told?: string[];
    /** Executes scheduled so far (a freeze refused them at dispatch): the next one's round. */
    executes?: number;
    /** The same for the safeguard snapshot's executes. */
    safeguardExecutes?: number;
  };
}

export interface PlanArgs {
  requestHash: string;
}

export interface ApplyArgs {
  requestHash: string;
  actor: Actor;
  /** Environments the actor's token may act in ('*' for all): checked against the plan's. */
  actorEnvironments: string[];
}

export interface ApplyAccepted {
  planId: string;
  status: PlanStatus;
}

export interface ApprovalArgs {
  principal: string;
  tokenId: string;
  /** The approver's roles, from its token or its chat identity in the config. */
  roles?: string[];
  channel: Channel;
  decision: 'approve' | 'reject';
  comment?: string;
  /** The hash the approver reviewed; an approval never carries over to a different request. */
  requestHash: string;
  /**
   * Names this one decision (the API sets it): one identity may send several at once, through
   * several channels, and each answer must say what became of its own, not of a twin's.
   */
  decisionId?: string;
}

/** Update-with-Start target: returns the plan once policy and preflight are done. */
export const planUpdate = defineUpdate<PlanView, [PlanArgs]>('plan');
/** Ask the run to execute; accepted before approval too (it then waits for the approvals). */
export const applyUpdate = defineUpdate<ApplyAccepted, [ApplyArgs]>('apply');
/** A human decision, from the REST API, the CLI or a chat bot. */
export const approvalSignal = defineSignal<[ApprovalArgs]>('approval');
export const stateQuery = defineQuery<PlanView>('state');

/**
 * The memo key under which the run publishes the plan as it stands, at the end of every workflow task
 * that changed it. Readers (the API) read it from the server (DescribeWorkflowExecution), never through
 * the `state` query: a query waits for a worker, and for a workflow task busy elsewhere, and a query
 * served by a worker without the run in its cache can run work outside any workflow task
 * (docs/plan-apply-lifecycle.md, "Reading a plan"). The query stays, for operators.
 */
export const PLAN_MEMO = 'plan';
/** A freeze was lifted: a run it holds looks again now instead of at its next periodic check. */
export const freezeLiftedSignal = defineSignal<[{ freezeId: string }]>('freezeLifted');
