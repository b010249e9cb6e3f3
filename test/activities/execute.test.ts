/**
 * The execute activity against the simulator, one attempt at a time (MockActivityEnvironment): the
 * paths the catalog added beyond "dispatch a task and wait": synchronous calls, the plan's digest,
 * a guest that moves, creations recognised by id, name or plan id, and retries that must not repeat.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure, type Info } from '@temporalio/activity';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { executeAction } from '../../src/activities/execute.js';
import type { ExecuteInput, ExecuteResult } from '../../src/activities/types.js';
import { normalizeRequest } from '../../src/domain/request.js';
import { createProxmoxClient, type ProxmoxClient } from '../../src/proxmox/index.js';
import { demoClusters, startSimulator, type ProxmoxSimulator } from '../../src/simulator/index.js';

const TOKEN_ID = 'proxmox-agent@pve!agent';
const secrets = { lab: 'lab-secret-for-execute-tests', prod: 'prod-secret-for-execute-tests' };
let sims: Record<'lab' | 'prod', ProxmoxSimulator>;
let clients: Record<'lab' | 'prod', ProxmoxClient>;

beforeAll(async () => {
  const seeds = demoClusters(secrets);
  const [lab, prod] = await Promise.all([
    startSimulator({ cluster: seeds.lab, taskDurationMs: 30, authFailureDelayMs: 0 }),
    startSimulator({ cluster: seeds.prod, taskDurationMs: 30, authFailureDelayMs: 0 }),
  ]);
  sims = { lab, prod };
  clients = {
    lab: createProxmoxClient({ baseUrl: lab.url, tokenId: TOKEN_ID, tokenSecret: secrets.lab }),
    prod: createProxmoxClient({ baseUrl: prod.url, tokenId: TOKEN_ID, tokenSecret: secrets.prod }),
  };
});
afterAll(async () => {
  await Promise.all([clients.lab.close(), clients.prod.close(), sims.lab.close(), sims.prod.close()]);
});
beforeEach(() => {
  sims.lab.reset();
  sims.prod.reset();
});

const deps = {
  clientFor: (env: string) => clients[env as 'lab' | 'prod'],
  tokenIdFor: () => TOKEN_ID,
  pollIntervalMs: 20,
};

function input(environment: 'lab' | 'prod', action: string, vmid: number, params: Record<string, unknown>, extra: Partial<ExecuteInput> = {}): ExecuteInput {
  const request = normalizeRequest({ action, environment, target: { vmid }, params, reason: 'test' });
  return { planId: 'plan_TEST0000000000000000000001', request, node: sims[environment].model.guest(vmid)!.node, ...extra };
}

/** One attempt. A retry passes `attempt > 1`; `scheduledTimestampMs` in the future hides earlier tasks from adoption. */
function attempt(i: ExecuteInput, info: Partial<Info> = {}): Promise<ExecuteResult> {
  return new MockActivityEnvironment({ attempt: 1, scheduledTimestampMs: Date.now(), ...info }).run(executeAction, deps, i);
}
const retryBlindToTasks = { attempt: 2, scheduledTimestampMs: Date.now() + 3_600_000 };

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('synchronous config writes and the plan\'s digest', () => {
  it('applies a PUT config with no task and confirms it by a re-read', async () => {
    const digest = sims.lab.model.guest(101)!.digest;
    const r = await attempt(input('lab', 'vm.config.update', 101, { cores: 6, tags: ['db', 'lab', 'pg'] }, { plannedDigest: digest }));
    expect(r).toEqual({ outcome: 'applied' });
    expect(sims.lab.model.guest(101)!.config).toMatchObject({ cores: '6', tags: 'db;lab;pg' });
    expect(sims.lab.mutations.countFor(101, 'config')).toBe(1);
  });

  it('a retry after a lost synchronous answer finds the values in place and sends nothing', async () => {
    const digest = sims.lab.model.guest(300)!.digest;
    sims.lab.faults.dropAfterDispatch({ method: 'PUT', path: '/nodes/*/lxc/*/config', times: 1 });
    const i = input('lab', 'ct.config.update', 300, { memory: 1024, hostname: 'cache-2' }, { plannedDigest: digest });
    const lost = await attempt(i).then(() => undefined, (e: unknown) => e as ApplicationFailure);
    expect(lost?.nonRetryable).toBe(false);
    const r = await attempt(i, { attempt: 2 });
    expect(r.outcome).toBe('noop');
    expect(sims.lab.mutations.countFor(300, 'config')).toBe(1);
  });

  it('refuses to write over a config changed since the plan, before sending anything', async () => {
    const err = await failure(attempt(input('lab', 'vm.config.update', 101, { cores: 6 }, { plannedDigest: 'f'.repeat(40) })));
    expect(err.type).toBe('PlanStale');
    expect(err.nonRetryable).toBe(true);
    expect(sims.lab.mutations.all()).toEqual([]);
  });

  it('refuses a digest-guarded action whose plan recorded no digest', async () => {
    const err = await failure(attempt(input('lab', 'vm.disk.resize', 101, { disk: 'scsi0', size: '80G' })));
    expect(err.type).toBe('PlanStale');
    expect(sims.lab.mutations.all()).toEqual([]);
  });

  it("reports Proxmox's own digest refusal (a change that landed after our read) as stale, in Proxmox's words", async () => {
    const digest = sims.lab.model.guest(101)!.digest;
    sims.lab.faults.errorRate({ method: 'PUT', path: '/nodes/*/qemu/*/config', status: 500, message: 'checksum mismatch (file change by other user?)', times: 1 });
    const err = await failure(attempt(input('lab', 'vm.config.update', 101, { cores: 6 }, { plannedDigest: digest })));
    expect(err.type).toBe('PlanStale');
    expect(err.message).toContain('checksum mismatch (file change by other user?)');
  });

  it('a rollback retry is refused once the config changed, so it never rolls back twice', async () => {
    const i = input('lab', 'vm.snapshot.rollback', 101, { snapname: 'before-upgrade' }, { plannedDigest: sims.lab.model.guest(101)!.digest });
    expect((await attempt(i)).outcome).toBe('applied');
    const err = await failure(attempt(i, retryBlindToTasks));
    expect(err.type).toBe('PlanStale');
    expect(sims.lab.mutations.countFor(101, 'rollback')).toBe(1);
  });
});

