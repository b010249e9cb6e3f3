/** Config digest and writes, locks held by tasks, snapshots, protection. */
import { afterEach, describe, expect, it } from 'vitest';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { del, get, post, put, runTask, startLab, taskLog, waitTask } from './helpers.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('config', () => {
  it('GET returns typed values, a 40-hex digest, and the digest changes on every write', async () => {
    sim = await startLab();
    const c1 = (await get(sim, '/nodes/pve-lab/qemu/100/config')).body.data;
    expect(c1).toMatchObject({ name: 'web-lab', cores: 2, memory: '2048', tags: 'web;lab', onboot: 1, scsi0: 'local-lvm:vm-100-disk-0,iothread=1,size=32G' });
    expect(c1.digest).toMatch(/^[0-9a-f]{40}$/);
    expect((await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { cores: 4, digest: c1.digest } })).body).toEqual({ data: null });
    const c2 = (await get(sim, '/nodes/pve-lab/qemu/100/config')).body.data;
    expect(c2.cores).toBe(4);
    expect(c2.digest).not.toBe(c1.digest);
    await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { cores: 2 } });
    const c3 = (await get(sim, '/nodes/pve-lab/qemu/100/config')).body.data;
    expect(c3.digest).not.toBe(c2.digest);
    expect(c3.digest).toBe(c1.digest); // same file content, same SHA-1
  });

  it('a stale digest is refused with the real QEMU and LXC messages', async () => {
    sim = await startLab();
    const stale = (await get(sim, '/nodes/pve-lab/qemu/100/config')).body.data.digest;
    await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { description: 'changed' } });
    const r = await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { cores: 8, digest: stale } });
    expect(r.status).toBe(500);
    expect(r.statusText).toBe('checksum mismatch (file change by other user?)');
    const ctStale = (await get(sim, '/nodes/pve-lab/lxc/300/config')).body.data.digest;
    await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { memory: 1024 } });
    const ct = await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { cores: 2, digest: ctStale } });
    expect(ct.statusText).toBe('detected modified configuration - file changed by other user? Try again.');
    expect(sim.model.guest(100)?.config.cores).toBe('2');
    expect(sim.model.guest(300)?.config).toMatchObject({ memory: '1024', cores: '1' });
  });

  it('applies `delete` lists and refuses setting and deleting one key at once', async () => {
    sim = await startLab();
    await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { delete: 'tags,description', hostname: 'cache-lab-2' } });
    const c = (await get(sim, '/nodes/pve-lab/lxc/300/config')).body.data;
    expect(c.tags).toBeUndefined();
    expect(c.description).toBeUndefined();
    expect(c.hostname).toBe('cache-lab-2');
    const both = await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { delete: 'cores', cores: 2 } });
    expect(both.status).toBe(400);
    expect(both.body.errors).toEqual({ delete: "you can't use '-cores' and -delete cores' at the same time" });
  });

  it('stores tags as PVE does: lower-cased, sorted, de-duplicated; the same set again changes nothing', async () => {
    sim = await startLab();
    await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { tags: 'Zeta,alpha,zeta' } });
    expect((await get(sim, '/nodes/pve-lab/qemu/100/config')).body.data.tags).toBe('alpha;zeta');
    await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { tags: 'web;Cache web' } });
    expect(sim.model.guest(300)?.config.tags).toBe('cache;web');
    const digest = sim.model.guest(100)!.digest;
    await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { tags: 'ZETA;Alpha' } });
    expect(sim.model.guest(100)!.digest).toBe(digest);
    expect(sim.mutations.all().map((m) => m.vmid)).toEqual([100, 300]);
  });

  it('POST config (qemu) answers a qmconfig UPID', async () => {
    sim = await startLab();
    // VM 101 is stopped, so the change is applied at once rather than left pending.
    const t = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/config', { form: { memory: 4096 } });
    expect(t).toMatchObject({ type: 'qmconfig', exitstatus: 'OK' });
    expect(sim.model.guest(101)?.config.memory).toBe('4096');
    const r = await post(sim, '/nodes/pve-lab/lxc/300/config', { form: { memory: 1024 } });
    expect(r.status).toBe(501); // LXC has no POST config
  });

  it('injected lock_config contention makes the next write time out, deterministically', async () => {
    sim = await startLab();
    sim.faults.lockContention(100);
    const r = await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { cores: 3 } });
    expect(r.status).toBe(500);
    expect(r.statusText).toBe("can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout");
    expect(sim.model.guest(100)?.config.cores).toBe('2');
    expect((await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { cores: 3 } })).status).toBe(200);
    sim.faults.lockContention(300);
    expect((await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { cores: 3 } })).statusText).toBe(
      "can't lock file '/run/lock/lxc/pve-config-300.lock' - got timeout",
    );
  });
});

