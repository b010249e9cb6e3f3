/**
 * The execute activity against the simulator, one attempt at a time (MockActivityEnvironment), with
 * a dispatch journal shared by every plan and attempt of a test, as workers share it:
 * synchronous calls, the plan's digest, a guest that moves, creations, lost answers, retries that
 * must follow what the first attempt started, and the hostile review's probes, in which plans share
 * a guest and one plan's retry must never take another plan's task as its own.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure, type Info } from '@temporalio/activity';
import { ActivityCancellationDetails } from '@temporalio/common';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { executeAction, stopPlanDispatch, type ExecuteDeps } from '../../src/activities/execute.js';
import type { ExecuteInput, ExecuteResult } from '../../src/activities/types.js';
import { openFileDispatchJournal } from '../../src/dispatch/file-journal.js';
import type { DispatchJournal } from '../../src/dispatch/journal.js';
import { normalizeRequest } from '../../src/domain/request.js';
import type { ProxmoxClient } from '../../src/proxmox/index.js';
import { evaluatePolicy } from '../../src/policy/engine.js';
import { policySchema } from '../../src/policy/schema.js';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { startDemoCluster } from '../support/simulated-proxmox.js';

const TOKEN_ID = 'proxmox-agent@pve!agent';
/** The demo policy's deny rule, which the execute activity must honour as the guest is when it dispatches. */
const policy = policySchema.parse({ rules: [{ id: 'do-not-touch', match: { tags: ['do-not-touch'] }, decision: 'deny', message: 'Guests tagged do-not-touch are managed by hand only' }] });
const policyCheck: ExecuteDeps['policyCheck'] = (request, state) =>
  evaluatePolicy(policy, { request, tier: request.environment === 'prod' ? 'prod' : 'nonprod', state, assessment: { kind: 'proceed' }, at: new Date() });
const secrets = { lab: 'lab-secret-for-execute-tests', prod: 'prod-secret-for-execute-tests' };
let sims: Record<'lab' | 'prod', ProxmoxSimulator>;
let clients: Record<'lab' | 'prod', ProxmoxClient>;
let closeClusters: () => Promise<unknown>;
let journal: DispatchJournal;
let deps: ExecuteDeps;

beforeAll(async () => {
  const [lab, prod] = await Promise.all([
    startDemoCluster('lab', secrets.lab, { taskDurationMs: 30 }),
    startDemoCluster('prod', secrets.prod, { taskDurationMs: 30 }),
  ]);
  sims = { lab: lab.sim, prod: prod.sim };
  clients = { lab: lab.client, prod: prod.client };
  closeClusters = () => Promise.all([lab.close(), prod.close()]);
});
afterAll(() => closeClusters());
beforeEach(async () => {
  sims.lab.reset();
  sims.prod.reset();
  journal = await openFileDispatchJournal();
  // An unanswered dispatch is settled 400 ms after its intent (SETTLE_AFTER_MS in production), and
  // with no task found it holds the guest until 1.5 s old, then is unknown (HOLD_UNANSWERED_MS).
  deps = { clientFor: (env) => clients[env as 'lab' | 'prod'], tokenIdFor: () => TOKEN_ID, journal, policyCheck, pollIntervalMs: 20, settleAfterMs: 400, holdUnansweredMs: 1_500, heartbeatEveryMs: 50 };
});

let planCounter = 0;
const newPlanId = () => `plan_TEST${String(++planCounter).padStart(22, '0')}`;

function input(environment: 'lab' | 'prod', action: string, vmid: number, params: Record<string, unknown>, extra: Partial<ExecuteInput> = {}): ExecuteInput {
  const request = normalizeRequest({ action, environment, target: { vmid }, params, reason: 'test' });
  return { planId: newPlanId(), request, node: sims[environment].model.guest(vmid)!.node, ...extra };
}

/** One attempt of one plan (`attempt` > 1 for a retry). */
function attempt(i: ExecuteInput, info: Partial<Info> = {}): Promise<ExecuteResult> {
  return new MockActivityEnvironment({ attempt: 1, ...info }).run(executeAction, deps, i);
}

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

const task = (sim: ProxmoxSimulator, upid: string) => sim.model.taskManager!.find(upid)!;

/** The simulator's record of what a UPID changed: the oracle the probes below judge by. */
const mutationsOf = (sim: ProxmoxSimulator, upid: string | undefined) => sim.mutations.all().filter((m) => m.upid === upid);

/** Moves a prod guest through the simulator's control API, as PVE's load balancer or HA would. */
async function moveGuest(vmid: number, node: string): Promise<void> {
  const res = await fetch(`${sims.prod.url}/_sim/guests/${vmid}/move`, {
    method: 'POST',
    headers: { authorization: `PVEAPIToken=${TOKEN_ID}=${secrets.prod}`, 'content-type': 'application/json' },
    body: JSON.stringify({ node }),
  });
  expect(res.status).toBe(200);
  expect(sims.prod.model.guest(vmid)!.node).toBe(node);
}

