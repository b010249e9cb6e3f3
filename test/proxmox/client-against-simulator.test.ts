// The client against the project's Proxmox simulator: the same wire behaviour the real server has
// (reason phrases, legacy bodies, 595 from an unreachable node, tasks that fail inside the worker).

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createProxmoxClient,
  isStaleConfigError,
  ProxmoxAuthError,
  ProxmoxError,
  ProxmoxParameterError,
  ProxmoxPermanentError,
  ProxmoxPermissionError,
  ProxmoxStaleConfigError,
  ProxmoxTaskFailedError,
  ProxmoxTransientError,
  parseUpid,
  type ProxmoxClient,
} from '../../src/proxmox/index.js';
import type { ProxmoxSimulator, SimClusterSeed } from '../../src/simulator/index.js';
import { startSimulatedProxmox } from '../support/simulated-proxmox.js';

const TOKEN_ID = 'agent@pve!client-test';
const SECRET = 'client-test-secret-not-real';
const READONLY_ID = 'auditor@pve!ro';

const cluster = (): SimClusterSeed => ({
  name: 'client-test',
  nodes: ['pve1', 'pve2'],
  apiTokens: [
    { tokenId: TOKEN_ID, secret: SECRET },
    { tokenId: READONLY_ID, secret: SECRET, privileges: ['VM.Audit', 'Sys.Audit'] },
  ],
  guests: [
    { vmid: 100, type: 'qemu', node: 'pve1', name: 'web', status: 'running', cores: 2, memory: 2048 },
    { vmid: 101, type: 'qemu', node: 'pve1', name: 'db', status: 'stopped', cores: 2, memory: 2048, snapshots: ['before-upgrade'] },
    { vmid: 300, type: 'lxc', node: 'pve1', name: 'cache', status: 'running', cores: 1, memory: 512 },
    { vmid: 200, type: 'qemu', node: 'pve2', name: 'far', status: 'running', cores: 1, memory: 1024 },
  ],
});

async function failure(p: Promise<unknown>): Promise<ProxmoxError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProxmoxError);
  return err as ProxmoxError;
}

