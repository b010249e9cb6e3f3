import { describe, expect, it } from 'vitest';
import { budgetsText } from '../../src/cli/commands/budgets.js';

const P = 'agent:pi-demo';

describe('proxmox-agent budgets', () => {
  it('prints used of limit, when a full budget frees and who holds the slots', () => {
    const text = budgetsText({
      at: '2026-12-06T12:00:00.000Z',
      windowSeconds: 3600,
      budgets: [
        { principal: P, budget: 'destructive', limit: 3, used: 3, freesAt: '2026-12-06T12:40:00.000Z' },
        { principal: P, budget: 'concurrent', limit: 2, used: 1, heldBy: ['p1'] },
      ],
    });
    expect(text.split('\n')).toEqual([
      'PRINCIPAL      BUDGET            USED  FREES AT                  HELD BY',
      'agent:pi-demo  destructive/hour  3/3   2026-12-06T12:40:00.000Z  ',
      'agent:pi-demo  concurrent        1/2   -                         p1',
      '(as of 2026-12-06T12:00:00.000Z; hourly budgets are a sliding 60-minute window)',
    ]);
    expect(budgetsText({ at: '2026-12-06T12:00:00.000Z', windowSeconds: 3600, budgets: [] })).toBe('No budgets are configured for this principal.');
  });
});
