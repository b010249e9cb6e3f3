/**
 * The run's decision points under racing messages and a failing audit store, on the real dev server
 * with the real workflow code. The activities are stand-ins so that the apply-time re-check can be
 * held open at will and the audit store made to fail; what they record is what the test judges.
 */
import { Client, Connection, WithStartWorkflowOperation, WorkflowUpdateStage } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/activity';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { AssessInput, AssessResult, ExecuteInput, PolicyResult } from '../../src/activities/types.js';
import type { Activities } from '../../src/activities/index.js';
import { WORKFLOWS_PATH } from '../../src/worker/worker.js';
import { applyUpdate, approvalSignal, planUpdate, stateQuery, type ApprovalArgs } from '../../src/workflows/messages.js';
import { until } from './support/until.js';
import type { AuditEventInput } from '../../src/audit/events.js';
import { environmentTaskQueue } from '../../src/temporal/task-queues.js';

const taskQueue = `run-decisions-${Math.random().toString(36).slice(2)}`;
let connection: Connection;
let client: Client;
let workers: Worker[];
let running: Promise<void>[];

/** What the stand-in activities saw, per test. */
let recorded: AuditEventInput[];
/** Appends as the real audit store does: a record whose eventId is already there is not written again. */
const append = (...events: AuditEventInput[]) => {
  for (const e of events) if (!recorded.some((r) => r.eventId === e.eventId)) recorded.push(e);
};
let executed: ExecuteInput[];
let assessCalls: number;
/** Holds the apply-time assess open until released. */
let gate: { wait: Promise<void>; release: () => void } | undefined;
/** Holds the execute activity open until released. */
let executeGate: { wait: Promise<void>; release: () => void } | undefined;
/** Makes the audit store refuse this many writes. */
let auditFailures: number;

const policy: PolicyResult = {
  risk: 'high',
  decision: 'requires_approval',
  approvalsRequired: 1,
  requirements: [{ id: 'risk.high', count: 1 }],
  reasons: [{ rule: 'approval.required', message: 'one approval for the test' }],
  policyVersion: 'sha256:test',
  evaluatedAt: new Date(0).toISOString(),
  planTtlSeconds: 600,
} as PolicyResult;

const failingAudit = () => {
  if (auditFailures > 0) {
    auditFailures--;
    throw ApplicationFailure.retryable('the audit store is unavailable', 'TestAuditDown');
  }
};

beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection, namespace: inject('temporalNamespace') });
  const activities = {
    assess: async ({ before = [], record }: AssessInput): Promise<AssessResult> => {
      assessCalls++;
      failingAudit();
      append(...before);
      append({ eventId: `${record.planId}/${record.seq}/assessed`, planId: record.planId, event: record.stage === 'plan' ? 'plan.created' : 'apply.checked', requestHash: record.requestHash });
      if (assessCalls > 1 && gate) await gate.wait;
      return {
        preflight: { state: undefined, fingerprint: { exists: true, status: 'stopped' }, assessment: { kind: 'proceed' }, checkedAt: new Date().toISOString() },
        policy,
        notifies: false,
      } as unknown as AssessResult;
    },
    recordAudits: async (records: AuditEventInput[]) => {
      failingAudit();
      append(...records);
      return [];
    },
    recordOutcome: async ({ proposed }: { proposed: unknown }) => proposed,
    // The run's terminal decision, as the real activity records it: once per run, the first one wins.
    recordFinal: async ({ before, record, final }: { before: AuditEventInput[]; record: AuditEventInput; final: unknown }) => {
      failingAudit();
      append(...before);
      const first = recorded.find((r) => r.eventId === record.eventId);
      if (first) return first.detail?.final;
      append({ ...record, detail: { ...record.detail, final } });
      return final;
    },
    notifyApprovers: async () => ({ delivered: 0 }),
  } as unknown as Partial<Activities>;
  const execute = {
    executeAction: async (input: ExecuteInput) => {
      failingAudit();
      append(...(input.audit?.before ?? []));
      executed.push(input);
      if (executeGate) await executeGate.wait;
      return { outcome: 'applied', upid: 'UPID:pve-lab:00000001:000F4240:6B000000:qmstart:101:test@pve!t:' };
    },
  } as unknown as Partial<Activities>;
  const native = await NativeConnection.connect({ address: inject('temporalAddress') });
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never });
  workers = [
    await Worker.create({ connection: native, namespace: inject('temporalNamespace'), taskQueue, workflowBundle, activities }),
    await Worker.create({ connection: native, namespace: inject('temporalNamespace'), taskQueue: environmentTaskQueue(taskQueue, 'lab'), activities: execute }),
  ];
  running = workers.map((w) => w.run());
}, 120_000);

afterAll(async () => {
  for (const w of workers ?? []) w.shutdown();
  await Promise.all(running ?? []);
  await connection?.close();
});

