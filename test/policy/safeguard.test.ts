import { describe, expect, it } from 'vitest';
import { evaluatePolicy, type PolicyInput } from '../../src/policy/engine.js';
import { policySchema } from '../../src/policy/schema.js';
import { normalizeRequest } from '../../src/domain/request.js';
import type { GuestState } from '../../src/domain/guest-state.js';
import { randomPlanId } from '../../src/domain/plan-id.js';
import { safeguardRequest, safeguardSnapshotName, snapshotSupport } from '../../src/domain/safeguard.js';
import { snapshotName } from '../../src/domain/actions/snapshot.js';

const AT = new Date('2026-11-25T12:00:00Z');
const PLAN = 'plan_01JD3Z8Q5V7K2M4N6P8R0T2W4Y';
const req = (action: string, params: Record<string, unknown> = {}) => normalizeRequest({ action, environment: 'prod', target: { vmid: 200 }, params, reason: 'test' });
const state = (over: Partial<GuestState> = {}): GuestState => ({
  exists: true, kind: 'qemu', node: 'pve-prod', vmid: 200, status: 'running', tags: [], haManaged: false, template: false, protection: false, snapshots: ['nightly'], ...over,
});
const input = (over: Partial<PolicyInput> & Pick<PolicyInput, 'request'>): PolicyInput => ({ tier: 'prod', state: state(), assessment: { kind: 'proceed' }, at: AT, planId: PLAN, ...over });
const policy = policySchema.parse({ rules: [{ id: 'prod-snap', match: { environments: ['prod'] }, safeguard: 'snapshot' }] });

describe('policy option safeguard: snapshot', () => {
  it('is a rule on its own, and refused on a deny rule or a rule naming only actions a snapshot cannot take back', () => {
    expect(policy.rules[0]!.safeguard).toBe('snapshot');
    const bad = (rule: object) => policySchema.safeParse({ rules: [{ id: 'r', match: {}, ...rule }] });
    expect(bad({ decision: 'deny', safeguard: 'snapshot' }).success).toBe(false);
    const powerOnly = bad({ match: { actions: ['vm.start', 'vm.stop'] }, safeguard: 'snapshot' });
    expect(powerOnly.success).toBe(false);
    expect(JSON.stringify(powerOnly.error?.issues)).toContain('applies only to');
    expect(bad({ match: { actions: ['vm.*'] }, safeguard: 'snapshot' }).success).toBe(true);
    expect(bad({ safeguard: 'volume' }).success).toBe(false);
  });

  it.each(['vm.config.update', 'vm.disk.resize', 'vm.snapshot.rollback'])('asks %s for a snapshot named after the plan', (action) => {
    const params = action === 'vm.config.update' ? { cores: 2 } : action === 'vm.disk.resize' ? { disk: 'scsi0', size: '64G' } : { snapname: 'nightly' };
    const d = evaluatePolicy(policy, input({ request: req(action, params) }));
    expect(d.decision).not.toBe('denied');
    expect(d.safeguard).toEqual({ kind: 'snapshot', name: 'pa_01jd3z8q5v7k2m4n6p8r0t2w4y' });
    expect(d.reasons).toContainEqual(expect.objectContaining({ rule: 'safeguard.snapshot', message: expect.stringContaining('prod-snap') }));
  });

  it('is said not to apply to other actions, which run without one', () => {
    const d = evaluatePolicy(policy, input({ request: req('vm.start') }));
    expect(d.safeguard).toBeUndefined();
    expect(d.decision).toBe('allowed');
    expect(d.reasons.map((r) => r.rule)).toContain('safeguard.not_applicable');
  });

  it('denies the plan when the preflight found storage that cannot snapshot, with a hint', () => {
    const d = evaluatePolicy(policy, input({ request: req('vm.config.update', { cores: 2 }), state: state({ snapshotSupport: { capable: false, reason: 'scsi0 is on lvm storage' } }) }));
    expect(d.decision).toBe('denied');
    expect(d.safeguard).toBeUndefined();
    const reason = d.reasons.find((r) => r.rule === 'safeguard.unavailable');
    expect(reason?.message).toContain('scsi0 is on lvm storage');
    expect(reason?.hint).toContain('lvmthin');
  });

  it('denies the plan for a template, which Proxmox never snapshots', () => {
    const d = evaluatePolicy(policy, input({ request: req('vm.config.update', { cores: 2 }), state: state({ template: true, snapshotSupport: { capable: true } }) }));
    expect(d.decision).toBe('denied');
    expect(d.reasons.find((r) => r.rule === 'safeguard.unavailable')?.message).toContain('template');
  });

  it('without a matching rule, nothing changes', () => {
    const d = evaluatePolicy(policy, input({ request: normalizeRequest({ action: 'vm.config.update', environment: 'lab', target: { vmid: 100 }, params: { cores: 2 }, reason: 't' }), tier: 'nonprod' }));
    expect(d.safeguard).toBeUndefined();
    expect(d.reasons.map((r) => r.rule).filter((r) => r.startsWith('safeguard.'))).toEqual([]);
  });
});

