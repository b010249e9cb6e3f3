/** Snapshot create needs every volume's storage to take snapshots (PVE's has_feature('snapshot')). */
import { afterEach, describe, expect, it } from 'vitest';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { get, labSeed, runTask, startLab } from './helpers.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const withStorages = () => {
  const cluster = labSeed();
  cluster.storages = ['local', 'local-lvm', { storage: 'san', type: 'lvm' }, { storage: 'tank', type: 'zfspool' }];
  return startLab({ cluster });
};

describe('snapshot create and storage types', () => {
  it('lists the seeded storage types', async () => {
    sim = await withStorages();
    const list = (await get(sim, '/nodes/pve-lab/storage')).body.data as { storage: string; type: string }[];
    expect(Object.fromEntries(list.map((s) => [s.storage, s.type]))).toEqual({ local: 'dir', 'local-lvm': 'lvmthin', san: 'lvm', tank: 'zfspool' });
  });

  const table: [string, string, string][] = [
    ['thick lvm', 'san:vm-100-disk-1,size=1G', 'snapshot feature is not available'],
    ['a raw image on dir', 'local:100/vm-100-disk-1.raw,size=1G', 'snapshot feature is not available'],
    ['a qcow2 image on dir', 'local:100/vm-100-disk-1.qcow2,size=1G', 'OK'],
    ['zfspool', 'tank:vm-100-disk-1,size=1G', 'OK'],
    ['a CD-ROM on dir (does not count)', 'local:iso/debian.iso,media=cdrom', 'OK'],
  ];
  it.each(table)('a second disk on %s: %s', async (_what, disk, exitstatus) => {
    sim = await withStorages();
    sim.model.findGuest(100)!.config.scsi1 = disk;
    const t = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/snapshot', { form: { snapname: 's1' } });
    expect(t.exitstatus).toBe(exitstatus);
    expect(sim.model.snapshots(100).includes('s1')).toBe(exitstatus === 'OK');
    expect(sim.mutations.all().filter((m) => m.op === 'snapshot')).toHaveLength(exitstatus === 'OK' ? 1 : 0);
  });
});
