/**
 * Reads never wait on Proxmox (issue 18). The simulator holds the answers of the target's reads (the
 * `slow-response` fault: the request is taken and nothing comes back for 25 s) during the plan-time
 * read, the apply-time re-check and the task wait. Meanwhile the plan's status (plain and long-poll),
 * the approvals list, the event stream and an approver's decision must answer, and say what is true.
 *
 * The oracle is an ordering, not a clock: every answer is checked to have come back while the
 * stalled request was still unanswered in the simulator's request log (so it did not wait for it).
 * What the answers say is checked against what the run did in the end. The p99 of these reads is a
 * figure in `npm run bench` ("status read while Proxmox stalls").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { executedMutations } from './support/mutations.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';

const STALL_MS = 25_000;

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

/** The requests the simulator holds right now (slowed, not yet answered). */
const held = (sim: ProxmoxSimulator) => sim.requests.all().filter((r) => r.faults.includes('slow-response') && r.answer === undefined);

/** Waits until Proxmox holds one of the target's reads; returns a check that it still does. */
async function stalledNow(sim: ProxmoxSimulator, what: string): Promise<() => void> {
  await until(`Proxmox holds ${what}`, () => held(sim).length > 0, 20_000, 20);
  const seq = held(sim)[0]!.seq;
  return () => expect(held(sim).map((r) => r.seq), `answered while Proxmox still held ${what}`).toContain(seq);
}

/** The first event of the plan's event stream (the plan as it is now), then the stream is closed. */
async function firstEvent(planId: string): Promise<any> {
  const ac = new AbortController();
  const res = await fetch(`${t.url}/v1/actions/${planId}/events`, { headers: { authorization: `Bearer ${TOKENS.agent}`, accept: 'text/event-stream' }, signal: ac.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
    const data = /^data: (.*)$/m.exec(text);
    if (data && text.includes('\n\n')) {
      ac.abort();
      return JSON.parse(data[1]!);
    }
  }
  throw new Error(`the stream ended without an event: ${text}`);
}

describe('while Proxmox hangs, reads and decisions answer, and tell the truth', () => {
  it('during the apply-time re-check: status, long poll, approvals list, event stream and a rejection answer; the rejection wins', async () => {
    const sim = t.sim('prod');
    const p = await t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.shutdown', environment: 'prod', target: { vmid: 200 }, params: {}, reason: 'stalled re-check' },
    });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect(p.body.status).toBe('awaiting_approval');
    const { planId, requestHash } = p.body;
    expect((await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).body.status).toBe('approved');

    // The re-check's reads of the guest hang; the apply waits for the re-check, so it is not awaited.
    sim.faults.slowResponses(STALL_MS, { method: 'GET', path: '/cluster/resources', times: 1 });
    const applying = t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } });
    const stillHeld = await stalledNow(sim, "the re-check's read");

    for (let i = 0; i < 5; i++) {
      const r = await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.agent });
      stillHeld();
      expect(r.status).toBe(200);
      // What is known: approved, its apply requested, nothing run yet.
      expect(r.body).toMatchObject({ status: 'approved', applyRequested: true });
      expect(r.body.result).toBeUndefined();
    }
    const polled = await t.call('GET', `/v1/actions/${planId}?wait=1s&status=approved`, { token: TOKENS.agent });
    stillHeld();
    expect(polled.body.status).toBe('approved');
    const pending = await t.call('GET', '/v1/approvals?status=pending', { token: TOKENS.approver2 });
    stillHeld();
    expect(pending.status).toBe(200);
    // Approved: no longer waiting for an approver.
    expect(pending.body.items.map((x: any) => x.planId)).not.toContain(planId);
    const event = await firstEvent(planId);
    stillHeld();
    expect(event).toMatchObject({ planId, status: 'approved' });

    const no = await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'reject', comment: 'not now' } });
    stillHeld();
    expect(no.status, JSON.stringify(no.body)).toBe(202);
    expect(no.body).toMatchObject({ status: 'rejected', recorded: true });
    // The run abandons the re-check for the rejection: the plan ends rejected while Proxmox still
    // holds the read, and a reader told "rejected" finds the outcome on the audit chain.
    const after = await until('the plan to show the rejection', async () => {
      const r = await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.agent });
      return r.body.status === 'rejected' ? r : undefined;
    }, 10_000, 20);
    stillHeld();
    expect(after.body.approval.rejectedBy.principal).toBeDefined();
    expect((await t.service.audit.forPlan(planId)).map((r) => r.event)).toEqual(expect.arrayContaining(['approval.rejected', 'plan.rejected']));
    stillHeld();

    // Once Proxmox answers, the run goes on from the truth it told: rejected, nothing sent.
    expect((await applying).status).toBeLessThan(500);
    const done = await t.waitForStatus(planId, ['rejected', 'failed', 'succeeded'], 60_000);
    expect(done.status).toBe('rejected');
    expect(executedMutations(sim).filter((r) => r.path.includes('/qemu/200/'))).toEqual([]);
  }, 120_000);

  it('during the task wait: status and the event stream say applying, and then what the task did', async () => {
    const sim = t.sim('lab');
    const p = await t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 101 }, params: { snapname: 'stalled-wait' }, reason: 'stalled task wait' },
    });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const { planId, requestHash } = p.body;
    // The task's status reads hang (the task itself runs and ends as usual).
    sim.faults.slowResponses(STALL_MS, { method: 'GET', path: '/nodes/*/tasks/*/status', times: 1 });
    const a = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } });
    expect(a.status, JSON.stringify(a.body)).toBe(202);
    const stillHeld = await stalledNow(sim, "the task's status read");
    for (let i = 0; i < 5; i++) {
      const r = await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.agent });
      stillHeld();
      expect(r.body.status).toBe('applying');
    }
    expect(await firstEvent(planId)).toMatchObject({ status: 'applying' });
    stillHeld();
    const done = await t.waitForStatus(planId, ['succeeded', 'failed'], 90_000);
    expect(done.status, JSON.stringify(done.result)).toBe('succeeded');
    expect(executedMutations(sim).filter((r) => r.path.endsWith('/qemu/101/snapshot'))).toHaveLength(1);
  }, 120_000);

  it("during the plan-time read: another plan's status and the approvals list answer", async () => {
    const sim = t.sim('lab');
    const other = await t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 101 }, params: { snapname: 'stalled-plan-other' }, reason: 'read meanwhile' },
    });
    expect(other.status).toBe(201);
    sim.faults.slowResponses(STALL_MS, { method: 'GET', path: '/cluster/resources', times: 1 });
    const planning = t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'stalled-plan' }, reason: 'stalled plan-time read' },
    });
    const stillHeld = await stalledNow(sim, 'the plan-time read');
    const r = await t.call('GET', `/v1/actions/${other.body.planId}`, { token: TOKENS.agent });
    stillHeld();
    expect(r.body).toMatchObject({ planId: other.body.planId, status: 'planned' });
    const list = await t.call('GET', '/v1/approvals?status=pending', { token: TOKENS.approver1 });
    stillHeld();
    expect(list.status).toBe(200);
    // The plan being made is not readable yet, and says so at once.
    expect((await planning).status).toBe(201);
  }, 120_000);
});
