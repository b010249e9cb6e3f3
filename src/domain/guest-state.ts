/**
 * What proxmox-agent knows about a guest at one moment: read by the preflight at plan time,
 * read again at apply (staleness) and before every dispatch (exactly-once).
 */
export type GuestKind = 'qemu' | 'lxc';

export interface GuestState {
  exists: boolean;
  kind: GuestKind;
  node: string;
  vmid: number;
  name?: string;
  status?: 'running' | 'stopped';
  /** QEMU only: a paused VM is `status: running` with `qmpstatus: paused`. */
  qmpstatus?: string;
  lock?: string;
  tags: string[];
  pool?: string;
  haManaged: boolean;
  template: boolean;
  protection: boolean;
  /** SHA-1 of the guest config file; changes on every config write. */
  digest?: string;
  /**
   * The config keys actions compare (sizing, naming, flags, disks), as Proxmox stores them; read
   * only for actions that need the config. Other keys stay out of plans (cloud-init secrets...).
   */
  config?: Record<string, string>;
  snapshots: string[];
  /** Another guest the action depends on (clone's new id), as /cluster/resources lists it. */
  peer?: PeerGuest;
  /** The backup target storage and this guest's backups in it (backup actions only). */
  backupStorage?: BackupStorage;
  /** Whether the guest's disks can be snapshotted: read only when policy asks for `safeguard: snapshot`. */
  snapshotSupport?: { capable: boolean; reason?: string };
}

export interface PeerGuest {
  vmid: number;
  exists: boolean;
  kind?: GuestKind;
  node?: string;
  name?: string;
  lock?: string;
}

export interface BackupStorage {
  storage: string;
  exists: boolean;
  /** Whether the storage's content types include `backup`. */
  acceptsBackups: boolean;
  backups: { volid: string; ctime: number; notes?: string }[];
}

/** The parts of a guest's state that, if changed between plan and apply, make the plan stale. */
export interface StateFingerprint {
  exists: boolean;
  status?: string;
  lock?: string;
  digest?: string;
}

export function fingerprint(state: GuestState): StateFingerprint {
  return { exists: state.exists, status: state.status, lock: state.lock, digest: state.digest };
}
