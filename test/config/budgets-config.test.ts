import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';

describe('budgets config', () => {
  it('refuses a budget for a principal no token acts as, and a limit of 0', () => {
    const base = { environments: { lab: { tier: 'nonprod', proxmox: { simulator: 'lab' } } }, tokens: [{ id: 'a', principal: 'agent:a', secretSha256: 'a'.repeat(64), scopes: ['plan'], environments: ['*'] }] };
    expect(configSchema.safeParse({ ...base, budgets: { 'agent:a': { perHour: { destructive: 3, guests: 10 }, concurrent: 2 } } }).success).toBe(true);
    const typo = configSchema.safeParse({ ...base, budgets: { 'agent:b': { concurrent: 2 } } });
    expect(typo.success ? [] : typo.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(["budgets.agent:b: no token acts as 'agent:b'"]);
    expect(configSchema.safeParse({ ...base, budgets: { 'agent:a': { concurrent: 0 } } }).success).toBe(false);
  });
});
