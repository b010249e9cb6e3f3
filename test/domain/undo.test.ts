import { describe, expect, it } from 'vitest';
import { ACTIONS, findAction } from '../../src/domain/actions/catalog.js';
import type { GuestState } from '../../src/domain/guest-state.js';
import { idempotentPlanId, isPlanId, undoPlanId } from '../../src/domain/plan-id.js';
import type { PlanView } from '../../src/domain/plan-view.js';
import { normalizeRequest } from '../../src/domain/request.js';
import { holdToOriginal, inverseOf, planUndo } from '../../src/domain/undo.js';
import { MAXIMAL_PARAMS } from './action-samples.js';

function state(over: Partial<GuestState> = {}): GuestState {
  return { exists: true, kind: 'qemu', node: 'pve-lab', vmid: 100, status: 'running', tags: [], haManaged: false, template: false, protection: false, snapshots: [], ...over };
}

const inverse = (name: string, params: Record<string, unknown>, s: GuestState = state()) => {
  const action = findAction(name)!;
  return action.inverse(action.params.parse(params) as never, s);
};

function view(over: Partial<PlanView> = {}): PlanView {
  const s = state({ config: { cores: '2' }, digest: 'before' });
  return {
    planId: 'plan_0000000000000000000000000A',
    requestHash: 'sha256:x',
    action: 'vm.config.update',
    environment: 'lab',
    target: { node: 'pve-lab', vmid: 100 },
    params: { cores: 4 },
    reason: 'more cores',
    requester: { principal: 'agent:pi', tokenId: 't', channel: 'api' },
    status: 'succeeded',
    risk: 'medium',
    decision: 'allowed',
    reasons: [],
    policyVersion: 'v',
    approval: { required: 0, received: 0, requirements: [], approvers: [], refused: [] },
    preflight: { state: s, fingerprint: { exists: true, status: 'running', digest: 'before' }, assessment: { kind: 'proceed' }, checkedAt: 'now' },
    applyRequested: true,
    createdAt: 'now',
    expiresAt: 'later',
    updatedAt: 'now',
    result: { outcome: 'applied', digestAfter: 'after', finishedAt: 'now' },
    ...over,
  };
}

describe('the catalog says, for every action, what takes it back', () => {
  it('gives each action either an inverse the catalog accepts as a request of the same kind, or null with a reason', () => {
    for (const action of ACTIONS) {
      const s = state({ kind: action.kind, vmid: action.kind === 'qemu' ? 100 : 300, config: { cores: '2', memory: '2048', sockets: '1', balloon: '0', name: 'web', hostname: 'web', swap: '512', tags: 'a' } });
      const { inverse: inv, reason } = inverse(action.name, MAXIMAL_PARAMS[action.name]!, s);
      expect(reason, action.name).not.toBe('');
      if (inv === null) continue;
      const undo = findAction(inv.action);
      expect(undo?.kind, action.name).toBe(action.kind);
      // The inverse is a request the API would accept as it stands.
      expect(() => normalizeRequest({ action: inv.action, environment: 'lab', target: inv.target, params: inv.params, reason: 'undo' }), action.name).not.toThrow();
    }
  });

  it('pairs start and stop, snapshot create and delete, a migrate with the way back, a clone with its deletion', () => {
    expect(inverse('vm.start', {}).inverse).toEqual({ action: 'vm.stop', target: { vmid: 100 }, params: {} });
    expect(inverse('ct.stop', {}, state({ kind: 'lxc', vmid: 300 })).inverse).toEqual({ action: 'ct.start', target: { vmid: 300 }, params: {} });
    expect(inverse('vm.shutdown', { forceStop: true }).inverse?.action).toBe('vm.start');
    expect(inverse('vm.snapshot.create', { snapname: 'pre' }).inverse).toEqual({ action: 'vm.snapshot.delete', target: { vmid: 100 }, params: { snapname: 'pre' } });
    expect(inverse('vm.migrate', { target: 'pve-2', online: true }).inverse).toEqual({
      action: 'vm.migrate',
      target: { vmid: 100 },
      params: { target: 'pve-lab', online: true, withLocalDisks: false },
    });
    expect(inverse('vm.clone', { newid: 150, name: 'copy' }).inverse).toEqual({ action: 'vm.delete', target: { vmid: 150 }, params: {} });
    expect(inverse('vm.suspend', {}).inverse?.action).toBe('vm.resume');
  });

  it('says explicitly when there is no inverse, and why', () => {
    expect(inverse('vm.disk.resize', { disk: 'scsi0', size: '64G' })).toEqual({ inverse: null, reason: expect.stringContaining('cannot shrink') });
    expect(inverse('vm.delete', {}).inverse).toBeNull();
    expect(inverse('vm.snapshot.rollback', { snapname: 'pre' }).reason).toContain('safeguard');
    expect(inverse('vm.snapshot.delete', { snapname: 'pre' }).inverse).toBeNull();
    expect(inverse('vm.reboot', {}).inverse).toBeNull();
    expect(inverse('vm.reset', {}).inverse).toBeNull();
    expect(inverse('ct.backup', { storage: 'local' }, state({ kind: 'lxc' })).inverse).toBeNull();
  });

  it('sets a config update back to the values the plan read, defaults included', () => {
    const s = state({ config: { cores: '2', memory: 'current=2048', tags: 'a;b' } });
    expect(inverse('vm.config.update', { cores: 4, memory: 4096, description: 'x', tags: ['c'], onboot: true, sockets: 2 }, s).inverse).toEqual({
      action: 'vm.config.update',
      target: { vmid: 100 },
      params: { cores: 2, memory: 2048, description: '', tags: ['a', 'b'], onboot: false, sockets: 1 },
    });
    // A key with no value and no default cannot be set back: config.update cannot unset it.
    expect(inverse('vm.config.update', { name: 'web-2' }, s)).toEqual({ inverse: null, reason: expect.stringContaining('name had no value') });
    expect(inverse('vm.config.update', { balloon: 512 }, s).inverse).toBeNull();
  });
});

