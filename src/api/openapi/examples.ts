/**
 * Example bodies for the OpenAPI document, keyed `METHOD path status` (responses) or
 * `METHOD path request` (request bodies). `openApiDocument` puts each where the route has none of
 * its own; test/api/openapi.test.ts checks that every JSON body in the document has an example and
 * that each example validates against its schema.
 */
import type { z } from 'zod';
import type { PlanView } from '../../domain/plan-view.js';
import type { applyResponseSchema, approvalResponseSchema, planResponseSchema } from './schemas.js';

const PLAN_ID = 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G';
const HASH = 'sha256:3b1f0c2d4e5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0';

const planView: PlanView = {
  planId: PLAN_ID,
  requestHash: HASH,
  action: 'vm.delete',
  environment: 'prod',
  target: { node: 'pve-prod', vmid: 201 },
  params: { purge: true },
  reason: 'Decommission db-prod (CHG-42)',
  requester: { principal: 'agent:pi-demo', tokenId: 'demo-agent', channel: 'api' },
  status: 'awaiting_approval',
  risk: 'critical',
  decision: 'requires_approval',
  reasons: [
    { rule: 'catalog.base_risk', message: 'vm.delete is critical in a prod environment' },
    { rule: 'approval.required', message: 'critical risk needs 2 distinct approvers', hint: 'ask two people with the approve scope; the requester cannot approve' },
  ],
  policyVersion: 'sha256:9f2c41d0a7b3e6f5c8d1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7',
  approval: {
    required: 2,
    received: 1,
    requirements: [{ id: 'risk.critical', count: 2, received: 1 }],
    approvers: [{ principal: 'human:alice', tokenId: 'demo-approver-1', roles: ['sre'], channel: 'cli', decision: 'approve', comment: 'CHG-42 approved', at: '2026-03-01T12:03:00.000Z' }],
    refused: [],
  },
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
  appliedBy: { principal: 'agent:pi-demo', tokenId: 'demo-agent', channel: 'api' },
  createdAt: '2026-03-01T12:00:00.000Z',
  expiresAt: '2026-03-01T13:00:00.000Z',
  updatedAt: '2026-03-01T12:03:00.000Z',
  undo: { inverse: null, reason: 'a deleted VM and its disks are gone; restore a backup instead' },
};

const links = { self: `/v1/actions/${PLAN_ID}`, temporalUi: `http://localhost:8233/namespaces/default/workflows/${PLAN_ID}` };

export const planExample: z.infer<typeof planResponseSchema> = { ...planView, links };

const succeeded: z.infer<typeof planResponseSchema> = {
  ...planExample,
  status: 'succeeded',
  approval: {
    ...planView.approval,
    received: 2,
    requirements: [{ id: 'risk.critical', count: 2, received: 2 }],
    approvers: [
      ...planView.approval.approvers,
      { principal: 'human:bob', tokenId: 'demo-approver-2', roles: ['sre', 'dba'], channel: 'api', decision: 'approve', at: '2026-03-01T12:05:00.000Z' },
    ],
  },
  updatedAt: '2026-03-01T12:05:04.000Z',
  result: { outcome: 'applied', upid: 'UPID:pve-prod:0000A1B2:0001C3D4:67C2F0A0:qmdestroy:201:root@pam:', exitstatus: 'OK', finishedAt: '2026-03-01T12:05:04.000Z' },
};

const applyExample: z.infer<typeof applyResponseSchema> = { planId: PLAN_ID, status: 'awaiting_approval', links: { self: `/v1/actions/${PLAN_ID}` } };

const approvalExample: z.infer<typeof approvalResponseSchema> = {
  planId: PLAN_ID,
  status: 'awaiting_approval',
  approval: { required: 2, received: 1, approvers: planView.approval.approvers },
};

const { links: _l, ...summaryBase } = planExample;
const approvalSummary = {
  planId: summaryBase.planId,
  requestHash: summaryBase.requestHash,
  action: summaryBase.action,
  environment: summaryBase.environment,
  target: summaryBase.target,
  reason: summaryBase.reason,
  requester: summaryBase.requester,
  status: summaryBase.status,
  risk: summaryBase.risk,
  decision: summaryBase.decision,
  reasons: summaryBase.reasons,
  applyRequested: summaryBase.applyRequested,
  createdAt: summaryBase.createdAt,
  expiresAt: summaryBase.expiresAt,
  approval: { required: 2, received: 1, requirements: planView.approval.requirements, approvers: planView.approval.approvers },
  links,
};

