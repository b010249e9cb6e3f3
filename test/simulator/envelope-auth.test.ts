/** Envelope, headers, authentication, 501 and legacy error bodies, over real HTTP. */
import { afterEach, describe, expect, it } from 'vitest';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { LAB_SECRET, TOKEN_ID, get, labSeed, post, startLab } from './helpers.js';
import { startSimulator } from '../../src/simulator/index.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('envelope and headers', () => {
  it('wraps results in {data} with the real content type and server header', async () => {
    sim = await startLab();
    const r = await get(sim, '/version');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json;charset=UTF-8');
    expect(r.headers.get('server')).toBe('pve-api-daemon/3.0');
    expect(r.body).toEqual({ data: { version: '9.1.2', release: '9.1', repoid: '5b7ed8c5', console: 'xtermjs' } });
  });

  it('answers errors with the message as reason phrase and {data:null, message} body', async () => {
    sim = await startLab();
    const r = await get(sim, '/nodes/pve-lab/qemu/999/status/current');
    expect(r.status).toBe(500);
    expect(r.statusText).toBe("Configuration file 'nodes/pve-lab/qemu-server/999.conf' does not exist");
    expect(r.body).toEqual({ data: null, message: "Configuration file 'nodes/pve-lab/qemu-server/999.conf' does not exist\n" });
  });

  it('omits `message` when emulating servers before libpve-http-server-perl 5.2', async () => {
    sim = await startLab({ legacyErrors: true });
    const r = await post(sim, '/nodes/pve-lab/lxc/300/status/start');
    expect(r.status).toBe(500);
    expect(r.statusText).toBe('CT 300 already running');
    expect(r.body).toEqual({ data: null });
    const v = await post(sim, '/nodes/pve-lab/qemu/100/snapshot', { form: {} });
    expect(v.body).toEqual({ data: null, errors: { snapname: 'property is missing and it is not optional' } });
  });

  it('answers 501 for unknown paths and for known paths with the wrong method', async () => {
    sim = await startLab();
    const a = await get(sim, '/nodes/pve-lab/frobnicate');
    expect(a.status).toBe(501);
    expect(a.statusText).toBe("Method 'GET /nodes/pve-lab/frobnicate' not implemented");
    expect(a.body.message).toBe("Method 'GET /nodes/pve-lab/frobnicate' not implemented\n");
    const b = await post(sim, '/version');
    expect(b.status).toBe(501);
    expect(b.statusText).toBe("Method 'POST /version' not implemented");
  });

  it('gzips bodies over 1 KiB when the client accepts gzip', async () => {
    sim = await startLab();
    const r = await fetch(`${sim.url}/api2/json/cluster/resources`, {
      headers: { Authorization: `PVEAPIToken=${TOKEN_ID}=${LAB_SECRET}`, 'Accept-Encoding': 'gzip' },
    });
    expect(r.headers.get('content-encoding')).toBe('gzip');
    const body = (await r.json()) as { data: unknown[] };
    expect(body.data.length).toBeGreaterThan(3);
  });
});

describe('API token authentication', () => {
  it('accepts `PVEAPIToken=` and `PVEAPIToken ` (space) and URI-escaped values', async () => {
    sim = await startLab();
    expect((await get(sim, '/version', { auth: `PVEAPIToken=${TOKEN_ID}=${LAB_SECRET}` })).status).toBe(200);
    expect((await get(sim, '/version', { auth: `PVEAPIToken ${TOKEN_ID}=${LAB_SECRET}` })).status).toBe(200);
    expect((await get(sim, '/version', { auth: `PVEAPIToken=${encodeURIComponent(`${TOKEN_ID}=${LAB_SECRET}`)}` })).status).toBe(200);
  });

  it('splits the value at the last `=` (so a secret can never contain `=`, as with verify_token)', async () => {
    const seed = labSeed();
    seed.apiTokens = [{ tokenId: TOKEN_ID, secret: 'abc=def' }];
    sim = await startSimulator({ cluster: seed, authFailureDelayMs: 0 });
    // token id becomes "proxmox-agent@pve!agent=abc", secret "def": not a valid token.
    const r = await get(sim, '/version', { auth: `PVEAPIToken=${TOKEN_ID}=abc=def` });
    expect(r.status).toBe(401);
    expect(r.statusText).toBe('Authentication failed!');
  });

  it('401 No ticket without credentials, empty body', async () => {
    sim = await startLab();
    const r = await get(sim, '/version', { auth: null });
    expect(r.status).toBe(401);
    expect(r.statusText).toBe('No ticket');
    expect(r.text).toBe('');
  });

  it('401 Authentication failed! for a wrong secret or unknown token, empty body', async () => {
    sim = await startLab();
    for (const auth of [`PVEAPIToken=${TOKEN_ID}=wrong`, `PVEAPIToken=other@pve!x=${LAB_SECRET}`, `PVEAPIToken=garbage`]) {
      const r = await get(sim, '/version', { auth });
      expect(r.status, auth).toBe(401);
      expect(r.statusText).toBe('Authentication failed!');
      expect(r.text).toBe('');
    }
  });

  it('delays every 401 by authFailureDelayMs (configurable; default 3 s like the real server)', async () => {
    sim = await startLab({ authFailureDelayMs: 200 });
    const t0 = Date.now();
    const r = await get(sim, '/version', { auth: `PVEAPIToken=${TOKEN_ID}=wrong` });
    expect(r.status).toBe(401);
    // A lower bound only: the delay happened. (No upper bound on anything: timings are not asserted.)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  });

  it('does not delay a valid request while a failed one waits out its delay', async () => {
    sim = await startLab({ authFailureDelayMs: 2000 });
    const order: string[] = [];
    const bad = get(sim, '/version', { auth: `PVEAPIToken=${TOKEN_ID}=wrong` }).then((r) => order.push(`bad ${r.status}`));
    const good = get(sim, '/version').then((r) => order.push(`good ${r.status}`));
    await Promise.race([bad, good]);
    expect(order).toEqual(['good 200']);
    await bad;
  }, 15_000);

  it('authenticates before routing: an unknown path without token is 401, not 501', async () => {
    sim = await startLab();
    expect((await get(sim, '/nope', { auth: null })).status).toBe(401);
  });

  it('403 in the real format when the token lacks the privilege', async () => {
    const seed = labSeed();
    seed.apiTokens = [{ tokenId: TOKEN_ID, secret: LAB_SECRET, privileges: ['VM.Audit'] }];
    sim = await startSimulator({ cluster: seed, authFailureDelayMs: 0, taskDurationMs: 20 });
    expect((await get(sim, '/nodes/pve-lab/qemu/100/status/current')).status).toBe(200);
    const r = await post(sim, '/nodes/pve-lab/qemu/100/status/stop');
    expect(r.status).toBe(403);
    expect(r.statusText).toBe('Permission check failed (/vms/100, VM.PowerMgmt)');
    expect(r.body).toEqual({ data: null, message: 'Permission check failed (/vms/100, VM.PowerMgmt)\n' });
    const snap = await post(sim, '/nodes/pve-lab/qemu/100/snapshot/x/rollback');
    expect(snap.statusText).toBe('Permission check failed (/vms/100, VM.Snapshot|VM.Snapshot.Rollback)');
    expect(sim.mutations.all()).toEqual([]);
  });

  it('refuses skiplock for API tokens like the real server', async () => {
    sim = await startLab();
    const r = await post(sim, '/nodes/pve-lab/qemu/100/status/stop', { form: { skiplock: 1 } });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ skiplock: 'Only root may use this option.' });
  });
});
