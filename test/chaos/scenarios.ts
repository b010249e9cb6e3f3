/**
 * The chaos suite's 100 flows, each on a guest of its own, with the terminal state each one must
 * reach decided up front (the demo policy with a short plan TTL; docs/policy-risk-matrix.md).
 */
import type { Risk } from '../../src/domain/risk.js';
import type { MutationOp, SimGuestSeed } from '../../src/simulator/index.js';

export const AGENT = 'demo-agent-token';
export const ALICE = 'demo-approver-1-token'; // human:alice, roles sre
export const BOB = 'demo-approver-2-token'; // human:bob, roles sre, dba

export type Step =
  | { do: 'apply' }
  | { do: 'approve'; token: string }
  | { do: 'reject'; token: string }
  /** Change the guest behind the agent's back (as a person in the Proxmox GUI would): the plan goes stale. */
  | { do: 'change-guest' };

export type Terminal = 'succeeded' | 'failed' | 'rejected' | 'expired' | 'denied';

export interface Expected {
  decision: 'allowed' | 'requires_approval' | 'denied';
  risk: Risk;
  status: Terminal;
  outcome?: 'applied' | 'noop';
  errorType?: string;
  /** The one mutation the flow must cause on its guest; none when absent. */
  mutation?: MutationOp;
}

export interface Flow {
  id: string;
  category: string;
  environment: 'lab' | 'prod';
  guest: SimGuestSeed;
  action: string;
  params: Record<string, unknown>;
  steps: Step[];
  expect: Expected;
  /** Proxmox fails this guest's task (a permanent error: the run must end failed, not retry). */
  failTask?: boolean;
}

interface Category {
  name: string;
  n: number;
  environment: 'lab' | 'prod';
  guest: Pick<SimGuestSeed, 'type' | 'status'> & Partial<SimGuestSeed>;
  action: string;
  params?: (i: number) => Record<string, unknown>;
  steps: Step[];
  expect: Expected;
  failTask?: boolean;
}

const apply: Step = { do: 'apply' };
const approve = (token: string): Step => ({ do: 'approve', token });
const reject = (token: string): Step => ({ do: 'reject', token });

