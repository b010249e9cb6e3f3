/**
 * Issue 3 §5: 50 mixed actions under injected Proxmox faults (30% transient errors on dispatch,
 * dropped connections after dispatch, errors while polling, slow tasks) with the worker process
 * SIGKILLed mid-task and restarted. Every action must end succeeded (or failed with Proxmox's own
 * reason), and the simulator's mutation log must show no mutation twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimGuestSeed } from '../../src/simulator/index.js';
import { startSplitService, type SplitService } from './support/split-service.js';

const AGENT = 'demo-agent-token';
const APPROVER = 'demo-approver-1-token';
const N = 50;

const guests: SimGuestSeed[] = Array.from({ length: N }, (_, i) => ({
  vmid: 1000 + i,
  type: 'qemu',
  node: 'pve-f1',
  name: `vm-${1000 + i}`,
  status: i % 2 === 0 ? 'running' : 'stopped',
  disks: { scsi0: `local-lvm:vm-${1000 + i}-disk-0,size=8G` },
}));

/** What each guest gets asked to do, and the state that proves it happened. */
function actionFor(g: SimGuestSeed, i: number): { action: string; params: Record<string, unknown>; op: string } {
  if (g.status === 'running') {
    return [
      { action: 'vm.stop', params: {}, op: 'stop' },
      { action: 'vm.shutdown', params: { forceStop: true }, op: 'shutdown' },
      { action: 'vm.reboot', params: {}, op: 'reboot' },
      { action: 'vm.snapshot.create', params: { snapname: `chaos-${i}` }, op: 'snapshot' },
    ][(i / 2) % 4]!;
  }
  return [
    { action: 'vm.start', params: {}, op: 'start' },
    { action: 'vm.delete', params: { purge: true }, op: 'destroy' },
    { action: 'vm.snapshot.create', params: { snapname: `chaos-${i}` }, op: 'snapshot' },
    { action: 'vm.start', params: {}, op: 'start' },
  ][((i - 1) / 2) % 4]!;
}

let s: SplitService;
beforeAll(async () => {
  s = await startSplitService({ guests, taskDurationMs: 100 });
}, 120_000);
afterAll(async () => {
  await s?.stop();
});