describe('synchronous config writes and the plan\'s digest', () => {
  it('applies a PUT config with no task and confirms it by a re-read', async () => {
    const i = input('lab', 'vm.config.update', 101, { cores: 6, tags: ['db', 'lab', 'pg'] }, { plannedDigest: sims.lab.model.guest(101)!.digest });
    const r = await attempt(i);
    // With the digest the change left: an undo of this plan is held to it.
    expect(r).toEqual({ outcome: 'applied', digestAfter: sims.lab.model.guest(101)!.digest });
    expect(sims.lab.model.guest(101)!.config).toMatchObject({ cores: '6', tags: 'db;lab;pg' });
    expect(sims.lab.mutations.countFor(101, 'config')).toBe(1);
    expect(await journal.get(i.planId)).toMatchObject({ state: 'done' });
  });

  it('a change a running VM cannot hotplug is reported pending until reboot, not simply applied', async () => {
    const i = input('lab', 'vm.config.update', 100, { cores: 4, name: 'web-lab-2' }, { plannedDigest: sims.lab.model.guest(100)!.digest });
    const r = await attempt(i);
    expect(r).toEqual({
      outcome: 'applied',
      note: 'pending until reboot: cores (the running VM keeps its current values until its next start or reboot)',
      pendingUntilRestart: ['cores'],
      digestAfter: sims.lab.model.guest(100)!.digest,
    });
    // The name was hotplugged; cores waits in [PENDING].
    expect(sims.lab.model.guest(100)!.config).toMatchObject({ cores: '2', name: 'web-lab-2' });
    // A change the running container takes live says nothing of the kind.
    const ct = await attempt(input('lab', 'ct.config.update', 300, { memory: 1024 }, { plannedDigest: sims.lab.model.guest(300)!.digest }));
    expect(ct).toEqual({ outcome: 'applied', digestAfter: sims.lab.model.guest(300)!.digest });
  });

  it('a lost synchronous answer is settled as applied by this plan, and a retry reports the same, sending nothing', async () => {
    sims.lab.faults.dropAfterDispatch({ method: 'PUT', path: '/nodes/*/lxc/*/config', times: 1 });
    const i = input('lab', 'ct.config.update', 300, { memory: 1024, hostname: 'cache-2' }, { plannedDigest: sims.lab.model.guest(300)!.digest });
    // Recorded as a no-op before the journal: the plan's own change, seen by its retry, looked "already done".
    const digestAfter = () => sims.lab.model.guest(300)!.digest;
    expect(await attempt(i)).toEqual({ outcome: 'applied', note: 'the answer was lost; the change is in place', digestAfter: digestAfter() });
    expect(await attempt(i, { attempt: 2 })).toEqual({ outcome: 'applied', digestAfter: digestAfter() });
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
    sims.lab.faults.errorRate({ method: 'PUT', path: '/nodes/*/qemu/*/config', status: 500, message: 'checksum mismatch (file change by other user?)', times: 1 });
    const i = input('lab', 'vm.config.update', 101, { cores: 6 }, { plannedDigest: sims.lab.model.guest(101)!.digest });
    const err = await failure(attempt(i));
    expect(err.type).toBe('PlanStale');
    expect(err.message).toContain('checksum mismatch (file change by other user?)');
    // Proxmox refused it: nothing was started, and the guest is free for the next plan.
    expect(await journal.get(i.planId)).toMatchObject({ state: 'not_dispatched' });
  });

  it('a resize whose task ends `checksum mismatch` (qemu-server checks the digest in its worker) is stale, as a refusal at once is', async () => {
    const i = input('lab', 'vm.disk.resize', 101, { disk: 'scsi0', size: '80G' }, { plannedDigest: sims.lab.model.guest(101)!.digest });
    // Another write lands after our read and before the worker loads the config.
    const racing: ExecuteDeps = {
      ...deps,
      policyCheck: (request, state) => {
        sims.lab.model.findGuest(101)!.config.cores = '7';
        return policyCheck(request, state);
      },
    };
    const err = await failure(new MockActivityEnvironment({ attempt: 1 }).run(executeAction, racing, i));
    expect(err.type).toBe('PlanStale');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toContain('checksum mismatch (file change by other user?)');
    expect(err.details).toEqual([{ upid: expect.stringContaining(':resize:101:'), exitstatus: 'checksum mismatch (file change by other user?)' }]);
    expect(sims.lab.mutations.countFor(101, 'resize')).toBe(0);
    // The task was this plan's and has ended: the guest is free for the next plan.
    expect(await journal.holder('lab/101')).toBeUndefined();
  });

  it('tags are compared as Proxmox stores them (lower-cased, sorted): a capitalised tag applied once is in place, and not sent again', async () => {
    const i = input('lab', 'vm.config.update', 101, { tags: ['Web', 'db', 'web'] }, { plannedDigest: sims.lab.model.guest(101)!.digest });
    // Without a note: the re-read shows the change.
    expect(await attempt(i)).toEqual({ outcome: 'applied', digestAfter: sims.lab.model.guest(101)!.digest });
    expect(sims.lab.model.guest(101)!.config.tags).toBe('db;web');
    const again = input('lab', 'vm.config.update', 101, { tags: ['db', 'Web'] }, { plannedDigest: sims.lab.model.guest(101)!.digest });
    expect((await attempt(again)).outcome).toBe('noop');
    expect(sims.lab.requests.all().filter((r) => r.method === 'PUT')).toHaveLength(1);
  });

  it('a rollback retried with no heartbeat to resume follows its own task: one rollback, and the run says applied', async () => {
    const i = input('lab', 'vm.snapshot.rollback', 101, { snapname: 'before-upgrade' }, { plannedDigest: sims.lab.model.guest(101)!.digest });
    const first = await attempt(i);
    expect(first.outcome).toBe('applied');
    // Before the journal this retry ended failed (stale), after a real rollback.
    expect(await attempt(i, { attempt: 2 })).toMatchObject({ outcome: 'applied', upid: first.upid });
    expect(sims.lab.mutations.countFor(101, 'rollback')).toBe(1);
  });
});

describe('no-ops', () => {
  it('a no-op is recorded: a retry after the guest changed says the same no-op and sends nothing', async () => {
    // Found by the model-based chaos suite: attempt 1 found the VM running (no-op, outcome recorded),
    // its answer was lost; another plan stopped the VM; attempt 2 started it and the run said
    // "applied" while the chain said "noop".
    await clients.lab.request('POST', '/nodes/{node}/qemu/{vmid}/status/start', { node: 'pve-lab', vmid: 101 });
    await until(async () => sims.lab.model.guest(101)!.status === 'running');
    const i = input('lab', 'vm.start', 101, {});
    expect(await attempt(i)).toEqual({ outcome: 'noop', note: 'VM 101 is already running' });
    await clients.lab.request('POST', '/nodes/{node}/qemu/{vmid}/status/stop', { node: 'pve-lab', vmid: 101 });
    await until(async () => sims.lab.model.guest(101)!.status === 'stopped');
    expect(await attempt(i, { attempt: 2 })).toEqual({ outcome: 'noop', note: 'VM 101 is already running' });
    expect(sims.lab.model.guest(101)!.status).toBe('stopped');
    expect(await journal.get(i.planId)).toMatchObject({ state: 'noop' });
  });
});

