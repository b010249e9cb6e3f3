/**
 * The shapes of one simulated cluster's state: guests as stored (config file contents, snapshots,
 * lock, power and HA state), storages, backup volumes, HA groups and rules, and the detached guest
 * view tests read.
 */

export type GuestType = 'qemu' | 'lxc';

export interface SnapshotState {
  name: string;
  description: string;
  snaptime: number;
  parent?: string;
  vmstate: boolean;
  /** set while the snapshot task runs, like the real `snapstate: prepare|delete` */
  snapstate?: 'prepare' | 'delete';
  config: Record<string, string>;
  /** The changes pending a restart when it was taken: __snapshot_copy_config copies `pending` too. */
  pending?: { set: Record<string, string>; delete: string[] };
}

/**
 * One guest as the simulator stores it: its config file, snapshots, lock, power and HA state. (What
 * a client reads back from Proxmox is another thing, the domain's GuestState.)
 */
export interface StoredGuest {
  vmid: number;
  type: GuestType;
  node: string;
  status: 'running' | 'stopped';
  /** QEMU `qmpstatus: paused` (status stays `running`). */
  paused: boolean;
  /**
   * The `[PENDING]` section: changes written while the guest ran that it could not take live. They
   * apply at the next start (or reboot); `delete` lists keys whose removal waits the same way.
   */
  pending?: { set: Record<string, string>; delete: string[] };
  /** LXC: `lxc-checkpoint -s` left images in /var/lib/vz/dump that resume (`-r`) restores. */
  checkpointed?: boolean;
  config: Record<string, string>;
  lock?: string;
  parent?: string;
  snapshots: SnapshotState[];
  haManaged: boolean;
  /** the state ha-manager was asked for (`hastate` in /cluster/resources) */
  haState?: 'started' | 'stopped';
  /**
   * A service state the CRM reports that no client request causes (manager_status `service_status`):
   * `error` (start/relocation failed), `fence` (its node is being fenced), `freeze` (its node shuts
   * down or HA is disarmed). Set by the control API; while set, ha-manager does not act on the guest.
   */
  haCrmOverride?: 'error' | 'fence' | 'freeze';
  /** The node an accepted HA migration moves the guest to, until the CRM has moved it (`migrate`/`relocate`). */
  haMovingTo?: string;
  pool?: string;
  startedAt?: number;
  pid?: number;
}

export interface BackupVolume {
  volid: string;
  storage: string;
  node: string;
  vmid: number;
  guestType: GuestType;
  ctime: number;
  size: number;
  format: string;
  notes?: string;
  protected?: boolean;
}

/** Storage plugin types the simulator models (PVE::Storage::*Plugin). */
export type StorageType = 'dir' | 'nfs' | 'cifs' | 'lvm' | 'lvmthin' | 'zfspool' | 'rbd' | 'btrfs';

export interface StorageInfo {
  storage: string;
  plugintype: StorageType;
  content: string[];
}

/** What tests read: a detached copy of one guest. */
export interface GuestView {
  vmid: number;
  type: GuestType;
  node: string;
  name: string;
  status: 'running' | 'stopped';
  qmpstatus?: 'running' | 'paused' | 'stopped';
  lock?: string;
  haManaged: boolean;
  haState?: 'started' | 'stopped';
  /** The service state the CRM reports (`crm_state` in /cluster/ha/status/current). */
  haCrmState?: HaCrmState;
  config: Record<string, string>;
  snapshots: string[];
  digest: string;
}

/** The service states of ha-manager's Manager.pm the simulator produces. */
export type HaCrmState = 'started' | 'stopped' | 'error' | 'fence' | 'freeze' | 'migrate' | 'relocate';

/** An HA group of PVE 8 (`/etc/pve/ha/groups.cfg`). */
export interface HaGroup {
  group: string;
  /** `node[:pri],...` as given */
  nodes: string;
  restricted?: boolean;
  nofailback?: boolean;
  comment?: string;
}

/** An HA rule of PVE 9 (`/etc/pve/ha/rules.cfg`). */
export interface HaRule {
  rule: string;
  type: 'node-affinity' | 'resource-affinity';
  /** `vm:100,ct:300` */
  resources: string;
  nodes?: string;
  strict?: boolean;
  affinity?: 'positive' | 'negative';
  comment?: string;
  disable?: boolean;
  order: number;
}
