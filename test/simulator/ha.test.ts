/**
 * HA as pve-ha-manager serves it, and where PVE 8 and PVE 9 differ (issue 16): groups (PVE 8) and rules
 * (PVE 9), resources and the manager status, the states the CRM reports, and what ha-manager refuses.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type ProxmoxSimulator, type SimClusterSeed, startSimulator } from '../../src/simulator/index.js';
import { call, del, eventually, get, labSeed, post, put, runTask } from './helpers.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/** The lab cluster with a second node (a migration target) and VM 100 and CT 300 HA-managed. */
function haSeed(): SimClusterSeed {
  const seed = labSeed();
  seed.nodes = ['pve-lab', 'pve-lab-2'];
  seed.guests = seed.guests.map((g) => (g.vmid === 100 || g.vmid === 300 ? { ...g, haManaged: true } : g));
  return seed;
}

function start(pve: 8 | 9, haDelayMs = 20): Promise<ProxmoxSimulator> {
  return startSimulator({ cluster: haSeed(), pve, taskDurationMs: 20, haDelayMs, authFailureDelayMs: 0 });
}

async function taskLog(s: ProxmoxSimulator, upid: string): Promise<string[]> {
  const node = upid.split(':')[1]!;
  const r = await get(s, `/nodes/${node}/tasks/${encodeURIComponent(upid)}/log`);
  return r.body.data.map((l: { t: string }) => l.t);
}

const setHaState = (s: ProxmoxSimulator, vmid: number, state: string | null) =>
  call(s, 'POST', `/_sim/guests/${vmid}/ha-state`, { json: { state } });

