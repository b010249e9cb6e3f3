import { describe, expect, it } from 'vitest';
import { diagnose, type DoctorFacts } from '../../src/doctor/compare.js';
import { PVE_PRIVILEGES } from '../../src/proxmox/privileges.js';
import type { EffectivePermissions } from '../../src/proxmox/types.js';

const TOKEN = 'proxmox-agent@pve!agent';
const V9 = { version: '9.1.2', release: '9.1', repoid: '5b7ed8c5' };
const V8 = { version: '8.4.1', release: '8.4', repoid: '2a5fa54a' };
const on = (privs: readonly string[]) => Object.fromEntries(privs.map((p) => [p, 1 as const]));
const everywhere = (privs: readonly string[]): EffectivePermissions =>
  Object.fromEntries(['/', '/nodes', '/sdn', '/storage', '/vms'].map((p) => [p, on(privs)]));

const facts = (over: Partial<DoctorFacts> = {}): DoctorFacts => ({
  environment: 'lab',
  tokenId: TOKEN,
  simulated: false,
  version: V9,
  tls: { kind: 'https', fingerprint: 'AA:BB' },
  permissions: everywhere(['VM.Audit', 'VM.PowerMgmt', 'Sys.Audit', 'Datastore.Audit']),
  userPermissions: 'forbidden',
  allowedActions: ['vm.start', 'vm.stop'],
  policyNodes: [],
  clusterNodes: ['pve1'],
  ...over,
});
const check = (r: ReturnType<typeof diagnose>, id: string) => r.checks.find((c) => c.id === id);

