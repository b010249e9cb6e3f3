/** Cluster reads, clone, migrate, resize and vzdump. */
import { afterEach, describe, expect, it } from 'vitest';
import { type ProxmoxSimulator, demoClusters, startSimulator } from '../../src/simulator/index.js';
import { get, post, put, runTask, startLab, taskLog, waitTask } from './helpers.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const PROD_AUTH = 'PVEAPIToken=proxmox-agent@pve!agent=prod-secret';
function startProd(): Promise<ProxmoxSimulator> {
  return startSimulator({ cluster: demoClusters({ lab: 'x', prod: 'prod-secret' }).prod, authFailureDelayMs: 0, taskDurationMs: 20 });
}

describe('cluster reads', () => {
  it('lists nodes, guests and resources with the real field shapes', async () => {
    sim = await startLab();
    const nodes = (await get(sim, '/nodes')).body.data;
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ node: 'pve-lab', status: 'online', type: 'node', maxcpu: 16 });
    expect(nodes[0].ssl_fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const qemu = (await get(sim, '/nodes/pve-lab/qemu')).body.data;
    expect(qemu.map((g: { vmid: number }) => g.vmid)).toEqual([100, 101]);
    expect((await get(sim, '/nodes/pve-lab/lxc')).body.data.map((g: { name: string }) => g.name)).toEqual(['cache-lab']);
    const vms = (await get(sim, '/cluster/resources', { query: { type: 'vm' } })).body.data;
    expect(vms.find((r: { vmid: number }) => r.vmid === 300)).toMatchObject({
      id: 'lxc/300', type: 'lxc', node: 'pve-lab', name: 'cache-lab', status: 'running', tags: 'cache;lab', template: 0, maxcpu: 1,
      maxmem: 512 * 1024 * 1024, maxdisk: 8 * 1024 ** 3,
    });
    const storages = (await get(sim, '/cluster/resources', { query: { type: 'storage' } })).body.data;
    expect(storages.map((s: { id: string }) => s.id)).toEqual(['storage/pve-lab/local', 'storage/pve-lab/local-lvm']);
  });

  it('nextid returns the lowest free id and refuses a taken one', async () => {
    sim = await startLab();
    expect((await get(sim, '/cluster/nextid')).body.data).toBe(102);
    const taken = await get(sim, '/cluster/nextid', { query: { vmid: 100 } });
    expect(taken.status).toBe(400);
    expect(taken.body.errors).toEqual({ vmid: 'VM 100 already exists' });
  });

  it('a request for a node outside the cluster fails the hostname lookup', async () => {
    sim = await startLab();
    const r = await get(sim, '/nodes/pve-nope/qemu');
    expect(r.status).toBe(500);
    expect(r.statusText).toBe("hostname lookup 'pve-nope' failed - failed to get address info for: pve-nope: Name or service not known");
  });
});

describe('clone', () => {
  it('clones into a new guest that is locked while the task runs', async () => {
    sim = await startLab({ taskDurationMs: 80 });
    const upid = (await post(sim, '/nodes/pve-lab/qemu/101/clone', { form: { newid: 150, name: 'db-copy', full: 1 } })).body.data as string;
    expect(upid).toContain(':qmclone:101:');
    expect(sim.model.guest(150)).toMatchObject({ lock: 'clone', status: 'stopped', name: 'db-copy' });
    expect((await waitTask(sim, upid)).exitstatus).toBe('OK');
    const clone = sim.model.guest(150)!;
    expect(clone.lock).toBeUndefined();
    expect(clone.config.scsi0).toBe('local-lvm:vm-150-disk-0,iothread=1,size=64G');
    expect(clone.config.scsi1).toBe('local-lvm:vm-150-disk-1,iothread=1,size=100G');
    expect(sim.mutations.all()).toMatchObject([{ vmid: 101, op: 'clone', key: '150' }]);
  });

  it('refuses an existing newid with the real QEMU and LXC messages', async () => {
    sim = await startLab();
    const vm = await post(sim, '/nodes/pve-lab/qemu/101/clone', { form: { newid: 300 } });
    expect(vm.status).toBe(500);
    expect(vm.statusText).toBe('unable to create VM 300: config file already exists');
    const ct = await post(sim, '/nodes/pve-lab/lxc/300/clone', { form: { newid: 100 } });
    expect(ct.statusText).toBe("VM 100 already exists on node 'pve-lab'");
  });

  it('a failed clone task removes the half-created guest', async () => {
    sim = await startLab();
    sim.faults.failTasks("clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout", {
      method: 'POST',
      path: '/nodes/*/qemu/*/clone',
    });
    const t = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/clone', { form: { newid: 151 } });
    expect(t.exitstatus).toBe("clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout");
    expect(sim.model.guest(151)).toBeUndefined();
    expect(sim.mutations.all()).toEqual([]);
  });
});

