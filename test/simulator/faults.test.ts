/** Every fault kind, in-process and through the /_sim control API. */
import { afterEach, describe, expect, it } from 'vitest';
import { demoClusters, startSimulator, type ProxmoxSimulator } from '../../src/simulator/index.js';
import { AUTH, call, del, eventually, get, LAB_SECRET, post, runTask, sleep, startLab, taskLog, waitTask } from './helpers.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function outcomes(s: ProxmoxSimulator, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await post(s, '/nodes/pve-lab/qemu/101/status/stop')).status);
  return out;
}

describe('error rates', () => {
  it('hit a matching fraction of requests, reproducibly for a given seed, without executing them', async () => {
    sim = await startLab({ faultSeed: 42 });
    sim.faults.errorRate({ method: 'POST', path: '/nodes/*/qemu/*/status/*', rate: 0.3, status: 500 });
    const first = await outcomes(sim, 40);
    const failed = first.filter((s) => s === 500).length;
    expect(failed).toBeGreaterThan(4);
    expect(failed).toBeLessThan(24);
    expect(first.filter((s) => s === 200).length + failed).toBe(40);
    // Only the requests that got through created tasks.
    expect(sim.model.tasks().length).toBe(40 - failed);
    // Every routed request is counted, faulted or not: hits / requestCount is the injected rate.
    expect(sim.requestCount()).toBe(40);
    expect(sim.faults.hits().error).toBe(failed);
    // Reads are not matched by the POST rule.
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).status).toBe(200);
    await sim.close();

    sim = await startLab({ faultSeed: 42 });
    sim.faults.errorRate({ method: 'POST', path: '/nodes/*/qemu/*/status/*', rate: 0.3, status: 500 });
    expect(await outcomes(sim, 40)).toEqual(first);
  });

  it('default 500 looks like a lock timeout; 503 and 595/596/599 have their reason phrases', async () => {
    sim = await startLab();
    sim.faults.errorRate({ path: '/nodes/pve-lab/qemu/100/status/reboot', status: 500, times: 1 });
    const r = await post(sim, '/nodes/pve-lab/qemu/100/status/reboot');
    expect(r.status).toBe(500);
    expect(r.statusText).toBe("can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout");
    expect((await post(sim, '/nodes/pve-lab/qemu/100/status/reboot')).status).toBe(200); // times: 1 used up

    sim.faults.errorRate({ path: '/version', status: 503, times: 1 });
    expect((await get(sim, '/version')).status).toBe(503);
    for (const [status, reason] of [[595, 'No route to host'], [596, 'Broken pipe'], [599, 'Too many redirections']] as const) {
      sim.faults.errorRate({ path: '/nodes/**', status, times: 1 });
      const e = await get(sim, '/nodes/pve-lab/qemu');
      expect(e.status).toBe(status);
      expect(e.statusText).toBe(reason);
      expect(e.text).toBe('');
    }
  });

  it('afterDispatch: the request executes but the client still sees the error', async () => {
    sim = await startLab();
    sim.faults.errorRate({ method: 'POST', path: '/nodes/*/qemu/*/status/start', status: 599, afterDispatch: true, times: 1 });
    const r = await post(sim, '/nodes/pve-lab/qemu/101/status/start');
    expect(r.status).toBe(599);
    await eventually(() => sim!.model.guest(101)?.status === 'running');
    expect(sim.mutations.countFor(101, 'start')).toBe(1);
  });
});

