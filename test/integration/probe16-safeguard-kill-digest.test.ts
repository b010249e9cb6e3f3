/**
 * Adversary probe (issue 16): the safeguard snapshot under a worker killed while it is taken.
 *
 * docs/policy.md ("Safeguards"): the snapshot is taken right before the action so that what the
 * action replaces can be had back; "the snapshot is held to the config the plan read (a changed
 * config fails the plan as stale); a snapshot rewrites the guest's config file, so the action is then
 * held to the digest the snapshot left". That is: the action never runs on a config its snapshot does
 * not hold.
 *
 * Scenario (two worker processes, PostgreSQL journal): a safeguarded config update (description) of
 * guest 100 is applied; its snapshot task is slow. While the snapshot task runs every worker is
 * killed (SIGKILL; or SIGTERM with a task longer than the 30 s shutdown grace). The task finishes on
 * Proxmox; then someone changes the guest's cores in Proxmox (an operator in the GUI: after the
 * snapshot, before the action). Fresh workers are started.
 *
 * Oracle (the simulator's model, an outsider's view of Proxmox): if the action ran, the snapshot
 * named after the plan holds the config the action replaced: every key the action did not change is
 * the same in the snapshot and on the guest after the action (a rollback to the snapshot takes back
 * the action, and only it). Otherwise the change after the snapshot should have made the plan stale.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { safeguardSnapshotName } from '../../src/domain/safeguard.js';
import type { SimGuestSeed } from '../../src/simulator/index.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { startSplitService, type SplitService, type WorkerProcess } from './support/split-service.js';
import { until } from './support/until.js';

const AGENT = 'demo-agent-token';
const ALICE = 'demo-approver-1-token';
const VMID = 100;
const guests: SimGuestSeed[] = [{ vmid: VMID, type: 'qemu', node: 'pve-f1', name: 'vm-100', status: 'running', cores: 2 }];

let pg: TempPostgres | undefined;
let s: SplitService | undefined;

describePostgres('probe16: safeguard snapshot, workers killed while it is taken, guest changed before the action', () => {
  afterEach(async () => {
    await s?.stop();
    await pg?.stop();
    s = undefined;
    pg = undefined;
  });

  for (const [signal, taskMs] of [
    ['SIGKILL', 4_000],
    ['SIGTERM', 40_000],
  ] as const) {
    it(`${signal}: the action does not run on a config its safeguard snapshot does not hold`, { timeout: 300_000 }, async () => {
      pg = await startTempPostgres();
      s = await startSplitService({
        audit: { postgres: { url: { env: 'PA_AUDIT_PG_URL' } } },
        env: { PA_AUDIT_PG_URL: await pg.createDatabase() },
        guests,
        taskDurationMs: 100,
        policy: { rules: [{ id: 'p16-lab-snapshot-first', match: { environments: ['lab'], actions: ['*.config.update'] }, safeguard: 'snapshot' }] },
      });
      const sim = s.sim;
      let workers: WorkerProcess[] = await Promise.all([s.startWorker(), s.startWorker()]);

      const p = await s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.config.update', environment: 'lab', target: { vmid: VMID }, params: { description: 'probe16 guarded' }, reason: 'probe16 kill digest' } });
      expect(p.status, JSON.stringify(p.body)).toBe(201);
      const { planId, requestHash } = p.body;
      const name = safeguardSnapshotName(planId);
      expect(p.body.safeguard).toEqual({ kind: 'snapshot', name });
      sim.faults.add({ kind: 'slow-task', method: 'POST', path: `/nodes/*/qemu/${VMID}/snapshot`, durationMs: taskMs, times: 1 });
      expect((await s.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId, requestHash } })).status).toBeLessThan(300);
      if (p.body.status === 'awaiting_approval') expect((await s.call('POST', `/v1/actions/${planId}/approvals`, { token: ALICE, body: { decision: 'approve' } })).status).toBe(202);

      // The safeguard snapshot task runs on Proxmox: every worker is killed.
      const running = () => sim.model.tasks().find((t) => t.type === 'qmsnapshot' && t.id === String(VMID));
      await until('the safeguard snapshot task to run', () => running()?.status === 'running', 60_000, 20);
      await new Promise((r) => setTimeout(r, 500));
      await Promise.all(workers.map((w) => w.kill(signal)));
      workers = [];

      // The task ends on Proxmox; then the guest is changed there (after the snapshot, before the action).
      await until('the snapshot task to end', () => running()?.status === 'stopped', 120_000, 50);
      expect(sim.model.snapshots(VMID)).toContain(name);
      sim.model.findGuest(VMID)!.config.cores = '7';

      workers = await Promise.all([s.startWorker(), s.startWorker()]);
      const done = await s.api!.client.workflow.getHandle(planId).result();

      const guest = sim.model.findGuest(VMID)!;
      const snap = guest.snapshots.find((x) => x.name === name);
      const actionRan = guest.config.description?.includes('probe16 guarded') ?? false;
      console.log(`probe16 kill digest (${signal}): plan ${done.status} ${done.result?.errorType ?? ''}; action ran: ${actionRan}; snapshot cores ${snap?.config.cores}, guest cores ${guest.config.cores}`);
      if (actionRan) {
        expect(snap, `the action ran without a snapshot '${name}'`).toBeDefined();
        const untouched = (cfg: Record<string, string>) => Object.fromEntries(Object.entries(cfg).filter(([k]) => k !== 'description' && k !== 'parent' && k !== 'digest'));
        expect(
          untouched(guest.config),
          `plan ${planId} (${done.status}) ran its action on a config its safeguard snapshot '${name}' does not hold: cores was changed on Proxmox after the snapshot ` +
            `(snapshot cores=${snap!.config.cores}, guest now cores=${guest.config.cores}); a rollback to the snapshot would also undo that change`,
        ).toEqual(untouched(snap!.config));
      } else {
        expect(done.status).toBe('failed');
      }
    });
  }

  it('SIGKILL, another plan: no other plan changes the guest between the safeguard snapshot and the action', { timeout: 300_000 }, async () => {
    pg = await startTempPostgres();
    s = await startSplitService({
      audit: { postgres: { url: { env: 'PA_AUDIT_PG_URL' } } },
      env: { PA_AUDIT_PG_URL: await pg.createDatabase() },
      guests,
      taskDurationMs: 100,
      policy: { rules: [{ id: 'p16-lab-snapshot-first', match: { environments: ['lab'], actions: ['*.config.update'] }, safeguard: 'snapshot' }] },
    });
    const sim = s.sim;
    // One worker runs the plan's safeguard snapshot; a second one is started while it runs.
    const first = await s.startWorker();
    const p = await s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.config.update', environment: 'lab', target: { vmid: VMID }, params: { description: 'probe16 guarded' }, reason: 'probe16 kill digest, other plan' } });
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const { planId, requestHash } = p.body;
    const name = safeguardSnapshotName(planId);
    sim.faults.add({ kind: 'slow-task', method: 'POST', path: `/nodes/*/qemu/${VMID}/snapshot`, durationMs: 30_000, times: 1 });
    expect((await s.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId, requestHash } })).status).toBeLessThan(300);
    if (p.body.status === 'awaiting_approval') expect((await s.call('POST', `/v1/actions/${planId}/approvals`, { token: ALICE, body: { decision: 'approve' } })).status).toBe(202);
    const task = () => sim.model.tasks().find((t) => t.type === 'qmsnapshot' && t.id === String(VMID));
    await until('the safeguard snapshot task to run', () => task()?.status === 'running', 60_000, 20);
    const seenRunning = Date.now();
    const second = await s.startWorker();
    expect(task()?.status, 'the second worker took longer to start than the snapshot task ran').toBe('running');
    // Killed about two seconds before the task ends: its retry comes after the heartbeat timeout (10 s).
    await new Promise((r) => setTimeout(r, Math.max(0, seenRunning + 28_000 - Date.now())));
    await first.kill('SIGKILL');
    await until('the snapshot task to end', () => task()?.status === 'stopped', 60_000, 20);

    // Another plan on the same guest, made now (it reads the config the snapshot left).
    const c = await s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.config.update', environment: 'lab', target: { vmid: VMID }, params: { cores: 7 }, reason: 'probe16 another plan' } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    expect((await s.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId: c.body.planId, requestHash: c.body.requestHash } })).status).toBeLessThan(300);
    if (c.body.status === 'awaiting_approval') expect((await s.call('POST', `/v1/actions/${c.body.planId}/approvals`, { token: ALICE, body: { decision: 'approve' } })).status).toBe(202);

    const [done, other] = await Promise.all([s.api!.client.workflow.getHandle(planId).result(), s.api!.client.workflow.getHandle(c.body.planId).result()]);
    const log = sim.mutations.all().filter((m) => m.vmid === VMID);
    const snap = log.find((m) => m.op === 'snapshot' && m.key === name);
    const action = log.find((m) => m.op === 'config' && m.key === 'description');
    console.log(`probe16 kill digest (other plan): plan ${done.status} ${done.result?.errorType ?? ''}, other ${other.status}; log ${JSON.stringify(log.map((m) => [m.seq, m.op, m.key]))}; second worker ${second.url}`);
    if (action) {
      expect(snap && snap.seq < action.seq, `the action ran without its snapshot '${name}' before it`).toBe(true);
      const between = log.filter((m) => m.seq > snap!.seq && m.seq < action.seq);
      expect(
        between.map((m) => `${m.op} ${m.key}`),
        `plan ${planId} (${done.status}) ran its action (seq ${action.seq}) on a config its safeguard snapshot '${name}' (seq ${snap!.seq}) does not hold: ` +
          `another plan (${other.planId}, ${other.status}) changed the guest in between`,
      ).toEqual([]);
    } else {
      expect(done.status).toBe('failed');
    }
  });
});
