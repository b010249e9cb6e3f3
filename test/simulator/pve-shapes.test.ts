/**
 * Response shapes checked against qemu-server 9.2.6, pve-container and pve-manager (issue 16):
 * which keys appear when, and the errors real PVE answers where the simulator used to be lenient.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type ProxmoxSimulator, startSimulator } from '../../src/simulator/index.js';
import { eventually, get, labSeed, post, put, runTask, startLab } from './helpers.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('QEMU status shapes (vmstatus $full, vm_status)', () => {
  it('the VM list carries qmpstatus only with full=1; status/current always (stopped VMs read qmpstatus stopped)', async () => {
    sim = await startLab();
    const plain = await get(sim, '/nodes/pve-lab/qemu');
    for (const vm of plain.body.data) {
      expect(vm).not.toHaveProperty('qmpstatus');
      expect(vm).not.toHaveProperty('running-qemu');
    }
    const full = await get(sim, '/nodes/pve-lab/qemu', { query: { full: 1 } });
    const byId = Object.fromEntries(full.body.data.map((v: { vmid: number }) => [v.vmid, v]));
    expect(byId[100]).toMatchObject({ qmpstatus: 'running', 'running-qemu': '9.2.0' });
    expect(byId[101]).toMatchObject({ qmpstatus: 'stopped' });
    expect(byId[101]).not.toHaveProperty('running-qemu');
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data.qmpstatus).toBe('stopped');
  });

  it('status/current has `agent: 1` only when the config enables the agent, and no `agent` key otherwise', async () => {
    sim = await startLab();
    // VM 101 is stopped: enabling the agent on a running VM would wait in [PENDING] until a restart.
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data).not.toHaveProperty('agent');
    expect((await put(sim, '/nodes/pve-lab/qemu/101/config', { form: { agent: 'enabled=0,fstrim_cloned_disks=1' } })).status).toBe(200);
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data).not.toHaveProperty('agent');
    expect((await put(sim, '/nodes/pve-lab/qemu/101/config', { form: { agent: '1' } })).status).toBe(200);
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data.agent).toBe(1);
  });
});

describe('errors real PVE answers before doing anything', () => {
  it('hibernating an HA-managed VM is refused: 500 `Cannot suspend HA managed VM to disk`', async () => {
    const seed = labSeed();
    seed.guests = seed.guests.map((g) => (g.vmid === 100 ? { ...g, haManaged: true } : g));
    sim = await startSimulator({ cluster: seed, taskDurationMs: 30, authFailureDelayMs: 0 });
    const r = await post(sim, '/nodes/pve-lab/qemu/100/status/suspend', { form: { todisk: 1 } });
    expect(r.status).toBe(500);
    expect(r.body.message).toBe('Cannot suspend HA managed VM to disk\n');
    expect(sim.model.guest(100)).toMatchObject({ status: 'running' });
    // Suspend to RAM is still allowed for an HA-managed VM.
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/status/suspend')).exitstatus).toBe('OK');
  });

  it('a config write with no options is 500 `no options specified` (QEMU PUT and POST, LXC PUT); a digest alone is no option', async () => {
    sim = await startLab();
    const digest = (await get(sim, '/nodes/pve-lab/qemu/100/config')).body.data.digest as string;
    for (const [method, path, form] of [
      ['PUT', '/nodes/pve-lab/qemu/100/config', {}],
      ['PUT', '/nodes/pve-lab/qemu/100/config', { digest }],
      ['POST', '/nodes/pve-lab/qemu/100/config', {}],
      ['PUT', '/nodes/pve-lab/lxc/300/config', {}],
    ] as const) {
      const r = await (method === 'PUT' ? put : post)(sim, path, { form });
      expect(r.status, `${method} ${path}`).toBe(500);
      expect(r.body.message).toBe('no options specified\n');
    }
    expect(sim.model.tasks().filter((t) => t.type === 'qmconfig')).toEqual([]);
  });
});

describe('task lists', () => {
  it('an active task is listed with status RUNNING (source=active and all), finished ones with their exit status', async () => {
    sim = await startLab({ taskDurationMs: 5_000 });
    const upid = (await post(sim, '/nodes/pve-lab/qemu/101/status/start')).body.data as string;
    const active = await get(sim, '/nodes/pve-lab/tasks', { query: { source: 'active' } });
    expect(active.body.data).toEqual([expect.objectContaining({ upid, status: 'RUNNING' })]);
    const all = await get(sim, '/nodes/pve-lab/tasks', { query: { source: 'all' } });
    expect(all.body.data.find((t: { upid: string }) => t.upid === upid)).toMatchObject({ status: 'RUNNING' });
    expect((await get(sim, '/nodes/pve-lab/tasks')).body.data).toEqual([]);
  });
});

describe('/cluster/resources pools', () => {
  it('lists each pool as `type: pool` with id /pool/NAME; a pool gathers the usage of its running members', async () => {
    sim = await startLab();
    const lab = (await get(sim, '/cluster/resources')).body.data as Record<string, unknown>[];
    expect(lab.filter((e) => e.type === 'pool')).toEqual([{ id: '/pool/lab-sandbox', pool: 'lab-sandbox', type: 'pool' }]);
    expect((await get(sim, '/cluster/resources', { query: { type: 'vm' } })).body.data.some((e: { type: string }) => e.type === 'pool')).toBe(false);
    await sim.close();

    const { demoClusters } = await import('../../src/simulator/index.js');
    sim = await startSimulator({ cluster: demoClusters({ lab: 'x', prod: 'p' }).prod, taskDurationMs: 30, authFailureDelayMs: 0 });
    const res = (await get(sim, '/cluster/resources', { auth: 'PVEAPIToken=proxmox-agent@pve!agent=p' })).body.data as Record<string, unknown>[];
    const pool = res.find((e) => e.type === 'pool');
    const running = res.filter((e) => e.pool === 'production' && e.status === 'running');
    expect(running.map((e) => e.vmid)).toEqual([200, 400]);
    expect(pool).toMatchObject({
      id: '/pool/production', pool: 'production',
      maxmem: running.reduce((a, e) => a + (e.maxmem as number), 0),
      maxcpu: running.reduce((a, e) => a + (e.maxcpu as number), 0),
    });
  });
});

describe('QEMU migrate precondition', () => {
  it('carries mapped-resource-info and has-dbus-vmstate (required by apidata 9.1)', async () => {
    sim = await startLab();
    const r = await get(sim, '/nodes/pve-lab/qemu/100/migrate');
    expect(r.body.data).toMatchObject({ 'mapped-resources': [], 'mapped-resource-info': {}, 'has-dbus-vmstate': 1 });
  });
});

describe('GET /cluster/tasks', () => {
  it("lists every node's active worker list: running tasks keep pid, finished ones carry endtime/status/saved, none pstart", async () => {
    sim = await startLab();
    const done = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/start');
    sim.faults.add({ kind: 'slow-task', durationMs: 5_000, path: '/nodes/*/qemu/*/status/stop' });
    const running = (await post(sim, '/nodes/pve-lab/qemu/101/status/stop')).body.data as string;
    const r = await get(sim, '/cluster/tasks');
    expect(r.status).toBe(200);
    expect(r.body).not.toHaveProperty('total');
    expect(r.body.data).toEqual([
      { upid: running, node: 'pve-lab', pid: expect.any(Number), starttime: expect.any(Number), type: 'qmstop', id: '101', user: 'proxmox-agent@pve', tokenid: 'agent', saved: '0' },
      { upid: done.upid, node: 'pve-lab', starttime: expect.any(Number), type: 'qmstart', id: '101', user: 'proxmox-agent@pve', tokenid: 'agent', saved: '1', endtime: expect.any(Number), status: 'OK' },
    ]);
  });
});

describe('LXC suspend is a checkpoint (lxc-checkpoint -s), resume restores it', () => {
  it('suspend ends with the CT stopped; resume of a running CT is 500 `CT 300 already running`; resume restores it', async () => {
    sim = await startLab();
    const again = await post(sim, '/nodes/pve-lab/lxc/300/status/resume');
    expect(again.status).toBe(500);
    expect(again.body.message).toBe('CT 300 already running\n');
    expect(await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/suspend')).toMatchObject({ type: 'vzsuspend', exitstatus: 'OK' });
    expect(sim.model.guest(300)?.status).toBe('stopped');
    expect((await get(sim, '/nodes/pve-lab/lxc/300/status/current')).body.data.status).toBe('stopped');
    expect(await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/resume')).toMatchObject({ type: 'vzresume', exitstatus: 'OK' });
    expect(sim.model.guest(300)?.status).toBe('running');
  });

  it('resuming a stopped CT that was never checkpointed fails inside the task, as lxc-checkpoint -r does', async () => {
    sim = await startLab();
    await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/stop');
    const t = await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/resume');
    expect(t.exitstatus).toBe("command 'lxc-checkpoint -n 300 -r --foreground -D /var/lib/vz/dump' failed: exit code 1");
    expect(sim.model.guest(300)?.status).toBe('stopped');
  });
});

describe('templates', () => {
  it('POST qemu/{vmid}/template is a qmtemplate task that sets `template: 1` and turns the disks into base volumes', async () => {
    sim = await startLab();
    const running = await post(sim, '/nodes/pve-lab/qemu/100/template');
    expect(running.body.message).toBe("you can't convert a VM to template if VM is running\n");
    const snap = await post(sim, '/nodes/pve-lab/qemu/101/template');
    expect(snap.body.message).toBe('unable to create template, because VM contains snapshots\n');
    await runTask(sim, 'DELETE', '/nodes/pve-lab/qemu/101/snapshot/before-upgrade');
    const t = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/template');
    expect(t).toMatchObject({ type: 'qmtemplate', exitstatus: 'OK' });
    const conf = (await get(sim, '/nodes/pve-lab/qemu/101/config')).body.data;
    expect(conf).toMatchObject({ template: 1, scsi0: expect.stringMatching(/^local-lvm:base-101-disk-0,/) });
    expect((await get(sim, '/cluster/resources', { query: { type: 'vm' } })).body.data.find((e: { vmid: number }) => e.vmid === 101).template).toBe(1);
    expect((await post(sim, '/nodes/pve-lab/qemu/101/template')).body.message).toBe("you can't convert a template to a template\n");
  });

  it('a template cannot be started: the start task fails with the real text (QEMU and LXC)', async () => {
    sim = await startLab();
    await runTask(sim, 'DELETE', '/nodes/pve-lab/qemu/101/snapshot/before-upgrade');
    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/template');
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/start')).exitstatus).toBe("you can't start a vm if it's a template");
    expect(sim.model.guest(101)?.status).toBe('stopped');

    await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/stop');
    const ct = await post(sim, '/nodes/pve-lab/lxc/300/template');
    expect(ct.status).toBe(200);
    expect(ct.body.data).toBeNull(); // pve-container forks vztemplate but answers null
    await eventually(() => sim!.model.guest(300)?.config.template === '1');
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/start')).exitstatus).toBe("you can't start a CT if it's a template");
  });

  it('clone of a template defaults to a linked clone, which is an ordinary guest; a linked clone of a plain VM is refused', async () => {
    sim = await startLab();
    const plain = await post(sim, '/nodes/pve-lab/qemu/101/clone', { form: { newid: 150, full: 0 } });
    expect(plain.body.message).toBe("Linked clone feature is not supported for drive 'scsi0'\n");
    await runTask(sim, 'DELETE', '/nodes/pve-lab/qemu/101/snapshot/before-upgrade');
    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/template');
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/clone', { form: { newid: 150 } })).exitstatus).toBe('OK');
    const conf = (await get(sim, '/nodes/pve-lab/qemu/150/config')).body.data;
    expect(conf).not.toHaveProperty('template');
    expect(conf.scsi0).toMatch(/^local-lvm:base-101-disk-0\/vm-150-disk-0,/);
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/150/status/start')).exitstatus).toBe('OK');
  });
});

describe('pending changes', () => {
  it('a running VM keeps cores/memory (no cpu/memory hotplug) pending, takes name at once; GET pending shows both; a start applies them', async () => {
    sim = await startLab();
    const before = (await get(sim, '/nodes/pve-lab/qemu/100/config')).body.data.digest;
    expect((await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { cores: 4, memory: 4096, name: 'web-lab-2' } })).status).toBe(200);
    expect(sim.model.guest(100)?.config).toMatchObject({ cores: '2', memory: '2048', name: 'web-lab-2' });
    const pending = (await get(sim, '/nodes/pve-lab/qemu/100/pending')).body.data as { key: string; value?: string; pending?: string; delete?: number }[];
    expect(pending.find((e) => e.key === 'cores')).toEqual({ key: 'cores', value: '2', pending: '4' });
    expect(pending.find((e) => e.key === 'memory')).toEqual({ key: 'memory', value: '2048', pending: '4096' });
    expect(pending.find((e) => e.key === 'name')).toEqual({ key: 'name', value: 'web-lab-2' });
    expect(pending.find((e) => e.key === 'digest')?.value).not.toBe(before);
    // The default config view shows the pending values; current=1 what the VM runs with.
    expect((await get(sim, '/nodes/pve-lab/qemu/100/config')).body.data).toMatchObject({ cores: 4, memory: '4096' });
    expect((await get(sim, '/nodes/pve-lab/qemu/100/config', { query: { current: 1 } })).body.data).toMatchObject({ cores: 2, memory: '2048' });

    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/status/reboot');
    expect(sim.model.guest(100)?.config).toMatchObject({ cores: '4', memory: '4096' });
    const after = (await get(sim, '/nodes/pve-lab/qemu/100/pending')).body.data as { pending?: string }[];
    expect(after.filter((e) => e.pending !== undefined)).toEqual([]);
  });

  it('with memory hotplug, memory applies live; a stopped VM takes everything at once; revert drops a pending change', async () => {
    sim = await startLab();
    // Turning memory hotplug on is itself a pending change: it takes effect from the next start.
    await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { hotplug: 'network,disk,memory' } });
    expect(sim.model.guest(100)?.config.hotplug).toBeUndefined();
    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/status/reboot');
    await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { memory: 3072, sockets: 2 } });
    expect(sim.model.guest(100)?.config).toMatchObject({ memory: '3072', sockets: '1' });
    await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { revert: 'sockets' } });
    expect((await get(sim, '/nodes/pve-lab/qemu/100/pending')).body.data.find((e: { key: string }) => e.key === 'sockets')).toEqual({ key: 'sockets', value: '1' });
    await put(sim, '/nodes/pve-lab/qemu/101/config', { form: { cores: 6 } });
    expect(sim.model.guest(101)?.config.cores).toBe('6');
  });

  it('a running CT takes cores/memory live but keeps ostype pending; a pending delete reads delete: 1', async () => {
    sim = await startLab();
    await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { cores: 2, memory: 1024, ostype: 'ubuntu', delete: 'nameserver' } });
    await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { nameserver: '1.1.1.1' } });
    expect(sim.model.guest(300)?.config).toMatchObject({ cores: '2', memory: '1024', ostype: 'debian' });
    const pending = (await get(sim, '/nodes/pve-lab/lxc/300/pending')).body.data as { key: string }[];
    expect(pending.find((e) => e.key === 'ostype')).toEqual({ key: 'ostype', value: 'debian', pending: 'ubuntu' });
    expect(pending.find((e) => e.key === 'nameserver')).toEqual({ key: 'nameserver', pending: '1.1.1.1' });
    await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { delete: 'swap,unprivileged' } });
    const again = (await get(sim, '/nodes/pve-lab/lxc/300/pending')).body.data as { key: string }[];
    expect(again.find((e) => e.key === 'unprivileged')).toEqual({ key: 'unprivileged', value: '1', delete: 1 });
    expect(again.find((e) => e.key === 'swap')).toBeUndefined();
  });

  it('a snapshot keeps the changes pending when it was taken: its config view applies them (current=1 does not), and a rollback brings back what it held', async () => {
    sim = await startLab();
    await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { cores: 4 } });
    await runTask(sim, 'post', '/nodes/pve-lab/qemu/100/snapshot', { form: { snapname: 'with-pending' } });
    const kept = (await get(sim, '/nodes/pve-lab/qemu/100/config?snapshot=with-pending')).body.data;
    expect(kept.cores).toBe(4);
    expect((await get(sim, '/nodes/pve-lab/qemu/100/config?snapshot=with-pending&current=1')).body.data.cores).toBe(2);
    // A change pending since the snapshot: the guest's view differs from the snapshot's.
    await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { cores: 6 } });
    expect((await get(sim, '/nodes/pve-lab/qemu/100/config')).body.data.cores).toBe(6);
    await runTask(sim, 'post', '/nodes/pve-lab/qemu/100/snapshot/with-pending/rollback');
    expect((await get(sim, '/nodes/pve-lab/qemu/100/config')).body.data.cores).toBe(4);
  });
});
