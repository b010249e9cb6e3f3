/**
 * Response shapes checked against qemu-server 9.2.6, pve-container and pve-manager (issue 16):
 * which keys appear when, and the errors real PVE answers where the simulator used to be lenient.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type ProxmoxSimulator, startSimulator } from '../../src/simulator/index.js';
import { get, labSeed, post, put, runTask, startLab } from './helpers.js';

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
    expect((await get(sim, '/nodes/pve-lab/qemu/100/status/current')).body.data).not.toHaveProperty('agent');
    expect((await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { agent: 'enabled=0,fstrim_cloned_disks=1' } })).status).toBe(200);
    expect((await get(sim, '/nodes/pve-lab/qemu/100/status/current')).body.data).not.toHaveProperty('agent');
    expect((await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { agent: '1' } })).status).toBe(200);
    expect((await get(sim, '/nodes/pve-lab/qemu/100/status/current')).body.data.agent).toBe(1);
  });
});
