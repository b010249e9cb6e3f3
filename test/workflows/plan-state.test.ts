import { describe, expect, it } from 'vitest';
import { applyRefusal, mergeRequirements, quorumMet, recordApproval, setRequirements, staleFields } from '../../src/workflows/plan-state.js';
import type { ApprovalArgs, PlanView } from '../../src/workflows/messages.js';

const HASH = `sha256:${'a'.repeat(64)}`;
const view = (over: Partial<PlanView> = {}): PlanView => ({
  planId: 'plan_X', requestHash: HASH, action: 'vm.delete', environment: 'prod', target: { node: 'pve-prod', vmid: 201 },
  params: {}, reason: 'r', requester: { principal: 'agent:pi', tokenId: 'agent', channel: 'api' }, status: 'awaiting_approval',
  risk: 'critical', decision: 'requires_approval', reasons: [], policyVersion: 'v', approval: { required: 2, received: 0, requirements: [{ id: 'risk.critical', count: 2, received: 0 }], approvers: [], refused: [] },
  preflight: { assessment: { kind: 'proceed' }, checkedAt: 't' }, applyRequested: false, createdAt: 't', expiresAt: 't', updatedAt: 't', ...over,
});
const approve = (principal: string, over: Partial<ApprovalArgs> = {}): ApprovalArgs => ({ principal, tokenId: principal, channel: 'api', decision: 'approve', requestHash: HASH, ...over });

describe('recordApproval', () => {
  it('counts distinct approvers until quorum', () => {
    const v = view();
    expect(recordApproval(v, approve('human:alice'), 'now')).toEqual({ kind: 'counted' });
    expect(v.status).toBe('awaiting_approval');
    expect(recordApproval(v, approve('human:bob'), 'now')).toEqual({ kind: 'counted' });
    expect(v.status).toBe('approved');
    expect(v.approval.received).toBe(2);
  });

  it('refuses self-approval, duplicates (across channels) and a different hash', () => {
    const v = view();
    expect(recordApproval(v, approve('agent:pi'), 'now')).toEqual({ kind: 'refused', reason: 'self_approval' });
    recordApproval(v, approve('human:alice'), 'now');
    expect(recordApproval(v, approve('human:alice', { channel: 'cli', tokenId: 'other' }), 'now')).toEqual({ kind: 'refused', reason: 'duplicate' });
    expect(recordApproval(v, approve('human:bob', { requestHash: `sha256:${'b'.repeat(64)}` }), 'now')).toEqual({ kind: 'refused', reason: 'hash_mismatch' });
    expect(v.approval.received).toBe(1);
    expect(v.approval.refused.map((r) => r.reason)).toEqual(['self_approval', 'duplicate', 'hash_mismatch']);
  });

  it('a rejection ends the plan', () => {
    const v = view();
    expect(recordApproval(v, approve('human:bob', { decision: 'reject', comment: 'no' }), 'now')).toEqual({ kind: 'rejected' });
    expect(v.status).toBe('rejected');
    expect(v.approval.rejectedBy?.comment).toBe('no');
    expect(recordApproval(v, approve('human:alice'), 'now')).toEqual({ kind: 'refused', reason: 'not_open' });
  });
});

describe('applyRefusal', () => {
  const args = { requestHash: HASH, actor: { principal: 'agent:pi', tokenId: 'agent', channel: 'api' as const }, actorEnvironments: ['*'] };
  it('accepts an apply before approval', () => expect(applyRefusal(view(), args)).toBeUndefined());
  it('refuses a wrong hash, each terminal state, and a foreign environment', () => {
    expect(applyRefusal(view(), { ...args, requestHash: `sha256:${'0'.repeat(64)}` })?.type).toBe('RequestHashMismatch');
    expect(applyRefusal(view({ status: 'denied' }), args)?.type).toBe('PlanDenied');
    expect(applyRefusal(view({ status: 'rejected' }), args)?.type).toBe('PlanRejected');
    expect(applyRefusal(view({ status: 'expired' }), args)?.type).toBe('PlanExpired');
    expect(applyRefusal(view({ status: 'succeeded' }), args)?.type).toBe('PlanFinished');
    expect(applyRefusal(view(), { ...args, actorEnvironments: ['lab'] })?.type).toBe('Forbidden');
  });
  it('answers a repeated apply of an applied plan instead of refusing it', () => {
    expect(applyRefusal(view({ status: 'succeeded', applyRequested: true }), args)).toBeUndefined();
  });
});

describe('staleFields', () => {
  it('names what changed between plan and apply', () => {
    expect(staleFields({ exists: true, status: 'stopped' }, { exists: true, status: 'stopped' })).toEqual([]);
    expect(staleFields({ exists: true, status: 'stopped', digest: 'a' }, { exists: true, status: 'running', digest: 'b' })).toEqual(['status', 'digest']);
    expect(staleFields({ exists: true }, { exists: false })).toEqual(['exists']);
    expect(staleFields({ exists: true }, undefined)).toEqual(['state']);
  });
});

describe('approval requirements (roles and step-up channels)', () => {
  const gated = () => {
    const v = view();
    setRequirements(v, [
      { id: 'risk.critical', count: 2 },
      { id: 'policy.dba', count: 1, roles: ['dba'] },
      { id: 'policy.step-up', count: 1, channels: ['api', 'cli'] },
    ]);
    return v;
  };

  it('opens only when every requirement is met', () => {
    const v = gated();
    expect(v.approval.required).toBe(2);
    recordApproval(v, approve('human:alice', { channel: 'chat' }), 'now');
    recordApproval(v, approve('human:bob', { channel: 'chat' }), 'now');
    // Two approvers, but no DBA and nobody outside chat yet.
    expect(v.status).toBe('awaiting_approval');
    expect(v.approval.requirements.map((r) => r.received)).toEqual([2, 0, 0]);
    recordApproval(v, approve('human:dora', { roles: ['dba'], channel: 'cli' }), 'now');
    expect(v.approval.requirements.map((r) => r.received)).toEqual([3, 1, 1]);
    expect(quorumMet(v)).toBe(true);
    expect(v.status).toBe('approved');
  });

  it('refuses an approval that meets no requirement', () => {
    const v = view();
    setRequirements(v, [{ id: 'policy.dba', count: 1, roles: ['dba'] }]);
    expect(recordApproval(v, approve('human:alice', { roles: ['sre'] }), 'now')).toEqual({ kind: 'refused', reason: 'not_eligible' });
    expect(v.approval.received).toBe(0);
  });

  it('re-evaluation merges requirements, keeping the stricter count, and recounts', () => {
    const v = view();
    setRequirements(v, [{ id: 'risk.high', count: 1 }]);
    recordApproval(v, approve('human:alice'), 'now');
    expect(quorumMet(v)).toBe(true);
    setRequirements(v, mergeRequirements(v.approval.requirements, [{ id: 'risk.critical', count: 2 }, { id: 'risk.high', count: 1 }]));
    expect(v.approval.requirements).toEqual([
      { id: 'risk.high', count: 1, received: 1 },
      { id: 'risk.critical', count: 2, received: 1 },
    ]);
    expect(quorumMet(v)).toBe(false);
  });
});
