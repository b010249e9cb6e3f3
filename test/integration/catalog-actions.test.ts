/**
 * Every catalog action, QEMU and LXC, applied through the HTTP API on the real Temporal dev server
 * against the simulator's demo guests: the simulator's state afterwards, and its mutation log
 * growing by exactly that one mutation. Then the no-op, refused and stale paths, and GET /v1/catalog.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MutationOp } from '../../src/simulator/mutation-log.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const NO_READ_TOKEN = 'test-plan-only-token';

let t: TestService;
beforeAll(async () => {
  t = await startTestService((config) => {
    config.tokens.push({
      id: 'test-plan-only',
      principal: 'agent:plan-only',
      secretSha256: createHash('sha256').update(NO_READ_TOKEN).digest('hex'),
      scopes: ['plan'],
      environments: ['*'],
      roles: [],
    });
  });
});
afterAll(async () => {
  await t?.stop();
});

type Env = 'lab' | 'prod';

/** Plan, apply, give the approvals the plan asks for (bob holds the dba role some prod rules want), wait. */
async function run(environment: Env, action: string, vmid: number, params: Record<string, unknown> = {}) {
  const p = await t.call('POST', '/v1/actions/plan', {
    token: TOKENS.agent,
    body: { action, environment, target: { vmid }, params, reason: `catalog test: ${action}` },
  });
  expect(p.status, JSON.stringify(p.body)).toBe(201);
  if (p.body.status === 'denied') return { plan: p.body, done: p.body };
  const a = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.body.planId, requestHash: p.body.requestHash } });
  expect(a.status, JSON.stringify(a.body)).toBe(202);
  for (const approver of [TOKENS.approver2, TOKENS.approver1].slice(0, p.body.approval.required)) {
    expect((await t.call('POST', `/v1/actions/${p.body.planId}/approvals`, { token: approver, body: { decision: 'approve' } })).status).toBe(202);
  }
  const done = await t.waitForStatus(p.body.planId, ['succeeded', 'failed', 'denied', 'expired']);
  return { plan: p.body, done };
}

/** Plans applied by applyOnce, per environment: each must account for exactly one mutation. */
const applied: Record<Env, number> = { lab: 0, prod: 0 };

/** Applies the action and checks it changed the simulator by exactly one mutation, of `op` on `on`. */
async function applyOnce(environment: Env, action: string, vmid: number, params: Record<string, unknown>, op: MutationOp, on = vmid) {
  applied[environment]++;
  const sim = t.sim(environment);
  const before = sim.mutations.all().length;
  const { plan, done } = await run(environment, action, vmid, params);
  expect(plan.preflight.assessment.kind, `${action}: ${JSON.stringify(plan.preflight.assessment)}`).toBe('proceed');
  expect(done.status, `${action}: ${JSON.stringify(done.result)}`).toBe('succeeded');
  expect(done.result.outcome).toBe('applied');
  const added = sim.mutations.all().slice(before);
  expect(added.map((m) => `${m.vmid}:${m.op}`), action).toEqual([`${on}:${op}`]);
  return { plan, done };
}

const guest = (env: Env, vmid: number) => t.sim(env).model.guest(vmid);