describe('locks held by tasks', () => {
  it('a running snapshot task locks the guest: config writes fail sync, start fails in its task', async () => {
    // The snapshot runs 3 s: the ten requests below must all meet its lock, however slow the machine.
    sim = await startLab();
    sim.faults.slowTasks(3000, { path: '/nodes/*/qemu/101/snapshot', times: 1 });
    const upid = (await post(sim, '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'pre-change', description: 'before' } })).body.data as string;
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data.lock).toBe('snapshot');
    expect((await get(sim, '/nodes/pve-lab/qemu/101/config')).body.data.lock).toBe('snapshot');
    const res = (await get(sim, '/cluster/resources', { query: { type: 'vm' } })).body.data;
    expect(res.find((r: { vmid: number }) => r.vmid === 101).lock).toBe('snapshot');

    const w = await put(sim, '/nodes/pve-lab/qemu/101/config', { form: { cores: 8 } });
    expect(w.status).toBe(500);
    expect(w.statusText).toBe('VM is locked (snapshot)');
    const start = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/start');
    expect(start.exitstatus).toBe('VM is locked (snapshot)');
    const again = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'other' } });
    expect(again.exitstatus).toBe('VM is locked (snapshot)');

    expect((await waitTask(sim, upid)).exitstatus).toBe('OK');
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).body.data.lock).toBeUndefined();
    expect((await put(sim, '/nodes/pve-lab/qemu/101/config', { form: { cores: 8 } })).status).toBe(200);
  });

  it('LXC locks read `CT is locked (...)`', async () => {
    sim = await startLab({ taskDurationMs: 100 });
    const upid = (await post(sim, '/nodes/pve-lab/lxc/300/snapshot', { form: { snapname: 's1' } })).body.data as string;
    const r = await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { cores: 2 } });
    expect(r.statusText).toBe('CT is locked (snapshot)');
    expect((await waitTask(sim, upid)).type).toBe('vzsnapshot');
  });
});

