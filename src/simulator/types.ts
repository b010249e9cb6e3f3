import type { StorageType } from './model-types.js';
/** Public seed and option types of the simulator (re-exported from index.ts). */

export interface SimGuestSeed {
  vmid: number;
  type: 'qemu' | 'lxc';
  node: string;
  name: string;
  status: 'running' | 'stopped';
  tags?: string[];
  pool?: string;
  protection?: boolean;
  haManaged?: boolean;
  cores?: number;
  /** MiB */
  memory?: number;
  /** e.g. { scsi0: 'local-lvm:vm-100-disk-0,size=32G' } or { rootfs: 'local-lvm:vm-300-disk-0,size=8G' } */
  disks?: Record<string, string>;
  snapshots?: string[];
  description?: string;
}

export interface SimApiTokenSeed {
  /** 'user@realm!name' */
  tokenId: string;
  secret: string;
  /**
   * Optional privilege list (e.g. ['VM.Audit', 'VM.PowerMgmt']). When present, every route whose
   * apidata permission check names other privileges answers 403 like the real server. When absent,
   * the token may do everything (a "full" token of an admin user).
   */
  privileges?: string[];
  /**
   * Privilege separation (Proxmox's default for new tokens is 1): the token's effective privileges
   * are the intersection of its user's ACLs (`userAcl`) and its own (`acl`). Default false: the token
   * has its user's privileges.
   */
  privsep?: boolean;
  /** The token's own ACL entries (they count only with `privsep`). Default: `privileges` on `/`, else everything. */
  acl?: SimAclEntry[];
  /** The ACL entries of the token's user (directly or through groups). Default: `privileges` on `/`, else everything (an administrator). */
  userAcl?: SimAclEntry[];
}

/** One ACL entry: privileges (a role's, spelled out) on a path such as `/`, `/vms`, `/vms/100`, `/storage/local`. */
export interface SimAclEntry {
  path: string;
  privileges: string[];
  /** Also below the path (default true, as `pveum acl modify --propagate`). */
  propagate?: boolean;
}

export interface SimClusterSeed {
  name: string;
  nodes: string[];
  guests: SimGuestSeed[];
  /**
   * default ['local', 'local-lvm']. A name alone: its type follows from it (lvm/zfs/ceph/rbd in the
   * name: lvmthin, else dir); `{storage, type}` gives the type (e.g. thick `lvm`, which cannot snapshot).
   */
  storages?: (string | { storage: string; type: StorageType })[];
  apiTokens: SimApiTokenSeed[];
  /**
   * Resource pools of user.cfg. A guest's `pool` adds its pool too; this lists pools that exist
   * without (or before) members. /cluster/resources shows each as a `type: pool` entry.
   */
  pools?: string[];
}

export interface SimulatorOptions {
  cluster: SimClusterSeed;
  /** default 127.0.0.1; the simulator only ever binds loopback addresses */
  host?: string;
  /** default 0 = random free port */
  port?: number;
  /** default 300; how long a task runs before it stops */
  taskDurationMs?: number;
  /** default 3000 like the real server; tests set 0 */
  authFailureDelayMs?: number;
  /** emulate servers before libpve-http-server-perl 5.2 (no `message` in error bodies) */
  legacyErrors?: boolean;
  /**
   * How long after an HA `hastart`/`hastop`/`hamigrate` task ends OK the guest really changes state
   * (ha-manager acts asynchronously). Default: taskDurationMs.
   */
  haDelayMs?: number;
  /** Seed of the fault-injection RNG (default 1) so probabilistic faults are reproducible. */
  faultSeed?: number;
  /**
   * Which Proxmox VE major release to emulate (default 9: the apidata.js the schemas come from is
   * pve-docs 9.1). It changes `GET /version` and the privilege names (PVE 8 has `VM.Monitor`, PVE 9
   * `VM.GuestAgent.*` and `VM.Replicate`): an administrator token holds that release's privileges,
   * and a seed naming a privilege the release does not know is refused.
   */
  pve?: 8 | 9;
}
