import { describe, expect, it } from 'vitest';
import { evaluatePolicy, globMatch, policyVersionOf } from '../../src/policy/engine.js';
import { policySchema } from '../../src/policy/schema.js';
import { normalizeRequest } from '../../src/domain/request.js';
import type { GuestState } from '../../src/domain/guest-state.js';

const defaults = policySchema.parse({});
const req = (action: string, environment = 'lab', params: Record<string, unknown> = {}, vmid = 100) =>
  normalizeRequest({ action, environment, target: { vmid }, params, reason: 'test' });
const state = (over: Partial<GuestState> = {}): GuestState => ({
  exists: true, kind: 'qemu', node: 'pve-lab', vmid: 100, status: 'running', tags: [], haManaged: false, template: false, protection: false, snapshots: [], ...over,
});

describe('the default risk table (issue 2)', () => {
  const table: [string, Record<string, unknown>, 'nonprod' | 'prod', string, string, number][] = [
    ['vm.start', {}, 'nonprod', 'low', 'allowed', 0],
    ['vm.start', {}, 'prod', 'medium', 'allowed', 0],
    ['vm.snapshot.create', { snapname: 's1' }, 'nonprod', 'low', 'allowed', 0],
    ['vm.snapshot.create', { snapname: 's1' }, 'prod', 'medium', 'allowed', 0],
    ['vm.stop', {}, 'nonprod', 'medium', 'allowed', 0],
    ['vm.shutdown', {}, 'prod', 'high', 'requires_approval', 1],
    ['vm.reboot', {}, 'prod', 'high', 'requires_approval', 1],
    ['vm.delete', {}, 'nonprod', 'high', 'requires_approval', 1],
    ['vm.delete', {}, 'prod', 'critical', 'requires_approval', 2],
  ];
  it.each(table)('%s %o in %s is %s / %s with %d approvals', (action, params, tier, risk, decision, approvals) => {
    const d = evaluatePolicy(defaults, { request: req(action, tier === 'prod' ? 'prod' : 'lab', params), tier, state: state(), assessment: { kind: 'proceed' } });
    expect(d).toMatchObject({ risk, decision, approvalsRequired: approvals });
    expect(d.reasons[0]!.rule).toBe('catalog.base_risk');
  });
});

describe('rules', () => {
  const policy = policySchema.parse({
    rules: [
      { id: 'freeze-db', match: { tags: ['db'] }, decision: 'deny', message: 'database guests are frozen' },
      { id: 'prod-power', match: { actions: ['vm.st*'], environments: ['prod'] }, risk: 'high' },
      { id: 'vip', match: { vmids: ['200-209'] }, approvals: 2 },
    ],
  });

  it('deny wins and says which rule', () => {
    const d = evaluatePolicy(policy, { request: req('vm.start'), tier: 'nonprod', state: state({ tags: ['db'] }), assessment: { kind: 'proceed' } });
    expect(d.decision).toBe('denied');
    expect(d.reasons).toContainEqual({ rule: 'policy.freeze-db', message: 'database guests are frozen' });
  });

  it('an unreadable state counts as matching a tag rule (fail closed)', () => {
    const d = evaluatePolicy(policy, { request: req('vm.start'), tier: 'nonprod', assessment: { kind: 'proceed' } });
    expect(d.decision).toBe('denied');
  });

  it('raises risk and approvals, never lowers them', () => {
    const d = evaluatePolicy(policy, { request: req('vm.start', 'prod', {}, 205), tier: 'prod', state: state({ vmid: 205 }), assessment: { kind: 'proceed' } });
    expect(d).toMatchObject({ risk: 'high', decision: 'requires_approval', approvalsRequired: 2 });
  });

  it('a blocked or unreadable preflight denies, with the reason', () => {
    const blocked = evaluatePolicy(defaults, { request: req('vm.reboot'), tier: 'nonprod', state: state({ status: 'stopped' }), assessment: { kind: 'blocked', reason: 'VM 100 not running' } });
    expect(blocked.decision).toBe('denied');
    expect(blocked.reasons.at(-1)).toEqual({ rule: 'preflight.blocked', message: expect.stringContaining('VM 100 not running') });
    const unavailable = evaluatePolicy(defaults, { request: req('vm.start'), tier: 'nonprod', assessment: { kind: 'unavailable', reason: '595 No route to host' } });
    expect(unavailable.decision).toBe('denied');
  });

  it('is deterministic and versioned by content', () => {
    const input = { request: req('vm.stop'), tier: 'prod' as const, state: state(), assessment: { kind: 'proceed' as const } };
    expect(evaluatePolicy(policy, input)).toEqual(evaluatePolicy(policy, input));
    expect(policyVersionOf(policy)).not.toBe(policyVersionOf(defaults));
    expect(policyVersionOf(policySchema.parse({}))).toBe(policyVersionOf(defaults));
  });
});

describe('globMatch', () => {
  it('matches * and nothing else specially', () => {
    expect(globMatch('vm.*', 'vm.snapshot.create')).toBe(true);
    expect(globMatch('vm.*', 'ct.start')).toBe(false);
    expect(globMatch('vm.start', 'vmXstart')).toBe(false);
    expect(globMatch('*', 'anything')).toBe(true);
  });
});

describe('policy schema', () => {
  it('refuses duplicate ids and rules that do nothing', () => {
    const r = policySchema.safeParse({ rules: [{ id: 'a', match: {}, risk: 'high' }, { id: 'a', match: {} }] });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.message)).toEqual(expect.arrayContaining(["duplicate rule id 'a'", 'a rule must set risk, decision or approvals']));
  });
});
