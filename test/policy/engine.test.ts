import { describe, expect, it } from 'vitest';
import { evaluatePolicy, globMatch, policyVersionOf, type PolicyInput } from '../../src/policy/engine.js';
import { policySchema } from '../../src/policy/schema.js';
import { normalizeRequest } from '../../src/domain/request.js';
import type { GuestState } from '../../src/domain/guest-state.js';
import { ACTIONS } from '../../src/domain/actions/catalog.js';
import { toJSONSchema } from 'zod';

const defaults = policySchema.parse({});
const AT = new Date('2026-11-25T12:00:00Z'); // a Wednesday
const req = (action: string, environment = 'lab', params: Record<string, unknown> = {}, vmid = 100) =>
  normalizeRequest({ action, environment, target: { vmid }, params, reason: 'test' });
const state = (over: Partial<GuestState> = {}): GuestState => ({
  exists: true, kind: 'qemu', node: 'pve-lab', vmid: 100, status: 'running', tags: [], haManaged: false, template: false, protection: false, snapshots: [], ...over,
});
const input = (over: Partial<PolicyInput> & Pick<PolicyInput, 'request'>): PolicyInput => ({
  tier: 'nonprod', state: state(), assessment: { kind: 'proceed' }, at: AT, ...over,
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
    const d = evaluatePolicy(defaults, input({ request: req(action, tier === 'prod' ? 'prod' : 'lab', params), tier }));
    expect(d).toMatchObject({ risk, decision, approvalsRequired: approvals });
    expect(d.requirements).toEqual(approvals ? [{ id: `risk.${risk}`, count: approvals }] : []);
    expect(d.reasons[0]!.rule).toBe('catalog.base_risk');
  });
});

describe('rules', () => {
  const policy = policySchema.parse({
    rules: [
      { id: 'freeze-db', match: { tags: ['db'] }, decision: 'deny', message: 'database guests are frozen' },
      { id: 'prod-power', match: { actions: ['vm.st*'], environments: ['prod'] }, risk: 'high' },
      { id: 'vip', match: { vmids: ['200-209'] }, approvals: { count: 2, roles: ['sre'] } },
      { id: 'pool-review', match: { pools: ['finance'] }, decision: 'require_approval' },
      { id: 'step-up', match: { actions: ['vm.delete'], environments: ['prod'] }, approvals: { count: 1, channels: ['api', 'cli'] } },
    ],
  });

  it('deny wins, says which rule, and hints at what would change it', () => {
    const d = evaluatePolicy(policy, input({ request: req('vm.start'), state: state({ tags: ['db'] }) }));
    expect(d.decision).toBe('denied');
    expect(d.reasons).toContainEqual({ rule: 'policy.freeze-db', message: 'database guests are frozen', hint: expect.stringContaining('policy owner') });
    expect(d.requirements).toEqual([]);
  });

  it('an unreadable target counts as matching a tag rule (fail closed)', () => {
    const d = evaluatePolicy(policy, input({ request: req('vm.start'), state: undefined, assessment: { kind: 'proceed' } }));
    expect(d.decision).toBe('denied');
  });

  it('raises risk and adds requirements, never lowers them', () => {
    const d = evaluatePolicy(policy, input({ request: req('vm.start', 'prod', {}, 205), tier: 'prod', state: state({ vmid: 205 }) }));
    expect(d).toMatchObject({ risk: 'high', decision: 'requires_approval', approvalsRequired: 2 });
    expect(d.requirements).toEqual([
      { id: 'risk.high', count: 1 },
      { id: 'policy.vip', count: 2, roles: ['sre'] },
    ]);
    expect(d.reasons.at(-1)).toMatchObject({ rule: 'approval.required', hint: expect.stringContaining('apply now') });
  });

  it('matches pools and asks for one approval on require_approval', () => {
    const d = evaluatePolicy(policy, input({ request: req('vm.start'), state: state({ pool: 'finance' }) }));
    expect(d).toMatchObject({ risk: 'low', decision: 'requires_approval', requirements: [{ id: 'policy.pool-review', count: 1 }] });
  });

  it('adds a step-up channel requirement next to the risk quorum', () => {
    const d = evaluatePolicy(policy, input({ request: req('vm.delete', 'prod', {}, 310), tier: 'prod', state: state({ vmid: 310, status: 'stopped' }) }));
    expect(d.requirements).toEqual([
      { id: 'risk.critical', count: 2 },
      { id: 'policy.step-up', count: 1, channels: ['api', 'cli'] },
    ]);
  });

  it('a blocked or unreadable preflight denies, with the reason and a hint', () => {
    const blocked = evaluatePolicy(defaults, input({ request: req('vm.reboot'), state: state({ status: 'stopped' }), assessment: { kind: 'blocked', reason: 'VM 100 not running' } }));
    expect(blocked.decision).toBe('denied');
    expect(blocked.reasons.at(-1)).toEqual({ rule: 'preflight.blocked', message: expect.stringContaining('VM 100 not running'), hint: expect.any(String) });
    const unavailable = evaluatePolicy(defaults, input({ request: req('vm.start'), state: undefined, assessment: { kind: 'unavailable', reason: '595 No route to host' } }));
    expect(unavailable.decision).toBe('denied');
    expect(unavailable.reasons.at(-1)!.rule).toBe('preflight.unavailable');
  });

  it('is deterministic and versioned by content', () => {
    const i = input({ request: req('vm.stop', 'prod'), tier: 'prod' });
    expect(evaluatePolicy(policy, i)).toEqual(evaluatePolicy(policy, i));
    expect(policyVersionOf(policy)).not.toBe(policyVersionOf(defaults));
    expect(policyVersionOf(policySchema.parse({}))).toBe(policyVersionOf(defaults));
  });
});

