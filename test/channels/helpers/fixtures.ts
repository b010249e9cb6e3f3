import type { PlanView } from '../../../src/domain/plan-view.js';

/** A prod delete waiting for two approvers, as the workflow reports it. */
export function pendingPlan(over: Partial<PlanView> = {}): PlanView {
  return {
    planId: 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G',
    requestHash: `sha256:${'ab'.repeat(32)}`,
    action: 'vm.delete',
    environment: 'prod',
    target: { node: 'pve-prod', vmid: 201 },
    params: { purge: true },
    reason: 'decommission db-prod <CHG-42> & friends',
    requester: { principal: 'agent:pi-demo', tokenId: 'demo-agent', channel: 'api' },
    status: 'awaiting_approval',
    risk: 'critical',
    decision: 'requires_approval',
    reasons: [
      { rule: 'catalog.base_risk', message: 'vm.delete is critical in prod' },
      { rule: 'approval.required', message: '2 distinct approvers' },
    ],
    policyVersion: 'sha256:00',
    approval: { required: 2, received: 0, requirements: [{ id: 'risk.critical', count: 2, received: 0 }], approvers: [], refused: [] },
    preflight: {
      state: {
        exists: true,
        kind: 'qemu',
        node: 'pve-prod',
        vmid: 201,
        name: 'db-prod',
        status: 'stopped',
        tags: ['db'],
        haManaged: false,
        template: false,
        protection: false,
        snapshots: [],
      },
      fingerprint: { exists: true, status: 'stopped' },
      assessment: { kind: 'proceed' },
      checkedAt: '2026-03-01T12:00:00.000Z',
    },
    applyRequested: true,
    createdAt: '2026-03-01T12:00:00.000Z',
    expiresAt: '2026-03-01T13:00:00.000Z',
    updatedAt: '2026-03-01T12:00:00.000Z',
    ...over,
  } as PlanView;
}

/** The form body Slack posts for a click on one of our buttons. */
export function slackClickBody(opts: { userId: string; actionId: string; value: string; responseUrl: string }): string {
  const payload = {
    type: 'block_actions',
    user: { id: opts.userId, username: 'someone', team_id: 'T1' },
    api_app_id: 'A1',
    team: { id: 'T1', domain: 'example' },
    container: { type: 'message', message_ts: '1.2', channel_id: 'C1' },
    trigger_id: '1.2.3',
    response_url: opts.responseUrl,
    actions: [{ type: 'button', action_id: opts.actionId, block_id: 'b', value: opts.value, action_ts: '1.3' }],
  };
  return `payload=${encodeURIComponent(JSON.stringify(payload))}`;
}
