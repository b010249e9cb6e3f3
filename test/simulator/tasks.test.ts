/** UPID format, task lifecycle, status/log/list endpoints and stopping a task. */
import { afterEach, describe, expect, it } from 'vitest';
import { UPID_RE, parseUpid } from '../../src/proxmox/upid.js';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { del, get, post, sleep, startLab, taskLog, waitTask } from './helpers.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const statusPath = (upid: string): string => `/nodes/pve-lab/tasks/${encodeURIComponent(upid)}/status`;

describe('UPIDs', () => {
  it('have the exact real format: uppercase hex fields, type, vmid, token user, trailing colon', async () => {
    sim = await startLab();
    const r = await post(sim, '/nodes/pve-lab/qemu/101/status/start');
    const upid = r.body.data as string;
    expect(upid).toMatch(UPID_RE);
    expect(upid).toMatch(/^UPID:pve-lab:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:qmstart:101:proxmox-agent@pve!agent:$/);
    const parts = parseUpid(upid)!;
    expect(parts).toMatchObject({ node: 'pve-lab', type: 'qmstart', id: '101', user: 'proxmox-agent@pve', tokenid: 'agent' });
    expect(Math.abs(parts.starttime - Date.now() / 1000)).toBeLessThan(5);
  });
});

describe('task lifecycle', () => {
  it('runs for taskDurationMs, applies its effect on completion and ends TASK OK', async () => {
    // Tasks here last long enough that the requests checking them "running" finish first on any machine.
    sim = await startLab({ taskDurationMs: 1000 });
    const upid = (await post(sim, '/nodes/pve-lab/qemu/101/status/start')).body.data as string;
    const running = await get(sim, statusPath(upid));
    expect(running.body.data).toMatchObject({
      upid, node: 'pve-lab', type: 'qmstart', id: '101', user: 'proxmox-agent@pve', tokenid: 'agent', status: 'running',
    });
    expect(running.body.data.exitstatus).toBeUndefined();
    // The guest only changes state when the task completes.
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data.status).toBe('stopped');
    const done = await waitTask(sim, upid);
    expect(done).toMatchObject({ status: 'stopped', exitstatus: 'OK' });
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data.status).toBe('running');
    const log = await taskLog(sim, upid);
    expect(log.at(-1)).toBe('TASK OK');
  });

  it('a failing task ends with the error as exitstatus and TASK ERROR in its log', async () => {
    sim = await startLab();
    const upid = (await post(sim, '/nodes/pve-lab/qemu/100/status/start')).body.data as string;
    const done = await waitTask(sim, upid);
    expect(done.exitstatus).toBe('VM 100 already running');
    expect((await taskLog(sim, upid)).at(-1)).toBe('TASK ERROR: VM 100 already running');
  });

  it('serves the log with n/t lines, start/limit paging and total', async () => {
    sim = await startLab();
    const upid = (await post(sim, '/nodes/pve-lab/vzdump', { form: { vmid: '100', storage: 'local', compress: 'zstd' } })).body.data as string;
    await waitTask(sim, upid);
    const all = await get(sim, `/nodes/pve-lab/tasks/${encodeURIComponent(upid)}/log`);
    expect(all.body.total).toBeGreaterThan(4);
    expect(all.body.data[0]).toEqual({ n: 1, t: 'INFO: starting new backup job: vzdump 100 --storage local --mode snapshot --compress zstd --node pve-lab' });
    const page = await get(sim, `/nodes/pve-lab/tasks/${encodeURIComponent(upid)}/log`, { query: { start: 1, limit: 2 } });
    expect(page.body.data.map((l: { n: number }) => l.n)).toEqual([2, 3]);
    expect(page.body.total).toBe(all.body.total);
  });

  it('lists node tasks with filters and total', async () => {
    sim = await startLab({ taskDurationMs: 1500 });
    const a = (await post(sim, '/nodes/pve-lab/qemu/101/status/start')).body.data as string;
    const b = (await post(sim, '/nodes/pve-lab/lxc/300/status/stop')).body.data as string;
    const active = await get(sim, '/nodes/pve-lab/tasks', { query: { source: 'active' } });
    expect(active.body.data.map((t: { upid: string }) => t.upid).sort()).toEqual([a, b].sort());
    expect((await get(sim, '/nodes/pve-lab/tasks')).body.data).toEqual([]); // default source=archive: finished only
    await waitTask(sim, a);
    await waitTask(sim, b);
    const archive = await get(sim, '/nodes/pve-lab/tasks', { query: { typefilter: 'vzstop' } });
    expect(archive.body.total).toBe(1);
    expect(archive.body.data[0]).toMatchObject({ upid: b, type: 'vzstop', id: '300', status: 'OK', user: 'proxmox-agent@pve', tokenid: 'agent' });
    expect(archive.body.data[0].endtime).toBeGreaterThanOrEqual(archive.body.data[0].starttime);
    expect((await get(sim, '/nodes/pve-lab/tasks', { query: { vmid: 101 } })).body.data.map((t: { upid: string }) => t.upid)).toEqual([a]);
    expect((await get(sim, '/nodes/pve-lab/tasks', { query: { userfilter: 'nobody' } })).body.total).toBe(0);
    expect((await get(sim, '/nodes/pve-lab/tasks', { query: { errors: 1 } })).body.total).toBe(0);
  });

  it('unknown or malformed UPIDs answer 400 like read_task_status', async () => {
    sim = await startLab();
    const bad = await get(sim, statusPath('UPID:nope'));
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual({ upid: 'unable to parse worker upid' });
    const unknown = await get(sim, statusPath('UPID:pve-lab:00001234:00001234:6745F0A1:qmstart:100:root@pam:'));
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors).toEqual({ upid: 'no such task' });
  });

  it('a task asked on another node is not found there', async () => {
    const { startSimulator, demoClusters } = await import('../../src/simulator/index.js');
    const { prod } = demoClusters({ lab: 'x', prod: 'p' });
    sim = await startSimulator({ cluster: prod, authFailureDelayMs: 0, taskDurationMs: 20 });
    const auth = 'PVEAPIToken=proxmox-agent@pve!agent=p';
    const upid = (await post(sim, '/nodes/pve-prod/qemu/201/status/start', { auth })).body.data as string;
    const r = await get(sim, `/nodes/pve-prod-2/tasks/${encodeURIComponent(upid)}/status`, { auth });
    expect(r.body.errors).toEqual({ upid: 'no such task' });
  });

  it('DELETE stops a running task: it ends "received interrupt" and applies nothing', async () => {
    sim = await startLab({ taskDurationMs: 2000 });
    const upid = (await post(sim, '/nodes/pve-lab/qemu/100/snapshot', { form: { snapname: 'pre' } })).body.data as string;
    expect(sim.model.guest(100)?.lock).toBe('snapshot');
    const r = await del(sim, `/nodes/pve-lab/tasks/${encodeURIComponent(upid)}`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ data: null });
    const done = await waitTask(sim, upid);
    expect(done.exitstatus).toBe('received interrupt');
    expect((await taskLog(sim, upid)).at(-1)).toBe('TASK ERROR: received interrupt');
    expect(sim.model.guest(100)?.lock).toBeUndefined();
    expect(sim.model.snapshots(100)).toEqual([]);
    expect(sim.mutations.all()).toEqual([]);
    await sleep(2100); // past the task's natural end: the interrupted task still applies nothing
    expect(sim.model.snapshots(100)).toEqual([]);
  });
});
