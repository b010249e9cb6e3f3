/**
 * The plan gateway's apply path against a scripted Temporal client: concurrent and repeated applies
 * of one plan are one apply (issue 12, item 8). The whole path against the dev server is
 * test/integration/concurrent-apply.test.ts; here each rule on its own.
 */
import { ApplicationFailure } from '@temporalio/common';
import { ServiceError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { APPLY_UPDATE_ID, createPlanGateway } from '../../src/api/plans/plan-gateway.js';
import { ApiError } from '../../src/api/http/problems.js';
import type { PlanView } from '../../src/domain/plan-view.js';
import type { ApplyArgs } from '../../src/workflows/messages.js';
import { pendingPlan } from '../channels/helpers/fixtures.js';

/** A low-risk plan waiting for its apply. */
const planned = (over: Partial<PlanView> = {}): PlanView =>
  pendingPlan({
    status: 'planned',
    risk: 'low',
    decision: 'allowed',
    applyRequested: false,
    approval: { required: 0, received: 0, requirements: [], approvers: [], refused: [] },
    ...over,
  });

const args = (over: Partial<ApplyArgs> = {}): ApplyArgs => ({
  requestHash: planned().requestHash,
  actor: { principal: 'agent:pi-demo', tokenId: 'demo-agent', channel: 'api' },
  actorEnvironments: ['*'],
  ...over,
});

interface Script {
  /** The run's state as the query returns it (a copy each time). */
  view: PlanView;
  /** Answers the apply Update; default: the run accepts it and starts applying. */
  update?: (args: ApplyArgs, call: number) => Promise<unknown>;
  /** Answers the state query; default: the view. */
  query?: (call: number) => Promise<PlanView>;
}

function scripted(script: Script) {
  const updates: { updateId?: string; args: ApplyArgs }[] = [];
  let queries = 0;
  const client = {
    workflow: {
      getHandle: () => ({
        // The API reads the plan the run published (its memo), through describe.
        describe: async () => {
          queries += 1;
          return { memo: { plan: await (script.query ? script.query(queries) : structuredClone(script.view)) } };
        },
        executeUpdate: async (_def: unknown, opts: { updateId?: string; args: [ApplyArgs] }) => {
          updates.push({ updateId: opts.updateId, args: opts.args[0] });
          if (script.update) return script.update(opts.args[0], updates.length);
          script.view.applyRequested = true;
          script.view.status = 'applying';
          return { planId: script.view.planId, status: script.view.status };
        },
      }),
    },
  } as unknown as Client;
  const gateway = createPlanGateway({ client, taskQueue: 'q', applyRetry: { attempts: 3, initialDelayMs: 1, maxDelayMs: 2 } });
  return { gateway, updates, queries: () => queries };
}

const grpc = (code: number, message: string) => new ServiceError('Workflow Update failed', { cause: Object.assign(new Error(`${code} ${message}`), { code, details: message }) });
const notCompleted = (type: string) => new WorkflowUpdateFailedError('Workflow Update failed', ApplicationFailure.create({ type, message: type, nonRetryable: true }));
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as ApiError);

describe('plan gateway apply: concurrent applies are one apply', () => {
  it('sends one Update, under the fixed APPLY_UPDATE_ID, for concurrent applies, and gives every caller its answer', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const view = planned();
    const { gateway, updates } = scripted({
      view,
      update: async () => {
        await gate;
        view.applyRequested = true;
        view.status = 'applying';
        return { planId: view.planId, status: 'applying' };
      },
    });
    const answers = Array.from({ length: 20 }, () => gateway.apply(view.planId, args(), planned()));
    release();
    expect(await Promise.all(answers)).toEqual(Array(20).fill({ planId: view.planId, status: 'applying' }));
    expect(updates).toHaveLength(1);
    expect(updates[0]!.updateId).toBe(APPLY_UPDATE_ID);
  });

  it('answers a plan whose apply was already requested from its state, without an Update', async () => {
    const done = scripted({ view: planned({ applyRequested: true, status: 'succeeded' }) });
    expect(await done.gateway.apply(planned().planId, args())).toEqual({ planId: planned().planId, status: 'succeeded' });
    expect(done.updates).toHaveLength(0);

    // Applied early: the run waits for approvals, and so does the answer's status.
    const waiting = scripted({ view: pendingPlan({ applyRequested: true }) });
    expect(await waiting.gateway.apply(pendingPlan().planId, args({ requestHash: pendingPlan().requestHash }))).toEqual({ planId: pendingPlan().planId, status: 'awaiting_approval' });
    expect(waiting.updates).toHaveLength(0);
  });

  it('checks every caller on its own: a wrong requestHash or a foreign token is refused while the others are accepted', async () => {
    const view = planned();
    const { gateway, updates } = scripted({ view });
    const [ok1, wrong, foreign, ok2] = await Promise.allSettled([
      gateway.apply(view.planId, args(), planned()),
      gateway.apply(view.planId, args({ requestHash: `sha256:${'0'.repeat(64)}` }), planned()),
      gateway.apply(view.planId, args({ actorEnvironments: ['lab'] }), planned()),
      gateway.apply(view.planId, args(), planned()),
    ]);
    expect(ok1).toEqual({ status: 'fulfilled', value: { planId: view.planId, status: 'applying' } });
    expect(ok2).toEqual(ok1);
    expect(wrong.status === 'rejected' && (wrong.reason as ApiError).code).toBe('request-hash-mismatch');
    expect(foreign.status === 'rejected' && (foreign.reason as ApiError).code).toBe('forbidden');
    expect(updates).toHaveLength(1);

    // And once the apply is in, answered from the state: still refused.
    expect((await failure(gateway.apply(view.planId, args({ requestHash: `sha256:${'0'.repeat(64)}` }))))?.code).toBe('request-hash-mismatch');
    expect((await failure(gateway.apply(view.planId, args({ actorEnvironments: ['lab'] }))))?.code).toBe('forbidden');
    expect(updates).toHaveLength(1);
  });
});

