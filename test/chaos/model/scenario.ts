/**
 * The model-based chaos suite's load: about 60 plans over 3 SHARED guests per cluster, two clusters.
 * Everything here is the test's own model of Proxmox and of the service's contract; nothing is taken
 * from the implementation (no catalog, no policy engine): which mutation a plan may cause is written
 * down from Proxmox's API (docs/proxmox-api reference, the simulator's mutation log vocabulary), and
 * what each plan must end as follows from what the test does to it (reject it, let it expire, ...).
 */
import type { MutationOp, SimGuestSeed } from '../../../src/simulator/index.js';

export type Cluster = 'lab' | 'prod';

export const TOKENS = {
  agent: 'demo-agent-token',
  alice: 'demo-approver-1-token',
  bob: 'demo-approver-2-token',
  carol: 'model-chaos-carol-token',
} as const;
export type Approver = 'alice' | 'bob' | 'carol';
export const PRINCIPALS: Record<Approver | 'agent', string> = {
  agent: 'agent:pi-demo',
  alice: 'human:alice',
  bob: 'human:bob',
  carol: 'human:carol',
};

/**
 * What the driver does to a plan, and so what the plan may end as:
 *  - run: applied without approval (some several times concurrently);
 *  - approve: approved by `approvers` (before, after or racing the apply);
 *  - reject-after-apply: applied, then rejected before any approval: must end `rejected`;
 *  - reject-first: rejected, then applied (refused): must end `rejected`;
 *  - reject-race: approved, applied, and rejected while the apply-time re-check runs (made slow);
 *    a rejection the API accepts must win: `rejected`, no mutation;
 *  - expire: applied with fewer approvals than needed (maybe none): must end `expired`;
 *  - deny: denied by policy at plan time: `denied`, the apply refused;
 *  - deny-at-apply: planned a few seconds before a change freeze starts, applied just after: `denied`
 *    at the re-check (or stale, if another plan changed the guest in between);
 *  - cancel: an operator cancels the run while its Proxmox task runs (the only allowed task stop).
 */
export type Intent = 'run' | 'approve' | 'reject-after-apply' | 'reject-first' | 'reject-race' | 'expire' | 'deny' | 'deny-at-apply' | 'cancel';

/** The Proxmox request that carries out a plan (what an outsider sees on the wire). */
export interface ExpectedRequest {
  method: string;
  /** Path below /api2/json; `{node}` matches any node. */
  path: string;
  /** Parameters that must have exactly these values. */
  params?: Record<string, string>;
  /** A parameter that must contain this text. */
  includes?: { name: string; text: string };
}

/** The one mutation a plan may cause, as the simulator's mutation log names it. */
export interface ExpectedMutation {
  op: MutationOp;
  /** The guest the mutation is recorded on (a clone is recorded on its source). */
  vmid: number;
  /** The log's `key` (snapshot name, new id): unique to this plan when set. */
  key?: string;
  /** Whether Proxmox answers with a task (UPID); false for a synchronous config write. */
  task: boolean;
  /** The request that causes it. */
  request: ExpectedRequest;
  /** The task type Proxmox gives it (UPID field), when it is a task. */
  taskType?: string;
}

export interface PlanSpec {
  /** Stable label, e.g. `lab-07 vm.snapshot.create`. */
  label: string;
  cluster: Cluster;
  vmid: number;
  action: string;
  params: Record<string, unknown>;
  intent: Intent;
  approvers: Approver[];
  rejecter?: Approver;
  /** For `approve`: approvals before the apply, after it, or sent at the same moment. */
  approvalOrder?: 'before' | 'after' | 'race';
  /** How many applies are sent at once (1, or 3 for "applied several times concurrently"). */
  applies: number;
  /**
   * When the driver starts this plan, ms after the start of the run; for deny-at-apply plans, how
   * long before the freeze starts (they are applied just after it).
   */
  startAtMs: number;
  expect: ExpectedMutation;
  /** True when the plan's params make its mutation unique (snapshot name, new id, value, notes). */
  distinct: boolean;
}

export interface Scenario {
  plans: PlanSpec[];
  guests: Record<Cluster, SimGuestSeed[]>;
  nodes: Record<Cluster, string[]>;
}

