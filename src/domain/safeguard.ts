/**
 * `safeguard: snapshot` (docs/policy.md, "Safeguards"): policy may ask that a risky action run only
 * after a snapshot of the guest, named after the plan. Pure: which actions it applies to, the
 * snapshot's name, and whether the guest's storage can take one (PVE's `has_feature('snapshot')`).
 */
import type { GuestKind } from './guest-state.js';
import type { NormalizedRequest } from './request.js';
import { diskKeys } from './actions/disks.js';

/** What a plan's decision carries when policy asked for a safeguard. */
export interface Safeguard {
  kind: 'snapshot';
  /** The snapshot's name on Proxmox: derived from the plan id (safeguardSnapshotName). */
  name: string;
}

/**
 * The actions a snapshot can take back: a config change, a disk grown, a rollback (which discards
 * the current state). Others are either reversible by their inverse or not helped by a snapshot
 * (delete removes the snapshots with the guest; power changes touch no disk).
 */
export const SAFEGUARDED_ACTIONS: ReadonlySet<string> = new Set([
  'vm.config.update',
  'ct.config.update',
  'vm.disk.resize',
  'ct.disk.resize',
  'vm.snapshot.rollback',
  'ct.snapshot.rollback',
]);

/** The snapshot action that takes the safeguard of a guest of this kind. */
export const safeguardAction = (kind: GuestKind): string => (kind === 'qemu' ? 'vm.snapshot.create' : 'ct.snapshot.create');

/** The dispatch journal's key for the safeguard of a plan: its own entry, never the action's. */
export const safeguardJournalId = (planId: string): string => `${planId}/safeguard`;
/** The plan a journal id belongs to: its own, or the one whose safeguard it is. */
export const planOfJournalId = (id: string): string => id.replace(/\/safeguard$/, '');

/**
 * The snapshot request that safeguards `request`: same environment and guest, the plan's snapshot
 * name, and a description saying why it exists (a human finding it in the GUI knows what it is for).
 */
export function safeguardRequest(request: NormalizedRequest, planId: string, name: string): NormalizedRequest {
  const kind: GuestKind = request.action.startsWith('ct.') ? 'lxc' : 'qemu';
  return {
    action: safeguardAction(kind),
    environment: request.environment,
    target: request.target,
    params: { snapname: name, description: `proxmox-agent safeguard before ${request.action} (${planId})`, ...(kind === 'qemu' ? { vmstate: false } : {}) },
    reason: `safeguard: snapshot before ${request.action} (${planId})`,
  };
}

const MAX_SNAPNAME = 40;

/**
 * A Proxmox snapshot name (pve-configid: a letter, then letters, digits, `_`, `-`) at most 40
 * characters, from the plan id: `plan_01J…` → `pa_01j…` (lowercase: easier to read in the GUI).
 * The same plan always gives the same name, so a retry finds the snapshot it took.
 */
export function safeguardSnapshotName(planId: string): string {
  const body = planId.replace(/^plan_/, '').toLowerCase().replace(/[^a-z0-9_-]/g, '_');
  return `pa_${body}`.slice(0, MAX_SNAPNAME);
}

/** A storage as GET /nodes/{node}/storage lists it. */
export interface StorageType {
  storage: string;
  type: string;
}

/** Whether the guest's storage can take a snapshot, and if not, which disk stops it. */
export interface SnapshotSupport {
  capable: boolean;
  /** Why not (the first disk that cannot), when not capable. */
  reason?: string;
}

/** Storage types whose volumes snapshot whatever their format (PVE storage plugins' volume_has_feature). */
const SNAPSHOTTING_TYPES = new Set(['lvmthin', 'zfspool', 'zfs', 'rbd', 'btrfs']);
/** File storages: only qcow2 images snapshot (raw and vmdk do not; containers' raw images never). */
const FILE_TYPES = new Set(['dir', 'nfs', 'cifs', 'glusterfs', 'cephfs']);

/**
 * PVE snapshots a guest only if every disk's volume can be snapshotted: lvmthin, zfspool, rbd and
 * btrfs always; dir/nfs/cifs only for qcow2 images; lvm (thick), iscsi and the rest never. CD-ROMs
 * and bind mounts (no storage volume) do not count. A storage the token cannot see is not known to
 * snapshot: fail closed.
 */
export function snapshotSupport(kind: GuestKind, config: Record<string, string>, storages: readonly StorageType[]): SnapshotSupport {
  for (const disk of diskKeys(kind, config)) {
    const colon = disk.volume.indexOf(':');
    if (colon <= 0) continue; // a bind mount or `none`: no storage volume
    const storage = disk.volume.slice(0, colon);
    const type = storages.find((s) => s.storage === storage)?.type;
    if (type === undefined) return { capable: false, reason: `${disk.key} is on storage '${storage}', which cannot be read to check that it takes snapshots` };
    if (SNAPSHOTTING_TYPES.has(type)) continue;
    const format = formatOf(config[disk.key] ?? '', disk.volume);
    if (FILE_TYPES.has(type) && kind === 'qemu' && format === 'qcow2') continue;
    const what = FILE_TYPES.has(type) ? `a ${format ?? 'raw'} image on ${type} storage '${storage}' (only qcow2 images on file storage take snapshots)` : `on ${type} storage '${storage}', which cannot take snapshots`;
    return { capable: false, reason: `${disk.key} is ${what}` };
  }
  return { capable: true };
}

/** A disk's format: its `format=` option, else the volume's file extension. */
function formatOf(value: string, volume: string): string | undefined {
  const opt = /(?:^|,)format=([a-z0-9]+)/.exec(value)?.[1];
  return opt ?? /\.([a-z0-9]+)$/.exec(volume)?.[1];
}