describe('a guest that moves, and creations', () => {
  it('migrate ends with the guest on the target; a retry finds it there and sends nothing', async () => {
    const i = input('prod', 'vm.migrate', 200, { target: 'pve-prod-2', online: true, withLocalDisks: true });
    const r = await attempt(i);
    expect(r).toMatchObject({ outcome: 'applied', exitstatus: 'OK', upid: expect.stringContaining(':qmigrate:200:') });
    expect(sims.prod.model.guest(200)!.node).toBe('pve-prod-2');
    expect(await attempt(i, retryBlindToTasks)).toEqual({ outcome: 'noop', note: "VM 200 is already on node 'pve-prod-2'" });
    expect(sims.prod.mutations.countFor(200, 'migrate')).toBe(1);
  });

  it('a clone whose answer was lost is adopted from the task list, not sent again', async () => {
    sims.lab.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/*/clone', times: 1 });
    const i = input('lab', 'vm.clone', 101, { newid: 150, name: 'db-copy' });
    const scheduledTimestampMs = Date.now();
    await attempt(i, { scheduledTimestampMs }).then(() => undefined, () => undefined);
    const r = await attempt(i, { attempt: 2, scheduledTimestampMs });
    expect(r).toMatchObject({ outcome: 'applied', note: 'adopted the task an earlier attempt had started' });
    expect(sims.lab.model.guest(150)).toMatchObject({ name: 'db-copy', status: 'stopped' });
    expect(sims.lab.model.guest(150)!.lock).toBeUndefined();
    expect(sims.lab.mutations.countFor(101, 'clone')).toBe(1);
    expect(sims.lab.mutations.duplicates()).toEqual([]);
  });

  it('a clone an earlier attempt left running is waited for, then recorded as a no-op', async () => {
    sims.lab.faults.slowTasks(300, { method: 'POST', path: '/nodes/*/qemu/*/clone' });
    await clients.lab.request('POST', '/nodes/{node}/qemu/{vmid}/clone', { node: 'pve-lab', vmid: 101 }, { newid: 150, name: 'db-copy', full: 1 });
    expect(sims.lab.model.guest(150)!.lock).toBe('clone');
    const r = await attempt(input('lab', 'vm.clone', 101, { newid: 150, name: 'db-copy' }), retryBlindToTasks);
    expect(r).toEqual({ outcome: 'noop', note: "VM 150 'db-copy' already exists" });
    expect(sims.lab.model.guest(150)!.lock).toBeUndefined();
    expect(sims.lab.mutations.countFor(101, 'clone')).toBe(1);
  });

  it('stops waiting for an earlier attempt when the activity is cancelled', async () => {
    sims.lab.faults.slowTasks(5_000, { method: 'POST', path: '/nodes/*/qemu/*/clone' });
    await clients.lab.request('POST', '/nodes/{node}/qemu/{vmid}/clone', { node: 'pve-lab', vmid: 101 }, { newid: 150, name: 'db-copy', full: 1 });
    const env = new MockActivityEnvironment({ ...retryBlindToTasks });
    const running = env.run(executeAction, deps, input('lab', 'vm.clone', 101, { newid: 150, name: 'db-copy' }));
    setTimeout(() => env.cancel(), 100);
    await expect(running).rejects.toThrow();
    expect(sims.lab.model.guest(150)!.lock).toBe('clone');
  });

  it('a backup this plan already made is recognised by the plan id in its notes', async () => {
    const i = input('lab', 'ct.backup', 300, { storage: 'local', notes: 'before the upgrade' });
    const r = await attempt(i);
    expect(r).toMatchObject({ outcome: 'applied', upid: expect.stringContaining(':vzdump:300:') });
    const [backup] = sims.lab.model.backupVolumes();
    expect(backup).toMatchObject({ vmid: 300, notes: `before the upgrade [proxmox-agent ${i.planId}]` });
    expect(await attempt(i, retryBlindToTasks)).toEqual({ outcome: 'noop', note: `backup ${backup!.volid} was made by this plan` });
    // Another plan's backup is a new backup.
    expect((await attempt({ ...i, planId: 'plan_TEST0000000000000000000002' })).outcome).toBe('applied');
    expect(sims.lab.model.backupVolumes()).toHaveLength(2);
  });
});
