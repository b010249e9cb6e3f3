import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ACTIONS, findAction } from '../../src/domain/actions/catalog.js';
import { backupMarker } from '../../src/domain/actions/backup.js';
import type { GuestState } from '../../src/domain/guest-state.js';
import { PROXMOX_ROUTES } from '../../src/proxmox/index.js';
import { MAXIMAL_PARAMS } from './action-samples.js';

function state(over: Partial<GuestState> = {}): GuestState {
  return {
    exists: true,
    kind: 'qemu',
    node: 'pve-lab',
    vmid: 100,
    status: 'running',
    tags: [],
    haManaged: false,
    template: false,
    protection: false,
    snapshots: [],
    ...over,
  };
}
const ct = (over: Partial<GuestState> = {}) => state({ kind: 'lxc', vmid: 300, ...over });

function assess(name: string, s: GuestState, params: Record<string, unknown> = {}, ctx?: { planId?: string; plannedDigest?: string }) {
  const action = findAction(name)!;
  return action.assess(s, action.params.parse(params) as never, ctx) as { kind: string; reason?: string; note?: string };
}

describe('catalog shape', () => {
  it('names every action <kind>.<verb> or <kind>.<object>.<verb>, vm for QEMU and ct for LXC, once', () => {
    const names = ACTIONS.map((a) => a.name);
    expect(new Set(names).size).toBe(names.length);
    for (const a of ACTIONS) {
      expect(a.name).toMatch(/^(vm|ct)(\.[a-z]+){1,2}$/);
      expect(a.name.startsWith(a.kind === 'qemu' ? 'vm.' : 'ct.')).toBe(true);
    }
  });

  it('offers every QEMU action for LXC too, except reset', () => {
    const vm = ACTIONS.filter((a) => a.kind === 'qemu').map((a) => a.name.slice(3));
    const lxc = ACTIONS.filter((a) => a.kind === 'lxc').map((a) => a.name.slice(3));
    expect(vm.filter((v) => !lxc.includes(v))).toEqual(['reset']);
    expect(lxc.filter((v) => !vm.includes(v))).toEqual([]);
  });

  it('calls only routes the client may use, with a method the route allows, on the guest kind it names', () => {
    const routes = PROXMOX_ROUTES as Record<string, readonly string[]>;
    for (const a of ACTIONS) {
      expect(routes[a.proxmox.path], a.name).toContain(a.proxmox.method);
      if (a.proxmox.path.includes('{vmid}')) expect(a.proxmox.path, a.name).toContain(`/${a.kind}/`);
    }
  });

  it('has task types exactly when Proxmox answers with a task', () => {
    for (const a of ACTIONS) expect(a.taskTypes.length === 0, a.name).toBe(a.response === 'sync');
  });

  it('has a maximal sample for every action, covering every parameter, and the schema accepts it', () => {
    expect(Object.keys(MAXIMAL_PARAMS).sort()).toEqual(ACTIONS.map((a) => a.name).sort());
    for (const a of ACTIONS) {
      const keys = Object.keys((z.toJSONSchema(a.params, { io: 'input' }) as { properties?: object }).properties ?? {});
      expect(Object.keys(MAXIMAL_PARAMS[a.name]!).sort(), a.name).toEqual(keys.sort());
      expect(a.params.safeParse(MAXIMAL_PARAMS[a.name]).success, a.name).toBe(true);
    }
  });

  it('rejects unknown parameters for every action', () => {
    for (const a of ACTIONS) {
      const r = a.params.safeParse({ ...MAXIMAL_PARAMS[a.name], skiplock: true });
      expect(r.success, a.name).toBe(false);
    }
  });

  it('guards by digest only actions that read the config', () => {
    for (const a of ACTIONS.filter((x) => x.digestGuard)) expect(a.needs.config, a.name).toBe(true);
  });

  it('rates destructive or irreversible actions at least medium in nonprod and high in prod', () => {
    const rank = ['low', 'medium', 'high', 'critical'];
    for (const a of ACTIONS.filter((x) => x.destructive || !x.reversible)) {
      expect(rank.indexOf(a.baseRisk.nonprod), a.name).toBeGreaterThanOrEqual(1);
      expect(rank.indexOf(a.baseRisk.prod), a.name).toBeGreaterThanOrEqual(2);
    }
    for (const a of ACTIONS) expect(rank.indexOf(a.baseRisk.prod), a.name).toBeGreaterThanOrEqual(rank.indexOf(a.baseRisk.nonprod));
  });
});

