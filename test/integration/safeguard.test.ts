/**
 * `safeguard: snapshot` end to end (docs/policy.md, "Safeguards"), against the real Temporal dev
 * server and the simulator. The oracles are what an outsider sees: the simulator's mutation log (one
 * snapshot named after the plan, before the action, by seq), the plan view, the evidence bundle and
 * the audit chain.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/record.js';
import { safeguardSnapshotName } from '../../src/domain/safeguard.js';
import { configWithPending } from '../../src/simulator/guest-config.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const ADMIN = 'test-safeguard-admin-token';
let t: TestService;
beforeAll(async () => {
  t = await startTestService((config) => {
    config.tokens.push({ id: 'test-admin', principal: 'human:carol', secretSha256: createHash('sha256').update(ADMIN).digest('hex'), scopes: ['admin', 'read'], environments: ['*'], roles: [] });
    config.policy.rules.push({ id: 'prod-snapshot-first', match: { environments: ['prod'], actions: ['*.config.update', '*.disk.resize', '*.snapshot.rollback'] }, safeguard: 'snapshot' });
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const plan = (body: object) => t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body });

/** Applies the plan (approved by an approver when it asks for approvals) and waits for its end. */
async function applyAndWait(p: { planId: string; requestHash: string; status: string }, timeoutMs?: number) {
  expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.planId, requestHash: p.requestHash } })).status).toBe(202);
  if (p.status === 'awaiting_approval') {
    expect((await t.call('POST', `/v1/actions/${p.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(202);
  }
  return t.waitForStatus(p.planId, ['succeeded', 'failed'], timeoutMs);
}

describe('safeguard: snapshot', () => {
  it('takes one snapshot named after the plan before a prod config update, listed in the view, evidence and audit chain', async () => {
    const sim = t.sim('prod');
    const p = await plan({ action: 'vm.config.update', environment: 'prod', target: { vmid: 200 }, params: { cores: 6 }, reason: 'more cores' });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const name = safeguardSnapshotName(p.body.planId);
    expect(p.body.safeguard).toEqual({ kind: 'snapshot', name });
    expect(p.body.reasons).toContainEqual(expect.objectContaining({ rule: 'safeguard.snapshot' }));
    expect(p.body.preflight.state.snapshotSupport).toEqual({ capable: true });

    const done = await applyAndWait(p.body);
    expect(done.status, JSON.stringify(done.result)).toBe('succeeded');
    expect(configWithPending(sim.model.findGuest(200)!).cores).toBe('6');
    expect(sim.model.snapshots(200)).toContain(name);

    // Exactly one snapshot of this plan, and it came before the config change.
    const mine = sim.mutations.all().filter((m) => m.vmid === 200 && (m.op === 'snapshot' || m.op === 'config'));
    const snaps = mine.filter((m) => m.op === 'snapshot' && m.key === name);
    const configs = mine.filter((m) => m.op === 'config');
    expect(snaps).toHaveLength(1);
    expect(configs).toHaveLength(1);
    expect(snaps[0]!.seq).toBeLessThan(configs[0]!.seq);

    expect(done.result.safeguard).toEqual({ snapshot: name, upid: snaps[0]!.upid });
    expect(done.result.upid).not.toBe(snaps[0]!.upid);
    expect(done.safeguard).toMatchObject({ kind: 'snapshot', name, taken: { upid: snaps[0]!.upid } });

    const evidence = (await t.call('GET', `/v1/actions/${p.body.planId}/evidence`, { token: TOKENS.agent })).body;
    expect(evidence.safeguard).toMatchObject({ name, taken: { upid: snaps[0]!.upid } });
    expect(evidence.outcome.result.safeguard).toEqual({ snapshot: name, upid: snaps[0]!.upid });
    const events = evidence.audit.records.map((r: { event: string }) => r.event);
    expect(events.indexOf('safeguard.started')).toBeGreaterThan(-1);
    expect(events.indexOf('safeguard.taken')).toBeGreaterThan(events.indexOf('safeguard.started'));
    expect(events.indexOf('apply.started')).toBeGreaterThan(events.indexOf('safeguard.taken'));
    expect(evidence.audit.records.find((r: { event: string }) => r.event === 'safeguard.taken')).toMatchObject({ upid: snaps[0]!.upid, detail: { snapshot: name } });
    expect(verifyChain(await t.service.audit.all()).ok).toBe(true);
  });

  it('denies the plan (safeguard.unavailable) when a disk is on storage that cannot snapshot, and sends nothing', async () => {
    const sim = t.sim('prod');
    // A thick LVM storage, and guest 201's second disk on it: PVE cannot snapshot that guest.
    sim.model.storages.push({ storage: 'san-thick', plugintype: 'lvm', content: ['images', 'rootdir'] });
    sim.model.findGuest(201)!.config.scsi1 = 'san-thick:vm-201-disk-1,iothread=1,size=500G';
    const before = sim.mutations.all().length;
    const p = await plan({ action: 'vm.config.update', environment: 'prod', target: { vmid: 201 }, params: { cores: 4 }, reason: 'smaller' });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect(p.body.status).toBe('denied');
    expect(p.body.safeguard).toBeUndefined();
    const reason = p.body.reasons.find((r: { rule: string }) => r.rule === 'safeguard.unavailable');
    expect(reason?.message).toContain("scsi1 is on lvm storage 'san-thick'");
    expect(reason?.hint).toBeTruthy();
    expect(p.body.preflight.state.snapshotSupport).toMatchObject({ capable: false });
    // A denied plan is never applied: nothing reached Proxmox.
    expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.body.planId, requestHash: p.body.requestHash } })).status).toBeGreaterThanOrEqual(400);
    expect(sim.mutations.all().length).toBe(before);
  });

  it('takes still exactly one snapshot when the answer to its POST is lost (connection dropped after dispatch), and the action runs once', async () => {
    const sim = t.sim('prod');
    sim.faults.add({ kind: 'drop-after-dispatch', method: 'POST', path: '/nodes/*/lxc/400/snapshot', times: 1 });
    const p = await plan({ action: 'ct.config.update', environment: 'prod', target: { vmid: 400 }, params: { cores: 3 }, reason: 'more cores' });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const name = safeguardSnapshotName(p.body.planId);
    // The lost answer is settled from the node's task list once the request is old enough (about 20 s).
    const done = await applyAndWait(p.body, 90_000);
    expect(done.status, JSON.stringify(done.result)).toBe('succeeded');
    expect(sim.faults.hits()['drop-after-dispatch']).toBe(1);
    const mine = sim.mutations.all().filter((m) => m.vmid === 400);
    const snaps = mine.filter((m) => m.op === 'snapshot');
    expect(snaps.map((m) => m.key)).toEqual([name]);
    const configs = mine.filter((m) => m.op === 'config');
    expect(configs).toHaveLength(1);
    expect(snaps[0]!.seq).toBeLessThan(configs[0]!.seq);
    expect(done.result.safeguard).toEqual({ snapshot: name, upid: snaps[0]!.upid });
    expect(sim.model.findGuest(400)!.config.cores).toBe('3');
  }, 120_000);

  it('fails the plan without running the action when the snapshot fails', async () => {
    const sim = t.sim('prod');
    sim.faults.add({ kind: 'task-error', method: 'POST', path: '/nodes/*/qemu/200/snapshot', message: 'snapshot failed: out of space', times: 1 });
    const configsBefore = sim.mutations.all().filter((m) => m.vmid === 200 && m.op === 'config').length;
    const cores = configWithPending(sim.model.findGuest(200)!).cores;
    const p = await plan({ action: 'vm.config.update', environment: 'prod', target: { vmid: 200 }, params: { cores: 8 }, reason: 'even more cores' });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const done = await applyAndWait(p.body);
    expect(done.status).toBe('failed');
    expect(done.result).toMatchObject({ outcome: 'failed', errorType: 'SafeguardFailed', safeguard: { snapshot: safeguardSnapshotName(p.body.planId) } });
    expect(done.result.message).toContain('the action was not run');
    expect(sim.mutations.all().filter((m) => m.vmid === 200 && m.op === 'config')).toHaveLength(configsBefore);
    expect(configWithPending(sim.model.findGuest(200)!).cores).toBe(cores);
    const events = (await t.service.audit.forPlan(p.body.planId)).map((r) => r.event);
    expect(events).toContain('safeguard.failed');
    expect(events).not.toContain('apply.started');
  });

  it('holds the action, not a second snapshot, when a freeze lands after the snapshot was sent; runs it on the lift', async () => {
    const sim = t.sim('prod');
    // The snapshot task runs long enough for a freeze to land after its dispatch and before the action's.
    sim.faults.add({ kind: 'slow-task', method: 'POST', path: '/nodes/*/qemu/200/snapshot', durationMs: 2_000, times: 1 });
    const p = await plan({ action: 'vm.config.update', environment: 'prod', target: { vmid: 200 }, params: { cores: 5 }, reason: 'five cores' });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const name = safeguardSnapshotName(p.body.planId);
    expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.body.planId, requestHash: p.body.requestHash } })).status).toBe(202);
    if (p.body.status === 'awaiting_approval') expect((await t.call('POST', `/v1/actions/${p.body.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(202);
    const snapshotRunning = () => sim.model.tasks().some((x) => x.type === 'qmsnapshot' && x.id === '200' && x.status === 'running');
    for (let i = 0; i < 200 && !snapshotRunning(); i++) await new Promise((r) => setTimeout(r, 25));
    expect(snapshotRunning()).toBe(true);
    const f = await t.call('POST', '/v1/freezes', { token: ADMIN, body: { environment: 'prod', reason: 'incident during the snapshot' } });
    expect(f.status, JSON.stringify(f.body)).toBe(201);
    try {
      // Held: the view names the freeze once the action's dispatch met it.
      let held: any;
      for (let i = 0; i < 200; i++) {
        held = (await t.call('GET', `/v1/actions/${p.body.planId}`, { token: TOKENS.agent })).body;
        if (held.frozen?.id === f.body.id && held.safeguard?.taken) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(held.frozen?.id).toBe(f.body.id);
      expect(held.safeguard.taken.upid).toBeTruthy();
      expect(sim.mutations.all().filter((m) => m.vmid === 200 && m.op === 'config' && m.time >= Date.parse(p.body.createdAt))).toHaveLength(0);
    } finally {
      expect((await t.call('DELETE', `/v1/freezes/${f.body.id}`, { token: ADMIN })).status).toBe(200);
    }
    const done = await t.waitForStatus(p.body.planId, ['succeeded', 'failed'], 90_000);
    expect(done.status, JSON.stringify(done.result)).toBe('succeeded');
    expect(sim.mutations.all().filter((m) => m.vmid === 200 && m.op === 'snapshot' && m.key === name)).toHaveLength(1);
    expect(configWithPending(sim.model.findGuest(200)!).cores).toBe('5');
  }, 120_000);
});