export const LAB_NODES = ['pve-lab'];
export const PROD_NODES = ['pve-prod', 'pve-prod-2'];

interface Template {
  action: string;
  intent: Intent;
  /** Approvers for each cluster (lab nonprod / prod differ in how many are needed). */
  approvers?: Partial<Record<Cluster, Approver[]>>;
  rejecter?: Approver;
  /** The plan's params; `seedSnapshot` adds a snapshot to the guest's seed (rollback, delete targets). */
  params(n: number, seedSnapshot: (name: string) => void): Record<string, unknown>;
  /** Restrict the guest (e.g. a delete targets the stopped guest). */
  vmidIndex?: number;
}

const q = (vmid: number, rest = '') => `/nodes/{node}/qemu/${vmid}${rest}`;

/**
 * The model: which one mutation an action of the catalog causes on Proxmox, with which request, and
 * whether its parameters tell it apart from every other plan's. Written from Proxmox's API (the
 * request, the task type) and the simulator's mutation log vocabulary; nothing from the catalog.
 */
export function modelOf(action: string, vmid: number, params: Record<string, unknown>): { expect: ExpectedMutation; distinct: boolean } {
  const power: Record<string, [MutationOp, string]> = {
    'vm.start': ['start', 'start'],
    'vm.stop': ['stop', 'stop'],
    'vm.shutdown': ['shutdown', 'shutdown'],
    'vm.reboot': ['reboot', 'reboot'],
    'vm.reset': ['reset', 'reset'],
    'vm.suspend': ['suspend', 'suspend'],
  };
  const p = params as Record<string, string>;
  if (power[action]) {
    const [op, verb] = power[action];
    // Nothing in the request tells two plans apart: only the UPID does.
    return { expect: { op, vmid, task: true, taskType: `qm${verb}`, request: { method: 'POST', path: q(vmid, `/status/${verb}`) } }, distinct: false };
  }
  switch (action) {
    case 'vm.snapshot.create':
      return { expect: { op: 'snapshot', vmid, key: p.snapname!, task: true, taskType: 'qmsnapshot', request: { method: 'POST', path: q(vmid, '/snapshot'), params: { snapname: p.snapname! } } }, distinct: true };
    case 'vm.snapshot.delete':
      return { expect: { op: 'snapshot-delete', vmid, key: p.snapname!, task: true, taskType: 'qmdelsnapshot', request: { method: 'DELETE', path: q(vmid, `/snapshot/${p.snapname}`) } }, distinct: true };
    case 'vm.snapshot.rollback':
      return { expect: { op: 'rollback', vmid, key: p.snapname!, task: true, taskType: 'qmrollback', request: { method: 'POST', path: q(vmid, `/snapshot/${p.snapname}/rollback`) } }, distinct: true };
    case 'vm.clone': {
      const newid = String(params.newid);
      return { expect: { op: 'clone', vmid, key: newid, task: true, taskType: 'qmclone', request: { method: 'POST', path: q(vmid, '/clone'), params: { newid } } }, distinct: true };
    }
    case 'vm.config.update':
      return { expect: { op: 'config', vmid, task: false, request: { method: 'PUT', path: q(vmid, '/config'), params: { description: p.description! } } }, distinct: true };
    case 'vm.backup':
      return {
        expect: { op: 'backup', vmid, task: true, taskType: 'vzdump', request: { method: 'POST', path: '/nodes/{node}/vzdump', params: { vmid: String(vmid) }, includes: { name: 'notes-template', text: `${p.notes!} [` } } },
        // The notes as the plan gave them, up to the service's ` [proxmox-agent <planId>]` suffix: a
        // re-planned backup's notes (`…-again1`) start with its original's, which must not match it.
        distinct: true,
      };
    case 'vm.disk.resize':
      return { expect: { op: 'resize', vmid, key: p.disk!, task: false, request: { method: 'PUT', path: q(vmid, '/resize'), params: { disk: p.disk!, size: p.size! } } }, distinct: true };
    case 'vm.delete':
      return { expect: { op: 'destroy', vmid, task: true, taskType: 'qmdestroy', request: { method: 'DELETE', path: q(vmid) } }, distinct: false };
  }
  throw new Error(`the model knows no mutation for ${action}`);
}

