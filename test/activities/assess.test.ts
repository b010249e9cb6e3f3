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
import type { AssessInput, AssessResult, ExecuteInput, ExecuteResult } from '../../src/activities/types.js';
import { openFileAuditStore } from '../../src/audit/file-store.js';
import { openFileDispatchJournal } from '../../src/dispatch/file-journal.js';
import type { AuditStore } from '../../src/audit/store.js';
import { loadConfig } from '../../src/config/load.js';
import { normalizeRequest } from '../../src/domain/request.js';
import type { ProxmoxClient } from '../../src/proxmox/index.js';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import type { AuditEventInput, FinalEvent } from '../../src/audit/events.js';
import { startDemoCluster } from '../support/simulated-proxmox.js';

const TOKEN_ID = 'proxmox-agent@pve!agent';
const SECRET = 'lab-secret-for-assess-tests';
let sim: ProxmoxSimulator;
let client: ProxmoxClient;
let close: () => Promise<void>;
let store: AuditStore;
let activities: ReturnType<typeof createActivities>;

beforeAll(async () => {
  ({ sim, client, close } = await startDemoCluster('lab', SECRET, { taskDurationMs: 20 }));
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
  await Promise.all([close(), store.close()]);
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
/** A fresh plan's assessment record (each call a new plan, so nothing is recorded yet). */
const record = () => ({ planId: planId(), requestHash: 'h', seq: 1, stage: 'plan' as const });
const clientStart = (vmid: number) => client.request('POST', '/nodes/{node}/qemu/{vmid}/status/start', { node: 'pve-lab', vmid });
const base = (id: string): AuditEventInput => ({ eventId: `${id}/2/apply.requested`, planId: id, event: 'apply.requested', requestHash: 'h', actor: 'agent:test', channel: 'api' });

describe('assess', () => {
  it('writes the records handed to it, reads the target, evaluates policy, and records the plan under its sequence number', async () => {
    const id = planId();
    const out = await attempt(1).assess({
      request: request(101),
      before: [base(id)],
      record: { planId: id, requestHash: 'h', actor: 'agent:test', channel: 'api', seq: 3, stage: 'plan' },
    });
    expect(out.preflight.state).toMatchObject({ vmid: 101, status: 'stopped' });
    expect(out.policy.decision).toBe('allowed');
    expect(out.notifies).toBe(false);
    const records = await store.forPlan(id);
    expect(records.map((r) => [r.eventId, r.event])).toEqual([
      [`${id}/2/apply.requested`, 'apply.requested'],
      [`${id}/3/assessed`, 'plan.created'],
    ]);
    expect(records[1]).toMatchObject({ decision: { risk: out.policy.risk, decision: 'allowed', policyVersion: out.policy.policyVersion } });
  });

  it('is idempotent when retried: each record once', async () => {
    const id = planId();
    const input = { request: request(101), before: [base(id)], record: { planId: id, requestHash: 'h', seq: 3, stage: 'plan' as const } };
    await attempt(1).assess(input);
    await attempt(2).assess(input);
    expect((await store.forPlan(id)).map((r) => r.event)).toEqual(['apply.requested', 'plan.created']);
  });

  it('run again (its workflow task lost), it returns what it recorded the first time, not a new reading', async () => {
    // Found by the model-based chaos suite: a run's re-check found the plan stale and recorded it; the
    // workflow task was lost while Temporal was down, the re-check ran again, passed, and the action
    // ran: the chain held two outcomes for one run.
    const id = planId();
    const input = { request: request(101), record: { planId: id, requestHash: 'h', seq: 4, stage: 'apply' as const } };
    const first = await attempt(1).assess(input);
    expect(first.preflight.state?.status).toBe('stopped');
    await clientStart(101);
    const again = await attempt(1).assess(input);
    expect(again).toEqual(first);
    const records = await store.forPlan(id);
    expect(records.map((r) => [r.eventId, r.event])).toEqual([[`${id}/4/assessed`, 'apply.checked']]);
  });

  it('reads again past transient errors within its bound, so a hiccup neither denies a plan nor stales an approved one', async () => {
    // Found by the chaos suite after reads were bounded: three 503s in a row made "could not re-read the target".
    sim.faults.add({ kind: 'error', method: 'GET', path: '/cluster/resources', status: 503, times: 4 });
    const out = await attempt(1).assess({ request: request(101), record: record() });
    expect(out.preflight.assessment.kind).toBe('proceed');
    expect(out.policy.decision).toBe('allowed');
  });

  it('reports a target it cannot read as unreadable, and policy decides (it never fails the activity)', async () => {
    sim.faults.add({ kind: 'error', method: 'GET', path: '/cluster/resources', status: 503 });
    const out = await attempt(1).assess({ request: request(101), record: record() });
    expect(out.preflight.assessment.kind).toBe('unavailable');
    expect(out.preflight.state).toBeUndefined();
    expect(out.policy.decision).toBe('denied');
  });

  it('bounds its own read: a Proxmox that does not answer makes the target unreadable within the bound', async () => {
    sim.faults.add({ kind: 'slow-response', method: 'GET', path: '/cluster/resources', delayMs: 5_000, times: 1 });
    const out = await attempt(1).assess({ request: request(101), record: record() });
    expect(out.preflight.assessment).toEqual({ kind: 'unavailable', reason: 'Proxmox did not answer within 1 s' });
  });

  it('says how the reads failed when the bound cut one short after failed answers (not "did not answer")', async () => {
    // The first read answers 503; the read after it (the retry, 200 ms later) hangs past the bound.
    sim.faults.add({ kind: 'error', method: 'GET', path: '/cluster/resources', status: 503, message: 'Service Unavailable', times: 1 });
    const assessing = attempt(1).assess({ request: request(101), record: record() });
    for (let seen = false; !seen; await new Promise((r) => setTimeout(r, 5))) seen = sim.requests.all().some((r) => r.faults.includes('error') && r.answer !== undefined);
    sim.faults.add({ kind: 'slow-response', method: 'GET', path: '/cluster/resources', delayMs: 5_000, times: 1 });
    const out = await assessing;
    expect(out.preflight.assessment).toMatchObject({ kind: 'unavailable', reason: expect.stringMatching(/503|Service Unavailable/) });
  });

  it('records plan.denied for a denied decision', async () => {
    const id = planId();
    sim.faults.add({ kind: 'error', method: 'GET', path: '/cluster/resources', status: 503 });
    await attempt(1).assess({ request: request(101), record: { planId: id, requestHash: 'h', seq: 1, stage: 'plan' } });
    expect((await store.forPlan(id)).map((r) => [r.eventId, r.event])).toEqual([[`${id}/1/assessed`, 'plan.denied']]);
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
    expect(records[2]).toMatchObject({ upid: r.upid, outcome: 'succeeded', detail: { result: { outcome: 'applied', upid: r.upid } } });
    expect(sim.mutations.countFor(101, 'start')).toBe(1);
    // Found by the model-based chaos suite: a later attempt that met a broken read failed the run,
    // which then said outcome_unknown while the chain said applied. The outcome on the chain wins.
    const later = await new MockActivityEnvironment({ attempt: 1 } as Partial<Info>).run(activities.recordOutcome, {
      fields: input.audit!.outcome,
      proposed: { outcome: 'failed' as const, errorType: 'ProxmoxProtocolError', message: 'garbled', finishedAt: 't' },
      consultJournal: true,
    });
    expect(later).toMatchObject({ outcome: 'applied', upid: r.upid });
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

describe('recordOutcome', () => {
  it('asks the journal before calling a failure clean, records the outcome once, and returns what it recorded', async () => {
    const { config } = loadConfig({});
    const journal = await openFileDispatchJournal();
    const acts = createActivities({ environments: new Map([['lab', { tier: 'nonprod', client, tokenId: TOKEN_ID }]]), policy: () => config.policy, audit: store, journal });
    const id = planId();
    await journal.begin({ planId: id, environment: 'lab', vmid: 101, node: 'pve-lab', action: 'vm.reboot', params: {}, attempt: 1 });
    const fields = { planId: id, requestHash: 'h', seq: 5 };
    const run = (proposed: Record<string, unknown>) =>
      new MockActivityEnvironment({ attempt: 1 } as Partial<Info>).run(acts.recordOutcome, { fields, proposed: { finishedAt: 't', ...proposed } as never, consultJournal: true });
    // Retries exhausted while the intent was unsettled: something may have run.
    const first = await run({ outcome: 'failed', errorType: 'ProxmoxTransientError', message: 'gave up' });
    expect(first).toMatchObject({ outcome: 'outcome_unknown', errorType: 'ProxmoxTransientError' });
    // Run again (its workflow task lost) with another view of things: the recorded outcome stands.
    await journal.release(id, 2);
    expect(await run({ outcome: 'failed', errorType: 'ProxmoxTransientError', message: 'gave up again' })).toEqual(first);
    const records = await store.forPlan(id);
    expect(records.map((r) => [r.eventId, r.event])).toEqual([[`${id}/5/action.outcome`, 'action.outcome_unknown']]);
  });
});

describe('recordFinal', () => {
  // Found by the model-based chaos suite (seed 1): a worker recorded apply.refused_stale and died
  // before its workflow task completed; the retried task saw a rejection first and recorded
  // plan.rejected too. A run's terminal decision is recorded once, and a second run adopts it.
  it('records a run\'s terminal decision once, and a second decision gets the first', async () => {
    const { config } = loadConfig({});
    const acts = createActivities({ environments: new Map([['lab', { tier: 'nonprod', client, tokenId: TOKEN_ID }]]), policy: () => config.policy, audit: store, journal: await openFileDispatchJournal() });
    const id = planId();
    const record = (event: FinalEvent, n: number) => ({ eventId: `${id}/final/run.decided`, planId: id, requestHash: 'h', event, detail: { n } });
    const stale = { outcome: 'failed' as const, errorType: 'PlanStale', message: 'target changed', finishedAt: 't' };
    const run = (input: Parameters<typeof acts.recordFinal>[0]) => new MockActivityEnvironment({ attempt: 1 } as Partial<Info>).run(acts.recordFinal, input);
    const first = await run({ before: [], record: record('apply.refused_stale', 1), final: { status: 'failed', event: 'apply.refused_stale', result: stale } });
    expect(first).toEqual({ status: 'failed', event: 'apply.refused_stale', result: stale });
    const rejection = { eventId: `${id}/7/approval.rejected`, planId: id, requestHash: 'h', event: 'approval.rejected' as const, actor: 'human:carol' };
    const second = await run({ before: [rejection], record: record('plan.rejected', 2), final: { status: 'rejected', event: 'plan.rejected' } });
    expect(second).toEqual(first);
    const records = await store.forPlan(id);
    expect(records.map((r) => r.event)).toEqual(['apply.refused_stale', 'approval.rejected']);
  });

  // A rejection counted while the apply-time re-check waits on Proxmox ends the run at once; the
  // abandoned re-check, finishing later, must not put a check after the run's final decision.
  it('an apply-time re-check that finishes after the run ended records nothing', async () => {
    const id = planId();
    const final = { eventId: `${id}/final/run.decided`, planId: id, requestHash: 'h', event: 'plan.rejected' as const, detail: { final: { status: 'rejected', event: 'plan.rejected' } } };
    await store.append(final);
    const checked = await attempt(1).assess({ request: request(100), record: { planId: id, requestHash: 'h', seq: 5, stage: 'apply' } });
    expect(checked.policy.decision).toBeDefined();
    expect((await store.forPlan(id)).map((r) => r.event)).toEqual(['plan.rejected']);
    // Without a final decision, the same re-check is on the chain.
    const other = planId();
    await attempt(1).assess({ request: request(100), record: { planId: other, requestHash: 'h', seq: 5, stage: 'apply' } });
    expect((await store.forPlan(other)).map((r) => r.event)).toEqual(['apply.checked']);
  });
});