const CATEGORIES: Category[] = [
  // lab (nonprod): allowed, no approval
  { name: 'lab-vm-start', n: 8, environment: 'lab', guest: { type: 'qemu', status: 'stopped' }, action: 'vm.start', steps: [apply], expect: { decision: 'allowed', risk: 'low', status: 'succeeded', outcome: 'applied', mutation: 'start' } },
  { name: 'lab-vm-snapshot', n: 8, environment: 'lab', guest: { type: 'qemu', status: 'running' }, action: 'vm.snapshot.create', params: (i) => ({ snapname: `chaos-${i}` }), steps: [apply], expect: { decision: 'allowed', risk: 'low', status: 'succeeded', outcome: 'applied', mutation: 'snapshot' } },
  { name: 'lab-vm-stop', n: 8, environment: 'lab', guest: { type: 'qemu', status: 'running' }, action: 'vm.stop', steps: [apply], expect: { decision: 'allowed', risk: 'medium', status: 'succeeded', outcome: 'applied', mutation: 'stop' } },
  { name: 'lab-vm-reboot', n: 4, environment: 'lab', guest: { type: 'qemu', status: 'running' }, action: 'vm.reboot', steps: [apply], expect: { decision: 'allowed', risk: 'medium', status: 'succeeded', outcome: 'applied', mutation: 'reboot' } },
  { name: 'lab-ct-start', n: 5, environment: 'lab', guest: { type: 'lxc', status: 'stopped' }, action: 'ct.start', steps: [apply], expect: { decision: 'allowed', risk: 'low', status: 'succeeded', outcome: 'applied', mutation: 'start' } },
  { name: 'lab-ct-snapshot', n: 4, environment: 'lab', guest: { type: 'lxc', status: 'running' }, action: 'ct.snapshot.create', params: (i) => ({ snapname: `chaos-${i}` }), steps: [apply], expect: { decision: 'allowed', risk: 'low', status: 'succeeded', outcome: 'applied', mutation: 'snapshot' } },
  // Already done: a recorded no-op, nothing sent.
  { name: 'lab-vm-start-noop', n: 4, environment: 'lab', guest: { type: 'qemu', status: 'running' }, action: 'vm.start', steps: [apply], expect: { decision: 'allowed', risk: 'low', status: 'succeeded', outcome: 'noop' } },
  // lab: high risk, one approval
  { name: 'lab-vm-delete', n: 6, environment: 'lab', guest: { type: 'qemu', status: 'stopped' }, action: 'vm.delete', params: () => ({ purge: true }), steps: [apply, approve(ALICE)], expect: { decision: 'requires_approval', risk: 'high', status: 'succeeded', outcome: 'applied', mutation: 'destroy' } },
  { name: 'lab-vm-delete-rejected', n: 4, environment: 'lab', guest: { type: 'qemu', status: 'stopped' }, action: 'vm.delete', params: () => ({ purge: true }), steps: [apply, reject(ALICE)], expect: { decision: 'requires_approval', risk: 'high', status: 'rejected' } },
  { name: 'lab-vm-delete-expired', n: 4, environment: 'lab', guest: { type: 'qemu', status: 'stopped' }, action: 'vm.delete', params: () => ({ purge: true }), steps: [apply], expect: { decision: 'requires_approval', risk: 'high', status: 'expired' } },
  // Denied by policy (do-not-touch): the apply is refused.
  { name: 'lab-denied', n: 4, environment: 'lab', guest: { type: 'qemu', status: 'running', tags: ['do-not-touch'] }, action: 'vm.stop', steps: [apply], expect: { decision: 'denied', risk: 'medium', status: 'denied' } },
  // Proxmox runs the task and it fails: a permanent error, reported with Proxmox's words.
  { name: 'lab-task-fails', n: 4, environment: 'lab', guest: { type: 'qemu', status: 'stopped' }, action: 'vm.start', failTask: true, steps: [apply], expect: { decision: 'allowed', risk: 'low', status: 'failed', errorType: 'ProxmoxTaskFailedError' } },
  // Someone stops the VM by hand between plan and apply: the plan is stale, nothing is sent.
  { name: 'lab-stale', n: 4, environment: 'lab', guest: { type: 'qemu', status: 'running' }, action: 'vm.stop', steps: [{ do: 'change-guest' }, apply], expect: { decision: 'allowed', risk: 'medium', status: 'failed', errorType: 'PlanStale' } },
  // prod
  { name: 'prod-vm-start', n: 6, environment: 'prod', guest: { type: 'qemu', status: 'stopped' }, action: 'vm.start', steps: [apply], expect: { decision: 'allowed', risk: 'medium', status: 'succeeded', outcome: 'applied', mutation: 'start' } },
  { name: 'prod-vm-snapshot', n: 4, environment: 'prod', guest: { type: 'qemu', status: 'running' }, action: 'vm.snapshot.create', params: (i) => ({ snapname: `chaos-${i}` }), steps: [apply], expect: { decision: 'allowed', risk: 'medium', status: 'succeeded', outcome: 'applied', mutation: 'snapshot' } },
  { name: 'prod-vm-stop', n: 6, environment: 'prod', guest: { type: 'qemu', status: 'running' }, action: 'vm.stop', steps: [approve(ALICE), apply], expect: { decision: 'requires_approval', risk: 'high', status: 'succeeded', outcome: 'applied', mutation: 'stop' } },
  { name: 'prod-vm-delete', n: 5, environment: 'prod', guest: { type: 'qemu', status: 'stopped' }, action: 'vm.delete', params: () => ({ purge: true }), steps: [apply, approve(ALICE), approve(BOB)], expect: { decision: 'requires_approval', risk: 'critical', status: 'succeeded', outcome: 'applied', mutation: 'destroy' } },
  { name: 'prod-vm-rollback', n: 3, environment: 'prod', guest: { type: 'qemu', status: 'stopped', snapshots: ['base'] }, action: 'vm.snapshot.rollback', params: () => ({ snapname: 'base' }), steps: [approve(BOB), approve(ALICE), apply], expect: { decision: 'requires_approval', risk: 'critical', status: 'succeeded', outcome: 'applied', mutation: 'rollback' } },
  // prod-db-needs-dba: only bob (dba) can satisfy it.
  { name: 'prod-db-stop', n: 3, environment: 'prod', guest: { type: 'qemu', status: 'running', tags: ['db'] }, action: 'vm.stop', steps: [apply, approve(BOB)], expect: { decision: 'requires_approval', risk: 'high', status: 'succeeded', outcome: 'applied', mutation: 'stop' } },
  { name: 'prod-db-stop-no-dba', n: 2, environment: 'prod', guest: { type: 'qemu', status: 'running', tags: ['db'] }, action: 'vm.stop', steps: [apply, approve(ALICE)], expect: { decision: 'requires_approval', risk: 'high', status: 'expired' } },
  { name: 'prod-delete-one-approval', n: 2, environment: 'prod', guest: { type: 'qemu', status: 'stopped' }, action: 'vm.delete', params: () => ({ purge: true }), steps: [apply, approve(ALICE)], expect: { decision: 'requires_approval', risk: 'critical', status: 'expired' } },
  { name: 'prod-delete-rejected', n: 2, environment: 'prod', guest: { type: 'qemu', status: 'stopped' }, action: 'vm.delete', params: () => ({ purge: true }), steps: [apply, approve(ALICE), reject(BOB)], expect: { decision: 'requires_approval', risk: 'critical', status: 'rejected' } },
];

export const LAB_NODES = ['pve-lab'];
export const PROD_NODES = ['pve-prod', 'pve-prod-2'];

export function buildFlows(): Flow[] {
  const flows: Flow[] = [];
  const next = { lab: 1000, prod: 2000 };
  for (const c of CATEGORIES) {
    for (let i = 0; i < c.n; i++) {
      const vmid = next[c.environment]++;
      const nodes = c.environment === 'lab' ? LAB_NODES : PROD_NODES;
      const guest: SimGuestSeed = {
        vmid,
        node: nodes[vmid % nodes.length]!,
        name: `${c.guest.type === 'qemu' ? 'vm' : 'ct'}-${vmid}`,
        ...(c.guest.type === 'qemu' ? { disks: { scsi0: `local-lvm:vm-${vmid}-disk-0,size=8G` } } : { disks: { rootfs: `local-lvm:subvol-${vmid}-disk-0,size=4G` } }),
        ...c.guest,
      };
      flows.push({
        id: `${c.name}#${i}`,
        category: c.name,
        environment: c.environment,
        guest,
        action: c.action,
        params: c.params?.(vmid) ?? {},
        steps: c.steps,
        expect: c.expect,
        ...(c.failTask ? { failTask: true } : {}),
      });
    }
  }
  return flows;
}
