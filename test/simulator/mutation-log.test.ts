/** The mutation log: one entry per applied change, none for no-ops, duplicates detection. */
import { afterEach, describe, expect, it } from 'vitest';
import { MutationLog, type ProxmoxSimulator } from '../../src/simulator/index.js';
import { put, runTask, startLab } from './helpers.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('MutationLog', () => {
  it('records each applied change once with seq, time, cluster, node, type, op, upid and detail', async () => {
    sim = await startLab();
    const before = Date.now();
    const t = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/start');
    await put(sim, '/nodes/pve-lab/lxc/300/config', { form: { cores: 2, description: 'x' } });
    const all = sim.mutations.all();
    expect(all).toHaveLength(2);
    expect(all[0]).toMatchObject({ seq: 1, cluster: 'lab', node: 'pve-lab', vmid: 101, type: 'qemu', op: 'start', upid: t.upid, key: '' });
    expect(all[0]!.time).toBeGreaterThanOrEqual(before);
    expect(all[1]).toMatchObject({ seq: 2, vmid: 300, type: 'lxc', op: 'config', key: 'cores,description', detail: { changed: ['cores', 'description'], sync: true } });
    expect(all[1]!.upid).toBeUndefined();
    expect(sim.mutations.countFor(101)).toBe(1);
    expect(sim.mutations.countFor(101, 'stop')).toBe(0);
    expect(sim.mutations.countFor(300, 'config')).toBe(1);
  });

  it('no-ops and failed tasks are not mutations', async () => {
    sim = await startLab();
    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/status/stop'); // already stopped: OK no-op
    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/status/start'); // fails: already running
    await put(sim, '/nodes/pve-lab/qemu/100/config', { form: { cores: 2 } }); // same value: nothing changes
    expect(sim.mutations.all()).toEqual([]);
  });

  it('duplicates() flags the same (vmid, op, key) applied by distinct dispatches', async () => {
    sim = await startLab();
    await runTask(sim, 'POST', '/nodes/pve-lab/vzdump', { form: { vmid: '300' } });
    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'one' } });
    await runTask(sim, 'POST', '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'two' } });
    expect(sim.mutations.duplicates()).toEqual([]);
    await runTask(sim, 'POST', '/nodes/pve-lab/vzdump', { form: { vmid: '300' } });
    const dups = sim.mutations.duplicates();
    expect(dups).toHaveLength(1);
    expect(dups[0]).toMatchObject({ vmid: 300, op: 'backup', key: '', count: 2 });
    expect(new Set(dups[0]!.entries.map((e) => e.dispatch)).size).toBe(2);
  });

  it('works standalone and clears', () => {
    const log = new MutationLog('c');
    log.record({ node: 'n', vmid: 1, type: 'qemu', op: 'stop', key: '', dispatch: 1, detail: {} });
    log.record({ node: 'n', vmid: 1, type: 'qemu', op: 'stop', key: '', dispatch: 1, detail: {} });
    expect(log.duplicates()).toEqual([]); // same dispatch: one request, not a retry
    log.record({ node: 'n', vmid: 1, type: 'qemu', op: 'stop', key: '', dispatch: 2, detail: {} });
    expect(log.duplicates()[0]?.count).toBe(3);
    log.clear();
    expect(log.all()).toEqual([]);
  });
});
