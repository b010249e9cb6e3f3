/**
 * Concurrent applies of one plan are one apply (issue 12, item 8). Regression: 60 concurrent
 * POST /v1/actions/apply of one plan (same planId and requestHash) each ran a Workflow Update on the
 * run; the server caps in-flight Updates per run (10) and buffers one consistent query while a
 * workflow task runs, and an Update that arrived as the run finished was dropped. Some callers got
 * 500 (`WorkflowUpdateFailedError`, "not processed by worker") or 503 "Temporal is not reachable"
 * while Temporal was up. Every caller must get the same 2xx, and Proxmox must see one mutation.
 *
 * Against the real dev server, worker and Proxmox simulator (nothing mocked).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mutation } from '../../src/simulator/mutation-log.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const CALLERS = 60;

let t: TestService;
beforeAll(async () => {
  // Hundreds of applies from one token in a few seconds: the per-token rate limit (429) is not under test.
  t = await startTestService((c) => {
    c.server.rateLimit = false;
  });
  let res = await t.call('GET', '/healthz');
  for (let i = 0; i < 100 && res.status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 200));
    res = await t.call('GET', '/healthz');
  }
  expect(res.status).toBe(200);
});
afterAll(async () => {
  await t?.stop();
});

type Answer = { status: number; body: any };

const plan = async (body: object): Promise<{ planId: string; requestHash: string; status: string }> => {
  const res = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
};
const apply = (planId: string, requestHash: string, token: string = TOKENS.agent): Promise<Answer> =>
  t.call('POST', '/v1/actions/apply', { token, body: { planId, requestHash } });
const burst = (planId: string, requestHash: string, n = CALLERS): Promise<Answer[]> =>
  Promise.all(Array.from({ length: n }, () => apply(planId, requestHash)));

/** The answers that are not 202 for this plan with one of these statuses, described. */
function unexpected(answers: Answer[], planId: string, statuses: string[]): string[] {
  return answers
    .filter((a) => a.status !== 202 || a.body?.planId !== planId || !statuses.includes(a.body?.status))
    .map((a) => `${a.status} ${a.body?.type ?? a.body?.status ?? ''} ${a.body?.detail ?? ''}`.trim());
}

/** Every answer 202 for this plan, with a status the plan passes through once applied. */
function expectOneApply(answers: Answer[], planId: string, statuses: string[]): void {
  const wrong = unexpected(answers, planId, statuses);
  expect(wrong, `${wrong.length} of ${answers.length} answers were not 202 with status ${statuses.join('|')}`).toEqual([]);
}

/** The simulator's mutations of one guest and operation (and key, e.g. the snapshot's name). */
function mutations(env: 'lab' | 'prod', vmid: number, op: Mutation['op'], key?: string): Mutation[] {
  return t
    .sim(env)
    .mutations.all()
    .filter((m) => m.vmid === vmid && m.op === op && (key === undefined || m.key === key));
}

/** Apply Updates the run accepted into its history: one apply is one. */
async function applyUpdatesAccepted(planId: string): Promise<number> {
  const history = await t.service.client.workflow.getHandle(planId).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'apply').length;
}