describe('HA groups (PVE 8) and HA rules (PVE 9)', () => {
  it('PVE 8 serves groups (create, list, read, update with digest, delete) and knows no rules (501)', async () => {
    sim = await start(8);
    expect((await post(sim, '/cluster/ha/groups', { form: { group: 'prefer-lab', nodes: 'pve-lab:2,pve-lab-2', restricted: 1 } })).status).toBe(200);
    const dup = await post(sim, '/cluster/ha/groups', { form: { group: 'prefer-lab', nodes: 'pve-lab' } });
    expect([dup.status, dup.statusText]).toEqual([500, "create ha group failed: ha group ID 'prefer-lab' already defined"]);
    const list = (await get(sim, '/cluster/ha/groups')).body.data;
    expect(list).toEqual([expect.objectContaining({ group: 'prefer-lab', type: 'group', nodes: 'pve-lab:2,pve-lab-2', restricted: 1 })]);
    const one = (await get(sim, '/cluster/ha/groups/prefer-lab')).body.data;
    expect(one.digest).toMatch(/^[0-9a-f]{40}$/);
    expect((await put(sim, '/cluster/ha/groups/prefer-lab', { form: { nofailback: 1, digest: one.digest } })).status).toBe(200);
    const stale = await put(sim, '/cluster/ha/groups/prefer-lab', { form: { comment: 'x', digest: one.digest } });
    expect([stale.status, stale.statusText]).toEqual([500, 'update ha group failed: detected modified configuration - file changed by other user? Try again.']);
    expect((await get(sim, '/cluster/ha/groups/prefer-lab')).body.data).toMatchObject({ nofailback: 1 });
    expect((await del(sim, '/cluster/ha/groups/prefer-lab')).status).toBe(200);
    const gone = await get(sim, '/cluster/ha/groups/prefer-lab');
    expect([gone.status, gone.statusText]).toEqual([500, "no such ha group 'prefer-lab'"]);

    for (const [method, path] of [['GET', '/cluster/ha/rules'], ['POST', '/cluster/ha/rules'], ['GET', '/cluster/ha/rules/r1'], ['DELETE', '/cluster/ha/rules/r1']] as const) {
      const r = await call(sim, method, path);
      expect([r.status, r.statusText]).toEqual([501, `Method '${method} ${path}' not implemented`]);
    }
  });

  it('PVE 9 refuses the deprecated group endpoints: the groups have been migrated to rules', async () => {
    sim = await start(9);
    const list = await get(sim, '/cluster/ha/groups');
    expect([list.status, list.statusText]).toEqual([500, 'cannot index groups: ha groups have been migrated to rules']);
    const create = await post(sim, '/cluster/ha/groups', { form: { group: 'g1', nodes: 'pve-lab' } });
    expect([create.status, create.statusText]).toEqual([500, 'cannot create group: ha groups have been migrated to rules']);
    const one = await get(sim, '/cluster/ha/groups/g1');
    expect(one.statusText).toBe('cannot read group: ha groups have been migrated to rules');
  });

  it('PVE 9 serves node and resource affinity rules, checking their resources, nodes and options', async () => {
    sim = await start(9);
    const ok = await post(sim, '/cluster/ha/rules', { form: { rule: 'keep-on-lab', type: 'node-affinity', resources: 'vm:100', nodes: 'pve-lab', strict: 1 } });
    expect(ok.status).toBe(200);
    expect((await post(sim, '/cluster/ha/rules', { form: { rule: 'apart', type: 'resource-affinity', resources: 'vm:100,ct:300', affinity: 'negative' } })).status).toBe(200);

    const refusals: [Record<string, string>, string][] = [
      [{ rule: 'keep-on-lab', type: 'node-affinity', resources: 'vm:100', nodes: 'pve-lab' }, "create ha rule failed: HA rule 'keep-on-lab' already defined"],
      [{ rule: 'r2', type: 'node-affinity', resources: 'vm:101', nodes: 'pve-lab' }, 'create ha rule failed: cannot use unmanaged resource(s) vm:101.'],
      [{ rule: 'r3', type: 'node-affinity', resources: 'vm:100', nodes: 'pve-nowhere' }, 'create ha rule failed: cannot use non-existent node(s) pve-nowhere.'],
      [{ rule: 'r4', type: 'node-affinity', resources: 'vm:100' }, "missing value for required option 'nodes'"],
      [{ rule: 'r5', type: 'resource-affinity', resources: 'vm:100,ct:300' }, "missing value for required option 'affinity'"],
      [{ rule: 'r6', type: 'resource-affinity', resources: 'vm:100,ct:300', affinity: 'positive', strict: '1' }, "unexpected property 'strict'"],
    ];
    for (const [form, text] of refusals) {
      const r = await post(sim, '/cluster/ha/rules', { form });
      expect([r.status, r.statusText]).toEqual([500, text]);
    }

    const all = (await get(sim, '/cluster/ha/rules')).body.data;
    expect(all.map((r: { rule: string; order: number }) => [r.rule, r.order])).toEqual([['keep-on-lab', 1], ['apart', 2]]);
    expect(all[0]).toMatchObject({ type: 'node-affinity', resources: 'vm:100', nodes: 'pve-lab', strict: 1 });
    expect((await get(sim, '/cluster/ha/rules', { query: { type: 'resource-affinity' } })).body.data.map((r: { rule: string }) => r.rule)).toEqual(['apart']);
    expect((await get(sim, '/cluster/ha/rules', { query: { resource: 'ct:300' } })).body.data.map((r: { rule: string }) => r.rule)).toEqual(['apart']);

    const digest = all[0].digest as string;
    expect((await put(sim, '/cluster/ha/rules/keep-on-lab', { form: { type: 'node-affinity', strict: 0, digest } })).status).toBe(200);
    expect((await get(sim, '/cluster/ha/rules/keep-on-lab')).body.data.strict).toBe(0);
    const stale = await put(sim, '/cluster/ha/rules/keep-on-lab', { form: { type: 'node-affinity', comment: 'x', digest } });
    expect(stale.statusText).toBe('update HA rules failed: detected modified configuration - file changed by other user? Try again.');
    // `type` is required on update too (apidata), and must be the rule's own.
    expect((await put(sim, '/cluster/ha/rules/keep-on-lab', { form: { comment: 'x' } })).status).toBe(400);
    const missing = await put(sim, '/cluster/ha/rules/nope', { form: { type: 'node-affinity', comment: 'x' } });
    expect(missing.statusText).toBe("update HA rules failed: HA rule 'nope' does not exist");
    const otherType = await put(sim, '/cluster/ha/rules/keep-on-lab', { form: { type: 'resource-affinity', comment: 'x' } });
    expect(otherType.statusText).toBe("update HA rules failed: unexpected property 'type'");

    expect((await del(sim, '/cluster/ha/rules/apart')).status).toBe(200);
    const gone = await get(sim, '/cluster/ha/rules/apart');
    expect([gone.status, gone.statusText]).toEqual([500, "no such ha rule 'apart'"]);
  });
});