describe('a guest that moves, and creations', () => {
  it('migrate ends with the guest on the target; a retry follows the same task', async () => {
    const i = input('prod', 'vm.migrate', 200, { target: 'pve-prod-2', online: true, withLocalDisks: true });
    const r = await attempt(i);
    expect(r).toMatchObject({ outcome: 'applied', exitstatus: 'OK', upid: expect.stringContaining(':qmigrate:200:') });
    expect(sims.prod.model.guest(200)!.node).toBe('pve-prod-2');
    expect(await attempt(i, { attempt: 2 })).toMatchObject({ outcome: 'applied', upid: r.upid });
    expect(sims.prod.mutations.countFor(200, 'migrate')).toBe(1);
  });

  it('a guest moved to another node after the plan (load balancer, HA) is acted on where it is now, once', async () => {
    // Planned on pve-prod; PVE 9's load balancer then moves it to pve-prod-2.
    const i = input('prod', 'vm.snapshot.create', 201, { snapname: 'before-move' });
    expect(i.node).toBe('pve-prod');
    await moveGuest(201, 'pve-prod-2');
    const r = await attempt(i);
    expect(r).toMatchObject({ outcome: 'applied', exitstatus: 'OK', upid: expect.stringMatching(/^UPID:pve-prod-2:.*:qmsnapshot:201:/) });
    expect(sims.prod.mutations.all()).toMatchObject([{ vmid: 201, op: 'snapshot', key: 'before-move', node: 'pve-prod-2', upid: r.upid }]);
    // A retry follows the same task; the journal holds the node it was sent to.
    expect(await attempt(i, { attempt: 2 })).toMatchObject({ outcome: 'applied', upid: r.upid });
    expect(sims.prod.mutations.countFor(201, 'snapshot')).toBe(1);
    expect(await journal.get(i.planId)).toMatchObject({ node: 'pve-prod-2', upid: r.upid });
  });

  it('policy at dispatch sees the node the guest is on now, and the node a migrate puts it on', async () => {
    const noProd2 = policySchema.parse({ rules: [{ id: 'no-pve-prod-2', match: { nodes: ['pve-prod-2'] }, decision: 'deny', message: 'pve-prod-2 is being drained' }] });
    deps.policyCheck = (request, state) => evaluatePolicy(noProd2, { request, tier: 'prod', state, assessment: { kind: 'proceed' }, at: new Date() });
    // The destination of a migrate: refused, nothing sent.
    const migrate = input('prod', 'vm.migrate', 201, { target: 'pve-prod-2' });
    expect((await failure(attempt(migrate))).message).toMatch(/the policy now denies vm\.migrate on VM 201.*no-pve-prod-2: pve-prod-2 is being drained \(matched node 'pve-prod-2': where vm\.migrate puts the guest\).*nothing was sent to Proxmox/);
    // The node the guest was moved to since the plan: refused too.
    const snapshot = input('prod', 'vm.snapshot.create', 201, { snapname: 'after-move' });
    await moveGuest(201, 'pve-prod-2');
    expect((await failure(attempt(snapshot))).message).toMatch(/matched node 'pve-prod-2': the guest's node/);
    expect(sims.prod.mutations.all()).toEqual([]);
    expect(sims.prod.requests.all().filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('a clone whose answer was lost is settled from the task list, not sent again', async () => {
    sims.lab.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/*/clone', times: 1 });
    const i = input('lab', 'vm.clone', 101, { newid: 150, name: 'db-copy' });
    const r = await attempt(i);
    expect(r).toMatchObject({ outcome: 'applied', note: 'the answer was lost; followed the task the request had started' });
    expect(sims.lab.model.guest(150)).toMatchObject({ name: 'db-copy', status: 'stopped' });
    expect(sims.lab.model.guest(150)!.lock).toBeUndefined();
    expect(mutationsOf(sims.lab, r.upid)).toHaveLength(1);
    expect(sims.lab.mutations.duplicates()).toEqual([]);
  });

  it('a clone at newid that this plan did not dispatch is refused, never a no-op: it is someone else\'s', async () => {
    // probe12 clone-newid: plan B (of VM 100) reported succeeded/noop with plan A's clone of VM 101.
    sims.lab.faults.slowTasks(300, { method: 'POST', path: '/nodes/*/qemu/*/clone' });
    await clients.lab.request('POST', '/nodes/{node}/qemu/{vmid}/clone', { node: 'pve-lab', vmid: 101 }, { newid: 150, name: 'db-copy', full: 1 });
    expect(sims.lab.model.guest(150)!.lock).toBe('clone');
    const i = input('lab', 'vm.clone', 100, { newid: 150, name: 'db-copy' });
    const err = await failure(attempt(i));
    expect(err).toMatchObject({ type: 'ActionBlocked', nonRetryable: true, message: "VM 150 already exists and is not this plan's clone" });
    // Once the other clone has finished, still not this plan's: a retry refuses it too.
    await until(async () => sims.lab.model.guest(150)!.lock === undefined);
    expect(await failure(attempt(i, { attempt: 2 }))).toMatchObject({ type: 'ActionBlocked' });
    expect(await journal.get(i.planId)).toBeUndefined();
    expect(sims.lab.mutations.all().filter((m) => m.op === 'clone')).toMatchObject([{ vmid: 101, key: '150' }]);
  });

  it('two clones of different sources to one newid, dispatched together: Proxmox takes one, the other fails, nothing is adopted', async () => {
    sims.lab.faults.slowTasks(300, { method: 'POST', path: '/nodes/*/qemu/*/clone' });
    const a = input('lab', 'vm.clone', 101, { newid: 150, name: 'twin' });
    const b = input('lab', 'vm.clone', 100, { newid: 150, name: 'twin' });
    const [ra, rb] = await Promise.allSettled([attempt(a), attempt(b)]);
    const outcomes = [ra, rb].map((r) => (r.status === 'fulfilled' ? r.value.outcome : (r.reason as ApplicationFailure).type));
    expect(outcomes.filter((o) => o === 'applied')).toHaveLength(1);
    expect(outcomes).not.toContain('noop');
    expect(sims.lab.mutations.all().filter((m) => m.op === 'clone')).toHaveLength(1);
  });

  it('a backup whose guest left the node before the request: vzdump answers "OK" and starts nothing; a definite failure, the guest free', async () => {
    const i = input('prod', 'vm.backup', 200, { storage: 'local' });
    const moving: ExecuteDeps = {
      ...deps,
      policyCheck: (request, state) => {
        sims.prod.model.findGuest(200)!.node = 'pve-prod-2';
        return policyCheck(request, state);
      },
    };
    const err = await failure(new MockActivityEnvironment({ attempt: 1 }).run(executeAction, moving, i));
    expect(err.type).toBe('ActionBlocked');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toContain("VM 200 is no longer on that node");
    expect(err.message).toContain('nothing was backed up');
    expect(await journal.get(i.planId)).toMatchObject({ state: 'not_dispatched' });
    expect(sims.prod.model.backupVolumes()).toEqual([]);
  });

  it('a vzdump refused with a 500 before anything ran (the simulator\'s default) frees the guest at once: no settling, no outcome unknown', async () => {
    sims.lab.faults.errorRate({ method: 'POST', path: '/nodes/*/vzdump', status: 500, times: 1 });
    const i = input('lab', 'ct.backup', 300, { storage: 'local' });
    const refused = await failure(attempt(i));
    expect(refused.type).not.toBe('OutcomeUnknown');
    expect(refused.nonRetryable).toBe(false);
    expect(await journal.get(i.planId)).toMatchObject({ state: 'not_dispatched' });
    expect(await journal.holder('lab/300')).toBeUndefined();
    expect(await attempt(i, { attempt: 2 })).toMatchObject({ outcome: 'applied' });
    expect(sims.lab.model.backupVolumes()).toHaveLength(1);
  });

  it('a storage that stops taking backups after the read fails inside the vzdump task: reported in Proxmox\'s words, with the task', async () => {
    const i = input('lab', 'ct.backup', 300, { storage: 'local' });
    const narrowing: ExecuteDeps = {
      ...deps,
      policyCheck: (request, state) => {
        sims.lab.model.storage('local')!.content = ['iso', 'vztmpl'];
        return policyCheck(request, state);
      },
    };
    const err = await failure(new MockActivityEnvironment({ attempt: 1 }).run(executeAction, narrowing, i));
    expect(err.type).toBe('ProxmoxTaskFailedError');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toContain("could not get storage information for 'local': can't use storage 'local' for backups - wrong content type");
    expect(err.details).toEqual([expect.objectContaining({ upid: expect.stringContaining(':vzdump:300:') })]);
    expect(sims.lab.model.backupVolumes()).toEqual([]);
  });

  it('a backup this plan made is followed by its retry; another plan\'s backup is a new backup', async () => {
    const i = input('lab', 'ct.backup', 300, { storage: 'local', notes: 'before the upgrade' });
    const r = await attempt(i);
    expect(r).toMatchObject({ outcome: 'applied', upid: expect.stringContaining(':vzdump:300:') });
    expect(sims.lab.model.backupVolumes()[0]).toMatchObject({ vmid: 300, notes: `before the upgrade [proxmox-agent ${i.planId}]` });
    expect(await attempt(i, { attempt: 2 })).toMatchObject({ outcome: 'applied', upid: r.upid });
    expect((await attempt({ ...i, planId: newPlanId() })).outcome).toBe('applied');
    expect(sims.lab.model.backupVolumes()).toHaveLength(2);
  });
});

/**
 * The review's probes: plan A's task is on the node's list when plan B's first attempt fails in a
 * way that may or may not have reached Proxmox (here: a 502 from in front of Proxmox, before it
 * executed). B must settle its own intent and find no task of its own (A's is A's). Since its request
 * may still start late, B holds the guest, then ends `outcome_unknown` and never sends it again: a
 * clean retry is only for a request Proxmox certainly did not take (503 here), and that retry sends
 * B's own request.
 */
describe('a retry never takes another plan\'s task as its own', () => {
  const refusedOnce = (path: string, status = 502) => sims.lab.faults.errorRate({ method: 'POST', path, status, message: status === 503 ? 'Service Unavailable' : 'Bad Gateway', times: 1 });

  /** B's first attempt: unknown after the hold; a retry anyway (a reset) sends nothing either. */
  async function unknownAndNeverResent(b: ExecuteInput, upidA: string | undefined): Promise<void> {
    const before = sims.lab.requests.all().filter((q) => q.method === 'POST').length;
    const lost = await failure(attempt(b));
    expect(lost).toMatchObject({ type: 'OutcomeUnknown', nonRetryable: true });
    expect(await journal.get(b.planId)).toMatchObject({ state: 'unknown' });
    expect(await failure(attempt(b, { attempt: 2 }))).toMatchObject({ type: 'OutcomeUnknown' });
    expect(sims.lab.requests.all().filter((q) => q.method === 'POST').length).toBe(before + 1);
    expect((await journal.get(b.planId))?.upid).toBeUndefined();
    const claimed = await journal.claimedOn(`lab/${b.request.target.vmid}`);
    expect([...claimed.values()]).not.toContain(b.planId);
    if (upidA) expect(claimed.has(upidA)).toBe(true);
  }

  it('cross-plan snapshot: B never takes A\'s task; a 502 makes B unknown, a 503 retry gets snapb with its own task', async () => {
    const a = await attempt(input('lab', 'vm.snapshot.create', 101, { snapname: 'snapa' }));
    refusedOnce('/nodes/*/qemu/*/snapshot');
    await unknownAndNeverResent(input('lab', 'vm.snapshot.create', 101, { snapname: 'snapb' }), a.upid);
    expect(sims.lab.model.guest(101)!.snapshots).not.toContain('snapb');
    refusedOnce('/nodes/*/qemu/*/snapshot', 503);
    const c = input('lab', 'vm.snapshot.create', 101, { snapname: 'snapc' });
    const refused = await failure(attempt(c));
    expect(refused.nonRetryable).toBe(false);
    expect(await journal.get(c.planId)).toMatchObject({ state: 'not_dispatched' });
    const r = await attempt(c, { attempt: 2 });
    expect(r.outcome).toBe('applied');
    expect(r.upid).not.toBe(a.upid);
    expect(sims.lab.model.guest(101)!.snapshots).toEqual(expect.arrayContaining(['snapa', 'snapc']));
    expect(mutationsOf(sims.lab, r.upid)).toMatchObject([{ op: 'snapshot', key: 'snapc' }]);
    expect(mutationsOf(sims.lab, a.upid)).toMatchObject([{ op: 'snapshot', key: 'snapa' }]);
  });

  it('cross-plan clone: B never takes A\'s clone', async () => {
    const a = await attempt(input('lab', 'vm.clone', 101, { newid: 150, name: 'copy-a' }));
    refusedOnce('/nodes/*/qemu/*/clone');
    await unknownAndNeverResent(input('lab', 'vm.clone', 101, { newid: 151, name: 'copy-b' }), a.upid);
    expect(sims.lab.model.guest(151)).toBeUndefined();
    expect(mutationsOf(sims.lab, a.upid)).toMatchObject([{ op: 'clone', key: '150' }]);
  });

  it('start → stop → start within a minute: the second start takes neither earlier task; a 503 retry sends it, and the VM ends running', async () => {
    const start1 = await attempt(input('lab', 'vm.start', 101, {}));
    const stop = await attempt(input('lab', 'vm.stop', 101, {}));
    refusedOnce('/nodes/*/qemu/*/status/start');
    await unknownAndNeverResent(input('lab', 'vm.start', 101, {}), start1.upid);
    expect(sims.lab.model.guest(101)!.status).toBe('stopped');
    refusedOnce('/nodes/*/qemu/*/status/start', 503);
    const c = input('lab', 'vm.start', 101, {});
    await failure(attempt(c));
    const r = await attempt(c, { attempt: 2 });
    expect(new Set([start1.upid, stop.upid, r.upid]).size).toBe(3);
    expect(sims.lab.model.guest(101)!.status).toBe('running');
    expect(mutationsOf(sims.lab, r.upid)).toMatchObject([{ op: 'start' }]);
  });

  it('two backups of one guest: B never takes A\'s backup', async () => {
    const ia = input('lab', 'ct.backup', 300, { storage: 'local' });
    const a = await attempt(ia);
    refusedOnce('/nodes/*/vzdump');
    await unknownAndNeverResent(input('lab', 'ct.backup', 300, { storage: 'local' }), a.upid);
    expect(await journal.claimedOn('lab/300')).toEqual(new Map([[a.upid!, ia.planId]]));
    expect(sims.lab.model.backupVolumes()).toHaveLength(1);
  });

  it('plans racing for one guest take turns: each sends its own request, and each task is its own', async () => {
    const names = ['race-a', 'race-b', 'race-c', 'race-d'];
    const results = await Promise.all(names.map((snapname) => attempt(input('lab', 'vm.snapshot.create', 101, { snapname }))));
    expect(new Set(results.map((r) => r.upid)).size).toBe(4);
    results.forEach((r, k) => expect(mutationsOf(sims.lab, r.upid)).toMatchObject([{ op: 'snapshot', key: names[k] }]));
  });

  it('a plan that takes the guest between another\'s look at the journal and its read is waited for: its lock is a turn, not a refusal', async () => {
    // A's snapshot task locks the guest for a second; it is begun right after B looked at the journal.
    sims.lab.faults.slowTasks(1_000, { method: 'POST', path: '/nodes/*/qemu/*/snapshot' });
    const a = input('lab', 'vm.snapshot.create', 101, { snapname: 'taker' });
    let upidA: string | undefined;
    const takeFirst = async () => {
      if (upidA) return;
      await journal.begin({ planId: a.planId, environment: 'lab', vmid: 101, node: 'pve-lab', action: 'vm.snapshot.create', params: a.request.params, attempt: 1 });
      upidA = await clients.lab.request<string>('POST', '/nodes/{node}/qemu/{vmid}/snapshot', { node: 'pve-lab', vmid: 101 }, { snapname: 'taker' });
      await journal.claim(a.planId, upidA, 1);
    };
    const racing = new Proxy(clients.lab, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (prop !== 'clusterResources') return value.bind(target);
        return async (...args: unknown[]) => (await takeFirst(), value.apply(target, args));
      },
    });
    const b = input('lab', 'vm.snapshot.create', 101, { snapname: 'waited' });
    const r: ExecuteResult = await new MockActivityEnvironment({ attempt: 1 }).run(executeAction, { ...deps, clientFor: () => racing }, b);
    expect(r.outcome).toBe('applied');
    expect(r.upid).not.toBe(upidA);
    expect(mutationsOf(sims.lab, upidA)).toMatchObject([{ op: 'snapshot', key: 'taker' }]);
    expect(mutationsOf(sims.lab, r.upid)).toMatchObject([{ op: 'snapshot', key: 'waited' }]);
    // B's request went out after A's task had ended: it never met the lock on Proxmox.
    expect(task(sims.lab, r.upid!).exitstatus).toBe('OK');
  });

  it('a plan whose dispatch was never settled (its worker died) holds the guest; the next plan settles it on its behalf, then sends its own', async () => {
    // Plan A took the guest and sent its request; its worker died before recording the answer.
    const a = input('lab', 'vm.snapshot.create', 101, { snapname: 'orphan' });
    await journal.begin({ planId: a.planId, environment: 'lab', vmid: 101, node: 'pve-lab', action: 'vm.snapshot.create', params: a.request.params, attempt: 1 });
    const upidA = await clients.lab.request<string>('POST', '/nodes/{node}/qemu/{vmid}/snapshot', { node: 'pve-lab', vmid: 101 }, { snapname: 'orphan' });
    const b = await attempt(input('lab', 'vm.snapshot.create', 101, { snapname: 'next' }));
    expect(b.upid).not.toBe(upidA);
    // A's task was claimed for A, and A's own retry follows it.
    expect(await journal.get(a.planId)).toMatchObject({ state: 'dispatched', upid: upidA });
    expect(await attempt(a, { attempt: 2 })).toMatchObject({ outcome: 'applied', upid: upidA });
    expect(sims.lab.mutations.countFor(101, 'snapshot')).toBe(2);
  });
});

/**
 * A loaded pveproxy can hold a request longer than the settle bound before it runs it, and it does not
 * drop the work because the client hung up (test/cluster/probe-dispatch-held.test.ts on the real
 * deployment). Once a plan's request may have reached Proxmox, the plan never sends it again.
 */
describe('a request Proxmox starts late', () => {
  /** The run's retries, as Temporal makes them: attempts while the failure is retryable. */
  async function retried(i: ExecuteInput, d: ExecuteDeps): Promise<ExecuteResult> {
    for (let n = 1; ; n++) {
      try {
        return await new MockActivityEnvironment({ attempt: n }).run(executeAction, d, i);
      } catch (err) {
        if (n >= 5 || (err instanceof ApplicationFailure && err.nonRetryable)) throw err;
      }
    }
  }

  it('held past the settle bound, then run: the plan follows the task it started late, one backup', async () => {
    // The request is abandoned after 300 ms and settled after 600 ms; Proxmox runs it after 1.5 s.
    sims.lab.faults.slowResponses(1_500, { method: 'POST', path: '/nodes/*/vzdump', times: 1, beforeDispatch: true });
    const held: ExecuteDeps = { ...deps, dispatchTimeoutMs: 300, settleAfterMs: 600, holdUnansweredMs: 10_000 };
    const i = input('lab', 'ct.backup', 300, { storage: 'local' });
    // Before: the intent was released as not dispatched at 600 ms, the retry sent a second backup, and
    // the held request made one more.
    const r = await retried(i, held);
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // anything still held has run by now
    expect(r).toMatchObject({ outcome: 'applied', upid: expect.stringContaining(':vzdump:300:') });
    expect(sims.lab.model.backupVolumes()).toHaveLength(1);
    expect(mutationsOf(sims.lab, r.upid)).toMatchObject([{ op: 'backup' }]);
    expect(sims.lab.requests.all().filter((q) => q.method === 'POST' && q.path.endsWith('/vzdump'))).toHaveLength(1);
  });

  it('held past the settle bound while the task list fails now and then: the looks go on, one backup, applied', async () => {
    // Model-based chaos (seed 1): a 503 or 596 on one of the many task-list looks failed the attempt,
    // every attempt, for minutes; the plan never ended.
    sims.lab.faults.slowResponses(1_500, { method: 'POST', path: '/nodes/*/vzdump', times: 1, beforeDispatch: true });
    sims.lab.faults.errorRate({ method: 'GET', path: '/nodes/*/tasks', times: 3, status: 503, message: 'Service Unavailable' });
    const held: ExecuteDeps = { ...deps, dispatchTimeoutMs: 300, settleAfterMs: 600, holdUnansweredMs: 10_000 };
    const i = input('lab', 'ct.backup', 300, { storage: 'local' });
    // One attempt: the looks that failed are looked at again, not the attempt's failure.
    const r = await new MockActivityEnvironment({ attempt: 1 }).run(executeAction, held, i);
    expect(r).toMatchObject({ outcome: 'applied', upid: expect.stringContaining(':vzdump:300:') });
    expect(sims.lab.requests.all().filter((q) => q.method === 'GET' && q.path.endsWith('/tasks') && q.faults.includes('error'))).toHaveLength(3);
    expect(sims.lab.requests.all().filter((q) => q.method === 'POST' && q.path.endsWith('/vzdump'))).toHaveLength(1);
  });

  it('held past the whole window: outcome_unknown, never sent again, and its late task is nobody\'s', async () => {
    sims.lab.faults.slowResponses(3_000, { method: 'POST', path: '/nodes/*/vzdump', times: 1, beforeDispatch: true });
    const held: ExecuteDeps = { ...deps, dispatchTimeoutMs: 300, settleAfterMs: 600, holdUnansweredMs: 1_200 };
    const i = input('lab', 'ct.backup', 300, { storage: 'local' });
    const err = await failure(retried(i, held));
    expect(err).toMatchObject({ type: 'OutcomeUnknown', nonRetryable: true });
    expect(await journal.get(i.planId)).toMatchObject({ state: 'unknown' });
    // A retry anyway (a reset) sends nothing either.
    expect(await failure(new MockActivityEnvironment({ attempt: 2 }).run(executeAction, held, i))).toMatchObject({ type: 'OutcomeUnknown' });
    // The guest is free again. Another plan's backup whose answer is lost: the task its settlement finds
    // could be the unknown request's (still held, or run meanwhile), so it claims none and is unknown too.
    sims.lab.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/*/vzdump', times: 1 });
    const b = input('lab', 'ct.backup', 300, { storage: 'local' });
    const errB = await failure(retried(b, { ...held, holdUnansweredMs: 10_000 }));
    expect(errB).toMatchObject({ type: 'OutcomeUnknown', nonRetryable: true });
    await until(async () => sims.lab.model.backupVolumes().length === 2);
    expect(await journal.claimedOn('lab/300')).toEqual(new Map());
    expect(sims.lab.requests.all().filter((q) => q.method === 'POST' && q.path.endsWith('/vzdump'))).toHaveLength(2);
  });
});

describe('an intent nobody can settle', () => {
  it('a plan whose worker died with nothing of it on the node holds the guest for the window; then it is unknown, and the next plan sends its own', async () => {
    // Plan A took the guest; whether its request left, nobody can tell (nothing of it on the node).
    const a = input('lab', 'vm.snapshot.create', 101, { snapname: 'orphan' });
    await journal.begin({ planId: a.planId, environment: 'lab', vmid: 101, node: 'pve-lab', action: 'vm.snapshot.create', params: a.request.params, attempt: 1 });
    const started = Date.now();
    const b = await attempt(input('lab', 'vm.snapshot.create', 101, { snapname: 'next' }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400); // waited out A's hold (1.5 s in these tests)
    expect(b).toMatchObject({ outcome: 'applied' });
    expect(mutationsOf(sims.lab, b.upid)).toMatchObject([{ op: 'snapshot', key: 'next' }]);
    expect(await journal.get(a.planId)).toMatchObject({ state: 'unknown' });
    // A's own retry sends nothing: its outcome is unknown.
    expect(await failure(attempt(a, { attempt: 2 }))).toMatchObject({ type: 'OutcomeUnknown', nonRetryable: true });
    expect(sims.lab.model.guest(101)!.snapshots).not.toContain('orphan');
  });
});

describe('stops: only an operator\'s cancel stops a running task', () => {
  it('a worker shutting down leaves the clone running; the next attempt follows it to the end', async () => {
    sims.lab.faults.slowTasks(1_500, { method: 'POST', path: '/nodes/*/qemu/*/clone' });
    const i = input('lab', 'vm.clone', 101, { newid: 150, name: 'db-copy' });
    const env = new MockActivityEnvironment({ attempt: 1 });
    const running = env.run(executeAction, deps, i);
    const upid = await runningTask(sims.lab, 'qmclone');
    env.cancel('WORKER_SHUTDOWN', new ActivityCancellationDetails({ workerShutdown: true }));
    const err = await running.then(() => undefined, (e: unknown) => e);
    // Before: the shutdown's cancel DELETEd the task ("received interrupt").
    expect(task(sims.lab, upid).status).toBe('running');
    expect(err).toMatchObject({ type: 'AttemptInterrupted', nonRetryable: false });
    const r = await attempt(i, { attempt: 2 });
    expect(r).toMatchObject({ outcome: 'applied', upid, exitstatus: 'OK' });
    expect(sims.lab.model.guest(150)).toMatchObject({ name: 'db-copy' });
    expect(sims.lab.mutations.countFor(101, 'clone')).toBe(1);
  });

  it('a heartbeat timeout does not stop the task either', async () => {
    sims.lab.faults.slowTasks(1_000, { method: 'POST', path: '/nodes/*/qemu/*/snapshot' });
    const i = input('lab', 'vm.snapshot.create', 101, { snapname: 'slow' });
    const env = new MockActivityEnvironment({ attempt: 1 });
    const running = env.run(executeAction, deps, i);
    const upid = await runningTask(sims.lab, 'qmsnapshot');
    env.cancel('TIMED_OUT', new ActivityCancellationDetails({ timedOut: true }));
    await running.then(() => undefined, () => undefined);
    await until(async () => task(sims.lab, upid).status === 'stopped');
    expect(task(sims.lab, upid).exitstatus).toBe('OK');
  });

  it("an operator's cancel of the run asks Proxmox to stop the task", async () => {
    sims.lab.faults.slowTasks(5_000, { method: 'POST', path: '/nodes/*/qemu/*/clone' });
    const i = input('lab', 'vm.clone', 101, { newid: 150, name: 'db-copy' });
    const env = new MockActivityEnvironment({ attempt: 1 });
    const running = env.run(executeAction, deps, i);
    const upid = await runningTask(sims.lab, 'qmclone');
    env.cancel('CANCELLED', new ActivityCancellationDetails({ cancelRequested: true }));
    await expect(running).rejects.toMatchObject({ name: 'CancelledFailure' });
    expect(task(sims.lab, upid).exitstatus).toBe('received interrupt');
  });

  it('after a cancel, the one look for a lost answer\'s task that Proxmox fails to answer is retried, never "nothing found"', async () => {
    // The backup's request reached Proxmox (its task runs) but its answer was lost: an open intent.
    sims.lab.faults.slowTasks(5_000, { method: 'POST', path: '/nodes/*/vzdump' });
    const i = input('lab', 'ct.backup', 300, { storage: 'local' });
    await journal.begin({ planId: i.planId, environment: 'lab', vmid: 300, node: 'pve-lab', action: 'ct.backup', params: i.request.params, attempt: 1 });
    const upid = await clients.lab.request<string>('POST', '/nodes/{node}/vzdump', { node: 'pve-lab' }, { vmid: 300, storage: 'local' });
    await new Promise((r) => setTimeout(r, 450)); // past settleAfterMs: the task list is looked at
    sims.lab.faults.errorRate({ method: 'GET', path: '/nodes/*/tasks', status: 503, message: 'Service Unavailable', times: 20 });
    const stop = () => new MockActivityEnvironment({ attempt: 1 }).run(stopPlanDispatch, deps, { planId: i.planId });
    const failed = await failure(stop());
    expect(failed.nonRetryable).toBe(false);
    sims.lab.faults.clear();
    // The retry finds the task, claims it for the plan, and stops it.
    expect(await stop()).toMatchObject({ state: 'dispatched', upid, exitstatus: 'received interrupt' });
    expect(await journal.get(i.planId)).toMatchObject({ upid });
  });

  it('a clone onto a creation someone else started, cancelled: refused, stops nothing', async () => {
    sims.lab.faults.slowTasks(5_000, { method: 'POST', path: '/nodes/*/qemu/*/clone' });
    await clients.lab.request('POST', '/nodes/{node}/qemu/{vmid}/clone', { node: 'pve-lab', vmid: 101 }, { newid: 150, name: 'db-copy', full: 1 });
    const env = new MockActivityEnvironment({ attempt: 1 });
    const running = env.run(executeAction, deps, input('lab', 'vm.clone', 101, { newid: 150, name: 'db-copy' }));
    setTimeout(() => env.cancel('CANCELLED', new ActivityCancellationDetails({ cancelRequested: true })), 100);
    await expect(running).rejects.toThrow();
    expect(sims.lab.model.guest(150)!.lock).toBe('clone');
  });
});

describe('HA-managed guests', () => {
  it('a start ha-manager accepts but never carries out is outcome_unknown, with its task, and not sent again', { timeout: 60_000 }, async () => {
    // probe12 ha-never-started: the hastart task ended OK, 600 re-reads never saw the VM running,
    // and the run said `applied`.
    const { sim, client, close } = await startDemoCluster('lab', secrets.lab, { taskDurationMs: 10, haDelayMs: 600_000 });
    try {
      const g = sim.model.findGuest(101)! as { status: string; haManaged: boolean; haState?: string };
      expect(g.status).toBe('stopped');
      g.haManaged = true;
      g.haState = 'stopped';
      const d: ExecuteDeps = { ...deps, clientFor: () => client, pollIntervalMs: 1 };
      const request = normalizeRequest({ action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'test' });
      const i: ExecuteInput = { planId: newPlanId(), request, node: sim.model.guest(101)!.node };
      const err = await failure(new MockActivityEnvironment({ attempt: 1 }).run(executeAction, d, i));
      expect(err).toMatchObject({ type: 'OutcomeUnknown', nonRetryable: true });
      expect(err.message).toMatch(/^the HA manager accepted the request \(task hastart OK\), but VM 101 is still stopped on node 'pve-lab' after \d+ s: the change was not seen/);
      const upid = (err.details?.[0] as { upid?: string }).upid;
      expect(upid).toContain(':hastart:101:');
      // A retry anyway follows the same task, sends nothing, and says the same.
      expect(await failure(new MockActivityEnvironment({ attempt: 2 }).run(executeAction, d, i))).toMatchObject({ type: 'OutcomeUnknown', details: [{ upid }] });
      expect(sim.requests.all().filter((q) => q.method === 'POST' && q.path.endsWith('/status/start'))).toHaveLength(1);
      expect(g.status).toBe('stopped');
    } finally {
      await close();
    }
  });

  it('an HA start ha-manager carries out is applied', async () => {
    const g = sims.lab.model.findGuest(101)! as { haManaged: boolean; haState?: string };
    g.haManaged = true;
    g.haState = 'stopped';
    const r = await attempt(input('lab', 'vm.start', 101, {}));
    expect(r).toMatchObject({ outcome: 'applied', upid: expect.stringContaining(':hastart:101:') });
    expect(r.note).toBeUndefined();
    expect(sims.lab.model.guest(101)!.status).toBe('running');
  });
});

describe('the policy, as the guest is when the request is sent', () => {
  it('a guest tagged do-not-touch after the apply-time check is refused before anything is sent', async () => {
    (sims.lab.model.findGuest(100)! as { config: Record<string, string> }).config.tags = 'do-not-touch';
    const i = input('lab', 'vm.reset', 100, {});
    const err = await failure(attempt(i));
    expect(err).toMatchObject({ type: 'ActionBlocked', nonRetryable: true });
    expect(err.message).toContain('the policy now denies vm.reset on VM 100');
    expect(err.message).toContain('policy.do-not-touch: Guests tagged do-not-touch are managed by hand only');
    expect(await journal.get(i.planId)).toBeUndefined();
    expect(sims.lab.mutations.all()).toEqual([]);
  });

  it('a reset waiting behind another plan\'s task is refused when the guest is tagged do-not-touch meanwhile', async () => {
    // probe12 policy-after-wait: checked at apply, then waited 12 s for another plan's reset; the guest
    // was tagged do-not-touch meanwhile, and the reset ran anyway.
    sims.lab.faults.slowTasks(1_000, { method: 'POST', path: '/nodes/*/qemu/100/status/reset', times: 1 });
    const p0 = input('lab', 'vm.reset', 100, {});
    const first = attempt(p0);
    await runningTask(sims.lab, 'qmreset');
    const p2 = input('lab', 'vm.reset', 100, {});
    const second = failure(attempt(p2));
    await new Promise((r) => setTimeout(r, 200)); // p2 is waiting for the guest
    (sims.lab.model.findGuest(100)! as { config: Record<string, string> }).config.tags = 'do-not-touch';
    expect((await first).outcome).toBe('applied');
    expect(await second).toMatchObject({ type: 'ActionBlocked', nonRetryable: true });
    expect(sims.lab.mutations.all().filter((m) => m.op === 'reset')).toHaveLength(1);
    expect(await journal.get(p2.planId)).toBeUndefined();
  });
});

describe('answers that cannot be used', () => {
  it('a 2xx reply whose body is not JSON, for a task that started: settled to that task, applied', async () => {
    sims.lab.faults.add({ kind: 'garbled-after-dispatch', method: 'POST', path: '/nodes/*/qemu/*/snapshot', times: 1 });
    const i = input('lab', 'vm.snapshot.create', 101, { snapname: 'garbled' });
    // Before: a permanent protocol error, the run failed with no look at what Proxmox had started.
    const r = await attempt(i);
    expect(r).toMatchObject({ outcome: 'applied', note: 'the answer was lost; followed the task the request had started' });
    expect(mutationsOf(sims.lab, r.upid)).toMatchObject([{ op: 'snapshot', key: 'garbled' }]);
  });

  it('a 2xx reply with no usable body and no task to be found is an unknown outcome, not a clean failure', async () => {
    // Proxmox said OK to a start and no task of it appears: what it did cannot be known.
    const i = input('lab', 'vm.start', 101, {});
    const original = clients.lab.request.bind(clients.lab);
    const garbling: ProxmoxClient = Object.create(clients.lab, {
      request: {
        value: async (...args: Parameters<ProxmoxClient['request']>) => {
          if (args[0] === 'POST') {
            const { ProxmoxProtocolError } = await import('../../src/proxmox/index.js');
            throw new ProxmoxProtocolError('Proxmox POST: HTTP 200 with a body that is not JSON', { method: 'POST', path: String(args[1]), status: 200, outcomeUnknown: true });
          }
          return original(...args);
        },
      },
    });
    const err = await failure(new MockActivityEnvironment({ attempt: 1 }).run(executeAction, { ...deps, clientFor: () => garbling }, i));
    expect(err).toMatchObject({ type: 'OutcomeUnknown', nonRetryable: true });
    expect(err.message).toContain('no task of it can be found');
  });
});

/** The UPID of the running task of this type, once the simulator runs one (and the activity has had a moment to record it). */
async function runningTask(sim: ProxmoxSimulator, type: string): Promise<string> {
  let upid: string | undefined;
  await until(async () => (upid = sim.model.taskManager!.list().find((t) => t.type === type && t.status === 'running')?.upid) !== undefined);
  await new Promise((r) => setTimeout(r, 100));
  return upid!;
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
