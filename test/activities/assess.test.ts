/**
 * The `assess` local activity and the execute activity's own audit records, against the simulator
 * and a real file audit store, one attempt at a time (MockActivityEnvironment).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Info } from '@temporalio/activity';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities/index.js';
import type { AssessInput, AssessResult, AuditEventInput, ExecuteInput, ExecuteResult } from '../../src/activities/types.js';
import { openFileAuditStore } from '../../src/audit/file-store.js';
import { openFileDispatchJournal } from '../../src/dispatch/file-journal.js';
import type { AuditStore } from '../../src/audit/store.js';
import { loadConfig } from '../../src/config/load.js';
import { normalizeRequest } from '../../src/domain/request.js';
import { createProxmoxClient, type ProxmoxClient } from '../../src/proxmox/index.js';
import { demoClusters, startSimulator, type ProxmoxSimulator } from '../../src/simulator/index.js';

const TOKEN_ID = 'proxmox-agent@pve!agent';
const SECRET = 'lab-secret-for-assess-tests';
let sim: ProxmoxSimulator;
let client: ProxmoxClient;
let store: AuditStore;
let activities: ReturnType<typeof createActivities>;

beforeAll(async () => {
  sim = await startSimulator({ cluster: demoClusters({ lab: SECRET, prod: 'unused' }).lab, taskDurationMs: 20, authFailureDelayMs: 0 });
  client = createProxmoxClient({ baseUrl: sim.url, tokenId: TOKEN_ID, tokenSecret: SECRET });
  store = await openFileAuditStore(join(mkdtempSync(join(tmpdir(), 'pa-assess-')), 'audit.jsonl'));
  const { config } = loadConfig({});
  activities = createActivities({
    environments: new Map([['lab', { tier: 'nonprod', client, tokenId: TOKEN_ID }]]),
    policy: () => config.policy,
    audit: store,
    journal: await openFileDispatchJournal(),
    pollIntervalMs: 20,
    assessReadMs: 1_000,
  });
});
afterAll(async () => {
  await Promise.all([client.close(), sim.close(), store.close()]);
});
beforeEach(() => sim.reset());

const attempt = (n: number) => {
  const env = new MockActivityEnvironment({ attempt: n } as Partial<Info>);
  return {
    assess: (input: AssessInput) => env.run(activities.assess, input) as Promise<AssessResult>,
    execute: (input: ExecuteInput) => env.run(activities.executeAction, input) as Promise<ExecuteResult>,
  };
};
const request = (vmid: number) => normalizeRequest({ action: 'vm.start', environment: 'lab', target: { vmid }, params: {}, reason: 'assess test' });
let n = 0;
const planId = () => `plan_ASSESS${String(++n).padStart(4, '0')}`;
const base = (id: string): AuditEventInput => ({ eventId: `${id}/2/apply.requested`, planId: id, event: 'apply.requested', requestHash: 'h', actor: 'agent:test', channel: 'api' });

describe('assess', () => {
  it('writes the records handed to it, reads the target, evaluates policy, and records the plan under its sequence number', async () => {
    const id = planId();
    const out = await attempt(1).assess({
      request: request(101),
      before: [base(id)],
      record: { planId: id, requestHash: 'h', actor: 'agent:test', channel: 'api', seq: 3 },
    });
    expect(out.preflight.state).toMatchObject({ vmid: 101, status: 'stopped' });
    expect(out.policy.decision).toBe('allowed');
    expect(out.notifies).toBe(false);
    const records = await store.forPlan(id);
    expect(records.map((r) => [r.eventId, r.event])).toEqual([
      [`${id}/2/apply.requested`, 'apply.requested'],
      [`${id}/3/plan.created`, 'plan.created'],
    ]);
    expect(records[1]).toMatchObject({ decision: { risk: out.policy.risk, decision: 'allowed', policyVersion: out.policy.policyVersion } });
  });

  it('is idempotent when retried: each record once', async () => {
    const id = planId();
    const input = { request: request(101), before: [base(id)], record: { planId: id, requestHash: 'h', seq: 3 } };
    await attempt(1).assess(input);
    await attempt(2).assess(input);
    expect((await store.forPlan(id)).map((r) => r.event)).toEqual(['apply.requested', 'plan.created']);
  });

  it('reports a target it cannot read as unreadable, and policy decides (it never fails the activity)', async () => {
    sim.faults.add({ kind: 'error', method: 'GET', path: '/cluster/resources', status: 503 });
    const out = await attempt(1).assess({ request: request(101) });
    expect(out.preflight.assessment.kind).toBe('unavailable');
    expect(out.preflight.state).toBeUndefined();
    expect(out.policy.decision).toBe('denied');
  });

  it('bounds its own read: a Proxmox that does not answer makes the target unreadable within the bound', async () => {
    sim.faults.add({ kind: 'slow-response', method: 'GET', path: '/cluster/resources', delayMs: 5_000, times: 1 });
    const out = await attempt(1).assess({ request: request(101) });
    expect(out.preflight.assessment).toEqual({ kind: 'unavailable', reason: 'Proxmox did not answer within 1 s' });
  });

  it('records plan.denied for a denied decision', async () => {
    const id = planId();
    sim.faults.add({ kind: 'error', method: 'GET', path: '/cluster/resources', status: 503 });
    await attempt(1).assess({ request: request(101), record: { planId: id, requestHash: 'h', seq: 1 } });
    expect((await store.forPlan(id)).map((r) => r.eventId)).toEqual([`${id}/1/plan.denied`]);
  });
});

describe('executeAction with audit', () => {
  it('writes the pending records and apply.started before dispatch, and the one outcome under the reserved number', async () => {
    const id = planId();
    const before: AuditEventInput[] = [base(id), { eventId: `${id}/3/apply.started`, planId: id, event: 'apply.started', requestHash: 'h' }];
    const input: ExecuteInput = { planId: id, request: request(101), node: 'pve-lab', audit: { before, outcome: { planId: id, requestHash: 'h', seq: 4 } } };
    const r = await attempt(1).execute(input);
    expect(r.outcome).toBe('applied');
    // A retry (its first answer lost) follows the same task and cannot add a second outcome.
    expect(await attempt(2).execute(input)).toMatchObject({ outcome: 'applied', upid: r.upid });
    const records = await store.forPlan(id);
    expect(records.map((x) => [x.eventId, x.event])).toEqual([
      [`${id}/2/apply.requested`, 'apply.requested'],
      [`${id}/3/apply.started`, 'apply.started'],
      [`${id}/4/action.outcome`, 'action.applied'],
    ]);
    expect(records[2]).toMatchObject({ upid: r.upid, outcome: 'succeeded' });
    expect(sim.mutations.countFor(101, 'start')).toBe(1);
  });

  it('writes nothing to Proxmox when the audit store refuses the authorising records', async () => {
    const id = planId();
    const failing = { ...store, append: async () => Promise.reject(new Error('audit store down')) };
    const { config } = loadConfig({});
    const acts = createActivities({
      environments: new Map([['lab', { tier: 'nonprod', client, tokenId: TOKEN_ID }]]),
      policy: () => config.policy,
      audit: failing,
      journal: await openFileDispatchJournal(),
    });
    const input: ExecuteInput = { planId: id, request: request(101), node: 'pve-lab', audit: { before: [base(id)], outcome: { planId: id, requestHash: 'h', seq: 3 } } };
    await expect(new MockActivityEnvironment({ attempt: 1 } as Partial<Info>).run(acts.executeAction, input)).rejects.toThrow('audit store down');
    expect(sim.mutations.all()).toEqual([]);
  });
});
