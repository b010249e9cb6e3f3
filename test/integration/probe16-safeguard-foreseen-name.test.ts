/**
 * Adversary probe (issue 16): "when policy asks for a safeguard snapshot before an action, the
 * snapshot is taken on Proxmox exactly once for its plan, before the action, and the action never
 * runs without it" (docs/policy.md, "Safeguards"), with other plans targeting the same guest.
 *
 * The safeguard's name is `pa_` + the plan id, and a plan id made with an Idempotency-Key is a pure
 * function of (principal, key) (docs/plan-id-rules.md): the agent knows the name of a plan's
 * safeguard before it makes the plan. Here it first takes a snapshot of that name itself (an
 * ordinary `vm.snapshot.create` plan, low risk in lab, allowed), then changes the guest (another
 * plan), then makes the safeguarded config update with that key and applies it.
 *
 * Oracle (the simulator's mutation log, an outsider's view of Proxmox): for the safeguarded plan,
 * the action's config change is preceded by exactly one snapshot of the plan's safeguard name taken
 * after the plan was made (a snapshot from before the plan existed is not the plan's safeguard: it
 * does not hold what the action replaces). If the action ran, the snapshot must have been taken.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idempotentPlanId } from '../../src/domain/plan-id.js';
import { safeguardSnapshotName } from '../../src/domain/safeguard.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService((config) => {
    config.policy.rules.push({ id: 'p16-lab-snapshot-first', match: { environments: ['lab'], actions: ['*.config.update'] }, safeguard: 'snapshot' });
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

async function planApplyWait(body: object, headers: Record<string, string> = {}) {
  const p = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body, headers });
  expect(p.status, JSON.stringify(p.body)).toBe(201);
  expect(p.body.status, JSON.stringify(p.body)).toBe('planned');
  const ap = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.body.planId, requestHash: p.body.requestHash } });
  expect(ap.status, JSON.stringify(ap.body)).toBeLessThan(300);
  return { plan: p.body, done: await t.waitForStatus(p.body.planId, ['succeeded', 'failed'], 60_000) };
}

describe('probe16: a safeguard whose name was foreseen', () => {
  it('takes the snapshot for its plan before the action, even when a snapshot of that name was taken before the plan existed', async () => {
    const sim = t.sim('lab');
    const vmid = 101;
    const key = `p16-foreseen-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const foreseenId = idempotentPlanId('agent:pi-demo', key);
    const name = safeguardSnapshotName(foreseenId);
    const coresAtStart = sim.model.findGuest(vmid)!.config.cores;

    // 1. A snapshot of that name, by an ordinary plan, of the guest as it is now.
    const early = await planApplyWait({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid }, params: { snapname: name }, reason: 'probe16: an early snapshot' });
    expect(early.done.status, JSON.stringify(early.done)).toBe('succeeded');
    expect(sim.model.snapshots(vmid)).toContain(name);

    // 2. The guest changes (its own safeguarded plan).
    const between = await planApplyWait({ action: 'vm.config.update', environment: 'lab', target: { vmid }, params: { cores: 3 }, reason: 'probe16: a change in between' });
    expect(between.done.status, JSON.stringify(between.done)).toBe('succeeded');
    expect(sim.model.findGuest(vmid)!.config.cores).toBe('3');

    // 3. The safeguarded plan, with the foreseen id.
    const marker = Math.max(0, ...sim.mutations.all().map((m) => m.seq));
    const guarded = await planApplyWait(
      { action: 'vm.config.update', environment: 'lab', target: { vmid }, params: { cores: 5 }, reason: 'probe16: the guarded change' },
      { 'Idempotency-Key': key },
    );
    expect(guarded.plan.planId).toBe(foreseenId);
    expect(guarded.plan.safeguard).toEqual({ kind: 'snapshot', name });

    const after = sim.mutations.all().filter((m) => m.vmid === vmid && m.seq > marker);
    const action = after.filter((m) => m.op === 'config');
    const snaps = after.filter((m) => m.op === 'snapshot' && m.key === name);
    const preexisting = sim.mutations.all().filter((m) => m.vmid === vmid && m.op === 'snapshot' && m.key === name && m.seq <= marker);
    if (action.length > 0) {
      expect(
        snaps.filter((s) => s.seq < action[0]!.seq),
        `the action ran (config mutation seq ${action[0]!.seq}, plan ${guarded.done.status}, result.safeguard ${JSON.stringify(guarded.done.result?.safeguard)}) ` +
          `with no snapshot '${name}' taken for its plan: the only one of that name was taken at seq ${preexisting.map((m) => m.seq).join(',')} before the plan existed ` +
          `(the guest then had cores=${coresAtStart}; the action replaced cores=3, which no snapshot holds)`,
      ).toHaveLength(1);
    }
    expect(snaps.length, `snapshots '${name}' taken for the plan: ${JSON.stringify(snaps)}`).toBeLessThanOrEqual(1);
    expect(action.length).toBeLessThanOrEqual(1);
  }, 180_000);
});