describe('doctor: comparing the token’s permissions with what the allowed actions need', () => {
  it('passes a token that holds exactly what the allowed actions and reads need', () => {
    const r = diagnose(facts());
    expect(r.ok).toBe(true);
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
    expect(check(r, 'privileges:/vms')).toMatchObject({ ok: true, detail: 'VM.Audit, VM.PowerMgmt on /vms' });
    expect(r.pve).toEqual({ version: '9.1.2', release: '9.1', major: 9 });
  });

  it('a missing privilege an allowed action needs is a blocker with the exact pveum commands', () => {
    const r = diagnose(facts({ allowedActions: ['vm.start', 'vm.snapshot.create'] }));
    expect(r.ok).toBe(false);
    const c = check(r, 'privileges:/vms')!;
    expect(c).toMatchObject({ ok: false, severity: 'blocker' });
    expect(c.detail).toContain('VM.Snapshot missing (needed by vm.snapshot.create)');
    expect(c.fix).toEqual([
      "pveum role add ProxmoxAgent-vms --privs 'VM.Audit,VM.PowerMgmt,VM.Snapshot'",
      "pveum acl modify /vms --users 'proxmox-agent@pve' --roles ProxmoxAgent-vms",
      "pveum acl modify /vms --tokens 'proxmox-agent@pve!agent' --roles ProxmoxAgent-vms",
    ]);
  });

  it('does not ask for what only denied actions need: allowed actions come from the policy', () => {
    expect(diagnose(facts({ allowedActions: ['vm.start'] })).ok).toBe(true);
    expect(diagnose(facts({ allowedActions: ['vm.start', 'vm.delete'] })).ok).toBe(false);
  });

  it('missing read-only privileges (Sys.Audit, Datastore.Audit) are warnings, not blockers', () => {
    const r = diagnose(facts({ permissions: everywhere(['VM.Audit', 'VM.PowerMgmt']) }));
    expect(r.ok).toBe(true);
    expect(check(r, 'privileges:/nodes')).toMatchObject({ ok: false, severity: 'warning' });
    expect(check(r, 'privileges:/storage')).toMatchObject({ ok: false, severity: 'warning' });
  });

  it('guest privileges granted only on some guests or pools are a warning naming where', () => {
    const perms = { ...everywhere(['VM.Audit', 'Sys.Audit', 'Datastore.Audit']), '/vms/100': on(['VM.Audit', 'VM.PowerMgmt']) };
    const c = check(diagnose(facts({ permissions: perms })), 'privileges:/vms')!;
    expect(c).toMatchObject({ ok: false, severity: 'warning' });
    expect(c.detail).toContain('VM.PowerMgmt (only on /vms/100)');
  });

  it('storage privileges granted on one storage are enough (backups and clones name their storage)', () => {
    const perms = { ...everywhere(['VM.Audit', 'VM.Backup', 'Sys.Audit']), '/storage/local': on(['Datastore.Audit', 'Datastore.AllocateSpace']) };
    const r = diagnose(facts({ permissions: perms, allowedActions: ['vm.backup'], backupStorages: ['local'] }));
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('detects privilege separation from the user’s permissions, and then grants only to the token when the user has it', () => {
    const user = everywhere(['VM.Audit', 'VM.PowerMgmt', 'VM.Snapshot', 'Sys.Audit', 'Datastore.Audit']);
    const r = diagnose(facts({ userPermissions: user, allowedActions: ['vm.snapshot.create'] }));
    expect(r.privsep).toBe('on');
    expect(check(r, 'privileges:/vms')!.fix).toEqual([
      "pveum role add ProxmoxAgent-vms --privs 'VM.Audit,VM.Snapshot'",
      "pveum acl modify /vms --tokens 'proxmox-agent@pve!agent' --roles ProxmoxAgent-vms",
    ]);
    expect(diagnose(facts({ userPermissions: facts().permissions as EffectivePermissions })).privsep).toBe('off-or-same');
    expect(diagnose(facts()).privsep).toBe('unknown');
  });

  it('names the powerful privileges of the detected release: VM.Monitor on PVE 8, VM.GuestAgent.Unrestricted on PVE 9', () => {
    const admin8 = diagnose(facts({ version: V8, permissions: everywhere(PVE_PRIVILEGES[8]) }));
    expect(admin8.ok).toBe(true);
    expect(check(admin8, 'least-privilege')).toMatchObject({ ok: false, severity: 'warning' });
    expect(check(admin8, 'least-privilege')!.detail).toContain('VM.Monitor');
    expect(check(admin8, 'version')!.detail).toContain('PVE 8');
    const admin9 = check(diagnose(facts({ permissions: everywhere(PVE_PRIVILEGES[9]) })), 'least-privilege')!;
    expect(admin9.detail).toContain('VM.GuestAgent.Unrestricted');
    expect(admin9.detail).not.toContain('VM.Monitor');
  });

  it('an unreachable API is one blocker and nothing else is judged', () => {
    const r = diagnose(facts({ version: { error: 'connect ECONNREFUSED' } }));
    expect(r.ok).toBe(false);
    expect(r.checks.map((c) => c.id)).toEqual(['tls', 'reach']);
  });

  it('TLS: shows the fingerprint and whether it is pinned; a different pinned one is a blocker', () => {
    expect(check(diagnose(facts({ tls: { kind: 'https', fingerprint: 'AA:BB', pinned: 'AA:BB' } })), 'tls')).toMatchObject({ ok: true, detail: 'certificate SHA-256 AA:BB, pinned' });
    const unpinned = check(diagnose(facts()), 'tls')!;
    expect(unpinned).toMatchObject({ ok: true, severity: 'info' });
    expect(unpinned.fix).toEqual(['to pin it: environments.lab.proxmox.tls.fingerprintSha256: "AA:BB"']);
    expect(check(diagnose(facts({ tls: { kind: 'https', fingerprint: 'AA:BB', pinned: 'CC:DD' } })), 'tls')).toMatchObject({ ok: false, severity: 'blocker' });
    expect(check(diagnose(facts({ tls: { kind: 'http' } })), 'tls')).toMatchObject({ ok: false, severity: 'warning' });
    expect(check(diagnose(facts({ tls: { kind: 'http' }, simulated: true })), 'tls')).toMatchObject({ ok: true, severity: 'info' });
  });

  it('policy nodes missing from the cluster: a warning when the rule names this environment', () => {
    const r = diagnose(facts({ policyNodes: [{ node: 'pve9', rule: 'no-pve9', scoped: true }] }));
    expect(check(r, 'policy-nodes')).toMatchObject({ ok: false, severity: 'warning' });
    expect(check(diagnose(facts({ policyNodes: [{ node: 'pve9', rule: 'x', scoped: false }] })), 'policy-nodes')).toMatchObject({ severity: 'info' });
    expect(check(diagnose(facts({ policyNodes: [{ node: 'pve1', rule: 'x', scoped: true }] })), 'policy-nodes')).toMatchObject({ ok: true });
  });

  it('backups allowed but no backup storage visible is a warning', () => {
    const perms = everywhere(['VM.Audit', 'VM.Backup', 'Sys.Audit', 'Datastore.Audit', 'Datastore.AllocateSpace']);
    expect(check(diagnose(facts({ permissions: perms, allowedActions: ['vm.backup'], backupStorages: [] })), 'backup-storage')).toMatchObject({ ok: false, severity: 'warning' });
    expect(check(diagnose(facts({ permissions: perms, allowedActions: ['vm.start'] })), 'backup-storage')).toBeUndefined();
  });
});