describe('planUndo: the undo request, built from what the plan recorded', () => {
  it('plans the inverse, held to the digest the change left', () => {
    expect(planUndo(view(), 'too many cores')).toEqual({
      kind: 'undo',
      request: { action: 'vm.config.update', environment: 'lab', target: { vmid: 100 }, params: { cores: 2 }, reason: 'too many cores' },
      undoes: { planId: 'plan_0000000000000000000000000A', digest: 'after' },
    });
  });

  it('holds no digest for an inverse that takes none', () => {
    const d = planUndo(view({ action: 'vm.start', params: {}, result: { outcome: 'applied', finishedAt: 'now' } }), 'r');
    expect(d).toMatchObject({ kind: 'undo', request: { action: 'vm.stop' }, undoes: { planId: 'plan_0000000000000000000000000A' } });
    expect(d.kind === 'undo' && 'digest' in d.undoes).toBe(false);
  });

  it('refuses what did not succeed, changed nothing, has no inverse, or recorded no digest to hold to', () => {
    const why = (over: Partial<PlanView>) => {
      const d = planUndo(view(over), 'r');
      return d.kind === 'refused' ? d.message : 'planned';
    };
    expect(why({ status: 'failed' })).toContain('it is failed');
    expect(why({ status: 'awaiting_approval', result: undefined })).toContain('it is awaiting_approval');
    expect(why({ result: { outcome: 'noop', message: 'already has cores', finishedAt: 'now' } })).toContain('changed nothing (already has cores)');
    expect(why({ action: 'vm.disk.resize', params: { disk: 'scsi0', size: '64G' } })).toContain('cannot shrink');
    expect(why({ result: { outcome: 'applied', finishedAt: 'now' } })).toContain('no config digest');
    expect(why({ preflight: { assessment: { kind: 'unavailable', reason: 'down' }, checkedAt: 'now' } })).toContain('could not read its target');
  });

  it('carries the inverse on every plan view, null included', () => {
    expect(inverseOf(view()).inverse?.params).toEqual({ cores: 2 });
    expect(inverseOf(view({ action: 'vm.delete', params: {} })).inverse).toBeNull();
  });
});

describe('holdToOriginal: an undo runs only on the config its original left', () => {
  const preflight = (digest: string) => ({ ...view().preflight, fingerprint: { exists: true, status: 'running', digest } });

  it('takes the digest the change left as the plan\'s own', () => {
    const held = holdToOriginal(preflight('after'), { planId: 'p', digest: 'after' });
    expect(held.stale).toBeUndefined();
    expect(held.preflight.fingerprint?.digest).toBe('after');
  });

  it('says the config changed since, with the rule undo.stale, and still holds the plan to the original digest', () => {
    const held = holdToOriginal(preflight('later'), { planId: 'p', digest: 'after' });
    expect(held.stale).toMatchObject({ rule: 'undo.stale', message: expect.stringContaining('changed since plan p'), hint: expect.any(String) });
    expect(held.preflight.fingerprint?.digest).toBe('after');
  });

  it('leaves an undo without a digest as read', () => {
    const p = preflight('x');
    expect(holdToOriginal(p, { planId: 'p' })).toEqual({ preflight: p });
  });
});

describe('undoPlanId', () => {
  it('is a plan id fixed by the original, unlike any other plan id', () => {
    const original = 'plan_0000000000000000000000000A';
    expect(isPlanId(undoPlanId(original))).toBe(true);
    expect(undoPlanId(original)).toBe(undoPlanId(original));
    expect(undoPlanId(original)).not.toBe(original);
    expect(undoPlanId(original)).not.toBe(undoPlanId('plan_0000000000000000000000000B'));
    expect(undoPlanId(original)).not.toBe(idempotentPlanId('undo', original));
  });
});