const snapshotCreate = {
  name: 'vm.snapshot.create',
  kind: 'qemu',
  summary: 'Take a snapshot of a VM',
  description: 'Creates snapshot `snapname`; a no-op when a snapshot of that name already exists.',
  params: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    properties: { snapname: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_-]{1,39}$' }, description: { type: 'string' }, vmstate: { type: 'boolean' } },
    required: ['snapname'],
    additionalProperties: false,
  },
  proxmox: { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/snapshot' },
  baseRisk: { nonprod: 'low', prod: 'medium' },
  destructive: false,
  reversible: true,
};

const auditRecord = (seq: number, event: string, prevHash: string, hash: string, extra: Record<string, unknown> = {}) => ({
  seq,
  time: '2026-03-01T12:00:00.000Z',
  eventId: `${PLAN_ID}/${event}`,
  planId: PLAN_ID,
  event,
  requestHash: HASH,
  prevHash,
  hash,
  ...extra,
});

const evidenceExample = {
  format: 'proxmox-agent.evidence.v1',
  generatedAt: '2026-03-01T12:10:00.000Z',
  planId: PLAN_ID,
  request: { action: 'vm.delete', environment: 'prod', target: { node: 'pve-prod', vmid: 201 }, params: { purge: true }, reason: 'Decommission db-prod (CHG-42)' },
  requestHash: HASH,
  requester: planView.requester,
  decision: { risk: 'critical', decision: 'requires_approval', policyVersion: planView.policyVersion, reasons: planView.reasons },
  approval: succeeded.approval,
  proxmox: { node: 'pve-prod', upid: succeeded.result!.upid, exitstatus: 'OK', taskLog: { lines: ['TASK OK'], total: 1, truncated: false } },
  outcome: { status: 'succeeded', result: succeeded.result },
  audit: {
    records: [
      auditRecord(1, 'plan.created', `sha256:${'0'.repeat(64)}`, `sha256:${'1a'.repeat(32)}`, { actor: 'agent:pi-demo', channel: 'api' }),
      auditRecord(2, 'action.applied', `sha256:${'1a'.repeat(32)}`, `sha256:${'2b'.repeat(32)}`, { upid: succeeded.result!.upid, outcome: 'applied' }),
    ],
    head: { seq: 2, hash: `sha256:${'2b'.repeat(32)}` },
  },
};

const policyEvaluation = {
  requestHash: HASH,
  risk: 'critical',
  decision: 'requires_approval',
  approvalsRequired: 2,
  requirements: [{ id: 'risk.critical', count: 2 }],
  reasons: planView.reasons,
  policyVersion: planView.policyVersion,
  evaluatedAt: '2026-03-01T12:00:00.000Z',
  preflight: planView.preflight,
};

const event = (id: number, status: string) => `id: ${id}\nevent: status\ndata: {"planId":"${PLAN_ID}","status":"${status}",…}\n\n`;

/** `METHOD path status` or `METHOD path request` → example value. */
const freezeExample = { id: 'frz_5c1e0b7d2a9f4e6c8b30', environment: 'prod', reason: 'incident 123', by: 'human:carol', at: '2026-03-01T13:40:00.000Z' };