describe('clone: full, linked, running containers', () => {
  it('a linked clone needs a template or a snapshot, and takes no storage', async () => {
    sim = await startLab();
    const linked = await post(sim, '/nodes/pve-lab/qemu/101/clone', { form: { newid: 150, full: 0 } });
    expect(linked.status).toBe(500);
    expect(linked.statusText).toBe("Linked clone feature is not supported for drive 'scsi0'");
    const ct = await post(sim, '/nodes/pve-lab/lxc/300/clone', { form: { newid: 350, full: 0 } });
    expect(ct.statusText).toBe("Linked clone feature for 'local-lvm:vm-300-disk-0' is not available");
    const withStorage = await post(sim, '/nodes/pve-lab/qemu/101/clone', { form: { newid: 150, full: 0, snapname: 'before-upgrade', storage: 'local' } });
    expect(withStorage.statusText).toBe("parameter 'storage' not allowed for linked clones");
    expect(sim.model.guest(150)).toBeUndefined();

    expect((await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/clone', { form: { newid: 150, full: 0, snapname: 'before-upgrade' } })).exitstatus).toBe('OK');
    expect(sim.mutations.all()).toMatchObject([{ vmid: 101, op: 'clone', key: '150', detail: { full: false } }]);
  });

  it('a template clones linked by default', async () => {
    sim = await startLab();
    sim.model.findGuest(101)!.config.template = '1';
    const task = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/clone', { form: { newid: 150, name: 'from-template' } });
    expect(task.exitstatus).toBe('OK');
    expect(sim.mutations.all()[0]?.detail).toMatchObject({ full: false });
  });

  it('a running container clones fully only from a snapshot', async () => {
    sim = await startLab();
    const r = await post(sim, '/nodes/pve-lab/lxc/300/clone', { form: { newid: 350, hostname: 'c2', full: 1 } });
    expect(r.status).toBe(500);
    expect(r.statusText).toBe('Full clone of a running container is only possible from a snapshot');
    expect(sim.model.guest(350)).toBeUndefined();
  });
});

describe('storage list', () => {
  it('lists the node\'s storages with their content types, or refuses an unknown one', async () => {
    sim = await startLab();
    const all = (await get(sim, '/nodes/pve-lab/storage')).body.data;
    expect(all).toMatchObject([
      { storage: 'local', type: 'dir', content: expect.stringContaining('backup'), active: 1, enabled: 1 },
      { storage: 'local-lvm', type: 'lvmthin', content: 'images,rootdir' },
    ]);
    expect((await get(sim, '/nodes/pve-lab/storage', { query: { content: 'backup' } })).body.data.map((s: { storage: string }) => s.storage)).toEqual(['local']);
    const missing = await get(sim, '/nodes/pve-lab/storage', { query: { storage: 'nfs-1' } });
    expect(missing.status).toBe(400);
    expect(missing.body.errors).toEqual({ storage: 'No such storage.' });
  });
});

describe('migrate', () => {
  it('checks preconditions and moves the guest when the task completes', async () => {
    sim = await startProd();
    const pre = (await get(sim, '/nodes/pve-prod/qemu/200/migrate', { auth: PROD_AUTH })).body.data;
    expect(pre).toMatchObject({ running: 1, allowed_nodes: ['pve-prod-2'] });
    expect(pre.local_disks[0]).toMatchObject({ drivename: 'scsi0', volid: 'local-lvm:vm-200-disk-0' });

    const offline = await post(sim, '/nodes/pve-prod/qemu/200/migrate', { auth: PROD_AUTH, form: { target: 'pve-prod-2' } });
    expect(offline.status).toBe(500);
    expect(offline.statusText).toBe("can't migrate running VM without --online");
    const local = await post(sim, '/nodes/pve-prod/qemu/200/migrate', { auth: PROD_AUTH, form: { target: 'pve-prod' } });
    expect(local.status).toBe(400);
    expect(local.body.errors).toEqual({ target: 'target is local node.' });
    const ct = await post(sim, '/nodes/pve-prod/lxc/400/migrate', { auth: PROD_AUTH, form: { target: 'pve-prod-2' } });
    expect(ct.statusText).toBe("can't migrate running container without --online or --restart");

    const t = await runTask(sim, 'POST', '/nodes/pve-prod/qemu/201/migrate', { auth: PROD_AUTH, form: { target: 'pve-prod-2' } });
    expect(t).toMatchObject({ type: 'qmigrate', exitstatus: 'OK' });
    expect(sim.model.guest(201)?.node).toBe('pve-prod-2');
    expect((await get(sim, '/nodes/pve-prod-2/qemu/201/status/current', { auth: PROD_AUTH })).body.data.status).toBe('stopped');
    expect((await get(sim, '/nodes/pve-prod/qemu/201/status/current', { auth: PROD_AUTH })).status).toBe(500);

    const live = await runTask(sim, 'POST', '/nodes/pve-prod/qemu/200/migrate', { auth: PROD_AUTH, form: { target: 'pve-prod-2', online: 1, 'with-local-disks': 1 } });
    expect(live.exitstatus).toBe('OK');
    expect(sim.model.guest(200)).toMatchObject({ node: 'pve-prod-2', status: 'running' });
    const ctRestart = await runTask(sim, 'POST', '/nodes/pve-prod/lxc/400/migrate', { auth: PROD_AUTH, form: { target: 'pve-prod-2', restart: 1 } });
    expect(ctRestart.type).toBe('vzmigrate');
    expect(sim.model.guest(400)).toMatchObject({ node: 'pve-prod-2', status: 'running' });
  });
});

describe('resize', () => {
  it('grows relatively or absolutely and refuses to shrink', async () => {
    sim = await startLab();
    const t = await runTask(sim, 'PUT', '/nodes/pve-lab/qemu/100/resize', { form: { disk: 'scsi0', size: '+8G' } });
    expect(t).toMatchObject({ type: 'resize', exitstatus: 'OK' });
    expect(sim.model.guest(100)?.config.scsi0).toBe('local-lvm:vm-100-disk-0,iothread=1,size=40G');
    await runTask(sim, 'PUT', '/nodes/pve-lab/qemu/100/resize', { form: { disk: 'scsi0', size: '64G' } });
    expect(sim.model.guest(100)?.config.scsi0).toContain('size=64G');
    // qemu-server checks inside its worker: the refusal is the task's exit status.
    const shrink = await runTask(sim, 'PUT', '/nodes/pve-lab/qemu/100/resize', { form: { disk: 'scsi0', size: '10G' } });
    expect(shrink).toMatchObject({ type: 'resize', exitstatus: 'shrinking disks is not supported' });
    // pve-container checks before forking: a synchronous 500.
    const ct = await put(sim, '/nodes/pve-lab/lxc/300/resize', { form: { disk: 'rootfs', size: '4G' } });
    expect(ct.statusText).toBe('unable to shrink disk size');
    const missing = await runTask(sim, 'PUT', '/nodes/pve-lab/qemu/100/resize', { form: { disk: 'scsi5', size: '+1G' } });
    expect(missing.exitstatus).toBe("disk 'scsi5' does not exist");
    expect(sim.mutations.all().map((m) => m.detail)).toEqual([
      { disk: 'scsi0', from: 32 * 1024 ** 3, to: 40 * 1024 ** 3 },
      { disk: 'scsi0', from: 40 * 1024 ** 3, to: 64 * 1024 ** 3 },
    ]);
  });

  it('QEMU: a stale digest, a lock or a missing VM end the task (as qemu-server 8.0.2+), LXC refuses a stale digest at once', async () => {
    sim = await startLab();
    const stale = await put(sim, '/nodes/pve-lab/qemu/100/resize', { form: { disk: 'scsi0', size: '+1G', digest: 'f'.repeat(40) } });
    expect(stale.status).toBe(200);
    const t = await waitTask(sim, stale.body.data as string);
    expect(t).toMatchObject({ type: 'resize', id: '100', exitstatus: 'checksum mismatch (file change by other user?)' });
    expect((await taskLog(sim, t.upid)).at(-1)).toBe('TASK ERROR: checksum mismatch (file change by other user?)');
    sim.model.findGuest(100)!.lock = 'backup';
    expect((await runTask(sim, 'PUT', '/nodes/pve-lab/qemu/100/resize', { form: { disk: 'scsi0', size: '+1G' } })).exitstatus).toBe('VM is locked (backup)');
    expect((await runTask(sim, 'PUT', '/nodes/pve-lab/qemu/999/resize', { form: { disk: 'scsi0', size: '+1G' } })).exitstatus).toBe(
      "Configuration file 'nodes/pve-lab/qemu-server/999.conf' does not exist",
    );
    const ct = await put(sim, '/nodes/pve-lab/lxc/300/resize', { form: { disk: 'rootfs', size: '+1G', digest: 'f'.repeat(40) } });
    expect(ct.status).toBe(500);
    expect(ct.statusText).toBe('detected modified configuration - file changed by other user? Try again.');
    expect(sim.mutations.all()).toEqual([]);
  });
});

describe('vzdump', () => {
  it('backs up under the backup lock and the volume appears in storage content', async () => {
    sim = await startLab({ taskDurationMs: 1000 }); // the backup lock outlasts the checks below on any machine
    const upid = (await post(sim, '/nodes/pve-lab/vzdump', { form: { vmid: '300', storage: 'local', mode: 'snapshot', compress: 'zstd', 'notes-template': '{{guestname}}' } })).body.data as string;
    expect(upid).toMatch(/:vzdump:300:proxmox-agent@pve!agent:$/);
    expect(sim.model.guest(300)?.lock).toBe('backup');
    const locked = await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { cores: 2 } });
    expect(locked.statusText).toBe('CT is locked (backup)');
    expect((await waitTask(sim, upid)).exitstatus).toBe('OK');
    expect(sim.model.guest(300)?.lock).toBeUndefined();
    const content = (await get(sim, '/nodes/pve-lab/storage/local/content', { query: { content: 'backup' } })).body.data;
    expect(content).toHaveLength(1);
    expect(content[0]).toMatchObject({ content: 'backup', format: 'tar.zst', vmid: 300, notes: 'cache-lab', subtype: 'lxc' });
    expect(content[0].volid).toMatch(/^local:backup\/vzdump-lxc-300-\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2}\.tar\.zst$/);
    expect((await taskLog(sim, upid)).at(-2)).toBe('INFO: Backup job finished successfully');
  });

  it('several guests give an empty UPID id; a locked guest fails the job with `job errors`', async () => {
    sim = await startLab({ taskDurationMs: 60 });
    // The snapshot holds its lock for 3 s, so the backup job meets it however slow the machine.
    sim.faults.slowTasks(3000, { path: '/nodes/*/qemu/101/snapshot', times: 1 });
    const snap = (await post(sim, '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'snap1' } })).body.data as string;
    const t = await runTask(sim, 'POST', '/nodes/pve-lab/vzdump', { form: { vmid: '100,101' } });
    expect(t.upid).toContain(':vzdump::');
    expect(t.exitstatus).toBe('job errors');
    expect(await taskLog(sim, t.upid)).toContain('ERROR: Backup of VM 101 failed - VM is locked (snapshot)');
    await waitTask(sim, snap);
    expect(sim.mutations.all().filter((m) => m.op === 'backup').map((m) => m.vmid)).toEqual([100]);
  });

  it('a storage that cannot take backups fails inside the task; a missing guest selection is a 400', async () => {
    sim = await startLab();
    const noBackup = await runTask(sim, 'POST', '/nodes/pve-lab/vzdump', { form: { vmid: '100', storage: 'local-lvm' } });
    expect(noBackup).toMatchObject({ type: 'vzdump', id: '100', exitstatus: "could not get storage information for 'local-lvm': can't use storage 'local-lvm' for backups - wrong content type" });
    const unknown = await runTask(sim, 'POST', '/nodes/pve-lab/vzdump', { form: { vmid: '100', storage: 'nfs9' } });
    expect(unknown.exitstatus).toBe("could not get storage information for 'nfs9': storage 'nfs9' does not exist");
    expect(sim.model.guest(100)!.lock).toBeUndefined();
    expect((await post(sim, '/nodes/pve-lab/vzdump', { form: { mode: 'stop' } })).body.errors).toEqual({ vmid: 'property is missing' });
    expect(sim.mutations.all()).toEqual([]);
  });

  it('guests that are all on another node: the plain string OK, no task; a guest that exists nowhere fails in the job', async () => {
    sim = await startProd();
    const call = (vmid: string) =>
      fetch(`${sim!.url}/api2/json/nodes/pve-prod-2/vzdump`, { method: 'POST', headers: { Authorization: PROD_AUTH, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `vmid=${vmid}&storage=local-lvm` });
    // 200 is on pve-prod: vzdump on pve-prod-2 exits silently, before it ever looks at the storage.
    expect(await (await call('200')).json()).toEqual({ data: 'OK' });
    expect(sim.model.taskManager!.list().filter((t) => t.type === 'vzdump')).toEqual([]);
    const gone = await (await call('999')).json() as { data: string };
    expect(gone.data).toMatch(/:vzdump:999:/);
  });
});