/**
 * The mix per cluster (32 plans each). The demo risk matrix (docs/policy-risk-matrix.md) decides
 * approvals: lab start/stop/snapshot/clone/config/backup need none, rollback 1; prod stop, shutdown,
 * config, snapshot delete and resize need 1, rollback 2, delete 2 of which one via api/cli.
 */
function templates(cluster: Cluster): Template[] {
  const prod = cluster === 'prod';
  const oneApprover: Approver[] = ['alice'];
  const t = (action: string, intent: Intent, params: (n: number, seedSnapshot: (name: string) => void) => Record<string, unknown> = () => ({}), more: Partial<Template> = {}): Template => ({
    action,
    intent,
    params,
    ...more,
  });
  /** Allowed in lab; in prod (high risk) approved by one approver. */
  const run = (action: string, params?: Template['params']): Template => (prod ? t(action, 'approve', params, { approvers: { prod: oneApprover } }) : t(action, 'run', params));
  const seeded = (prefix: string) => (n: number, seed: (name: string) => void) => {
    const snapname = `mc-${cluster}-${prefix}${n}`;
    seed(snapname);
    return { snapname };
  };
  const snapshot = t('vm.snapshot.create', 'run', (n) => ({ snapname: `mc-${cluster}-s${n}` }));
  const rollback = (intent: Intent, approvers: Partial<Record<Cluster, Approver[]>> = {}, rejecter?: Approver) =>
    t('vm.snapshot.rollback', intent, seeded('rb'), { approvers, ...(rejecter ? { rejecter } : {}) });
  const backup = (intent: Intent) => t('vm.backup', intent, (n) => ({ storage: 'local', notes: `mc-${cluster}-backup-${n}` }));
  const config = run('vm.config.update', (n) => ({ description: `model-chaos ${cluster} config value #${n}` }));
  const clone = t('vm.clone', 'run', (n) => ({ newid: (cluster === 'lab' ? 1100 : 2100) + n, name: `mc-clone-${(cluster === 'lab' ? 1100 : 2100) + n}` }));
  return [
    snapshot, snapshot, snapshot, snapshot, snapshot,
    run('vm.snapshot.delete', seeded('del')),
    run('vm.snapshot.delete', seeded('del')),
    rollback('approve', { lab: ['alice'], prod: ['alice', 'bob'] }),
    rollback('approve', { lab: ['bob'], prod: ['bob', 'carol'] }),
    rollback('reject-after-apply', {}, 'alice'),
    rollback('reject-first', {}, 'bob'),
    // Approved in full, then rejected by another approver while the apply-time re-check runs.
    rollback('reject-race', { lab: ['alice'], prod: ['alice', 'bob'] }, 'carol'),
    rollback('reject-race', { lab: ['bob'], prod: ['bob', 'carol'] }, 'alice'),
    rollback('expire', { prod: ['alice'] }),
    clone, clone,
    t('vm.start', 'run'),
    t('vm.start', 'run'),
    run('vm.stop'),
    run('vm.stop'),
    run('vm.shutdown'),
    run('vm.shutdown'),
    config, config, config,
    backup('run'), backup('run'), backup('cancel'),
    // The change freeze (a policy window on disk resizes) starts between this plan and its apply.
    t('vm.disk.resize', 'deny-at-apply', () => ({ disk: 'scsi0', size: '16G' }), prod ? { approvers: { prod: oneApprover } } : {}),
    t('vm.reset', 'deny'),
    t('vm.suspend', 'deny'),
    t('vm.delete', 'expire', () => ({ purge: true }), { approvers: { prod: ['alice'] }, vmidIndex: 1 }),
  ];
}

function guestsOf(cluster: Cluster): SimGuestSeed[] {
  const base = cluster === 'lab' ? 100 : 200;
  const nodes = cluster === 'lab' ? LAB_NODES : PROD_NODES;
  return [
    { vmid: base, status: 'running', name: `${cluster}-web` },
    { vmid: base + 1, status: 'stopped', name: `${cluster}-db` },
    { vmid: base + 2, status: 'running', name: `${cluster}-app` },
  ].map((g, i) => ({
    ...g,
    type: 'qemu' as const,
    node: nodes[i % nodes.length]!,
    status: g.status as 'running' | 'stopped',
    cores: 2,
    memory: 2048,
    disks: { scsi0: `local-lvm:vm-${g.vmid}-disk-0,size=8G` },
    snapshots: [] as string[],
  }));
}