describe('client against the simulator', () => {
  let sim: ProxmoxSimulator;
  let client: ProxmoxClient;
  let close: () => Promise<void>;
  const extra: ProxmoxClient[] = [];
  const connect = (over: { tokenId?: string; tokenSecret?: string } = {}): ProxmoxClient => {
    const c = createProxmoxClient({ baseUrl: sim.url, tokenId: TOKEN_ID, tokenSecret: SECRET, ...over });
    extra.push(c);
    return c;
  };
  const start = (vmid: number, node = 'pve1') =>
    client.request('POST', '/nodes/{node}/qemu/{vmid}/status/start', { node, vmid }) as Promise<string>;

  beforeAll(async () => {
    ({ sim, client, close } = await startSimulatedProxmox({ cluster: cluster(), tokenId: TOKEN_ID, secret: SECRET, taskDurationMs: 40 }));
  });
  afterEach(() => sim.reset());
  afterAll(async () => {
    await Promise.all(extra.map((c) => c.close()));
    await close();
  });

  it('reads version, nodes and cluster resources', async () => {
    expect((await client.version()).version).toEqual(expect.any(String));
    expect((await client.nodes()).map((n) => n.node).sort()).toEqual(['pve1', 'pve2']);
    const vms = await client.clusterResources('vm');
    expect(vms.map((r) => r.vmid).sort()).toEqual([100, 101, 200, 300]);
    expect((await client.guestStatus('pve1', 'lxc', 300)).status).toBe('running');
    expect((await client.guestConfig('pve1', 'qemu', 101)).digest).toMatch(/^[0-9a-f]{40}$/);
    expect((await client.snapshots('pve1', 'qemu', 101)).map((s) => s.name)).toContain('before-upgrade');
  });

  it('pendingConfig lists a running VM\'s change that waits for a restart', async () => {
    await client.request('PUT', '/nodes/{node}/qemu/{vmid}/config', { node: 'pve1', vmid: 100 }, { cores: 4 });
    const entries = await client.pendingConfig('pve1', 'qemu', 100);
    expect(entries.find((e) => e.key === 'cores')).toEqual({ key: 'cores', value: '2', pending: '4' });
    expect((await client.pendingConfig('pve1', 'lxc', 300)).every((e) => e.pending === undefined)).toBe(true);
  });

  it('start → waitForTask OK, and the guest is running', async () => {
    const upid = await start(101);
    expect(parseUpid(upid)).toMatchObject({ node: 'pve1', type: 'qmstart', id: '101', user: 'agent@pve', tokenid: 'client-test' });
    const polls: string[] = [];
    const done = await client.waitForTask('pve1', upid, { intervalMs: 10, onPoll: (s) => polls.push(s.status) });
    expect(done).toMatchObject({ ok: true, exitstatus: 'OK', upid });
    expect(polls.at(-1)).toBe('stopped');
    expect((await client.guestStatus('pve1', 'qemu', 101)).status).toBe('running');
    expect((await client.taskStatus('pve1', upid)).exitstatus).toBe('OK');
    const log = await client.taskLog('pve1', upid);
    expect(log.lines.at(-1)?.t).toBe('TASK OK');
  });

  it('starting a running VM: the task fails with `VM 100 already running` and the log tail', async () => {
    const upid = await start(100);
    const err = await failure(client.waitForTask('pve1', upid, { intervalMs: 10 }));
    expect(err).toBeInstanceOf(ProxmoxTaskFailedError);
    const failed = err as ProxmoxTaskFailedError;
    expect(failed.exitstatus).toBe('VM 100 already running');
    expect(failed.retryable).toBe(false);
    expect(failed.logTail.join('\n')).toContain('VM 100 already running');
  });

  it('a parameter error carries Proxmox\'s errors map', async () => {
    const err = await failure(client.request('POST', '/nodes/{node}/qemu/{vmid}/snapshot', { node: 'pve1', vmid: 101 }, { snapname: '1-not-a-configid' }));
    expect(err).toBeInstanceOf(ProxmoxParameterError);
    expect(err.status).toBe(400);
    expect(Object.keys(err.errors ?? {})).toContain('snapname');
    expect(err.message).toContain('snapname:');
  });

  it('a wrong secret is a 401 ProxmoxAuthError', async () => {
    const err = await failure(connect({ tokenSecret: 'wrong-secret' }).nodes());
    expect(err).toBeInstanceOf(ProxmoxAuthError);
    expect(err.status).toBe(401);
    expect(err.retryable).toBe(false);
    expect(err.message).not.toContain('wrong-secret');
  });

  it('a token without VM.PowerMgmt gets a 403 ProxmoxPermissionError', async () => {
    const err = await failure(connect({ tokenId: READONLY_ID }).request('POST', '/nodes/{node}/qemu/{vmid}/status/start', { node: 'pve1', vmid: 101 }));
    expect(err).toBeInstanceOf(ProxmoxPermissionError);
    expect(err.message).toContain('Permission check failed');
  });

  it('an unreachable node answers 595, which is transient and known not to have run', async () => {
    sim.faults.nodeUnreachable('pve2');
    const err = await failure(client.guestStatus('pve2', 'qemu', 200));
    expect(err).toBeInstanceOf(ProxmoxTransientError);
    expect(err.status).toBe(595);
    expect(err.outcomeUnknown).toBe(false);
    expect(err.message).toContain('No route to host');
    // Other nodes are unaffected.
    expect((await client.guestStatus('pve1', 'qemu', 100)).status).toBe('running');
  });

  it('waitForTask rides out "no such task" and 599s without re-sending the start', async () => {
    // Invisible for a second: the two 599s come first, and the third poll must still meet the 400 on a slow machine.
    sim.faults.taskInvisibleFor(1000);
    sim.faults.errorRate({ method: 'GET', path: '/nodes/pve1/tasks/*/status', status: 599, times: 2 });
    const upid = await start(101);
    const tolerated: string[] = [];
    await expect(client.waitForTask('pve1', upid, { intervalMs: 10, onPollError: (e) => tolerated.push(String(e.status)) })).resolves.toMatchObject({ ok: true });
    expect(tolerated).toEqual(expect.arrayContaining(['400', '599']));
    expect(sim.mutations.countFor(101, 'start')).toBe(1);
    expect(sim.mutations.duplicates()).toEqual([]);
  });

  it('a connection dropped after dispatch is transient with an unknown outcome; the task list shows what ran', async () => {
    sim.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/pve1/qemu/101/status/start', times: 1 });
    const err = await failure(start(101));
    expect(err).toBeInstanceOf(ProxmoxTransientError);
    expect(err.outcomeUnknown).toBe(true);
    const tasks = await client.listTasks('pve1', { vmid: 101, source: 'all', typefilter: 'qmstart' });
    expect(tasks).toHaveLength(1);
    await client.waitForTask('pve1', tasks[0]!.upid, { intervalMs: 10 });
    expect(sim.mutations.countFor(101, 'start')).toBe(1);
  });

  it('lock contention (`got timeout`) is transient; a stale digest is ProxmoxStaleConfigError', async () => {
    sim.faults.lockContention(101);
    const cfg = (vmid: number, params: Record<string, string | number>) =>
      client.request('PUT', '/nodes/{node}/qemu/{vmid}/config', { node: 'pve1', vmid }, params);
    const locked = await failure(cfg(101, { cores: 4 }));
    expect(locked).toBeInstanceOf(ProxmoxTransientError);
    expect(locked.message).toContain('got timeout');
    const stale = await failure(cfg(101, { cores: 4, digest: '0'.repeat(40) }));
    expect(stale).toBeInstanceOf(ProxmoxStaleConfigError);
    const { digest } = await client.guestConfig('pve1', 'qemu', 101);
    await expect(cfg(101, { cores: 4, digest, delete: 'description' })).resolves.toBeNull();
  });

  it('QEMU resize checks its digest in the task: the wait fails, and isStaleConfigError reads it as stale', async () => {
    const upid = (await client.request('PUT', '/nodes/{node}/qemu/{vmid}/resize', { node: 'pve1', vmid: 101 }, { disk: 'scsi0', size: '+1G', digest: '0'.repeat(40) })) as string;
    expect(parseUpid(upid)?.type).toBe('resize');
    const err = await failure(client.waitForTask('pve1', upid, { intervalMs: 10 }));
    expect(err).toBeInstanceOf(ProxmoxTaskFailedError);
    expect((err as ProxmoxTaskFailedError).exitstatus).toBe('checksum mismatch (file change by other user?)');
    expect(isStaleConfigError(err)).toBe(true);
    // Any other task failure is not staleness.
    expect(isStaleConfigError(await failure(client.waitForTask('pve1', await start(100), { intervalMs: 10 })))).toBe(false);
  });

  it('vzdump: a storage without backup content fails in the task; a guest on another node is answered "OK", no task', async () => {
    const upid = (await client.request('POST', '/nodes/{node}/vzdump', { node: 'pve1' }, { vmid: '101', storage: 'local-lvm' })) as string;
    const err = await failure(client.waitForTask('pve1', upid, { intervalMs: 10 }));
    expect(err).toBeInstanceOf(ProxmoxTaskFailedError);
    expect(err.message).toContain("can't use storage 'local-lvm' for backups - wrong content type");
    await expect(client.request('POST', '/nodes/{node}/vzdump', { node: 'pve1' }, { vmid: '200', storage: 'local' })).resolves.toBe('OK');
  });

  it('stopTask cancels a running task', async () => {
    sim.faults.slowTasks(5_000, { path: '/nodes/pve1/qemu/101/status/start' });
    const upid = await start(101);
    await client.stopTask('pve1', upid);
    const err = await failure(client.waitForTask('pve1', upid, { intervalMs: 10, timeoutMs: 3_000 }));
    expect(err).toBeInstanceOf(ProxmoxTaskFailedError);
  });
});

