/** Power actions and the QEMU/LXC asymmetries, plus HA-managed guests. */
import { afterEach, describe, expect, it } from 'vitest';
import { type ProxmoxSimulator, startSimulator } from '../../src/simulator/index.js';
import { AUTH, eventually, get, labSeed, post, runTask, startLab, waitTask } from './helpers.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('QEMU vs LXC asymmetries', () => {
  it('start of a running VM is a task that fails; of a running CT a synchronous 500', async () => {
    sim = await startLab();
    const vm = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/status/start');
    expect(vm).toMatchObject({ type: 'qmstart', exitstatus: 'VM 100 already running' });
    const ct = await post(sim, '/nodes/pve-lab/lxc/300/status/start');
    expect(ct.status).toBe(500);
    expect(ct.statusText).toBe('CT 300 already running');
    expect(ct.body.message).toBe('CT 300 already running\n');
  });

  it('stop of a stopped VM is an OK no-op task; of a stopped CT a 500 `CT 300 not running`', async () => {
    sim = await startLab();
    const vm = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/stop');
    expect(vm).toMatchObject({ type: 'qmstop', exitstatus: 'OK' });
    expect(sim.mutations.all()).toEqual([]); // a no-op is not a mutation
    await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/stop');
    expect(sim.model.guest(300)?.status).toBe('stopped');
    const ct = await post(sim, '/nodes/pve-lab/lxc/300/status/stop');
    expect(ct.status).toBe(500);
    expect(ct.statusText).toBe('CT 300 not running');
    const sd = await post(sim, '/nodes/pve-lab/lxc/300/status/shutdown');
    expect(sd.statusText).toBe('CT 300 not running');
  });

  it('reboot/suspend/reset/resume of a stopped guest answer 500 not running', async () => {
    sim = await startLab();
    for (const action of ['reboot', 'suspend', 'reset', 'resume']) {
      const r = await post(sim, `/nodes/pve-lab/qemu/101/status/${action}`);
      expect(r.status, action).toBe(500);
      expect(r.statusText, action).toBe('VM 101 not running');
    }
    await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/stop');
    expect((await post(sim, '/nodes/pve-lab/lxc/300/status/reboot')).statusText).toBe('VM 300 not running');
  });

  it('uses the real task types and changes state on completion', async () => {
    sim = await startLab();
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/start')).type).toBe('qmstart');
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/reboot')).type).toBe('qmreboot');
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/reset')).type).toBe('qmreset');
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/shutdown')).type).toBe('qmshutdown');
    expect(sim.model.guest(101)?.status).toBe('stopped');
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/shutdown')).type).toBe('vzshutdown');
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/start')).type).toBe('vzstart');
    expect(sim.mutations.all().map((m) => `${m.vmid}:${m.op}`)).toEqual([
      '101:start', '101:reboot', '101:reset', '101:shutdown', '300:shutdown', '300:start',
    ]);
  });

  it('a paused VM reads status running + qmpstatus paused; shutdown needs forceStop', async () => {
    sim = await startLab();
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/status/suspend')).type).toBe('qmpause');
    const cur = (await get(sim, '/nodes/pve-lab/qemu/100/status/current')).body.data;
    expect(cur).toMatchObject({ status: 'running', qmpstatus: 'paused', ha: { managed: 0 } });
    const refused = await post(sim, '/nodes/pve-lab/qemu/100/status/shutdown');
    expect(refused.status).toBe(500);
    expect(refused.statusText).toBe('VM is paused - cannot shutdown');
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/status/shutdown', { form: { forceStop: 1 } })).exitstatus).toBe('OK');
    expect(sim.model.guest(100)).toMatchObject({ status: 'stopped', qmpstatus: 'stopped' });
  });

  it('resume unpauses; suspend todisk hibernates with lock suspended', async () => {
    sim = await startLab();
    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/status/suspend');
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/status/resume')).type).toBe('qmresume');
    expect(sim.model.guest(100)?.qmpstatus).toBe('running');
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/status/suspend', { form: { todisk: 1 } })).type).toBe('qmsuspend');
    expect(sim.model.guest(100)).toMatchObject({ status: 'stopped', lock: 'suspended' });
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/status/resume')).exitstatus).toBe('OK');
    expect(sim.model.guest(100)).toMatchObject({ status: 'running' });
    expect(sim.model.guest(100)?.lock).toBeUndefined();
  });

  it('status/current reports uptime and pid only while running', async () => {
    sim = await startLab();
    const running = (await get(sim, '/nodes/pve-lab/lxc/300/status/current')).body.data;
    expect(running).toMatchObject({ vmid: 300, name: 'cache-lab', status: 'running', type: 'lxc', tags: 'cache;lab' });
    expect(running.pid).toBeGreaterThan(0);
    const stopped = (await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data;
    expect(stopped).toMatchObject({ status: 'stopped', qmpstatus: 'stopped', uptime: 0 });
    expect(stopped.pid).toBeUndefined();
  });
});

describe('HA-managed guests', () => {
  it('start/stop produce hastart/hastop tasks that end OK before the guest changes state', async () => {
    const seed = labSeed();
    seed.guests.find((g) => g.vmid === 101)!.haManaged = true;
    // ha-manager acts a second after the task: long enough for the checks in between on any machine.
    sim = await startSimulator({ cluster: seed, authFailureDelayMs: 0, taskDurationMs: 20, haDelayMs: 1000 });
    const cur0 = (await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data;
    expect(cur0.ha).toEqual({ managed: 1, state: 'stopped' });

    const start = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/start');
    expect(start).toMatchObject({ type: 'hastart', exitstatus: 'OK', id: '101' });
    // The task is done but ha-manager has not started the VM yet: clients must poll status/current.
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data.status).toBe('stopped');
    await eventually(() => sim!.model.guest(101)?.status === 'running', 10_000);
    const res = (await get(sim, '/cluster/resources', { query: { type: 'vm' } })).body.data;
    expect(res.find((r: { vmid: number }) => r.vmid === 101)).toMatchObject({ status: 'running', hastate: 'started' });

    const stop = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/stop');
    expect(stop.type).toBe('hastop');
    expect(sim.model.guest(101)?.status).toBe('running');
    await eventually(() => sim!.model.guest(101)?.status === 'stopped', 10_000);
    expect(sim.mutations.all().map((m) => [m.op, m.upid?.split(':')[5]])).toEqual([
      ['start', 'hastart'],
      ['stop', 'hastop'],
    ]);
  });

  it('HA-managed guests cannot be destroyed without purge', async () => {
    const seed = labSeed();
    seed.guests.find((g) => g.vmid === 101)!.haManaged = true;
    sim = await startSimulator({ cluster: seed, authFailureDelayMs: 0, taskDurationMs: 20 });
    const d = await fetch(`${sim.url}/api2/json/nodes/pve-lab/qemu/101`, { method: 'DELETE', headers: { Authorization: AUTH } });
    expect(d.status).toBe(500);
    expect(d.statusText).toBe('unable to remove VM 101 - used in HA resources and purge parameter not set.');
    const purged = await fetch(`${sim.url}/api2/json/nodes/pve-lab/qemu/101?purge=1`, { method: 'DELETE', headers: { Authorization: AUTH } });
    const upid = ((await purged.json()) as { data: string }).data;
    expect((await waitTask(sim, upid)).exitstatus).toBe('OK');
    expect(sim.model.guest(101)).toBeUndefined();
  });
});
