import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});
const get = (path: string, token: string = TOKENS.agent) => t.call('GET', path, { token });

describe('inventory reads (read scope, no approval, nothing recorded)', () => {
  it('lists the guests of an environment with what a plan request needs', async () => {
    const res = await get('/v1/inventory?environment=lab');
    expect(res.status).toBe(200);
    expect(res.body.environment).toBe('lab');
    expect(res.body.nodes).toEqual([{ node: 'pve-lab', status: 'online' }]);
    expect(res.body.guests.map((g: { vmid: number; type: string; status: string }) => [g.vmid, g.type, g.status])).toEqual([
      [100, 'qemu', 'running'],
      [101, 'qemu', 'stopped'],
      [300, 'lxc', 'running'],
    ]);
    expect(res.body.guests[0]).toMatchObject({ node: 'pve-lab', name: 'web-lab', tags: expect.any(Array), template: false });
  });

  it('reads one guest (status and config with its digest), and its snapshots', async () => {
    const guest = await get('/v1/inventory/prod/guests/201');
    expect(guest.status).toBe(200);
    expect(guest.body.guest).toMatchObject({ vmid: 201, type: 'qemu', node: 'pve-prod', tags: ['db', 'prod'] });
    expect(guest.body.status.status).toBe('stopped');
    expect(guest.body.config.digest).toMatch(/^[0-9a-f]{40}$/);
    const snaps = await get('/v1/inventory/prod/guests/201/snapshots');
    expect(snaps.body.snapshots.map((s: { name: string }) => s.name)).toEqual(['nightly']);
  });

  it('reads a task and its log, by UPID', async () => {
    const p = await t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'inv1' }, reason: 'inventory test' },
    });
    await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.body.planId, requestHash: p.body.requestHash } });
    const done = await t.waitForStatus(p.body.planId, ['succeeded']);
    const upid = encodeURIComponent(done.result.upid);
    const task = await get(`/v1/inventory/lab/tasks/${upid}`);
    expect(task.body).toMatchObject({ environment: 'lab', node: 'pve-lab', type: 'qmsnapshot', id: '100', status: 'stopped', exitstatus: 'OK' });
    const log = await get(`/v1/inventory/lab/tasks/${upid}/log`);
    expect(log.body.lines.at(-1).t).toBe('TASK OK');
  });

  it('answers unknown guests, bad ids and foreign environments with problems', async () => {
    expect((await get('/v1/inventory/lab/guests/999')).status).toBe(404);
    expect((await get('/v1/inventory/lab/guests/abc')).status).toBe(400);
    expect((await get('/v1/inventory/lab/tasks/not-a-upid')).status).toBe(400);
    // A well-formed but unconfigured environment names nothing (schemathesis: positive_data_acceptance).
    expect((await get('/v1/inventory?environment=mars')).status).toBe(404);
    expect((await get('/v1/inventory/mars/guests/100')).status).toBe(404);
    expect((await get('/v1/inventory?environment=Mars!')).status).toBe(400);
    const foreign = await get('/v1/inventory?environment=prod', TOKENS.labOnly);
    expect(foreign.status).toBe(403);
    expect(foreign.body.type).toBe('/problems/forbidden');
  });

  it('answers 404 for a task of another cluster’s node, and documents the parameters it checks', async () => {
    // Found by schemathesis: a UPID naming a node outside the environment got 502 (Proxmox: hostname lookup failed).
    const upid = encodeURIComponent('UPID:pve-lab:000A1B2C:0012ABCD:6745F0A1:qmstart:100:proxmox-agent@pve!agent:');
    const res = await get(`/v1/inventory/prod/tasks/${upid}`);
    expect(res.status).toBe(404);
    expect((await get(`/v1/inventory/prod/tasks/${upid}/log`)).status).toBe(404);
    // ... and the parameters' constraints are in the document, so a value it allows is accepted.
    const doc = (await t.call('GET', '/v1/openapi.json')).body;
    const params = (path: string) => Object.fromEntries(doc.paths[path].get.parameters.map((p: { name: string; schema: object }) => [p.name, p.schema]));
    expect(params('/v1/inventory').environment).toMatchObject({ pattern: '^[a-z][a-z0-9-]{0,31}$' });
    expect(params('/v1/inventory/{environment}/guests/{vmid}').vmid).toMatchObject({ type: 'integer', minimum: 100 });
    expect(params('/v1/inventory/{environment}/tasks/{upid}').upid).toHaveProperty('pattern');
  });

  it('reports Proxmox failures as 502 in Proxmox’s words', async () => {
    const fault = t.sim('lab').faults.nodeUnreachable('pve-lab');
    try {
      const res = await get('/v1/inventory/lab/guests/100');
      expect(res.status).toBe(502);
      expect(res.body.detail).toMatch(/No route to host/);
    } finally {
      t.sim('lab').faults.remove(fault);
    }
  });
});