beforeEach(() => {
  recorded = [];
  executed = [];
  assessCalls = 0;
  gate = undefined;
  executeGate = undefined;
  auditFailures = 0;
});

function gated(): { wait: Promise<void>; release: () => void } {
  let release!: () => void;
  const wait = new Promise<void>((r) => (release = r));
  return { wait, release: () => release() };
}

let n = 0;
async function startPlan() {
  const planId = `plan_RUNDECISIONS${String(++n).padStart(14, '0')}`;
  const requestHash = `sha256:${'b'.repeat(64)}`;
  // As the API plans: Update-with-Start, the plan update in the run's first task.
  const operation = new WithStartWorkflowOperation('actionWorkflow', {
    taskQueue,
    workflowId: planId,
    workflowIdConflictPolicy: 'FAIL',
    // A short workflow task timeout: a local activity held open lets messages in every ~1.6 s
    // (the SDK completes the task at 80% of it), as it does every ~8 s with the default 10 s.
    workflowTaskTimeout: '2s',
    args: [{ planId, requestHash, request: { action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'run decisions test' }, requester: { principal: 'agent:test', tokenId: 'test', channel: 'api' } }],
  });
  const view = await client.workflow.executeUpdateWithStart(planUpdate, { args: [{ requestHash }], startWorkflowOperation: operation });
  const handle = await operation.workflowHandle();
  expect(view.status).toBe('awaiting_approval');
  const approval = (principal: string, decision: 'approve' | 'reject'): ApprovalArgs => ({ principal, tokenId: principal, roles: [], channel: 'api', decision, requestHash });
  const apply = () => handle.startUpdate(applyUpdate, { args: [{ requestHash, actor: { principal: 'agent:test', tokenId: 'test', channel: 'api' }, actorEnvironments: ['*'] }], waitForStage: WorkflowUpdateStage.ACCEPTED });
  return { planId, handle, approval, apply };
}

describe('a human "no" wins until the request is sent', () => {
  it('a rejection that arrives while the apply-time re-check runs stops the run: nothing is executed', async () => {
    gate = gated();
    const { handle, approval, apply } = await startPlan();
    await apply();
    await handle.signal(approvalSignal, approval('human:alice', 'approve'));
    // The quorum is met and the re-check is held open; the run still answers (its task heartbeats).
    await until('the re-check to start', () => assessCalls >= 2);
    await handle.signal(approvalSignal, approval('human:bob', 'reject'));
    await until('the rejection to be recorded', async () => (await handle.query(stateQuery)).status === 'rejected');
    gate.release();
    const final = await handle.result();
    // Before: the rejection was recorded (the approver was told "rejected") and the action ran anyway.
    expect(final.status).toBe('rejected');
    expect(final.approval.rejectedBy?.principal).toBe('human:bob');
    expect(executed).toEqual([]);
    expect(recorded.map((r) => r.event)).toEqual(['plan.created', 'apply.requested', 'approval.granted', 'apply.checked', 'approval.rejected', 'plan.rejected']);
  }, 60_000);

  it('a rejection after the request was sent is refused and recorded as such; the outcome stands', async () => {
    executeGate = gated();
    const { handle, approval, apply } = await startPlan();
    await apply();
    await handle.signal(approvalSignal, approval('human:alice', 'approve'));
    await until('the execute activity to run', () => executed.length === 1);
    await handle.signal(approvalSignal, approval('human:bob', 'reject'));
    await until('the late rejection to be refused', async () => (await handle.query(stateQuery)).approval.refused.length === 1);
    executeGate.release();
    const final = await handle.result();
    expect(final.status).toBe('succeeded');
    expect(final.approval.refused).toMatchObject([{ principal: 'human:bob', reason: 'not_open' }]);
    expect(final.approval.rejectedBy).toBeUndefined();
    expect(executed).toHaveLength(1);
    expect(recorded.map((r) => r.event)).toContain('approval.refused');
  }, 60_000);
});

describe('nothing runs without its authorisation on the chain', () => {
  it('the audit store failing at the apply-time check holds the run; once it is back every record is written before apply.started', async () => {
    const { handle, approval, apply } = await startPlan();
    await apply();
    // The re-check's write of the pending records fails three times (one local activity's attempts).
    auditFailures = 3;
    await handle.signal(approvalSignal, approval('human:alice', 'approve'));
    const final = await handle.result();
    expect(final.status).toBe('succeeded');
    expect(executed).toHaveLength(1);
    const events = recorded.map((r) => r.event);
    // Before: the run executed with apply.requested and approval.granted never written.
    expect(events.filter((e) => e !== 'apply.checked').slice(0, 4)).toEqual(['plan.created', 'apply.requested', 'approval.granted', 'apply.started']);
    expect(new Set(recorded.map((r) => r.eventId)).size).toBe(recorded.length);
  }, 90_000);
});
