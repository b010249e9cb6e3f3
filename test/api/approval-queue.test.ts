import type { Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { createApprovalQueue, decodeCursor, encodeCursor, pendingQuery } from '../../src/api/plans/approval-queue.js';
import type { PlanView } from '../../src/domain/plan-view.js';

const PLAN = 'plan_01JD5Q8V2M3N4P5R6S7T8V9W0X';

describe('approval queue cursor', () => {
  it('round-trips a position', () => {
    const c = { startMs: 1795667400123, planId: PLAN };
    expect(encodeCursor(c)).toBe(`1795667400123.${PLAN}`);
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
    expect(decodeCursor(`0.${PLAN}`)).toEqual({ startMs: 0, planId: PLAN });
  });

  it('refuses anything that is not <13-digit ms>.<plan id>', () => {
    for (const s of ['', PLAN, `1.${PLAN}x`, `x1.${PLAN}`, `${'1'.repeat(14)}.${PLAN}`, `1.plan_${'U'.repeat(26)}`, `-1.${PLAN}`, `1.5.${PLAN}`])
      expect(decodeCursor(s), s).toBeUndefined();
  });
});

describe('pendingQuery', () => {
  it('asks visibility for this deployment’s open runs awaiting approval in the caller’s environments', () => {
    expect(pendingQuery('pa', ['lab', 'prod'])).toBe(
      'WorkflowType = "actionWorkflow" AND TaskQueue = "pa" AND ExecutionStatus = "Running" AND ProxmoxStatus = "awaiting_approval" AND ProxmoxEnvironment IN ("lab", "prod")',
    );
    expect(pendingQuery('pa', ['*'])).not.toContain('ProxmoxEnvironment');
  });

  it('starts at the cursor’s millisecond, inclusive: the plans of that millisecond are sorted out after', () => {
    expect(pendingQuery('pa', ['*'], { startMs: 1795667400123, planId: PLAN })).toMatch(/ AND StartTime >= "2026-11-26T\d\d:\d\d:00\.123Z"$/);
  });

  it('refuses a value that would break out of its quotes', () => {
    expect(() => pendingQuery('pa', ['lab" OR "1"="1'])).toThrow(/quote/);
  });
});

describe('createApprovalQueue', () => {
  /** Visibility holding `n` pending plans, and a `state` read that stays open until released. */
  function fixture(n: number) {
    const runs = Array.from({ length: n }, (_, i) => ({ startTime: new Date(1795667400000 + i), workflowId: `plan_${String(i).padStart(26, '0')}` }));
    const client = {
      workflow: {
        count: async () => ({ count: runs.length }),
        list: async function* () {
          yield* runs;
        },
      },
    } as unknown as Client;
    const reads: string[] = [];
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const plans = {
      state: async (planId: string) => {
        reads.push(planId);
        await released;
        return { planId, environment: 'lab', status: 'awaiting_approval' } as PlanView;
      },
    };
    return { queue: createApprovalQueue({ client, taskQueue: 'pa', plans }), reads, release };
  }

  it('shares one state read per plan among concurrent listings (ten approvers at once make one query per plan, not ten)', async () => {
    // Ten parallel GET /v1/approvals each read the same page of plans; on a real cluster concurrent
    // queries of one run, most of them not in the worker's cache, left one waiting the 10 s sticky
    // timeout (issue 13, docs/benchmarks.md "On a real cluster").
    const { queue, reads, release } = fixture(5);
    const pages = Array.from({ length: 10 }, () => queue.pending({ environments: ['*'], limit: 5 }));
    await new Promise((r) => setTimeout(r, 20));
    release();
    for (const page of await Promise.all(pages)) expect(page.items.map((v) => v.planId)).toHaveLength(5);
    expect(reads).toHaveLength(5);
    expect(new Set(reads).size).toBe(5);
  });

  it('reads a plan again once its earlier read has finished', async () => {
    const { queue, reads, release } = fixture(3);
    release();
    await queue.pending({ environments: ['*'], limit: 3 });
    await queue.pending({ environments: ['*'], limit: 3 });
    expect(reads).toHaveLength(6);
  });
});