export const EXAMPLES: Readonly<Record<string, unknown>> = {
  'GET /healthz 200': { status: 'ok', checks: { temporal: { ok: true, detail: 'reachable (default)' }, worker: { ok: true, detail: '1 poller on proxmox-agent' } } },
  'GET /healthz 503': { status: 'unavailable', checks: { temporal: { ok: true, detail: 'reachable (default)' }, worker: { ok: false, detail: 'no worker polls proxmox-agent' } } },
  'POST /v1/actions/plan request': {
    action: 'vm.delete',
    environment: 'prod',
    target: { node: 'pve-prod', vmid: 201 },
    params: { purge: true },
    reason: 'Decommission db-prod (CHG-42)',
  },
  'POST /v1/actions/plan 201': planExample,
  'POST /v1/actions/apply request': { planId: PLAN_ID, requestHash: HASH },
  'POST /v1/actions/apply 202': applyExample,
  'POST /v1/actions/{planId}/approvals request': { decision: 'approve', comment: 'CHG-42 reviewed', requestHash: HASH },
  'POST /v1/actions/{planId}/approvals 202': approvalExample,
  'POST /v1/actions/{planId}/undo request': { reason: 'The load test is over (CHG-43)' },
  'POST /v1/actions/{planId}/undo 201': undoExample(),
  'GET /v1/actions/{planId} 200': succeeded,
  'GET /v1/actions/{planId}/events 200': `retry: 2000\n\n${event(1, 'awaiting_approval')}${event(2, 'applying')}: keep-alive\n\n${event(3, 'succeeded')}`,
  'GET /v1/actions/{planId}/evidence 200': evidenceExample,
  'GET /v1/approvals 200': { items: [approvalSummary] },
  'GET /v1/catalog 200': { actions: [snapshotCreate] },
  'GET /v1/inventory 200': {
    environment: 'prod',
    nodes: [{ node: 'pve-prod', status: 'online' }, { node: 'pve-prod-2', status: 'online' }],
    guests: [
      { node: 'pve-prod', vmid: 200, type: 'qemu', name: 'web-prod', status: 'running', tags: ['web', 'prod'], pool: 'production', template: false },
      { node: 'pve-prod', vmid: 201, type: 'qemu', name: 'db-prod', status: 'stopped', tags: ['db', 'prod'], pool: 'production', template: false },
      { node: 'pve-prod', vmid: 400, type: 'lxc', name: 'cache-prod', status: 'running', tags: ['cache', 'prod'], template: false },
    ],
  },
  'GET /v1/inventory/{environment}/guests/{vmid} 200': {
    environment: 'prod',
    guest: { node: 'pve-prod', vmid: 201, type: 'qemu', name: 'db-prod', status: 'stopped', tags: ['db', 'prod'], pool: 'production', template: false },
    status: { status: 'stopped', qmpstatus: 'stopped', name: 'db-prod', ha: { managed: 0 } },
    config: { name: 'db-prod', cores: 8, memory: '16384', scsi0: 'local-lvm:vm-201-disk-0,iothread=1,size=128G', digest: 'c949c7729ab6770565ef8b91c2b4161f09204bbd' },
  },
  'GET /v1/inventory/{environment}/guests/{vmid}/snapshots 200': {
    environment: 'prod',
    vmid: 201,
    snapshots: [{ name: 'nightly', description: 'nightly snapshot', snaptime: 1795600000, vmstate: false }],
  },
  'GET /v1/inventory/{environment}/tasks/{upid} 200': {
    environment: 'lab',
    upid: 'UPID:pve-lab:000A1B2C:0012ABCD:6745F0A1:qmsnapshot:100:proxmox-agent@pve!agent:',
    node: 'pve-lab',
    type: 'qmsnapshot',
    id: '100',
    user: 'proxmox-agent@pve!agent',
    status: 'stopped',
    exitstatus: 'OK',
    starttime: 1732637857,
  },
  'GET /v1/inventory/{environment}/tasks/{upid}/log 200': {
    environment: 'lab',
    upid: 'UPID:pve-lab:000A1B2C:0012ABCD:6745F0A1:qmsnapshot:100:proxmox-agent@pve!agent:',
    total: 2,
    lines: [{ n: 1, t: "snapshot 'before-upgrade' created" }, { n: 2, t: 'TASK OK' }],
  },
  'POST /v1/policy/evaluate request': {
    action: 'vm.delete',
    environment: 'prod',
    target: { vmid: 201 },
    params: { purge: true },
    reason: 'Decommission db-prod (CHG-42)',
    at: '2026-03-02T09:00:00+01:00',
  },
  'POST /v1/policy/evaluate 200': policyEvaluation,
  'GET /v1/policy/matrix 200': {
    environments: [
      {
        environment: 'prod',
        tier: 'prod',
        actions: [
          { action: 'vm.snapshot.create', risk: 'medium', decision: 'allowed', approvalsRequired: 0, requirements: [] },
          {
            action: 'vm.delete',
            risk: 'critical',
            decision: 'requires_approval',
            approvalsRequired: 2,
            requirements: [{ id: 'risk.critical', count: 2 }, { id: 'policy.prod-delete-step-up', count: 1, channels: ['api', 'cli'] }],
          },
        ],
      },
    ],
    approvalsByRisk: { low: 0, medium: 0, high: 1, critical: 2 },
    planTtlSeconds: 3600,
    rules: [{ id: 'prod-delete-step-up', description: 'Deleting in production needs at least one approval given through the API or CLI, not chat', match: { environments: ['prod'], actions: ['*.delete'] } }],
  },
  'GET /v1/budgets 200': {
    at: '2026-03-02T09:20:00.000Z',
    windowSeconds: 3600,
    budgets: [
      { principal: 'agent:pi-demo', budget: 'destructive', limit: 3, used: 3, freesAt: '2026-03-02T09:47:12.000Z' },
      { principal: 'agent:pi-demo', budget: 'guests', limit: 10, used: 4 },
      { principal: 'agent:pi-demo', budget: 'concurrent', limit: 2, used: 1, heldBy: [PLAN_ID] },
    ],
  },
  'GET /v1/doctor 200': {
    environments: [
      {
        environment: 'prod',
        ok: false,
        pve: { version: '9.1.2', release: '9.1', major: 9 },
        privsep: 'unknown',
        checks: [
          { id: 'tls', ok: true, severity: 'info', detail: 'certificate SHA-256 3A:…:9F, pinned' },
          { id: 'reach', ok: true, severity: 'info', detail: 'Proxmox answered as proxmox-agent@pve!agent' },
          { id: 'version', ok: true, severity: 'info', detail: 'Proxmox VE 9.1.2 (privilege names of PVE 9)' },
          {
            id: 'privileges:/vms',
            ok: false,
            severity: 'blocker',
            detail: 'proxmox-agent@pve!agent on /vms: VM.Snapshot missing (needed by vm.snapshot.create, vm.snapshot.delete)',
            fix: [
              "pveum role add ProxmoxAgent-vms --privs 'VM.Audit,VM.PowerMgmt,VM.Snapshot'",
              "pveum acl modify /vms --users 'proxmox-agent@pve' --roles ProxmoxAgent-vms",
              "pveum acl modify /vms --tokens 'proxmox-agent@pve!agent' --roles ProxmoxAgent-vms",
            ],
          },
        ],
      },
    ],
    blockers: 1,
  },
  'POST /v1/channels/webhook/approvals request': {
    planId: PLAN_ID,
    requestHash: HASH,
    decision: 'approve',
    comment: 'CHG-42 ok',
    approver: 'bob@example.com',
    nonce: '3f9c2b7e-6a41-4d0e-9d5c-1b2a3c4d5e6f',
  },
  'POST /v1/channels/webhook/approvals 202': approvalExample,
  'POST /v1/freezes request': { environment: 'prod', reason: 'incident 123' },
  'POST /v1/freezes 201': { ...freezeExample, stillSending: [] },
  'GET /v1/freezes 200': { freezes: [freezeExample] },
  'DELETE /v1/freezes/{id} 200': { ...freezeExample, liftedBy: 'human:carol', liftedAt: '2026-03-01T14:05:00.000Z' },
};

/** An undo plan: a config update set back, held to the digest the original's change left. */
function undoExample(): z.infer<typeof planResponseSchema> {
  const undoId = 'plan_7TQ2M9X4B1C8D5E6F0G3H2J1K4';
  const { appliedBy: _notApplied, ...planned } = planExample;
  return {
    ...planned,
    planId: undoId,
    action: 'vm.config.update',
    target: { node: 'pve-prod', vmid: 200 },
    params: { cores: 4 },
    reason: 'The load test is over (CHG-43)',
    status: 'awaiting_approval',
    risk: 'high',
    reasons: [{ rule: 'catalog.base_risk', message: 'vm.config.update is high risk in prod environments' }],
    approval: { required: 1, received: 0, requirements: [{ id: 'risk.high', count: 1, received: 0 }], approvers: [], refused: [] },
    applyRequested: false,
    undoes: PLAN_ID,
    undo: { inverse: { action: 'vm.config.update', target: { vmid: 200 }, params: { cores: 8 } }, reason: 'sets cores back to the values the plan read' },
    links: { self: `/v1/actions/${undoId}` },
  };
}