describe('snapshots', () => {
  it('lists snapshots with the `current` entry and keeps the parent chain', async () => {
    sim = await startLab();
    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'second', description: 'd2' } });
    const list = (await get(sim, '/nodes/pve-lab/qemu/101/snapshot')).body.data;
    expect(list.map((s: { name: string }) => s.name)).toEqual(['before-upgrade', 'second', 'current']);
    expect(list[1]).toMatchObject({ name: 'second', description: 'd2', parent: 'before-upgrade', vmstate: 0 });
    expect(list[2]).toMatchObject({ name: 'current', description: 'You are here!', parent: 'second', running: 0 });
    expect(list[2].digest).toMatch(/^[0-9a-f]{40}$/);
  });

  it('reserved snapshot names differ by type: QEMU current and pending (any case), LXC current and vzdump', async () => {
    sim = await startLab();
    const refused = async (type: 'qemu' | 'lxc', vmid: number, snapname: string) => {
      const r = await post(sim!, `/nodes/pve-lab/${type}/${vmid}/snapshot`, { form: { snapname } });
      return r.status === 500 ? r.statusText : undefined;
    };
    expect(await refused('qemu', 101, 'Pending')).toBe("unable to use snapshot name 'pending' (reserved name)");
    expect(await refused('qemu', 101, 'vzdump')).toBeUndefined();
    expect(await refused('lxc', 300, 'vzdump')).toBe("unable to use snapshot name 'vzdump' (reserved name)");
    expect(await refused('lxc', 300, 'current')).toBe("unable to use snapshot name 'current' (reserved name)");
    // pve-container does not reserve `pending`, and its `vzdump` check is case-sensitive.
    expect(await refused('lxc', 300, 'pending')).toBeUndefined();
    expect(await refused('lxc', 300, 'VZDump')).toBeUndefined();
  });

  it('name collisions, missing snapshots and reserved names fail like the real server', async () => {
    sim = await startLab();
    const dup = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'before-upgrade' } });
    expect(dup).toMatchObject({ type: 'qmsnapshot', exitstatus: "snapshot name 'before-upgrade' already used" });
    const missing = await runTask(sim, 'DELETE', '/nodes/pve-lab/qemu/101/snapshot/ghost');
    expect(missing).toMatchObject({ type: 'qmdelsnapshot', exitstatus: "snapshot 'ghost' does not exist" });
    const rb = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/snapshot/ghost/rollback');
    expect(rb.exitstatus).toBe("snapshot 'ghost' does not exist");
    const reserved = await post(sim, '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'current' } });
    expect(reserved.status).toBe(500);
    expect(reserved.statusText).toBe("unable to use snapshot name 'current' (reserved name)");
    expect(sim.mutations.all()).toEqual([]);
  });

  it('create → rollback restores the config and stops a running VM; delete removes the snapshot', async () => {
    sim = await startLab();
    const snap = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/snapshot', { form: { snapname: 'pre' } });
    expect(await taskLog(sim, snap.upid)).toEqual([
      "snapshotting 'drive-scsi0' (local-lvm:vm-100-disk-0)",
      '  Logical volume "snap_vm-100-disk-0_pre" created.',
      'TASK OK',
    ]);
    await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { cores: 16, name: 'renamed' } });
    const rb = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/snapshot/pre/rollback');
    expect(rb).toMatchObject({ type: 'qmrollback', exitstatus: 'OK' });
    expect(sim.model.guest(100)).toMatchObject({ status: 'stopped', name: 'web-lab' });
    expect(sim.model.guest(100)?.config.cores).toBe('2');
    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/snapshot/pre/rollback', { form: { start: 1 } });
    expect(sim.model.guest(100)?.status).toBe('running');
    const d = await runTask(sim, 'DELETE', '/nodes/pve-lab/qemu/100/snapshot/pre');
    expect(d.exitstatus).toBe('OK');
    expect(sim.model.snapshots(100)).toEqual([]);
    expect(sim.mutations.all().map((m) => `${m.op}:${m.key}`)).toEqual(['snapshot:pre', 'config:cores,name', 'rollback:pre', 'rollback:pre', 'snapshot-delete:pre']);
  });
});

describe('protection and destroy', () => {
  it('refuses to destroy a protected or running guest, destroys a stopped one', async () => {
    sim = await startLab();
    await put(sim, '/nodes/pve-lab/qemu/101/config', { form: { protection: 1 } });
    const p = await del(sim, '/nodes/pve-lab/qemu/101');
    expect(p.status).toBe(500);
    expect(p.statusText).toBe("can't remove VM 101 - protection mode enabled");
    const running = await del(sim, '/nodes/pve-lab/qemu/100');
    expect(running.statusText).toBe('VM 100 is running - destroy failed');
    const ct = await del(sim, '/nodes/pve-lab/lxc/300');
    expect(ct.statusText).toBe('unable to destroy CT 300 - container is running');
    await put(sim, '/nodes/pve-lab/qemu/101/config', { form: { delete: 'protection' } });
    const t = await runTask(sim, 'DELETE', '/nodes/pve-lab/qemu/101', { query: { purge: 1 } });
    expect(t).toMatchObject({ type: 'qmdestroy', exitstatus: 'OK' });
    expect(sim.model.guest(101)).toBeUndefined();
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).statusText).toBe("Configuration file 'nodes/pve-lab/qemu-server/101.conf' does not exist");
    const forced = await runTask(sim, 'DELETE', '/nodes/pve-lab/lxc/300', { query: { force: 1 } });
    expect(forced).toMatchObject({ type: 'vzdestroy', exitstatus: 'OK' });
    expect(sim.model.guests().map((g) => g.vmid)).toEqual([100]);
  });

  it('protection also blocks removing a disk', async () => {
    sim = await startLab();
    await put(sim, '/nodes/pve-lab/qemu/101/config', { form: { protection: 1 } });
    const r = await put(sim, '/nodes/pve-lab/qemu/101/config', { form: { delete: 'scsi1' } });
    expect(r.statusText).toBe("can't remove drive 'scsi1' - protection mode enabled");
  });
});