describe('exactly once under faults and a worker crash', () => {
  it('runs 50 mixed actions to their correct end with no duplicate mutation', async () => {
    let worker = await s.startWorker();
    const planned: { planId: string; requestHash: string; vmid: number; action: string; op: string; decision: string }[] = [];
    for (let i = 0; i < N; i += 10) {
      const batch = await Promise.all(
        guests.slice(i, i + 10).map(async (g, j) => {
          const a = actionFor(g, i + j);
          const res = await s.call('POST', '/v1/actions/plan', {
            token: AGENT,
            body: { action: a.action, environment: 'lab', target: { vmid: g.vmid }, params: a.params, reason: `chaos ${i + j}` },
          });
          expect(res.status, JSON.stringify(res.body)).toBe(201);
          return { planId: res.body.planId, requestHash: res.body.requestHash, vmid: g.vmid, action: a.action, op: a.op, decision: res.body.decision };
        }),
      );
      planned.push(...batch);
    }
    expect(planned.filter((p) => p.decision === 'denied')).toEqual([]);

    // Faults from here on: the dispatches and the task polls are where exactly-once is at stake.
    const f = s.sim.faults;
    f.slowTasks(2500);
    f.errorRate({ method: 'POST', path: '/nodes/*/qemu/*/status/*', rate: 0.3, status: 500, message: "can't lock file '/var/lock/qemu-server/lock.conf' - got timeout" });
    f.errorRate({ method: 'POST', path: '/nodes/*/qemu/*/snapshot', rate: 0.3, status: 503, message: 'Service Unavailable' });
    // Each kind also hits its first match for sure, so the run never depends on how the dice fell.
    f.errorRate({ method: 'DELETE', path: '/nodes/*/qemu/*', times: 1, status: 502, message: 'Bad Gateway', afterDispatch: true });
    f.errorRate({ method: 'DELETE', path: '/nodes/*/qemu/*', rate: 0.3, status: 502, message: 'Bad Gateway', afterDispatch: true });
    f.dropAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/*/status/*', times: 1 });
    f.dropAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/*/**', rate: 0.15 });
    f.errorRate({ method: 'GET', path: '/nodes/*/tasks/*/status', rate: 0.3, status: 596, message: 'Broken pipe' });

    const applied = await Promise.all(planned.map((p) => s.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId: p.planId, requestHash: p.requestHash } })));
    expect(applied.map((a) => a.status)).toEqual(planned.map(() => 202));
    for (const p of planned.filter((x) => x.decision === 'requires_approval')) {
      expect((await s.call('POST', `/v1/actions/${p.planId}/approvals`, { token: APPROVER, body: { decision: 'approve' } })).status).toBe(202);
    }

    // Kill the worker while Proxmox tasks run (they take 2.5 s), then bring a new one up.
    const running = () => s.sim.model.tasks().filter((t) => t.status === 'running').length;
    for (let i = 0; i < 100 && running() < 5; i++) await new Promise((r) => setTimeout(r, 100));
    const inFlight = running();
    expect(inFlight).toBeGreaterThan(0);
    await worker.kill('SIGKILL');
    worker = await s.startWorker();

    const final = new Map<string, any>();
    const deadline = Date.now() + 240_000;
    while (final.size < planned.length && Date.now() < deadline) {
      for (const p of planned) {
        if (final.has(p.planId)) continue;
        const v = (await s.call('GET', `/v1/actions/${p.planId}`, { token: AGENT })).body;
        if (['succeeded', 'failed'].includes(v?.status)) final.set(p.planId, v);
      }
      if (final.size < planned.length) await new Promise((r) => setTimeout(r, 1000));
    }
    const stuck = planned.filter((p) => !final.has(p.planId));
    expect(stuck, `not finished:\n${worker.output().slice(-4000)}`).toEqual([]);

    const failed = [...final.values()].filter((v) => v.status === 'failed');
    for (const v of failed) {
      // A failure must carry Proxmox's own reason, never a lost or unknown outcome.
      expect(v.result.errorType).toMatch(/^Proxmox/);
      expect(v.result.message).toBeTruthy();
    }
    const duplicates = s.sim.mutations.duplicates();
    expect(duplicates).toEqual([]);
    for (const p of planned) {
      const v = final.get(p.planId)!;
      if (v.status !== 'succeeded') continue;
      const count = s.sim.mutations.countFor(p.vmid, p.op as never);
      expect(count, `${p.action} on ${p.vmid}`).toBe(v.result.outcome === 'applied' ? 1 : 0);
      const guest = s.sim.model.guest(p.vmid);
      if (p.action === 'vm.delete') expect(guest).toBeUndefined();
      if (p.action === 'vm.start') expect(guest?.status).toBe('running');
      if (p.action === 'vm.stop' || p.action === 'vm.shutdown') expect(guest?.status).toBe('stopped');
      if (p.action === 'vm.snapshot.create') expect(s.sim.model.snapshots(p.vmid)).toContain(`chaos-${guests.findIndex((g) => g.vmid === p.vmid)}`);
    }
    const hits = s.sim.faults.hits();
    console.log(
      `[faults] flows ${planned.length}, succeeded ${final.size - failed.length}, failed ${failed.length}, ` +
        `Proxmox tasks in flight at the SIGKILL ${inFlight}, every task slowed to 2.5 s, faults injected ${JSON.stringify(hits)}, ` +
        `mutations ${s.sim.mutations.all().length}, duplicates ${duplicates.length}`,
    );
    // The faults really happened: each kind was hit.
    for (const kind of ['error', 'error-after-dispatch', 'drop-after-dispatch']) expect(hits[kind] ?? 0, kind).toBeGreaterThan(0);
    expect(failed.length).toBe(0);
  }, 400_000);
});