export interface ScenarioTiming {
  /** Plans that must expire start in [0, expireWindowMs). */
  expireWindowMs: number;
  /** Every other plan starts in [2 s, startWindowMs). */
  startWindowMs: number;
}

export function buildScenario(random: () => number, timing: ScenarioTiming): Scenario {
  const plans: PlanSpec[] = [];
  const guests = { lab: guestsOf('lab'), prod: guestsOf('prod') };
  for (const cluster of ['lab', 'prod'] as const) {
    templates(cluster).forEach((t, n) => {
      const index = t.vmidIndex ?? Math.floor(random() * 3);
      const guest = guests[cluster][index]!;
      const params = t.params(n, (name) => guest.snapshots!.push(name));
      const { expect, distinct } = modelOf(t.action, guest.vmid, params);
      const startAtMs =
        t.intent === 'expire'
          ? Math.floor(random() * timing.expireWindowMs)
          : t.intent === 'deny-at-apply'
            ? 3000 + Math.floor(random() * 3000)
            : 2000 + Math.floor(random() * (timing.startWindowMs - 2000));
      const orders = ['before', 'after', 'race'] as const;
      plans.push({
        label: `${cluster}-${String(n).padStart(2, '0')} ${t.action}`,
        cluster,
        vmid: guest.vmid,
        action: t.action,
        params,
        intent: t.intent,
        approvers: t.approvers?.[cluster] ?? [],
        ...(t.rejecter ? { rejecter: t.rejecter } : {}),
        ...(t.intent === 'approve' ? { approvalOrder: orders[Math.floor(random() * 3)]! } : {}),
        applies: t.intent === 'run' && random() < 0.35 ? 3 : 1,
        startAtMs,
        expect,
        distinct,
      });
    });
  }
  return { plans, guests, nodes: { lab: LAB_NODES, prod: PROD_NODES } };
}

/**
 * The run's policy: the demo's approvals by risk, resets and suspends denied, a change freeze on
 * disk resizes from `freezeFrom` on (a policy window, so plans made before it are denied at apply), and the
 * demo's step-up for prod deletes.
 */
export function scenarioPolicy(freezeFrom: Date, planTtlSeconds: number): Record<string, unknown> {
  return {
    planTtlSeconds,
    approvalsByRisk: { low: 0, medium: 0, high: 1, critical: 2 },
    rules: [
      { id: 'model-chaos-no-reset', match: { actions: ['vm.reset', 'vm.suspend'] }, decision: 'deny', message: 'resets and suspends are done by hand' },
      { id: 'model-chaos-freeze', match: { actions: ['vm.disk.resize'], when: { windows: [{ from: freezeFrom.toISOString() }] } }, decision: 'deny', message: 'disk resize freeze' },
      { id: 'prod-delete-step-up', match: { environments: ['prod'], actions: ['*.delete'] }, approvals: { count: 1, channels: ['api', 'cli'] } },
    ],
  };
}

/** The tokens of the run: the demo's agent and approvers, and carol (sre) as a third approver. */
export function scenarioTokens(sha256: (s: string) => string): Record<string, unknown>[] {
  return [
    { id: 'demo-agent', principal: PRINCIPALS.agent, secretSha256: sha256(TOKENS.agent), scopes: ['plan', 'apply', 'read'], environments: ['*'] },
    { id: 'demo-approver-1', principal: PRINCIPALS.alice, secretSha256: sha256(TOKENS.alice), scopes: ['approve', 'read'], environments: ['*'], roles: ['sre'], channels: ['api', 'cli'] },
    { id: 'demo-approver-2', principal: PRINCIPALS.bob, secretSha256: sha256(TOKENS.bob), scopes: ['approve', 'read'], environments: ['*'], roles: ['sre', 'dba'], channels: ['api', 'cli'] },
    { id: 'model-chaos-carol', principal: PRINCIPALS.carol, secretSha256: sha256(TOKENS.carol), scopes: ['approve', 'read'], environments: ['*'], roles: ['sre'], channels: ['api', 'cli'] },
  ];
}