describe('every QEMU action (lab VMs 100 and 101, prod VM 200)', () => {
  it('power: suspend, resume, reset, reboot, shutdown, start, stop, hibernate and resume', async () => {
    await applyOnce('lab', 'vm.suspend', 100, {}, 'suspend');
    expect(guest('lab', 100)).toMatchObject({ status: 'running', qmpstatus: 'paused' });
    await applyOnce('lab', 'vm.resume', 100, {}, 'resume');
    expect(guest('lab', 100)?.qmpstatus).toBe('running');
    const reset = await applyOnce('lab', 'vm.reset', 100, {}, 'reset');
    expect(reset.done.result.upid).toMatch(/:qmreset:100:/);
    await applyOnce('lab', 'vm.reboot', 100, { timeout: 30 }, 'reboot');
    await applyOnce('lab', 'vm.shutdown', 100, { timeout: 30, forceStop: true }, 'shutdown');
    expect(guest('lab', 100)?.status).toBe('stopped');
    await applyOnce('lab', 'vm.start', 100, {}, 'start');
    await applyOnce('lab', 'vm.stop', 100, {}, 'stop');
    expect(guest('lab', 100)?.status).toBe('stopped');
    await applyOnce('lab', 'vm.start', 100, { timeout: 60 }, 'start');
    await applyOnce('lab', 'vm.suspend', 100, { todisk: true }, 'suspend');
    expect(guest('lab', 100)).toMatchObject({ status: 'stopped', lock: 'suspended' });
    await applyOnce('lab', 'vm.resume', 100, {}, 'resume');
    expect(guest('lab', 100)).toMatchObject({ status: 'running', qmpstatus: 'running' });
    expect(guest('lab', 100)?.lock).toBeUndefined();
  });

  it('snapshots: create, rollback (one approval), delete', async () => {
    await applyOnce('lab', 'vm.snapshot.create', 101, { snapname: 'cat1', description: 'catalog test' }, 'snapshot');
    expect(guest('lab', 101)?.snapshots).toEqual(['before-upgrade', 'cat1']);
    const rollback = await applyOnce('lab', 'vm.snapshot.rollback', 101, { snapname: 'cat1' }, 'rollback');
    expect(rollback.plan).toMatchObject({ risk: 'high', approval: { required: 1 } });
    await applyOnce('lab', 'vm.snapshot.delete', 101, { snapname: 'cat1' }, 'snapshot-delete');
    expect(guest('lab', 101)?.snapshots).toEqual(['before-upgrade']);
  });

  it('config update (synchronous, digest-guarded) and disk resize', async () => {
    const params = { cores: 6, sockets: 1, memory: 8192, balloon: 2048, name: 'db-lab-2', description: 'Lab PostgreSQL 16', tags: ['db', 'lab', 'pg16'], onboot: false };
    const { plan, done } = await applyOnce('lab', 'vm.config.update', 101, params, 'config');
    expect(plan.preflight.state.digest).toMatch(/^[0-9a-f]{40}$/);
    expect(done.result.upid).toBeUndefined();
    expect(guest('lab', 101)?.config).toMatchObject({ cores: '6', memory: '8192', balloon: '2048', name: 'db-lab-2', description: 'Lab PostgreSQL 16', tags: 'db;lab;pg16', onboot: '0' });
    const resize = await applyOnce('lab', 'vm.disk.resize', 101, { disk: 'scsi1', size: '120G' }, 'resize');
    expect(resize.plan.preflight.assessment.note).toBe('grows scsi1 from 100G to 120G');
    expect(guest('lab', 101)?.config.scsi1).toContain('size=120G');
  });

  it('clone (full, and linked from a snapshot), backup, delete (one approval)', async () => {
    await applyOnce('lab', 'vm.clone', 101, { newid: 150, name: 'db-copy', description: 'full copy' }, 'clone', 101);
    expect(guest('lab', 150)).toMatchObject({ name: 'db-copy', status: 'stopped', type: 'qemu' });
    expect(guest('lab', 150)?.lock).toBeUndefined();
    await applyOnce('lab', 'vm.clone', 101, { newid: 151, name: 'db-linked', full: false, snapname: 'before-upgrade' }, 'clone', 101);
    expect(t.sim('lab').mutations.all().at(-1)?.detail).toMatchObject({ newid: 151, full: false });

    const backup = await applyOnce('lab', 'vm.backup', 101, { storage: 'local', notes: 'catalog test', compress: 'zstd' }, 'backup');
    const volumes = t.sim('lab').model.backupVolumes().filter((b) => b.vmid === 101);
    expect(volumes).toHaveLength(1);
    expect(volumes[0]).toMatchObject({ storage: 'local', format: 'vma.zst', notes: `catalog test [proxmox-agent ${backup.plan.planId}]` });

    for (const vmid of [150, 151]) {
      const del = await applyOnce('lab', 'vm.delete', vmid, { purge: true }, 'destroy');
      expect(del.plan).toMatchObject({ risk: 'high', approval: { required: 1 } });
      expect(guest('lab', vmid)).toBeUndefined();
    }
  });

  it('migrate a running VM online to the other prod node (one approval)', async () => {
    const { done } = await applyOnce('prod', 'vm.migrate', 200, { target: 'pve-prod-2', online: true, withLocalDisks: true }, 'migrate');
    expect(done.result.upid).toMatch(/^UPID:pve-prod:.*:qmigrate:200:/);
    expect(guest('prod', 200)).toMatchObject({ node: 'pve-prod-2', status: 'running' });
  });
});