describe('time windows', () => {
  const freeze = policySchema.parse({
    rules: [
      { id: 'holiday-freeze', match: { environments: ['prod'], when: { windows: [{ from: '2026-12-20T00:00:00Z', to: '2027-01-05T00:00:00Z' }] } }, decision: 'deny' },
      { id: 'after-hours', match: { when: { timezone: 'Europe/Berlin', windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], between: ['18:00', '08:00'] }, { days: ['sat', 'sun'] }] } }, risk: 'high' },
    ],
  });
  const at = (iso: string, environment = 'prod') =>
    evaluatePolicy(freeze, input({ request: req('vm.start', environment), tier: environment === 'prod' ? 'prod' : 'nonprod', at: new Date(iso) }));

  it('denies inside a change freeze and says until when', () => {
    const d = at('2026-12-24T10:00:00Z');
    expect(d.decision).toBe('denied');
    expect(d.reasons.find((r) => r.rule === 'policy.holiday-freeze')?.hint).toContain('2027-01-05');
    expect(at('2027-01-05T00:00:00Z').decision).not.toBe('denied'); // `to` is exclusive
    expect(at('2026-12-19T23:59:59Z').decision).not.toBe('denied');
    expect(at('2026-12-24T10:00:00Z', 'lab').decision).not.toBe('denied');
  });

  it('reads days and hours on the rule’s wall clock, across midnight and DST', () => {
    expect(at('2026-11-25T12:00:00Z', 'lab').risk).toBe('low'); // Wed 13:00 Berlin
    expect(at('2026-11-25T17:30:00Z', 'lab').risk).toBe('high'); // Wed 18:30 Berlin
    expect(at('2026-11-26T06:59:00Z', 'lab').risk).toBe('high'); // Thu 07:59 Berlin
    expect(at('2026-11-26T07:00:00Z', 'lab').risk).toBe('low'); // Thu 08:00 Berlin
    expect(at('2026-11-28T12:00:00Z', 'lab').risk).toBe('high'); // Saturday
    expect(at('2026-07-01T16:30:00Z', 'lab').risk).toBe('high'); // Wed 18:30 Berlin in summer time (UTC+2)
    expect(at('2026-07-01T15:30:00Z', 'lab').risk).toBe('low'); // Wed 17:30 Berlin in summer time
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

describe('policy schema (fail closed on ambiguity)', () => {
  const issues = (raw: unknown) => {
    const r = policySchema.safeParse(raw);
    expect(r.success).toBe(false);
    return r.error!.issues.map((i) => i.message);
  };
  it('refuses duplicate ids, rules that do nothing, deny-with-approvals, bad windows, bad zones', () => {
    expect(issues({ rules: [{ id: 'a', match: {}, risk: 'high' }, { id: 'a', match: {}, risk: 'high' }] })).toContain("duplicate rule id 'a'");
    expect(issues({ rules: [{ id: 'a', match: {} }] })).toContain('a rule must set risk, decision, approvals or safeguard');
    expect(issues({ rules: [{ id: 'a', match: {}, decision: 'deny', approvals: 1 }] })[0]).toMatch(/ambiguous/);
    expect(issues({ rules: [{ id: 'a', match: { when: { windows: [{}] } }, risk: 'high' }] })[0]).toMatch(/empty window/);
    expect(issues({ rules: [{ id: 'a', match: { when: { windows: [{ from: '2027-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }] } }, risk: 'high' }] })[0]).toMatch(/before/);
    expect(issues({ rules: [{ id: 'a', match: { when: { timezone: 'Mars/Olympus', windows: [{ days: ['mon'] }] } }, risk: 'high' }] })[0]).toMatch(/IANA/);
    expect(issues({ approvalsByRisk: { low: 0, medium: 2, high: 1, critical: 2 } })[0]).toMatch(/must not decrease/);
  });
});

describe('node rules see where an action puts the guest (issue 12, item 9.1)', () => {
  const policy = policySchema.parse({
    rules: [
      { id: 'no-pve-x', match: { nodes: ['pve-x'] }, decision: 'deny', message: 'nothing may run on pve-x' },
      { id: 'gpu-nodes', match: { nodes: ['gpu-*'] }, risk: 'critical', approvals: { count: 1, roles: ['gpu-owner'] } },
    ],
  });
  const prod = (action: string, params: Record<string, unknown>, over: Partial<GuestState> = {}) =>
    evaluatePolicy(policy, input({ request: req(action, 'prod', params), tier: 'prod', state: state({ node: 'pve-prod', ...over }) }));
  const reason = (d: ReturnType<typeof evaluatePolicy>, rule: string) => d.reasons.find((r) => r.rule === `policy.${rule}`);

  it('a deny rule on a node stops a migration onto it, and says which node matched and why', () => {
    const d = prod('vm.migrate', { target: 'pve-x' });
    expect(d.decision).toBe('denied');
    expect(reason(d, 'no-pve-x')).toMatchObject({ nodes: [{ node: 'pve-x', role: 'destination' }], message: expect.stringContaining("'pve-x'") });
    expect(prod('ct.migrate', { target: 'pve-x' }, { kind: 'lxc', status: 'stopped' }).decision).toBe('denied');
  });

  it('a deny rule on a node stops a clone placed on it; a clone without target stays on the source node', () => {
    const onX = prod('vm.clone', { newid: 900, name: 'copy', target: 'pve-x' });
    expect(onX.decision).toBe('denied');
    expect(reason(onX, 'no-pve-x')!.nodes).toEqual([{ node: 'pve-x', role: 'destination' }]);
    expect(prod('ct.clone', { newid: 900, hostname: 'copy', target: 'pve-x' }, { kind: 'lxc', status: 'stopped' }).decision).toBe('denied');
    const here = prod('vm.clone', { newid: 900, name: 'copy' });
    expect(here.decision).not.toBe('denied');
    expect(reason(here, 'no-pve-x')).toBeUndefined();
  });

  it('still applies on the source node: moving away from a node is touching it', () => {
    const d = prod('vm.migrate', { target: 'pve-prod-2' }, { node: 'pve-x' });
    expect(d.decision).toBe('denied');
    expect(reason(d, 'no-pve-x')!.nodes).toEqual([{ node: 'pve-x', role: 'source' }]);
  });

  it('risk and approval rules on a node apply to the destination too, naming each node that matched', () => {
    const d = prod('vm.migrate', { target: 'gpu-2' }, { node: 'gpu-1' });
    expect(d).toMatchObject({ risk: 'critical', decision: 'requires_approval' });
    expect(d.requirements).toContainEqual({ id: 'policy.gpu-nodes', count: 1, roles: ['gpu-owner'] });
    expect(reason(d, 'gpu-nodes')!.nodes).toEqual([
      { node: 'gpu-1', role: 'source' },
      { node: 'gpu-2', role: 'destination' },
    ]);
    expect(prod('vm.migrate', { target: 'pve-prod-2' }).risk).toBe('high'); // neither node is a GPU node
  });

  it('an unknown source node still matches (fail closed), and the reason says the node was not known', () => {
    const d = evaluatePolicy(policy, input({ request: req('vm.migrate', 'prod', { target: 'pve-prod-2' }), tier: 'prod', state: undefined }));
    expect(d.decision).toBe('denied');
    expect(reason(d, 'no-pve-x')!.nodes).toEqual([{ role: 'source' }]);
  });

  it('knows the destination of every catalog action that takes a target node', () => {
    const withTarget = ACTIONS.filter((a) => {
      const schema = toJSONSchema(a.params, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown> };
      return schema.properties && 'target' in schema.properties;
    });
    expect(withTarget.map((a) => a.name).sort()).toEqual(['ct.clone', 'ct.migrate', 'vm.clone', 'vm.migrate']);
    for (const a of withTarget) {
      const params = a.name.endsWith('.clone') ? { newid: 900, [a.kind === 'lxc' ? 'hostname' : 'name']: 'copy', target: 'pve-x' } : { target: 'pve-x' };
      const d = evaluatePolicy(policy, input({ request: req(a.name, 'prod', params), tier: 'prod', state: state({ kind: a.kind, status: 'stopped' }) }));
      expect(d.decision, a.name).toBe('denied');
    }
  });
});