describe('the safeguard snapshot name', () => {
  it('is a valid Proxmox snapshot name of at most 40 characters, the same for the same plan', () => {
    for (let i = 0; i < 200; i++) {
      const id = randomPlanId();
      const name = safeguardSnapshotName(id);
      expect(name).toMatch(/^[a-z][a-z0-9_-]*$/);
      expect(name.length).toBeLessThanOrEqual(40);
      expect(snapshotName.safeParse(name).success).toBe(true);
      expect(safeguardSnapshotName(id)).toBe(name);
    }
    expect(safeguardSnapshotName(`plan_${'X'.repeat(60)}`)).toHaveLength(40);
  });

  it('is taken by the snapshot action of the guest kind, with a description saying why', () => {
    const vm = safeguardRequest(req('vm.config.update', { cores: 2 }), PLAN, 'pa_x');
    expect(vm).toMatchObject({ action: 'vm.snapshot.create', environment: 'prod', target: { vmid: 200 }, params: { snapname: 'pa_x', vmstate: false } });
    expect(vm.params.description).toContain(PLAN);
    expect(safeguardRequest(normalizeRequest({ action: 'ct.disk.resize', environment: 'prod', target: { vmid: 400 }, params: { disk: 'rootfs', size: '64G' }, reason: 't' }), PLAN, 'pa_x').action).toBe('ct.snapshot.create');
  });
});

describe('whether the storage can take a snapshot (PVE has_feature)', () => {
  const storages = [
    { storage: 'local', type: 'dir' },
    { storage: 'local-lvm', type: 'lvmthin' },
    { storage: 'thick', type: 'lvm' },
    { storage: 'tank', type: 'zfspool' },
    { storage: 'ceph', type: 'rbd' },
    { storage: 'nas', type: 'nfs' },
  ];
  const table: [string, 'qemu' | 'lxc', Record<string, string>, boolean][] = [
    ['lvmthin', 'qemu', { scsi0: 'local-lvm:vm-200-disk-0,size=32G' }, true],
    ['zfspool + rbd', 'qemu', { scsi0: 'tank:vm-200-disk-0,size=32G', virtio1: 'ceph:vm-200-disk-1,size=1G' }, true],
    ['qcow2 on dir', 'qemu', { scsi0: 'local:200/vm-200-disk-0.qcow2,size=32G' }, true],
    ['qcow2 on nfs by format=', 'qemu', { scsi0: 'nas:200/vm-200-disk-0,format=qcow2,size=32G' }, true],
    ['raw on dir', 'qemu', { scsi0: 'local:200/vm-200-disk-0.raw,size=32G' }, false],
    ['one thick lvm disk among thin', 'qemu', { scsi0: 'local-lvm:vm-200-disk-0,size=32G', scsi1: 'thick:vm-200-disk-1,size=1G' }, false],
    ['a cdrom on dir does not count', 'qemu', { scsi0: 'local-lvm:vm-200-disk-0', ide2: 'local:iso/debian.iso,media=cdrom' }, true],
    ['unknown storage fails closed', 'qemu', { scsi0: 'gone:vm-200-disk-0' }, false],
    ['container on lvmthin', 'lxc', { rootfs: 'local-lvm:subvol-400-disk-0,size=8G' }, true],
    ['container raw image on dir', 'lxc', { rootfs: 'local:400/vm-400-disk-0.raw,size=8G' }, false],
    ['container bind mount does not count', 'lxc', { rootfs: 'tank:subvol-400-disk-0', mp0: '/srv/data,mp=/data' }, true],
  ];
  it.each(table)('%s', (_name, kind, config, capable) => {
    const support = snapshotSupport(kind, config, storages);
    expect(support.capable).toBe(capable);
    if (!capable) expect(support.reason).toMatch(/^(scsi|rootfs|mp)\d*/);
  });
});