describe('client against a pre-5.2 (legacy error bodies) simulator', () => {
  let client: ProxmoxClient;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ client, close } = await startSimulatedProxmox({ cluster: cluster(), tokenId: TOKEN_ID, secret: SECRET, taskDurationMs: 40, legacyErrors: true }));
  });
  afterAll(() => close());

  it('takes the message from the reason phrase when the body is only {data:null}', async () => {
    const err = await failure(client.request('POST', '/nodes/{node}/lxc/{vmid}/status/start', { node: 'pve1', vmid: 300 }));
    expect(err).toBeInstanceOf(ProxmoxPermanentError);
    expect(err.constructor).toBe(ProxmoxPermanentError);
    expect(err.status).toBe(500);
    expect(err.proxmoxMessage).toBe('CT 300 already running');
    expect(err.message).toContain('CT 300 already running');
  });

  it('still exposes the errors map of a parameter error', async () => {
    const err = await failure(client.request('POST', '/nodes/{node}/qemu/{vmid}/snapshot', { node: 'pve1', vmid: 101 }, {}));
    expect(err).toBeInstanceOf(ProxmoxParameterError);
    expect(err.errors).toHaveProperty('snapname');
  });
});

describe.each([8, 9] as const)('client against a PVE %i simulator: version and effective permissions', (pve) => {
  let client: ProxmoxClient;
  let readonly: ProxmoxClient;
  let close: () => Promise<void>;
  beforeAll(async () => {
    let sim: ProxmoxSimulator;
    ({ sim, client, close } = await startSimulatedProxmox({ cluster: cluster(), tokenId: TOKEN_ID, secret: SECRET, taskDurationMs: 40, pve }));
    readonly = createProxmoxClient({ baseUrl: sim.url, tokenId: READONLY_ID, tokenSecret: SECRET });
  });
  afterAll(async () => {
    await readonly.close();
    await close();
  });

  it('reads the release and the token’s permissions under that release’s privilege names', async () => {
    const v = await client.version();
    expect(v.release.split('.')[0]).toBe(String(pve));
    const perms = await client.permissions();
    expect(perms['/vms']?.['VM.PowerMgmt']).toBe(1);
    expect('VM.Monitor' in perms['/vms']!).toBe(pve === 8);
    expect('VM.GuestAgent.Audit' in perms['/vms']!).toBe(pve === 9);
    expect(await readonly.permissions({ path: '/vms/100' })).toEqual({ '/vms/100': { 'Sys.Audit': 1, 'VM.Audit': 1 } });
    // Another principal's permissions need Sys.Audit on /access: the read-only token has it (on /).
    expect((await readonly.permissions({ userid: TOKEN_ID, path: '/' }))['/']?.['Sys.Modify']).toBe(1);
  });
});
