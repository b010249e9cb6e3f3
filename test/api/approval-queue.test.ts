import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, pendingQuery } from '../../src/api/approval-queue.js';

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
