import { describe, expect, it } from 'vitest';
import { idempotentPlanId, isPlanId, randomPlanId } from '../../src/domain/plan-id.js';

describe('plan ids', () => {
  it('are plan_ plus 26 Crockford base32 characters', () => {
    for (let i = 0; i < 200; i++) expect(isPlanId(randomPlanId())).toBe(true);
    expect(isPlanId(idempotentPlanId('agent:pi', 'k1'))).toBe(true);
    expect(isPlanId('plan_0123456789ABCDEFGHJKMNPQRI')).toBe(false); // I is not Crockford
    expect(isPlanId('plan_../../etc')).toBe(false);
  });

  it('are random without a key', () => {
    const ids = new Set(Array.from({ length: 1000 }, randomPlanId));
    expect(ids.size).toBe(1000);
  });

  it('derive from principal and key together', () => {
    expect(idempotentPlanId('agent:pi', 'k1')).toBe(idempotentPlanId('agent:pi', 'k1'));
    expect(idempotentPlanId('agent:pi', 'k1')).not.toBe(idempotentPlanId('agent:pi', 'k2'));
    // Two principals using the same key never collide on one plan.
    expect(idempotentPlanId('agent:pi', 'k1')).not.toBe(idempotentPlanId('agent:other', 'k1'));
    // The separator prevents ("a", "b:c") and ("a:b", "c") from meeting.
    expect(idempotentPlanId('a', 'b\0c')).not.toBe(idempotentPlanId('a\0b', 'c'));
  });
});