describe('concurrent applies of one plan', () => {
  it(`answers ${CALLERS} concurrent applies of a low-risk plan, five rounds, with the same 202 and runs it once`, { timeout: 300_000 }, async () => {
    // Every round runs to its end before the answers are judged, so a failure reports all rounds.
    const wrong: string[] = [];
    const accepted: number[] = [];
    let total = 0;
    for (let round = 1; round <= 5; round++) {
      const snapname = `race${round}`;
      const p = await plan({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname }, reason: `concurrent apply round ${round}` });
      expect(p.status).toBe('planned');
      const answers = await burst(p.planId, p.requestHash);
      wrong.push(...unexpected(answers, p.planId, ['planned', 'applying', 'succeeded']).map((w) => `round ${round}: ${w}`));
      const done = await t.waitForStatus(p.planId, ['succeeded', 'failed']);
      expect(done.status).toBe('succeeded');
      expect(done.applyRequested).toBe(true);
      // Once it has finished, a repeated apply is still the same 202 (answered from the run's state).
      const late = await burst(p.planId, p.requestHash, 10);
      wrong.push(...unexpected(late, p.planId, ['succeeded']).map((w) => `round ${round}, after: ${w}`));
      total += answers.length + late.length;
      expect(mutations('lab', 100, 'snapshot', snapname)).toHaveLength(1);
      accepted.push(await applyUpdatesAccepted(p.planId));
    }
    expect(wrong, `${wrong.length} of ${total} answers were not 202 with a status of the applied plan`).toEqual([]);
    expect(accepted, 'apply Updates in each round\'s history').toEqual([1, 1, 1, 1, 1]);
    expect(t.sim('lab').mutations.duplicates()).toEqual([]);
  });

  it(`answers ${CALLERS} concurrent applies while the plan waits for approval, and while the approval arrives, with 202, and runs it once`, { timeout: 120_000 }, async () => {
    const before = mutations('prod', 200, 'reboot').length;
    const p = await plan({ action: 'vm.reboot', environment: 'prod', target: { vmid: 200 }, params: {}, reason: 'concurrent apply while waiting' });
    expect(p.status).toBe('awaiting_approval');

    // Applies while the plan waits: all accepted, nothing runs.
    expectOneApply(await burst(p.planId, p.requestHash), p.planId, ['awaiting_approval']);
    expect(mutations('prod', 200, 'reboot')).toHaveLength(before);

    // More applies while the approval arrives: every one of them 202.
    const first = burst(p.planId, p.requestHash, CALLERS / 2);
    const approval = t.call('POST', `/v1/actions/${p.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve', comment: 'ok' } });
    const second = burst(p.planId, p.requestHash, CALLERS / 2);
    const [a, approved, b] = await Promise.all([first, approval, second]);
    expect(approved.status, JSON.stringify(approved.body)).toBe(202);
    expectOneApply([...a, ...b], p.planId, ['awaiting_approval', 'approved', 'applying', 'succeeded']);

    const done = await t.waitForStatus(p.planId, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');
    expect(mutations('prod', 200, 'reboot')).toHaveLength(before + 1);
    expect(t.sim('prod').mutations.duplicates()).toEqual([]);
    expect(await applyUpdatesAccepted(p.planId)).toBe(1);
  });

  it(`answers ${CALLERS} concurrent first applies of an approved plan with 202, and runs it once`, { timeout: 120_000 }, async () => {
    const p = await plan({ action: 'vm.delete', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'concurrent apply after approval' });
    expect(p.status).toBe('awaiting_approval');
    const approved = await t.call('POST', `/v1/actions/${p.planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'approve' } });
    expect(approved.status, JSON.stringify(approved.body)).toBe(202);
    expect((await t.waitForStatus(p.planId, ['approved'])).applyRequested).toBe(false);

    expectOneApply(await burst(p.planId, p.requestHash), p.planId, ['approved', 'applying', 'succeeded']);
    const done = await t.waitForStatus(p.planId, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');
    expect(t.sim('lab').model.guest(101)).toBeUndefined();
    expect(mutations('lab', 101, 'destroy')).toHaveLength(1);
    expect(t.sim('lab').mutations.duplicates()).toEqual([]);
    expect(await applyUpdatesAccepted(p.planId)).toBe(1);
  });

  it('still checks every concurrent caller: a wrong requestHash or a foreign token is refused, the others accepted', { timeout: 120_000 }, async () => {
    const p = await plan({ action: 'vm.snapshot.create', environment: 'prod', target: { vmid: 200 }, params: { snapname: 'authz' }, reason: 'concurrent apply authorization' });
    const wrongHash = `sha256:${'0'.repeat(64)}`;
    const callers = Array.from({ length: 30 }, (_, i) =>
      i % 10 === 3 ? apply(p.planId, wrongHash) : i % 10 === 7 ? apply(p.planId, p.requestHash, TOKENS.labOnly) : apply(p.planId, p.requestHash),
    );
    const answers = await Promise.all(callers);
    const byKind = (i: number) => (i % 10 === 3 ? 'hash' : i % 10 === 7 ? 'foreign' : 'ok');
    answers.forEach((a, i) => {
      const kind = byKind(i);
      if (kind === 'hash') expect([a.status, a.body.type]).toEqual([409, '/problems/request-hash-mismatch']);
      else if (kind === 'foreign') expect([a.status, a.body.type]).toEqual([404, '/problems/plan-not-found']);
      else expect([a.status, a.body.planId], JSON.stringify(a.body)).toEqual([202, p.planId]);
    });
    // And after the apply went through, too.
    const late = await Promise.all([apply(p.planId, wrongHash), apply(p.planId, p.requestHash, TOKENS.labOnly), apply(p.planId, p.requestHash)]);
    expect(late.map((a) => a.status)).toEqual([409, 404, 202]);
    expect((await t.waitForStatus(p.planId, ['succeeded', 'failed'])).status).toBe('succeeded');
    expect(mutations('prod', 200, 'snapshot', 'authz')).toHaveLength(1);
    expect(await applyUpdatesAccepted(p.planId)).toBe(1);
  });
});

describe('the runs those racing messages made', () => {
  // Updates accepted at odd points of a run are where a workflow's determinism breaks first (a query
  // on an evicted run once failed with "UpsertWorkflowSearchAttributesMachine does not handle
  // HistoryEvent(WorkflowExecutionUpdateAccepted)"): replay every run of this file through today's code.
  it('every run replays deterministically', { timeout: 180_000 }, async () => {
    const { Worker } = await import('@temporalio/worker');
    const { WORKFLOWS_PATH } = await import('../../src/worker/worker.js');
    const histories = t.service.client.workflow.list({ query: `TaskQueue = "${t.config.temporal.taskQueue}"` }).intoHistories();
    let replayed = 0;
    const failures: string[] = [];
    for await (const r of Worker.runReplayHistories({ workflowsPath: WORKFLOWS_PATH, replayName: 'concurrent-apply' }, histories)) {
      replayed++;
      if (r.error) failures.push(`${r.workflowId}: ${r.error.message}`);
    }
    expect(replayed).toBeGreaterThanOrEqual(8);
    expect(failures).toEqual([]);
  });
});