describe('HA resources and manager status', () => {
  it('lists the HA resources with their requested state, and reads one by sid or bare VMID', async () => {
    sim = await start(9);
    const list = (await get(sim, '/cluster/ha/resources')).body.data;
    expect(list.map((r: { sid: string; type: string; state: string }) => [r.sid, r.type, r.state])).toEqual([
      ['vm:100', 'vm', 'started'],
      ['ct:300', 'ct', 'started'],
    ]);
    expect((await get(sim, '/cluster/ha/resources', { query: { type: 'ct' } })).body.data.map((r: { sid: string }) => r.sid)).toEqual(['ct:300']);
    expect((await get(sim, '/cluster/ha/resources/100')).body.data).toMatchObject({ sid: 'vm:100', type: 'vm', state: 'started' });
    expect((await get(sim, '/cluster/ha/resources/vm:101')).statusText).toBe("no such resource 'vm:101'");
    expect((await get(sim, '/cluster/ha/resources/999')).statusText).toBe('unable to detect SID from VMID - VM/CT 999 does not exist');
  });

  it('the control API puts a service into error, fence or freeze: status/current and the guest show it, null clears it', async () => {
    sim = await start(9);
    const services = async () =>
      Object.fromEntries(
        (await get(sim!, '/cluster/ha/status/current')).body.data
          .filter((e: { type: string }) => e.type === 'service')
          .map((e: { sid: string; crm_state: string; state: string; request_state: string }) => [e.sid, [e.crm_state, e.state, e.request_state]]),
      );
    expect(await services()).toEqual({ 'ct:300': ['started', 'started', 'started'], 'vm:100': ['started', 'started', 'started'] });
    const types = (await get(sim, '/cluster/ha/status/current')).body.data.map((e: { id: string }) => e.id);
    expect(types).toEqual(['quorum', 'master', 'fencing', 'lrm:pve-lab', 'lrm:pve-lab-2', 'service:ct:300', 'service:vm:100']);

    for (const state of ['error', 'fence', 'freeze'] as const) {
      expect((await setHaState(sim, 100, state)).status).toBe(200);
      expect((await services())['vm:100']).toEqual([state, state, 'started']);
      expect((await get(sim, '/nodes/pve-lab/qemu/100/status/current')).body.data.ha).toEqual({ managed: 1, state });
    }
    expect((await setHaState(sim, 100, null)).status).toBe(200);
    expect((await get(sim, '/nodes/pve-lab/qemu/100/status/current')).body.data.ha).toEqual({ managed: 1, state: 'started' });

    const unmanaged = await setHaState(sim, 101, 'error');
    expect(unmanaged.status).toBe(400);
    expect(unmanaged.body.message).toContain("resource 'vm:101' is not HA managed");
  });

  it('PVE 8 has no fencing entry in the manager status', async () => {
    sim = await start(8);
    const ids = (await get(sim, '/cluster/ha/status/current')).body.data.map((e: { id: string }) => e.id);
    expect(ids).not.toContain('fencing');
    expect(ids).toContain('service:vm:100');
  });
});

describe('what ha-manager refuses', () => {
  it('a service in error state cannot be started or migrated until the state is cleared', async () => {
    sim = await start(9);
    // CT 300 is running; stop it through HA first so that a start has something to do.
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/stop')).exitstatus).toBe('OK');
    await eventually(() => sim!.model.guest(300)?.status === 'stopped', 10_000);
    await setHaState(sim, 300, 'error');

    const startTask = await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/start');
    expect(startTask).toMatchObject({ type: 'hastart', exitstatus: "command 'ha-manager set ct:300 --state started' failed: exit code 255" });
    expect(await taskLog(sim, startTask.upid)).toContain("service 'ct:300' in error state, must be disabled and fixed first");

    await setHaState(sim, 100, 'error');
    const migrate = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/migrate', { form: { target: 'pve-lab-2', online: 1 } });
    expect(migrate).toMatchObject({ type: 'hamigrate', exitstatus: "command 'ha-manager migrate vm:100 pve-lab-2' failed: exit code 255" });
    expect(sim.model.guest(100)?.node).toBe('pve-lab');

    await setHaState(sim, 300, null);
    expect((await runTask(sim, 'POST', '/nodes/pve-lab/lxc/300/status/start')).exitstatus).toBe('OK');
    await eventually(() => sim!.model.guest(300)?.status === 'running', 10_000);
  });

  it('PVE 9: a strict node affinity rule that leaves the target out refuses the migration; a non-strict or disabled one does not', async () => {
    sim = await start(9, 1000);
    await post(sim, '/cluster/ha/rules', { form: { rule: 'keep-on-lab', type: 'node-affinity', resources: 'vm:100', nodes: 'pve-lab', strict: 1 } });
    const refused = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/migrate', { form: { target: 'pve-lab-2', online: 1 } });
    expect(refused).toMatchObject({ type: 'hamigrate', exitstatus: "command 'ha-manager migrate vm:100 pve-lab-2' failed: exit code 255" });
    expect(await taskLog(sim, refused.upid)).toContain("cannot migrate resource 'vm:100' to node 'pve-lab-2':");
    expect(sim.model.guest(100)?.node).toBe('pve-lab');
    expect(sim.mutations.countFor(100, 'migrate')).toBe(0);

    await put(sim, '/cluster/ha/rules/keep-on-lab', { form: { type: 'node-affinity', disable: 1 } });
    const accepted = await runTask(sim, 'POST', '/nodes/pve-lab/qemu/100/migrate', { form: { target: 'pve-lab-2', online: 1 } });
    expect(accepted.exitstatus).toBe('OK');
    // Until the CRM has moved it, the service reads `migrate`.
    expect(sim.model.guest(100)?.haCrmState).toBe('migrate');
    await eventually(() => sim!.model.guest(100)?.node === 'pve-lab-2', 10_000);
    expect(sim.model.guest(100)?.haCrmState).toBe('started');

    // A non-strict rule only states a preference.
    await put(sim, '/cluster/ha/rules/keep-on-lab', { form: { type: 'node-affinity', disable: 0, strict: 0, nodes: 'pve-lab-2' } });
    const back = await runTask(sim, 'POST', '/nodes/pve-lab-2/qemu/100/migrate', { form: { target: 'pve-lab', online: 1 } });
    expect(back.exitstatus).toBe('OK');
    await eventually(() => sim!.model.guest(100)?.node === 'pve-lab', 10_000);
  });
});
