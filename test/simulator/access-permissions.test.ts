/**
 * Path-scoped ACLs, privilege separation and GET /access/permissions (acl.ts, routes/access.ts), and
 * the PVE 8 / PVE 9 switch for what differs between the releases: /version and privilege names.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type ProxmoxSimulator } from '../../src/simulator/index.js';
import { PVE_PRIVILEGES } from '../../src/proxmox/privileges.js';
import { AUTH, get, labSeed, LAB_SECRET, post, TOKEN_ID } from './helpers.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const USER_ID = TOKEN_ID.split('!')[0]!;

describe('GET /access/permissions', () => {
  it('gives an administrator token every privilege of its release on the top paths (PVE 9 by default)', async () => {
    sim = await startSimulator({ cluster: labSeed(), authFailureDelayMs: 0 });
    const r = await get(sim, '/access/permissions');
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.data).sort()).toEqual(['/', '/access', '/access/groups', '/nodes', '/pool', '/sdn', '/storage', '/vms']);
    expect(Object.keys(r.body.data['/vms']).sort()).toEqual([...PVE_PRIVILEGES[9]]);
    expect(r.body.data['/vms']['VM.PowerMgmt']).toBe(1);
    expect(r.body.data['/']).not.toHaveProperty('VM.Monitor');
    expect((await get(sim, '/version')).body.data).toMatchObject({ version: '9.1.2', release: '9.1' });
  });

  it('on PVE 8: VM.Monitor and no VM.GuestAgent.*, /version 8.x, and a seed naming a PVE 9 privilege is refused', async () => {
    sim = await startSimulator({ cluster: labSeed(), authFailureDelayMs: 0, pve: 8 });
    const perms = (await get(sim, '/access/permissions')).body.data['/'];
    expect(perms['VM.Monitor']).toBe(1);
    expect(Object.keys(perms).filter((p) => p.startsWith('VM.GuestAgent'))).toEqual([]);
    expect((await get(sim, '/version')).body.data).toMatchObject({ version: '8.4.1', release: '8.4' });
    const seed = labSeed();
    seed.apiTokens = [{ tokenId: TOKEN_ID, secret: LAB_SECRET, privileges: ['VM.GuestAgent.Audit'] }];
    await expect(startSimulator({ cluster: seed, authFailureDelayMs: 0, pve: 8 })).rejects.toThrow("invalid privilege 'VM.GuestAgent.Audit' on PVE 8");
  });

  it('scopes ACLs by path: a deeper entry replaces the inherited one, and the 403 names the path checked', async () => {
    const seed = labSeed();
    seed.apiTokens = [
      {
        tokenId: TOKEN_ID,
        secret: LAB_SECRET,
        userAcl: [
          { path: '/vms', privileges: ['VM.Audit', 'VM.PowerMgmt'] },
          { path: '/vms/101', privileges: ['VM.Audit'] },
        ],
      },
    ];
    sim = await startSimulator({ cluster: seed, authFailureDelayMs: 0, taskDurationMs: 20 });
    expect((await post(sim, '/nodes/pve-lab/qemu/100/status/stop')).status).toBe(200);
    const denied = await post(sim, '/nodes/pve-lab/qemu/101/status/start');
    expect(denied.status).toBe(403);
    expect(denied.statusText).toBe('Permission check failed (/vms/101, VM.PowerMgmt)');
    const all = (await get(sim, '/access/permissions')).body.data;
    expect(all['/vms']).toEqual({ 'VM.Audit': 1, 'VM.PowerMgmt': 1 });
    expect(all['/vms/101']).toEqual({ 'VM.Audit': 1 });
    expect(all).not.toHaveProperty('/');
    expect((await get(sim, '/access/permissions', { query: { path: '/vms/100' } })).body.data).toEqual({ '/vms/100': { 'VM.Audit': 1, 'VM.PowerMgmt': 1 } });
  });

  it('with privilege separation the token gets the intersection of its user’s and its own ACLs', async () => {
    const seed = labSeed();
    seed.apiTokens = [
      {
        tokenId: TOKEN_ID,
        secret: LAB_SECRET,
        privsep: true,
        userAcl: [{ path: '/', privileges: [...PVE_PRIVILEGES[9]] }],
        acl: [{ path: '/vms', privileges: ['VM.Audit', 'VM.PowerMgmt'] }],
      },
    ];
    sim = await startSimulator({ cluster: seed, authFailureDelayMs: 0, taskDurationMs: 20 });
    const mine = (await get(sim, '/access/permissions')).body.data;
    expect(mine['/vms']).toEqual({ 'VM.Audit': 1, 'VM.PowerMgmt': 1 });
    expect(mine).not.toHaveProperty('/storage');
    const snap = await post(sim, '/nodes/pve-lab/qemu/100/snapshot', { form: { snapname: 'x1' } });
    expect(snap.statusText).toBe('Permission check failed (/vms/100, VM.Snapshot)');
    // The user (an administrator) is readable only with Sys.Audit on /access, which the token lacks.
    const user = await get(sim, '/access/permissions', { query: { userid: USER_ID } });
    expect(user.status).toBe(403);
    expect(user.statusText).toBe('Permission check failed (/access, Sys.Audit)');
    // Its own id is always allowed.
    expect((await get(sim, '/access/permissions', { query: { userid: TOKEN_ID } })).body.data['/vms']).toEqual(mine['/vms']);
  });

  it('a token that may audit /access reads its user’s permissions', async () => {
    const seed = labSeed();
    seed.apiTokens = [
      {
        tokenId: TOKEN_ID,
        secret: LAB_SECRET,
        privsep: true,
        userAcl: [{ path: '/', privileges: ['Sys.Audit', 'VM.Audit', 'VM.Snapshot'] }],
        acl: [{ path: '/', privileges: ['Sys.Audit', 'VM.Audit'] }],
      },
    ];
    sim = await startSimulator({ cluster: seed, authFailureDelayMs: 0 });
    const user = await get(sim, '/access/permissions', { query: { userid: USER_ID, path: '/vms' } });
    expect(user.body.data).toEqual({ '/vms': { 'Sys.Audit': 1, 'VM.Audit': 1, 'VM.Snapshot': 1 } });
    expect((await get(sim, '/access/permissions', { query: { userid: 'nobody@pve' } })).statusText).toBe("no such user ('nobody@pve')");
    expect(AUTH).toContain(TOKEN_ID);
  });
});