describe('every LXC action (lab CT 300, prod CT 400)', () => {
  it('power: suspend, resume, reboot, shutdown, start, stop', async () => {
    await applyOnce('lab', 'ct.suspend', 300, {}, 'suspend');
    await applyOnce('lab', 'ct.resume', 300, {}, 'resume');
    await applyOnce('lab', 'ct.reboot', 300, { timeout: 30 }, 'reboot');
    await applyOnce('lab', 'ct.shutdown', 300, { timeout: 30, forceStop: true }, 'shutdown');
    expect(guest('lab', 300)?.status).toBe('stopped');
    await applyOnce('lab', 'ct.start', 300, {}, 'start');
    await applyOnce('lab', 'ct.stop', 300, {}, 'stop');
    expect(guest('lab', 300)?.status).toBe('stopped');
  });

  it('snapshots: create, rollback (one approval), delete', async () => {
    await applyOnce('lab', 'ct.snapshot.create', 300, { snapname: 'cat1' }, 'snapshot');
    await applyOnce('lab', 'ct.snapshot.rollback', 300, { snapname: 'cat1', start: false }, 'rollback');
    await applyOnce('lab', 'ct.snapshot.delete', 300, { snapname: 'cat1' }, 'snapshot-delete');
    expect(guest('lab', 300)?.snapshots).toEqual([]);
  });

  it('config update and disk resize', async () => {
    const params = { cores: 2, memory: 1024, swap: 256, hostname: 'cache-lab-2', description: 'Lab Redis 7', tags: ['cache', 'lab', 'redis'], onboot: false };
    await applyOnce('lab', 'ct.config.update', 300, params, 'config');
    expect(guest('lab', 300)?.config).toMatchObject({ cores: '2', memory: '1024', swap: '256', hostname: 'cache-lab-2', tags: 'cache;lab;redis', onboot: '0' });
    await applyOnce('lab', 'ct.disk.resize', 300, { disk: 'rootfs', size: '12G' }, 'resize');
    expect(guest('lab', 300)?.config.rootfs).toContain('size=12G');
  });

  it('clone, backup, delete (one approval)', async () => {
    await applyOnce('lab', 'ct.clone', 300, { newid: 350, hostname: 'cache-copy' }, 'clone', 300);
    expect(guest('lab', 350)).toMatchObject({ type: 'lxc', name: 'cache-copy', status: 'stopped' });
    await applyOnce('lab', 'ct.backup', 300, { storage: 'local', compress: 'gzip', protected: true }, 'backup');
    expect(t.sim('lab').model.backupVolumes().filter((b) => b.vmid === 300)).toMatchObject([{ format: 'tar.gz', protected: true }]);
    await applyOnce('lab', 'ct.delete', 350, { purge: true, destroyUnreferencedDisks: true }, 'destroy');
    expect(guest('lab', 350)).toBeUndefined();
  });

  it('migrate a running container by restart migration (one approval)', async () => {
    await applyOnce('prod', 'ct.migrate', 400, { target: 'pve-prod-2', restart: true }, 'migrate');
    expect(guest('prod', 400)).toMatchObject({ node: 'pve-prod-2', status: 'running' });
  });
});

