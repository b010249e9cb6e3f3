/**
 * The probe17 safeguard scenarios' common part: a prod config update that needs one approval and a
 * safeguard snapshot, applied and then held by a freeze after its snapshot went to Proxmox; and the
 * oracle of a "no" given to it (a 202 'rejected' means nothing of the action reached Proxmox, the
 * snapshot left is named by the final record; otherwise the "no" came too late and is a 409).
 */
import { expect } from 'vitest';
import { safeguardSnapshotName } from '../../../src/domain/safeguard.js';
import type { ProxmoxSimulator } from '../../../src/simulator/index.js';
import { startTestService, TOKENS, type TestService } from './service.js';
import { besidesSafeguard, executedMutations } from './mutations.js';

export const TERMINAL = ['succeeded', 'failed', 'outcome_unknown', 'rejected', 'expired', 'denied'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The service with one approval for every risk below critical and a safeguard snapshot before prod config updates. */
export async function startSafeguardService(): Promise<TestService> {
  const t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.policy.approvalsByRisk = { low: 1, medium: 1, high: 1, critical: 2 };
    c.policy.rules.push({ id: 'prod-snapshot-first', match: { environments: ['prod'], actions: ['*.config.update'] }, safeguard: 'snapshot' });
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await sleep(200);
  return t;
}

export interface HeldPlan {
  sim: ProxmoxSimulator;
  /** When the plan was made: mutations before it are not its. */
  start: number;
  planId: string;
  /** Its safeguard snapshot's name. */
  name: string;
  freezeId: string;
}

/** Plans `cores: 5` on prod VM 200, approves and applies it, and freezes prod while its snapshot task runs (2 s): the action is held. */
export async function holdAfterSafeguard(t: TestService, reason: string): Promise<HeldPlan> {
  const sim = t.sim('prod');
  sim.faults.add({ kind: 'slow-task', method: 'POST', path: '/nodes/*/qemu/200/snapshot', durationMs: 2_000, times: 1 });
  const start = Date.now();
  const p = await t.call('POST', '/v1/actions/plan', {
    token: TOKENS.agent,
    body: { action: 'vm.config.update', environment: 'prod', target: { vmid: 200 }, params: { cores: 5 }, reason },
  });
  expect(p.status, JSON.stringify(p.body)).toBe(201);
  expect(p.body.status).toBe('awaiting_approval');
  const { planId, requestHash } = p.body;
  expect((await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(202);
  expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } })).status).toBe(202);
  const snapshotRunning = () => sim.model.tasks().some((x) => x.type === 'qmsnapshot' && x.id === '200' && x.status === 'running');
  for (let i = 0; i < 400 && !snapshotRunning(); i++) await sleep(25);
  expect(snapshotRunning()).toBe(true);
  const f = await t.call('POST', '/v1/freezes', { token: TOKENS.admin, body: { environment: 'prod', reason: 'probe17 incident during the snapshot' } });
  expect(f.status, JSON.stringify(f.body)).toBe(201);
  let held: any;
  for (let i = 0; i < 400; i++) {
    held = (await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.agent })).body;
    if (held.frozen?.id === f.body.id && held.safeguard?.taken) break;
    await sleep(50);
  }
  expect(held.frozen?.id, JSON.stringify(held)).toBe(f.body.id);
  return { sim, start, planId, name: safeguardSnapshotName(planId), freezeId: f.body.id };
}

/** Bob's "no" to the held plan. */
export const reject = (t: TestService, planId: string) =>
  t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'reject', comment: 'probe17: no' } });

/** The oracle, once the plan has ended as `view`; prints one row of what was seen. */
export async function expectRejectionHonoured(t: TestService, plan: HeldPlan, rej: { status: number; body: any }, view: { status: string; safeguard?: { taken?: unknown } }): Promise<void> {
  const { sim, start, planId, name } = plan;
  await sleep(1000);
  const sent = executedMutations(sim, { after: start }).filter((r) => r.path.includes('/qemu/200/'));
  const evidence = await t.call('GET', `/v1/actions/${planId}/evidence`, { token: TOKENS.agent });
  const events = (await t.service.audit.forPlan(planId)).map((r) => r.event);
  const left = sim.model.findGuest(200)!.snapshots.filter((x) => x.name === name).length;
  const row = `reject ${rej.status} ${rej.body?.status ?? rej.body?.type} recorded=${rej.body?.recorded}; final ${view.status}; sent to Proxmox: ${sent.map((r) => `${r.method} ${r.path}`).join(', ') || 'nothing'}; snapshots named ${name}: ${sim.mutations.all().filter((m) => m.vmid === 200 && m.op === 'snapshot' && m.key === name).length}; still on the guest: ${left}; chain: ${events.join(',')}`;
  console.log(row);
  if (rej.status === 202 && rej.body?.status === 'rejected') {
    // The guarantee: a 202 'rejected' stops the action: nothing of it reaches Proxmox. The safeguard
    // snapshot taken before the "no" stays on the guest, and the plan and its final record say so.
    expect(besidesSafeguard(sent, name), row).toEqual([]);
    expect(view.status, row).toBe('rejected');
    expect(evidence.status).toBe(200);
    expect(events, row).toContain('plan.rejected');
    if (sent.length > 0) {
      expect(view.safeguard?.taken, row).toBeDefined();
      const final = (await t.service.audit.forPlan(planId)).find((r) => r.event === 'plan.rejected');
      expect(final?.detail?.safeguard, row).toMatchObject({ snapshot: name, left: true });
    }
  } else {
    // Too late: answered 409, never 202.
    expect(rej.status, row).toBe(409);
  }
}
