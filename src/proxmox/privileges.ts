// Proxmox VE privilege names per major release, and the privileges each catalog action needs.
//
// PVE 9 removed `VM.Monitor` (QEMU monitor access went to Sys.Audit / root) and added the
// `VM.GuestAgent.*` privileges and `VM.Replicate` (pve-access-control 9.0, the pve8to9 notes). A
// role naming a privilege its release does not know is refused by `pveum role add`, so commands we
// print must only name privileges of the release the cluster runs. The PVE 9 list is the one the
// published API schema (apidata.js, pve-docs 9.1) names; PVE 8 is that list with the 9.0 changes undone.

export type PveMajor = 8 | 9;

const COMMON = [
  'Datastore.Allocate',
  'Datastore.AllocateSpace',
  'Datastore.AllocateTemplate',
  'Datastore.Audit',
  'Group.Allocate',
  'Mapping.Audit',
  'Mapping.Modify',
  'Mapping.Use',
  'Permissions.Modify',
  'Pool.Allocate',
  'Pool.Audit',
  'Realm.Allocate',
  'Realm.AllocateUser',
  'SDN.Allocate',
  'SDN.Audit',
  'SDN.Use',
  'Sys.AccessNetwork',
  'Sys.Audit',
  'Sys.Console',
  'Sys.Incoming',
  'Sys.Modify',
  'Sys.PowerMgmt',
  'Sys.Syslog',
  'User.Modify',
  'VM.Allocate',
  'VM.Audit',
  'VM.Backup',
  'VM.Clone',
  'VM.Config.CDROM',
  'VM.Config.CPU',
  'VM.Config.Cloudinit',
  'VM.Config.Disk',
  'VM.Config.HWType',
  'VM.Config.Memory',
  'VM.Config.Network',
  'VM.Config.Options',
  'VM.Console',
  'VM.Migrate',
  'VM.PowerMgmt',
  'VM.Snapshot',
  'VM.Snapshot.Rollback',
] as const;

export const PVE_PRIVILEGES: Readonly<Record<PveMajor, readonly string[]>> = {
  8: [...COMMON, 'VM.Monitor'].sort(),
  9: [
    ...COMMON,
    'VM.GuestAgent.Audit',
    'VM.GuestAgent.FileRead',
    'VM.GuestAgent.FileSystemMgmt',
    'VM.GuestAgent.FileWrite',
    'VM.GuestAgent.Unrestricted',
    'VM.Replicate',
  ].sort(),
};

/**
 * The privileges of each catalog action's one mutating call, as scripts/gen-proxmox-privileges.ts
 * derives them from the published API schema (docs/security.md shows the same table).
 * test/proxmox/privileges.test.ts re-derives them from apidata.js and fails when they differ.
 */
export const ACTION_PRIVILEGES: Readonly<Record<string, readonly string[]>> = {
  'vm.start': ['VM.PowerMgmt'],
  'vm.stop': ['VM.PowerMgmt'],
  'vm.shutdown': ['VM.PowerMgmt'],
  'vm.reboot': ['VM.PowerMgmt'],
  'vm.suspend': ['Datastore.AllocateSpace', 'VM.Config.Disk', 'VM.PowerMgmt'],
  'vm.resume': ['VM.PowerMgmt'],
  'vm.reset': ['VM.PowerMgmt'],
  'vm.snapshot.create': ['VM.Snapshot'],
  'vm.snapshot.rollback': ['VM.Snapshot.Rollback'],
  'vm.snapshot.delete': ['VM.Snapshot'],
  'vm.clone': ['Datastore.AllocateSpace', 'SDN.Use', 'VM.Allocate', 'VM.Clone'],
  'vm.migrate': ['VM.Migrate'],
  'vm.config.update': ['VM.Config.CPU', 'VM.Config.Memory', 'VM.Config.Options'],
  'vm.disk.resize': ['VM.Config.Disk'],
  'vm.delete': ['VM.Allocate'],
  'vm.backup': ['Datastore.AllocateSpace', 'VM.Backup'],
  'ct.start': ['VM.PowerMgmt'],
  'ct.stop': ['VM.PowerMgmt'],
  'ct.shutdown': ['VM.PowerMgmt'],
  'ct.reboot': ['VM.PowerMgmt'],
  'ct.suspend': ['VM.PowerMgmt'],
  'ct.resume': ['VM.PowerMgmt'],
  'ct.snapshot.create': ['VM.Snapshot'],
  'ct.snapshot.rollback': ['VM.Snapshot.Rollback'],
  'ct.snapshot.delete': ['VM.Snapshot'],
  'ct.clone': ['Datastore.AllocateSpace', 'SDN.Use', 'VM.Allocate', 'VM.Clone'],
  'ct.migrate': ['VM.Migrate'],
  'ct.config.update': ['VM.Config.CPU', 'VM.Config.Memory', 'VM.Config.Options'],
  'ct.disk.resize': ['VM.Config.Disk'],
  'ct.delete': ['VM.Allocate'],
  'ct.backup': ['Datastore.AllocateSpace', 'VM.Backup'],
};

/**
 * Privileges the reads need whatever actions are enabled: every preflight reads the guest's status
 * and config (`VM.Audit`); node status (`Sys.Audit`) and storage contents (`Datastore.Audit`) only
 * some of them.
 */
export const READ_PRIVILEGES = { required: ['VM.Audit'], useful: ['Sys.Audit', 'Datastore.Audit'] } as const;

/** The ACL path a privilege is granted on for this project's calls: guests, storages, SDN, nodes. */
export function aclPathOf(privilege: string): '/vms' | '/storage' | '/sdn' | '/nodes' | '/' {
  if (privilege.startsWith('VM.')) return '/vms';
  if (privilege.startsWith('Datastore.')) return '/storage';
  if (privilege.startsWith('SDN.')) return '/sdn';
  if (privilege.startsWith('Sys.')) return '/nodes';
  return '/';
}