describe('no-ops, refusals and stale plans', () => {
  it('records a no-op for what is already done, and sends nothing', async () => {
    const lab = t.sim('lab');
    const before = lab.mutations.all().length;
    const cases: [string, number, Record<string, unknown>, string][] = [
      ['ct.stop', 300, {}, 'CT 300 is already stopped'], // Proxmox itself would answer a synchronous 500
      ['vm.start', 100, {}, 'VM 100 is already running'],
      ['vm.snapshot.create', 101, { snapname: 'before-upgrade' }, "snapshot 'before-upgrade' already exists"],
      ['vm.config.update', 101, { cores: 6, tags: ['pg16', 'db', 'lab'] }, 'VM 101 already has the requested cores, tags'],
      ['ct.disk.resize', 300, { disk: 'rootfs', size: '12G' }, 'disk rootfs is already 12G'],
      ['vm.snapshot.delete', 101, { snapname: 'cat1' }, "snapshot 'cat1' does not exist"],
      ['vm.migrate', 100, { target: 'pve-lab' }, "VM 100 is already on node 'pve-lab'"],
    ];
    for (const [action, vmid, params, reason] of cases) {
      const { plan, done } = await run('lab', action, vmid, params);
      expect(plan.preflight.assessment, action).toEqual({ kind: 'already_done', reason });
      expect(done.status, action).toBe('succeeded');
      expect(done.result, action).toMatchObject({ outcome: 'noop', message: reason });
    }
    expect(lab.mutations.all().length).toBe(before);
  });

  it('a clone whose id already holds a guest is refused, even one with the planned name (not this plan\'s clone)', async () => {
    await applyOnce('lab', 'vm.clone', 101, { newid: 160, name: 'db-again' }, 'clone', 101);
    const again = await run('lab', 'vm.clone', 101, { newid: 160, name: 'db-again' });
    expect(again.done).toMatchObject({ status: 'denied' });
    expect(again.plan.reasons.map((r: { message: string }) => r.message)).toContain("Proxmox would refuse this now: VM 160 already exists and is not this plan's clone");
    const taken = await run('lab', 'vm.clone', 101, { newid: 160, name: 'someone-else' });
    expect(taken.done).toMatchObject({ status: 'denied' });
    expect(taken.plan.reasons.map((r: { message: string }) => r.message)).toContain('Proxmox would refuse this now: unable to create VM 160: config file already exists');
  });

  it("denies at plan time what Proxmox would refuse, in Proxmox's words", async () => {
    const before = t.sim('lab').mutations.all().length;
    const cases: [string, number, Record<string, unknown>, string][] = [
      ['ct.reboot', 300, {}, 'VM 300 not running'],
      ['vm.reset', 101, {}, 'VM 101 not running'],
      ['vm.snapshot.rollback', 101, { snapname: 'nope' }, "snapshot 'nope' does not exist"],
      ['vm.disk.resize', 101, { disk: 'scsi0', size: '32G' }, 'shrinking disks is not supported'],
      ['vm.clone', 101, { newid: 170, name: 'linked', full: false }, "Linked clone feature is not supported for drive 'scsi0'"],
    ];
    for (const [action, vmid, params, reason] of cases) {
      const { plan } = await run('lab', action, vmid, params);
      expect(plan.status, action).toBe('denied');
      expect(plan.reasons.map((r: { message: string }) => r.message), action).toContain(`Proxmox would refuse this now: ${reason}`);
    }
    // A running container is cloned fully only from a snapshot.
    await applyOnce('lab', 'ct.start', 300, {}, 'start');
    const { plan } = await run('lab', 'ct.clone', 300, { newid: 360, hostname: 'hot-copy' });
    expect(plan.preflight.assessment).toEqual({ kind: 'blocked', reason: 'Full clone of a running container is only possible from a snapshot' });
    expect(t.sim('lab').mutations.all().length).toBe(before + 1);
  });

  it('fails a config update as stale when the guest changed behind the plan, and writes nothing', async () => {
    const sim = t.sim('lab');
    const p = await t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'ct.config.update', environment: 'lab', target: { vmid: 300 }, params: { cores: 4 }, reason: 'stale test' },
    });
    expect(p.body.status).toBe('planned');
    // Someone edits the container in the Proxmox GUI between plan and apply.
    sim.model.findGuest(300)!.config.description = 'edited by hand';
    const before = sim.mutations.all().length;
    await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.body.planId, requestHash: p.body.requestHash } });
    const done = await t.waitForStatus(p.body.planId, ['succeeded', 'failed']);
    expect(done.status).toBe('failed');
    expect(done.result).toMatchObject({ outcome: 'failed', errorType: 'PlanStale', message: 'target changed since the plan (digest); plan again' });
    expect(sim.mutations.all().length).toBe(before);
    expect(guest('lab', 300)?.config.cores).toBe('2');
  });

  it('changed each simulator exactly once per applied plan, and no task twice', () => {
    for (const env of ['lab', 'prod'] as const) {
      const log = t.sim(env).mutations.all();
      expect(log.length, env).toBe(applied[env]);
      const upids = log.flatMap((m) => (m.upid ? [m.upid] : []));
      expect(new Set(upids).size, env).toBe(upids.length);
    }
  });
});

describe('GET /v1/catalog', () => {
  it('lists every action with its parameters as JSON Schema, for a token with the read scope', async () => {
    const r = await t.call('GET', '/v1/catalog', { token: TOKENS.approver1 });
    expect(r.status).toBe(200);
    expect(r.body.actions).toHaveLength(31);
    const clone = r.body.actions.find((a: { name: string }) => a.name === 'ct.clone');
    expect(clone).toMatchObject({
      kind: 'lxc',
      proxmox: { method: 'POST', path: '/nodes/{node}/lxc/{vmid}/clone' },
      baseRisk: { nonprod: 'low', prod: 'medium' },
      destructive: false,
      reversible: true,
      params: { type: 'object', additionalProperties: false, required: ['newid', 'hostname'] },
    });
    expect(clone.params.properties.newid).toMatchObject({ type: 'integer', minimum: 100 });
    expect(r.body.actions.find((a: { name: string }) => a.name === 'vm.delete').baseRisk).toEqual({ nonprod: 'high', prod: 'critical' });
  });

  it('needs a token, and the read scope', async () => {
    expect((await t.call('GET', '/v1/catalog')).status).toBe(401);
    const noRead = await t.call('GET', '/v1/catalog', { token: NO_READ_TOKEN });
    expect(noRead.status).toBe(403);
    expect(noRead.body.type).toBe('/problems/forbidden');
  });

  it('is described in the OpenAPI document', async () => {
    const doc = (await t.call('GET', '/v1/openapi.json')).body;
    expect(doc.paths['/v1/catalog'].get.responses['200']).toBeDefined();
    expect(doc.components.schemas.CatalogAction).toBeDefined();
  });
});
