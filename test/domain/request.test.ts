import { describe, expect, it } from 'vitest';
import { normalizeRequest, RequestValidationError } from '../../src/domain/request.js';
import { requestHash } from '../../src/domain/hashing.js';

const base = {
  action: 'vm.snapshot.create',
  environment: 'lab',
  target: { node: 'pve-lab', vmid: 100 },
  params: { snapname: 'before-upgrade' },
  reason: 'kernel upgrade',
};

function issues(input: unknown) {
  try {
    normalizeRequest(input);
  } catch (err) {
    expect(err).toBeInstanceOf(RequestValidationError);
    return (err as RequestValidationError).issues;
  }
  throw new Error('expected a validation error');
}

describe('normalizeRequest', () => {
  it('fills defaults from the action schema', () => {
    const r = normalizeRequest(base);
    expect(r.params).toEqual({ snapname: 'before-upgrade', vmstate: false });
    expect(r.target).toEqual({ node: 'pve-lab', vmid: 100 });
  });

  it('treats a request with and without explicit defaults as the same request', () => {
    const explicit = normalizeRequest({ ...base, params: { snapname: 'before-upgrade', vmstate: false } });
    expect(requestHash(explicit)).toBe(requestHash(normalizeRequest(base)));
  });

  it('omits an absent node rather than hashing undefined', () => {
    const r = normalizeRequest({ ...base, target: { vmid: 100 } });
    expect(Object.keys(r.target)).toEqual(['vmid']);
  });

  it('rejects unknown actions with a hint', () => {
    expect(issues({ ...base, action: 'vm.explode' })).toEqual([
      { path: 'action', message: expect.stringContaining("unknown action 'vm.explode'") },
    ]);
  });

  it('rejects unknown fields at every level', () => {
    expect(issues({ ...base, extra: 1 }).map((i) => i.path)).toContain('(body)');
    expect(issues({ ...base, target: { vmid: 100, cluster: 'x' } }).map((i) => i.path)).toContain('target');
    expect(issues({ ...base, params: { snapname: 'ok1', force: true } }).map((i) => i.path)).toContain('params');
  });

  it('validates params against the action', () => {
    expect(issues({ ...base, params: { snapname: '1bad' } })).toEqual([{ path: 'params.snapname', message: expect.any(String) }]);
    expect(issues({ ...base, params: { snapname: 'current' } })[0]!.message).toMatch(/reserved/);
  });

  it('validates vmid, node, environment and reason', () => {
    expect(issues({ ...base, target: { vmid: 99 } })[0]!.path).toBe('target.vmid');
    expect(issues({ ...base, target: { vmid: 100, node: '../etc' } })[0]!.path).toBe('target.node');
    expect(issues({ ...base, environment: 'Prod' })[0]!.path).toBe('environment');
    expect(issues({ ...base, reason: '   ' })[0]!.path).toBe('reason');
  });
});