describe('plan gateway apply: a busy Temporal is retried, not answered 5xx', () => {
  it('tries again after RESOURCE_EXHAUSTED and an Update the worker did not process, under the same updateId', async () => {
    const view = planned();
    const { gateway, updates } = scripted({
      view,
      update: async (_args, call) => {
        if (call === 1) throw grpc(8, 'RESOURCE_EXHAUSTED: limit on number of concurrent in-flight updates has been reached (10)');
        if (call === 2) throw notCompleted('UnprocessedUpdate');
        view.applyRequested = true;
        view.status = 'applying';
        return { planId: view.planId, status: 'applying' };
      },
    });
    expect(await gateway.apply(view.planId, args())).toEqual({ planId: view.planId, status: 'applying' });
    expect(updates.map((u) => u.updateId)).toEqual([APPLY_UPDATE_ID, APPLY_UPDATE_ID, APPLY_UPDATE_ID]);
  });

  it('reads the state again when the run closed under the Update, and answers from it', async () => {
    const view = planned();
    const { gateway, updates } = scripted({
      view,
      update: async () => {
        view.applyRequested = true;
        view.status = 'succeeded';
        throw notCompleted('AcceptedUpdateCompletedWorkflow');
      },
    });
    expect(await gateway.apply(view.planId, args())).toEqual({ planId: view.planId, status: 'succeeded' });
    expect(updates).toHaveLength(1);
  });

  it('gives up after the bounded tries with 503 and Retry-After', async () => {
    const { gateway, updates } = scripted({
      view: planned(),
      update: async () => {
        throw grpc(8, 'RESOURCE_EXHAUSTED: limit on number of concurrent in-flight updates has been reached (10)');
      },
    });
    const err = await failure(gateway.apply(planned().planId, args()));
    expect(err).toBeInstanceOf(ApiError);
    expect([err!.code, err!.headers['retry-after'], err!.extra.planId]).toEqual(['temporal-unavailable', '1', planned().planId]);
    expect(updates).toHaveLength(3);
  });

  it('tries a shed state read again (query buffer full) before answering', async () => {
    const { gateway } = scripted({
      view: planned(),
      query: async (call) => {
        if (call === 1) throw grpc(8, 'RESOURCE_EXHAUSTED: consistent query buffer is full');
        return planned({ applyRequested: true, status: 'succeeded' });
      },
    });
    expect(await gateway.apply(planned().planId, args())).toEqual({ planId: planned().planId, status: 'succeeded' });
  });

  it('maps a refusal of the run once: a plan that expired under the Update is 410 for every caller', async () => {
    const view = planned();
    const { gateway } = scripted({
      view,
      update: async () => {
        throw new WorkflowUpdateFailedError('Workflow Update failed', ApplicationFailure.create({ type: 'PlanExpired', message: 'expired', nonRetryable: true }));
      },
    });
    const errs = await Promise.all([failure(gateway.apply(view.planId, args(), planned())), failure(gateway.apply(view.planId, args(), planned()))]);
    expect(errs.map((e) => e?.code)).toEqual(['plan-expired', 'plan-expired']);
  });
});

describe('plan gateway apply: waiting for the run as its apply handler does', () => {
  it('waits for the re-check of a plan whose apply and approvals are in, then refuses a stale plan', async () => {
    const approved = pendingPlan({ status: 'approved', approval: { required: 1, received: 1, requirements: [{ id: 'r', count: 1, received: 1 }], approvers: [], refused: [] } });
    const { gateway, updates } = scripted({
      view: approved,
      query: async (call) =>
        call < 3 ? structuredClone(approved) : { ...structuredClone(approved), status: 'failed', result: { outcome: 'failed', errorType: 'PlanStale', message: 'the target changed: status' } } as PlanView,
    });
    const err = await failure(gateway.apply(approved.planId, args({ requestHash: approved.requestHash })));
    expect([err?.code, err?.message]).toEqual(['plan-stale', 'the target changed: status']);
    expect(updates).toHaveLength(0);
  });

  it('answers the status the run moved to after its re-check', async () => {
    const approved = pendingPlan({ status: 'approved', approval: { required: 1, received: 1, requirements: [{ id: 'r', count: 1, received: 1 }], approvers: [], refused: [] } });
    const { gateway } = scripted({ view: approved, query: async (call) => (call < 2 ? structuredClone(approved) : { ...structuredClone(approved), status: 'applying' }) });
    expect(await gateway.apply(approved.planId, args({ requestHash: approved.requestHash }))).toEqual({ planId: approved.planId, status: 'applying' });
  });
});

describe('plan gateway: patient state reads', () => {
  it('lets concurrent callers share the read that starts next, never one already under way', async () => {
    const releases: (() => void)[] = [];
    const { gateway, queries } = scripted({
      view: planned(),
      query: (call) => new Promise<PlanView>((resolve) => releases.push(() => resolve(planned({ updatedAt: `read ${call}` })))),
    });
    const first = gateway.state(planned().planId, { patient: true });
    await Promise.resolve();
    const later = Array.from({ length: 10 }, () => gateway.state(planned().planId, { patient: true }));
    expect(queries()).toBe(1);
    releases[0]!();
    expect((await first).updatedAt).toBe('read 1');
    await until(() => releases.length === 2);
    releases[1]!();
    expect((await Promise.all(later)).map((v) => v.updatedAt)).toEqual(Array(10).fill('read 2'));
    expect(queries()).toBe(2);
  });
});

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 1));
}