describe('connection dropped after dispatch', () => {
  it('executes the request (task, mutation) but the client gets no response', async () => {
    sim = await startLab();
    sim.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/pve-lab/qemu/101/snapshot', times: 1 });
    await expect(post(sim, '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'lost-reply' } })).rejects.toThrow();
    const task = sim.model.tasks().find((t) => t.type === 'qmsnapshot')!;
    expect(task).toBeDefined();
    await waitTask(sim, task.upid);
    expect(sim.model.snapshots(101)).toContain('lost-reply');
    expect(sim.mutations.countFor(101, 'snapshot')).toBe(1);
    // A naive client retry re-POSTs: the second task fails on the name, and no duplicate mutation appears.
    const retry = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'lost-reply' } });
    expect(retry.exitstatus).toBe("snapshot name 'lost-reply' already used");
    expect(sim.mutations.duplicates()).toEqual([]);
  });

  it('is not rolled for a request that already answers an after-dispatch error: one fault per request', async () => {
    sim = await startLab();
    sim.faults.errorRate({ method: 'POST', path: '/nodes/*/qemu/*/status/*', status: 502, message: 'Bad Gateway', afterDispatch: true, times: 1 });
    sim.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/*/status/*', times: 1 });
    const first = await post(sim, '/nodes/pve-lab/qemu/101/status/start');
    expect(first.status).toBe(502);
    expect(sim.faults.hits()).toEqual({ 'error-after-dispatch': 1 });
    // The drop rule is still there and takes the next request.
    await expect(post(sim, '/nodes/pve-lab/qemu/100/status/suspend')).rejects.toThrow();
    expect(sim.faults.hits()).toEqual({ 'error-after-dispatch': 1, 'drop-after-dispatch': 1 });
    expect(sim.faults.list()).toEqual([]);
  });
});

describe('task faults', () => {
  it('slow tasks keep running past the normal duration', async () => {
    sim = await startLab({ taskDurationMs: 20 });
    sim.faults.slowTasks(2000, { path: '/nodes/*/qemu/*/status/start' });
    const upid = (await post(sim, '/nodes/pve-lab/qemu/101/status/start')).body.data as string;
    await sleep(120);
    expect(sim.model.task(upid)?.status).toBe('running');
    // Unmatched routes keep the normal duration: this stop ends while the slow start still runs.
    const quick = (await post(sim, '/nodes/pve-lab/lxc/300/status/stop')).body.data as string;
    await waitTask(sim, quick);
    expect(sim.model.task(quick)?.status).toBe('stopped');
    expect(sim.model.task(upid)?.status).toBe('running');
    expect((await waitTask(sim, upid)).exitstatus).toBe('OK');
  });

  it('task-error ends the task with the given error and no effect', async () => {
    sim = await startLab();
    sim.faults.failTasks('storage migration failed', { path: '/nodes/*/qemu/*/status/start' });
    const t = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/start');
    expect(t.exitstatus).toBe('storage migration failed');
    expect((await taskLog(sim, t.upid)).at(-1)).toBe('TASK ERROR: storage migration failed');
    expect(sim.model.guest(101)?.status).toBe('stopped');
    expect(sim.mutations.all()).toEqual([]);
  });

  it('task-warnings applies the effect and ends WARNINGS: n with WARN lines', async () => {
    sim = await startLab();
    sim.faults.warnTasks(2, { path: '/nodes/*/lxc/*/status/shutdown' });
    const t = await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/shutdown');
    expect(t.exitstatus).toBe('WARNINGS: 2');
    const log = await taskLog(sim, t.upid);
    expect(log.filter((l) => l.startsWith('WARN: '))).toHaveLength(2);
    expect(log.at(-1)).toBe('TASK WARNINGS: 2');
    expect(sim.model.guest(300)?.status).toBe('stopped');
  });

  it('task-invisible: a fresh UPID reads "no such task" for a while', async () => {
    sim = await startLab({ taskDurationMs: 20 });
    sim.faults.taskInvisibleFor(1000);
    const upid = (await post(sim, '/nodes/pve-lab/qemu/101/status/start')).body.data as string;
    const early = await get(sim, `/nodes/pve-lab/tasks/${encodeURIComponent(upid)}/status`);
    expect(early.status).toBe(400);
    expect(early.body.errors).toEqual({ upid: 'no such task' });
    // Then it shows up (waitTask polls through the 400s until the task reads stopped).
    expect((await waitTask(sim, upid)).exitstatus).toBe('OK');
  });
});

describe('unreachable node', () => {
  it('requests proxied to it answer 595 with an empty body; cluster views show it offline', async () => {
    sim = await startLab();
    sim.faults.nodeUnreachable('pve-lab');
    const r = await post(sim, '/nodes/pve-lab/qemu/100/status/stop');
    expect(r.status).toBe(595);
    expect(r.statusText).toBe('No route to host');
    expect(r.text).toBe('');
    expect(sim.model.tasks()).toEqual([]);
    const nodes = (await get(sim, '/nodes')).body.data;
    expect(nodes).toEqual([{ id: 'node/pve-lab', type: 'node', node: 'pve-lab', status: 'offline' }]);
    const vms = (await get(sim, '/cluster/resources', { query: { type: 'vm' } })).body.data;
    expect(vms.every((v: { status: string }) => v.status === 'unknown')).toBe(true);
  });

  it('596 and 599 variants', async () => {
    sim = await startLab();
    sim.faults.nodeUnreachable('pve-lab', 596);
    expect((await get(sim, '/nodes/pve-lab/lxc')).statusText).toBe('Broken pipe');
    sim.faults.clear();
    sim.faults.nodeUnreachable('pve-lab', 599);
    const r = await get(sim, '/nodes/pve-lab/lxc');
    expect(r.status).toBe(599);
    expect(r.statusText).toBe('Too many redirections');
  });
});

describe('control API over HTTP (/_sim)', () => {
  it('adds, lists and clears faults; reads mutations; resets state', async () => {
    sim = await startLab();
    const unauth = await call(sim, 'GET', '/_sim/faults', { auth: null });
    expect(unauth.status).toBe(401);

    const added = await call(sim, 'POST', '/_sim/faults', { json: { kind: 'node-unreachable', node: 'pve-lab', status: 595 } });
    expect(added.status).toBe(200);
    expect(added.body.data.id).toMatch(/^f\d+$/);
    expect((await call(sim, 'GET', '/_sim/faults')).body.data).toEqual([{ kind: 'node-unreachable', node: 'pve-lab', status: 595, id: added.body.data.id }]);
    expect((await get(sim, '/nodes/pve-lab/qemu')).status).toBe(595);
    expect((await call(sim, 'DELETE', `/_sim/faults/${added.body.data.id}`)).body.data).toEqual({ removed: true });
    expect((await get(sim, '/nodes/pve-lab/qemu')).status).toBe(200);

    const bad = await call(sim, 'POST', '/_sim/faults', { json: { kind: 'error', path: '/x', status: 200 } });
    expect(bad.status).toBe(400);

    await call(sim, 'POST', '/_sim/faults', { json: { kind: 'lock-contention', vmid: 101 } });
    expect((await call(sim, 'PUT', '/nodes/pve-lab/qemu/101/config', { form: { cores: 6 } })).status).toBe(500);
    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/start');
    const muts = await call(sim, 'GET', '/_sim/mutations');
    expect(muts.body.data).toMatchObject([{ vmid: 101, op: 'start', cluster: 'lab', node: 'pve-lab', type: 'qemu' }]);
    expect(muts.body.duplicates).toEqual([]);
    const state = await call(sim, 'GET', '/_sim/state');
    expect(state.body.data.guests.find((g: { vmid: number }) => g.vmid === 101).status).toBe('running');

    expect((await call(sim, 'POST', '/_sim/reset')).status).toBe(200);
    expect(sim.model.guest(101)?.status).toBe('stopped');
    expect(sim.mutations.all()).toEqual([]);
    expect((await call(sim, 'GET', '/_sim/faults')).body.data).toEqual([]);
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data.status).toBe('stopped');
  });

  it('moves a guest to another node as the load balancer or HA would: no task, no mutation, the same config', async () => {
    sim = await startSimulator({ cluster: demoClusters({ lab: 'unused', prod: LAB_SECRET }).prod, taskDurationMs: 30, authFailureDelayMs: 0 });
    const before = (await get(sim, '/nodes/pve-prod/qemu/201/config')).body.data;
    const moved = await call(sim, 'POST', '/_sim/guests/201/move', { json: { node: 'pve-prod-2' } });
    expect(moved.status).toBe(200);
    expect(moved.body.data).toEqual({ vmid: 201, node: 'pve-prod-2' });
    expect((await get(sim, '/cluster/resources', { query: { type: 'vm' } })).body.data.find((r: { vmid: number }) => r.vmid === 201).node).toBe('pve-prod-2');
    expect((await get(sim, '/nodes/pve-prod/qemu/201/config')).status).toBe(500);
    expect((await get(sim, '/nodes/pve-prod-2/qemu/201/config')).body.data.digest).toBe(before.digest);
    expect(sim.mutations.all()).toEqual([]);
    expect(sim.model.tasks()).toEqual([]);
    // Refused: a node outside the cluster, an unknown guest, a locked guest (a real migration of it fails too).
    expect((await call(sim, 'POST', '/_sim/guests/201/move', { json: { node: 'pve-x' } })).body).toMatchObject({ message: "no such cluster node 'pve-x'\n" });
    expect((await call(sim, 'POST', '/_sim/guests/999/move', { json: { node: 'pve-prod' } })).status).toBe(400);
    sim.faults.slowTasks(500);
    await post(sim, '/nodes/pve-prod/qemu/200/snapshot', { form: { snapname: 'held' } });
    expect((await call(sim, 'POST', '/_sim/guests/200/move', { json: { node: 'pve-prod-2' } })).body).toMatchObject({ message: 'VM is locked (snapshot)\n' });
    expect(sim.model.guest(200)!.node).toBe('pve-prod');
  });

  it('reseeds the fault RNG over HTTP', async () => {
    sim = await startLab();
    const run = async (): Promise<number[]> => {
      await call(sim!, 'DELETE', '/_sim/faults');
      await call(sim!, 'POST', '/_sim/faults/seed', { json: { seed: 7 } });
      await call(sim!, 'POST', '/_sim/faults', { json: { kind: 'error', method: 'POST', path: '/nodes/*/qemu/*/status/*', rate: 0.5, status: 503 } });
      return outcomes(sim!, 12);
    };
    const a = await run();
    expect(a).toContain(503);
    expect(a).toContain(200);
    expect(await run()).toEqual(a);
  });

  it('the control API is not reachable under /api2/json', async () => {
    sim = await startLab();
    const r = await fetch(`${sim.url}/api2/json/_sim/faults`, { headers: { Authorization: AUTH } });
    expect(r.status).toBe(501);
    expect((await del(sim, '/nodes/pve-lab/qemu/101/snapshot/before-upgrade')).status).toBe(200);
  });
});