describe('assess: idempotency and refusals in Proxmox words', () => {
  it('power: repeats are no-ops, LXC included (Proxmox would answer a synchronous 500)', () => {
    expect(assess('ct.start', ct())).toEqual({ kind: 'already_done', reason: 'CT 300 is already running' });
    expect(assess('ct.stop', ct({ status: 'stopped' }))).toEqual({ kind: 'already_done', reason: 'CT 300 is already stopped' });
    expect(assess('ct.shutdown', ct({ status: 'stopped' })).kind).toBe('already_done');
    expect(assess('vm.start', state({ status: 'stopped' })).kind).toBe('proceed');
    expect(assess('vm.start', state({ status: 'stopped', lock: 'backup' }))).toEqual({ kind: 'blocked', reason: 'VM is locked (backup)' });
    expect(assess('ct.reboot', ct({ status: 'stopped' }))).toEqual({ kind: 'blocked', reason: 'VM 300 not running' });
    expect(assess('vm.reset', state({ status: 'stopped' }))).toEqual({ kind: 'blocked', reason: 'VM 100 not running' });
    expect(assess('ct.suspend', ct({ status: 'stopped' }))).toEqual({ kind: 'blocked', reason: 'CT 300 not running' });
  });

  it('a template cannot be started: refused in Proxmox words', () => {
    expect(assess('vm.start', state({ status: 'stopped', template: true }))).toEqual({ kind: 'blocked', reason: "you can't start a vm if it's a template" });
    expect(assess('ct.start', ct({ status: 'stopped', template: true }))).toEqual({ kind: 'blocked', reason: "you can't start a CT if it's a template" });
  });

  it('LXC suspend is a checkpoint that stops the CT: resume of a running CT is a no-op, of a stopped one proceeds', () => {
    const suspend = ACTIONS.find((a) => a.name === 'ct.suspend')!;
    const resume = ACTIONS.find((a) => a.name === 'ct.resume')!;
    expect(suspend.settled?.(ct({ status: 'stopped' }), {})).toBe(true);
    expect(suspend.settled?.(ct({ status: 'running' }), {})).toBe(false);
    expect(assess('ct.resume', ct())).toEqual({ kind: 'already_done', reason: 'CT 300 is already running' });
    expect(assess('ct.resume', ct({ status: 'stopped' })).kind).toBe('proceed');
    expect(resume.settled?.(ct({ status: 'running' }), {})).toBe(true);
  });

  it('QEMU suspend/resume follow qmpstatus and the hibernation lock', () => {
    expect(assess('vm.suspend', state({ qmpstatus: 'paused' })).kind).toBe('already_done');
    expect(assess('vm.suspend', state({ qmpstatus: 'running' })).kind).toBe('proceed');
    expect(assess('vm.suspend', state({ status: 'stopped', lock: 'suspended' }), { todisk: true }).kind).toBe('already_done');
    expect(assess('vm.resume', state({ qmpstatus: 'running' })).kind).toBe('already_done');
    expect(assess('vm.resume', state({ qmpstatus: 'paused' })).kind).toBe('proceed');
    expect(assess('vm.resume', state({ status: 'stopped', lock: 'suspended' })).kind).toBe('proceed');
    expect(assess('vm.start', state({ status: 'stopped', lock: 'suspended' })).reason).toContain('use vm.resume');
  });

  it('snapshots: the name decides', () => {
    const s = state({ snapshots: ['s1'] });
    expect(assess('vm.snapshot.create', s, { snapname: 's1' }).kind).toBe('already_done');
    expect(assess('vm.snapshot.delete', s, { snapname: 's2' }).kind).toBe('already_done');
    expect(assess('vm.snapshot.rollback', s, { snapname: 's2' })).toEqual({ kind: 'blocked', reason: "snapshot 's2' does not exist" });
    expect(assess('ct.snapshot.rollback', ct({ snapshots: ['s1'] }), { snapname: 's1' }).kind).toBe('proceed');
    expect(findAction('vm.snapshot.create')!.params.safeParse({ snapname: 'pending' }).success).toBe(false);
  });

  it('snapshot names: each kind refuses what its Proxmox handler reserves, and only that', () => {
    const accepts = (action: string, snapname: string) => findAction(action)!.params.safeParse({ snapname }).success;
    // qemu-server: `current`, and `pending` in any case.
    expect(['current', 'pending', 'Pending'].map((n) => accepts('vm.snapshot.create', n))).toEqual([false, false, false]);
    expect(accepts('vm.snapshot.create', 'vzdump')).toBe(true);
    // pve-container: `current` and `vzdump`, exactly; `pending` is an ordinary name there.
    expect(['current', 'vzdump'].map((n) => accepts('ct.snapshot.create', n))).toEqual([false, false]);
    expect(['pending', 'Pending', 'VZDump'].map((n) => accepts('ct.snapshot.create', n))).toEqual([true, true, true]);
  });

  it('clone: a free newid proceeds; any guest at newid refuses, even one with the planned name (not this plan\'s clone)', () => {
    const free = state({ peer: { vmid: 150, exists: false } });
    expect(assess('vm.clone', free, { newid: 150, name: 'copy' }).kind).toBe('proceed');
    const made = state({ peer: { vmid: 150, exists: true, kind: 'qemu', name: 'copy', node: 'pve-lab' } });
    // Another plan (of another source, say) may have made it: its name does not make it this plan's.
    expect(assess('vm.clone', made, { newid: 150, name: 'copy' })).toEqual({ kind: 'blocked', reason: "VM 150 already exists and is not this plan's clone" });
    expect(assess('vm.clone', made, { newid: 150, name: 'other' })).toEqual({ kind: 'blocked', reason: 'unable to create VM 150: config file already exists' });
    const vmThere = ct({ status: 'stopped', peer: { vmid: 100, exists: true, kind: 'qemu', name: 'web', node: 'pve-lab' } });
    expect(assess('ct.clone', vmThere, { newid: 100, hostname: 'web' })).toEqual({ kind: 'blocked', reason: "VM 100 already exists on node 'pve-lab'" });
  });

  it('clone: linked clones need a template or a snapshot; a running CT clones fully only from a snapshot', () => {
    const config = { scsi0: 'local-lvm:vm-100-disk-0,size=32G', ide2: 'none,media=cdrom' };
    const s = state({ config, snapshots: ['s1'], peer: { vmid: 150, exists: false } });
    expect(assess('vm.clone', s, { newid: 150, name: 'c', full: false })).toEqual({ kind: 'blocked', reason: "Linked clone feature is not supported for drive 'scsi0'" });
    expect(assess('vm.clone', s, { newid: 150, name: 'c', full: false, snapname: 's1' }).kind).toBe('proceed');
    expect(assess('vm.clone', { ...s, template: true }, { newid: 150, name: 'c', full: false }).kind).toBe('proceed');
    expect(findAction('vm.clone')!.params.safeParse({ newid: 150, name: 'c', full: false, storage: 'local' }).success).toBe(false);
    const running = ct({ config: { rootfs: 'local-lvm:vm-300-disk-0,size=8G' }, snapshots: ['s1'], peer: { vmid: 350, exists: false } });
    expect(assess('ct.clone', running, { newid: 350, hostname: 'c' }).reason).toBe('Full clone of a running container is only possible from a snapshot');
    expect(assess('ct.clone', running, { newid: 350, hostname: 'c', snapname: 's1' }).kind).toBe('proceed');
  });

  it('migrate: being on the target is done; running guests need online / restart', () => {
    expect(assess('vm.migrate', state({ node: 'pve-2' }), { target: 'pve-2' }).kind).toBe('already_done');
    expect(assess('vm.migrate', state(), { target: 'pve-2' })).toEqual({ kind: 'blocked', reason: "can't migrate running VM without --online" });
    expect(assess('vm.migrate', state(), { target: 'pve-2', online: true }).kind).toBe('proceed');
    expect(assess('ct.migrate', ct(), { target: 'pve-2' }).reason).toBe("can't migrate running container without --online or --restart");
    expect(assess('ct.migrate', ct(), { target: 'pve-2', restart: true }).kind).toBe('proceed');
    expect(findAction('vm.migrate')!.destination!({ target: 'pve-2' })).toBe('pve-2');
  });

  it('config update: values in place are a no-op; Proxmox stores them its own way', () => {
    const config = { cores: '2', memory: 'current=2048', tags: 'web;lab', onboot: '1', description: 'Web server\n', name: 'web' };
    const s = state({ config, digest: 'a'.repeat(40) });
    expect(assess('vm.config.update', s, { cores: 2, memory: 2048, tags: ['lab', 'web'], onboot: true, description: 'Web server', name: 'web' }).kind).toBe('already_done');
    expect(assess('vm.config.update', s, { cores: 4, name: 'web' })).toEqual({ kind: 'proceed', note: 'changes cores' });
    expect(assess('vm.config.update', s, { sockets: 1 }).kind).toBe('already_done'); // Proxmox's default
    expect(assess('vm.config.update', s, { balloon: 0 }).kind).toBe('proceed');
    expect(findAction('vm.config.update')!.params.safeParse({}).success).toBe(false);
    expect(findAction('ct.config.update')!.params.safeParse({ name: 'x' }).success).toBe(false);
    expect(findAction('vm.config.update')!.params.safeParse({ tags: ['bad tag'] }).success).toBe(false);
  });

  it('config update sends the digest the plan read, never one read later', () => {
    const a = findAction('ct.config.update')!;
    const params = a.params.parse({ cores: 2 });
    const wire = a.proxmoxParams(params as never, ct({ digest: 'b'.repeat(40) }), { planId: 'p', plannedDigest: 'a'.repeat(40) });
    expect(wire).toEqual({ cores: 2, digest: 'a'.repeat(40) });
  });

  it('disk resize: grow only, absolute sizes, compared with the size the config records', () => {
    const s = state({ config: { scsi0: 'local-lvm:vm-100-disk-0,iothread=1,size=32G', ide2: 'none,media=cdrom' } });
    expect(assess('vm.disk.resize', s, { disk: 'scsi0', size: '32G' }).kind).toBe('already_done');
    expect(assess('vm.disk.resize', s, { disk: 'scsi0', size: '32768M' }).kind).toBe('already_done');
    expect(assess('vm.disk.resize', s, { disk: 'scsi0', size: '16G' })).toEqual({ kind: 'blocked', reason: 'shrinking disks is not supported' });
    expect(assess('vm.disk.resize', s, { disk: 'scsi1', size: '16G' })).toEqual({ kind: 'blocked', reason: "disk 'scsi1' does not exist" });
    expect(assess('vm.disk.resize', s, { disk: 'ide2', size: '16G' })).toEqual({ kind: 'blocked', reason: "you can't resize a cdrom" });
    expect(assess('vm.disk.resize', s, { disk: 'scsi0', size: '40G' })).toEqual({ kind: 'proceed', note: 'grows scsi0 from 32G to 40G' });
    expect(assess('ct.disk.resize', ct({ config: { rootfs: 'local-lvm:vm-300-disk-0,size=8G' } }), { disk: 'rootfs', size: '4G' }).reason).toBe('unable to shrink disk size');
    expect(findAction('vm.disk.resize')!.params.safeParse({ disk: 'scsi0', size: '+8G' }).success).toBe(false);
    expect(findAction('ct.disk.resize')!.params.safeParse({ disk: 'scsi0', size: '8G' }).success).toBe(false);
  });

  it('delete: gone is done; protection, running, HA without purge refuse', () => {
    expect(assess('ct.delete', ct({ exists: false })).kind).toBe('already_done');
    expect(assess('ct.delete', ct()).reason).toBe('unable to destroy CT 300 - container is running');
    expect(assess('ct.delete', ct({ status: 'stopped', protection: true })).reason).toBe("can't remove CT 300 - protection mode enabled");
    expect(assess('vm.delete', state({ status: 'stopped', haManaged: true })).reason).toBe(
      'unable to remove VM 100 - used in HA resources and purge parameter not set.',
    );
    expect(assess('vm.delete', state({ status: 'stopped', haManaged: true }), { purge: true }).kind).toBe('proceed');
  });

  it('backup: the plan id in the notes recognises a backup this plan already made', () => {
    const storage = { storage: 'local', exists: true, acceptsBackups: true, backups: [{ volid: 'local:backup/a.vma.zst', ctime: 1, notes: `web ${backupMarker('plan_A')}` }] };
    const s = state({ backupStorage: storage });
    expect(assess('vm.backup', s, { storage: 'local' }, { planId: 'plan_A' })).toEqual({ kind: 'already_done', reason: 'backup local:backup/a.vma.zst was made by this plan' });
    expect(assess('vm.backup', s, { storage: 'local' }, { planId: 'plan_B' }).kind).toBe('proceed');
    expect(assess('vm.backup', s, { storage: 'local' }).kind).toBe('proceed');
    expect(assess('vm.backup', state({ backupStorage: { ...storage, acceptsBackups: false } }), { storage: 'local' }).reason).toBe(
      "can't use storage 'local' for backups - wrong content type",
    );
    const a = findAction('ct.backup')!;
    const wire = a.proxmoxParams(a.params.parse({ storage: 'local', notes: 'nightly' }) as never, ct(), { planId: 'plan_A' });
    expect(wire).toMatchObject({ vmid: '300', storage: 'local', mode: 'snapshot', remove: 0, 'notes-template': `nightly ${backupMarker('plan_A')}` });
  });
});
