/**
 * When the compact path's `assess` local activity cannot complete (every attempt failed: a hung
 * Proxmox outlasting its 20 s, a store that refused the record), the run takes the separate steps
 * instead of failing: the target is read (here: unreadable), policy evaluated, and the plan's record
 * written under the event id assess would have used. Real dev server and workflow code; the
 * activities are stand-ins so that assess can be made to fail.
 */
import { Client, Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/activity';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AuditEventInput, PolicyResult } from '../../src/activities/types.js';
import type { Activities } from '../../src/activities/index.js';
import { WORKFLOWS_PATH } from '../../src/worker/worker.js';
import { auditEventId, planUpdate } from '../../src/workflows/messages.js';

const taskQueue = `assess-fallback-${Math.random().toString(36).slice(2)}`;
let connection: Connection;
let client: Client;
let worker: Worker;
let running: Promise<void>;
const recorded: AuditEventInput[] = [];
const calls: string[] = [];

const policy: PolicyResult = {
  risk: 'low',
  decision: 'allowed',
  approvalsRequired: 0,
  requirements: [],
  reasons: [{ rule: 'test.allow', message: 'allowed for the test' }],
  policyVersion: 'sha256:test',
  evaluatedAt: new Date(0).toISOString(),
  planTtlSeconds: 60,
} as PolicyResult;

beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection, namespace: inject('temporalNamespace') });
  const activities = {
    assess: async () => {
      calls.push('assess');
      throw ApplicationFailure.nonRetryable('the audit store is unavailable', 'TestUnavailable');
    },
    preflight: async () => (calls.push('preflight'), { assessment: { kind: 'unavailable', reason: 'Proxmox did not answer' }, checkedAt: new Date().toISOString() }),
    evaluatePolicy: async () => (calls.push('evaluatePolicy'), policy),
    recordAudit: async (record: AuditEventInput) => void (calls.push(`recordAudit ${record.event}`), recorded.push(record)),
    recordAudits: async (records: AuditEventInput[]) => void (calls.push('recordAudits'), recorded.push(...records)),
  } as unknown as Partial<Activities>;
  worker = await Worker.create({
    connection: await NativeConnection.connect({ address: inject('temporalAddress') }),
    namespace: inject('temporalNamespace'),
    taskQueue,
    workflowBundle: await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never }),
    activities,
  });
  running = worker.run();
}, 120_000);

afterAll(async () => {
  worker?.shutdown();
  await running;
  await connection?.close();
});

describe('compact runs when assess fails', () => {
  it('plan on with the separate steps: unreadable target, policy, and the plan record under its event id', async () => {
    const planId = `plan_${'0'.repeat(20)}${Math.random().toString(36).slice(2, 8).toUpperCase().replace(/[ILOU]/g, 'X')}`;
    const requestHash = `sha256:${'a'.repeat(64)}`;
    const handle = await client.workflow.start('actionWorkflow', {
      taskQueue,
      workflowId: planId,
      args: [{ planId, requestHash, request: { action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'fallback test' }, requester: { principal: 'agent:test', tokenId: 'test', channel: 'api' } }],
    });
    const view = await handle.executeUpdate(planUpdate, { args: [{ requestHash }] });
    expect(view.status).toBe('planned');
    expect(view.preflight.assessment).toEqual({ kind: 'unavailable', reason: 'Proxmox did not answer' });
    expect(calls).toEqual(['assess', 'preflight', 'evaluatePolicy', 'recordAudit plan.created']);
    expect(recorded.map((r) => r.eventId)).toEqual([auditEventId(planId, 1, 'plan.created')]);
    await handle.terminate('test done');
  });
});
