/**
 * How the plan gateway reports Temporal's refusals. Regression (found by the chaos suite): after a
 * worker was SIGKILLed mid-task a few times, Temporal refused Update-with-Start on the run with
 * FAILED_PRECONDITION "Workflow Task in failed state", and the API answered 500; the run was fine
 * and recovered on the next worker, so the answer must be a retryable 503.
 */
import { QueryNotRegisteredError, type Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { createPlanGateway } from '../../src/api/plans/plan-gateway.js';
import { ApiError } from '../../src/api/http/problems.js';
import type { ActionWorkflowInput, PlanView } from '../../src/workflows/messages.js';

/** The error the SDK throws, as it arrived in the chaos run (a gRPC status, its message taken from the operation's status). */
function workflowTaskFailing(): Error {
  return Object.assign(new Error('Unable to perform workflow execution update due to Workflow Task in failed state.'), {
    code: 9,
    details: 'Update-with-Start could not be executed.',
  });
}

function gatewayThrowing(err: unknown) {
  const client = {
    workflow: {
      executeUpdateWithStart: async () => {
        throw err;
      },
      getHandle: () => ({
        // An apply reads the run's state (its published memo) first.
        describe: async () => {
          throw err;
        },
        executeUpdate: async () => {
          throw err;
        },
      }),
    },
  } as unknown as Client;
  return createPlanGateway({ client, taskQueue: 'q' });
}

const input: ActionWorkflowInput = {
  planId: 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G',
  requestHash: `sha256:${'a'.repeat(64)}`,
  request: { action: 'vm.start', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'test' },
  requester: { principal: 'agent:test', tokenId: 'test', channel: 'api' },
} as unknown as ActionWorkflowInput;

describe('plan gateway: a run whose workflow task is being retried', () => {
  it('answers 503 temporal-unavailable with Retry-After and the plan id to a plan request', async () => {
    const err = await gatewayThrowing(workflowTaskFailing()).plan(input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('temporal-unavailable');
    expect((err as ApiError).status).toBe(503);
    expect((err as ApiError).headers['retry-after']).toBe('2');
    expect((err as ApiError).extra.planId).toBe(input.planId);
  });

  it('answers the same to an apply', async () => {
    const err = await gatewayThrowing(workflowTaskFailing()).apply(input.planId, { requestHash: input.requestHash } as never).catch((e: unknown) => e);
    expect((err as ApiError).code).toBe('temporal-unavailable');
  });

  it('leaves other FAILED_PRECONDITION errors alone (they are not transient)', async () => {
    const other = Object.assign(new Error('Namespace is not active'), { code: 9 });
    const err = await gatewayThrowing(other).plan(input).catch((e: unknown) => e);
    expect(err).toBe(other);
  });
});

describe('plan gateway: a read of a run whose first workflow task has not run yet', () => {
  it('answers 409 plan-not-ready, not 500 (an adversary saw QueryNotRegisteredError pass through)', async () => {
    const gateway = gatewayThrowing(new QueryNotRegisteredError('No registered queries (seen: [])', 3));
    const err = await gateway.state(input.planId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('plan-not-ready');
    expect((err as ApiError).status).toBe(409);
  });
});

describe('plan gateway: an approval is answered with what the run recorded', () => {
  const view = (over: Record<string, unknown>): PlanView =>
    ({
      planId: input.planId,
      requestHash: input.requestHash,
      requester: { principal: 'agent:test', tokenId: 'test', channel: 'api' },
      status: 'approved',
      environment: 'lab',
      approval: { required: 1, received: 1, requirements: [{ id: 'risk.high', count: 1, received: 1 }], approvers: [{ principal: 'human:alice', tokenId: 'a', roles: [], channel: 'api', decision: 'approve', at: 't' }], refused: [] },
      ...over,
    }) as unknown as PlanView;
  /** A client whose run shows `before` until the signal, then `after` (given the decision's id, when a function). */
  function gatewayRecording(before: unknown, after: unknown | ((decisionId: string) => unknown), waitMs = 2_000) {
    let signalled: { decisionId: string } | undefined;
    const client = {
      workflow: {
        getHandle: () => ({
          describe: async () => ({ memo: { plan: signalled ? (typeof after === 'function' ? after(signalled.decisionId) : after) : before } }),
          signal: async (_def: unknown, args: { decisionId: string }) => void (signalled = args),
        }),
      },
    } as unknown as Client;
    return createPlanGateway({ client, taskQueue: 'q', approvalRecordWaitMs: waitMs });
  }
  const reject = { principal: 'human:bob', tokenId: 'b', roles: [], channel: 'api' as const, decision: 'reject' as const };

  it('a rejection the run took: recorded, the plan rejected', async () => {
    const rejected = (decisionId: string) =>
      view({ status: 'rejected', approval: { ...view({}).approval, rejectedBy: { principal: 'human:bob', tokenId: 'b', roles: [], channel: 'api', decision: 'reject', at: 't', decisionId } } });
    const answer = await gatewayRecording(view({}), rejected).approve(input.planId, reject);
    expect(answer).toMatchObject({ recorded: true, view: { status: 'rejected' } });
  });

  it('a rejection predicted to count that reached the run after it began applying: 409, not "rejected"', async () => {
    // Before: the answer was the prediction (status rejected) while the run refused it and applied.
    const applying = (decisionId: string) => view({ status: 'applying', approval: { ...view({}).approval, refused: [{ principal: 'human:bob', reason: 'not_open', at: 't', decisionId }] } });
    const err = await gatewayRecording(view({}), applying).approve(input.planId, reject).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 'approval-not-counted', status: 409 });
    expect((err as ApiError).message).toContain('had begun applying it');
  });

  it("a twin sent at the same moment through another channel was counted, this one refused: 409, not the twin's success", async () => {
    // Before: any decision of bob's on the run answered every one of his requests "recorded".
    const awaiting = view({ status: 'awaiting_approval', approval: { required: 2, received: 1, requirements: [{ id: 'risk.critical', count: 2, received: 1 }], approvers: [view({}).approval.approvers[0]], refused: [] } });
    const approve = { ...reject, decision: 'approve' as const };
    const twinCounted = (decisionId: string) =>
      view({
        status: 'approved',
        approval: {
          ...view({}).approval,
          approvers: [...view({}).approval.approvers, { principal: 'human:bob', tokenId: 'b', roles: [], channel: 'chat', decision: 'approve', at: 't', decisionId: 'the-twin' }],
          refused: [{ principal: 'human:bob', reason: 'duplicate', at: 't', decisionId }],
        },
      });
    const err = await gatewayRecording(awaiting, twinCounted).approve(input.planId, approve).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'approval-not-counted', status: 409 });
  });

  it('a run that does not record it in time: the prediction, marked as not recorded', async () => {
    const answer = await gatewayRecording(view({}), view({}), 200).approve(input.planId, reject);
    expect(answer).toMatchObject({ recorded: false, view: { status: 'rejected' } });
  });
});
