/**
 * The in-memory state of one simulated cluster: nodes, storages, guests (config file contents,
 * snapshots, lock, power state, HA flag), backup volumes and tasks.
 *
 * Guest configs are kept as the raw `key: value` strings of /etc/pve/.../<vmid>.conf so that the
 * digest is what the real server computes: a SHA-1 over the serialized file. Anything that rewrites
 * the file (config writes, lock changes, snapshots) therefore changes the digest.
 */
import { createHash } from 'node:crypto';
import { die } from './errors.js';
import type { TaskManager, TaskView } from './tasks.js';
import type { SimClusterSeed, SimGuestSeed } from './types.js';

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

/**
 * Whether a volume can be snapshotted (the storage plugins' volume_has_feature('snapshot')):
 * lvmthin, zfspool, rbd and btrfs always; file storages only for qcow2 images; lvm (thick) never.
 */
export function volumeSnapshots(storage: StorageInfo | undefined, volid: string): boolean {
  if (!storage) return false;
  switch (storage.plugintype) {
    case 'lvmthin':
    case 'zfspool':
    case 'rbd':
    case 'btrfs':
      return true;
    case 'dir':
    case 'nfs':
    case 'cifs':
      return volid.endsWith('.qcow2');
    default:
      return false;
  }
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

/** The HA service id of a guest (`vm:100`, `ct:300`). */
export function haSid(g: { type: GuestType; vmid: number }): string {
  return `${g.type === 'qemu' ? 'vm' : 'ct'}:${g.vmid}`;
}

/** What manager_status says of an HA guest: an injected state, a move in progress, else the requested state. */
export function haCrmState(g: StoredGuest): HaCrmState {
  if (g.haCrmOverride) return g.haCrmOverride;
  if (g.haMovingTo) return g.type === 'qemu' ? 'migrate' : 'relocate';
  return g.haState ?? 'started';
}

const GiB = 1024 ** 3;

/** PVE::JSONSchema::parse_size */
export function parseSize(value: string): number | undefined {
  const m = /^(\d+(\.\d+)?)([KMGT])?$/.exec(value);
  if (!m) return undefined;
  const mult = { K: 1024, M: 1024 ** 2, G: GiB, T: 1024 ** 4 }[m[3] as 'K' | 'M' | 'G' | 'T'] ?? 1;
  return Math.floor(Number(m[1]) * mult);
}

/** PVE::JSONSchema::format_size */
export function formatSize(size: number): string {
  let v = Math.floor(size);
  for (const unit of ['', 'K', 'M', 'G']) {
    if (v % 1024 !== 0 || v === 0) return `${v}${unit}`;
    v /= 1024;
  }
  return `${v}T`;
}

/** Stable pseudo-random hex derived from a string, so seeded MACs/UUIDs are reproducible. */
function hashHex(input: string, len: number): string {
  return createHash('sha1').update(input).digest('hex').slice(0, len);
}
function uuidFrom(input: string): string {
  const h = hashHex(input, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
function macFrom(input: string): string {
  const h = hashHex(input, 6).toUpperCase();
  return `BC:24:11:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

export const DISK_KEY_RE = /^(ide|sata|scsi|virtio|efidisk|tpmstate|unused|mp)\d+$|^rootfs$/;

export function isDiskKey(key: string): boolean {
  return DISK_KEY_RE.test(key);
}

/** `local-lvm:vm-100-disk-0,size=32G` → volid and size in bytes. */
export function parseDisk(value: string): { volid: string; size: number; media?: string } {
  const parts = value.split(',');
  const first = parts[0] ?? '';
  const volid = first.includes('=') ? (first.split('=')[1] ?? '') : first;
  let size = 0;
  let media: string | undefined;
  for (const p of parts.slice(1)) {
    const [k, v] = p.split('=');
    if (k === 'size' && v) size = parseSize(v) ?? 0;
    if (k === 'media' && v) media = v;
  }
  return media ? { volid, size, media } : { volid, size };
}

export function withDiskSize(value: string, size: number): string {
  const parts = value.split(',').filter((p) => !p.startsWith('size='));
  parts.push(`size=${formatSize(size)}`);
  return parts.join(',');
}

function seedConfig(seed: SimGuestSeed, now: number): Record<string, string> {
  const cores = String(seed.cores ?? (seed.type === 'qemu' ? 2 : 1));
  const memory = String(seed.memory ?? (seed.type === 'qemu' ? 2048 : 512));
  const conf: Record<string, string> = {};
  if (seed.type === 'qemu') {
    const disks = seed.disks ?? { scsi0: `local-lvm:vm-${seed.vmid}-disk-0,iothread=1,size=32G` };
    Object.assign(conf, {
      boot: `order=${Object.keys(disks)[0] ?? 'scsi0'};net0`,
      cores,
      cpu: 'x86-64-v2-AES',
      memory,
      meta: `creation-qemu=9.2.0,ctime=${Math.floor(now / 1000)}`,
      name: seed.name,
      net0: `virtio=${macFrom(`${seed.vmid}/net0`)},bridge=vmbr0,firewall=1`,
      numa: '0',
      ostype: 'l26',
      scsihw: 'virtio-scsi-single',
      smbios1: `uuid=${uuidFrom(`${seed.vmid}/smbios`)}`,
      sockets: '1',
      vmgenid: uuidFrom(`${seed.vmid}/vmgenid`),
      ...disks,
    });
  } else {
    const disks = seed.disks ?? { rootfs: `local-lvm:vm-${seed.vmid}-disk-0,size=8G` };
    Object.assign(conf, {
      arch: 'amd64',
      cores,
      hostname: seed.name,
      memory,
      net0: `name=eth0,bridge=vmbr0,firewall=1,hwaddr=${macFrom(`${seed.vmid}/net0`)},ip=dhcp,type=veth`,
      ostype: 'debian',
      swap: '512',
      unprivileged: '1',
      ...disks,
    });
  }
  if (seed.tags?.length) conf.tags = seed.tags.join(';');
  if (seed.description) conf.description = seed.description;
  if (seed.protection) conf.protection = '1';
  conf.onboot = '1';
  return conf;
}

function storageInfo(seed: string | { storage: string; type: StorageType }): StorageInfo {
  if (typeof seed !== 'string') {
    const files = ['dir', 'nfs', 'cifs', 'btrfs'].includes(seed.type);
    return { storage: seed.storage, plugintype: seed.type, content: files ? ['backup', 'images', 'iso', 'rootdir', 'snippets', 'vztmpl'] : ['images', 'rootdir'] };
  }
  const name = seed;
  // Block storages hold disk images only; directory storages also take backups (like `local`).
  return /lvm|zfs|ceph|rbd/i.test(name)
    ? { storage: name, plugintype: 'lvmthin', content: ['images', 'rootdir'] }
    : { storage: name, plugintype: 'dir', content: ['backup', 'images', 'iso', 'rootdir', 'snippets', 'vztmpl'] };
}

export class SimulatorModel {
  readonly clusterName: string;
  readonly nodes: string[];
  readonly storages: StorageInfo[];
  readonly backups: BackupVolume[] = [];
  /** user.cfg pools, sorted: the seed's list plus every pool a seeded guest belongs to */
  readonly pools: string[];
  readonly bootTime = Date.now();
  /** PVE 8 HA groups and PVE 9 HA rules, by id (empty at start: the seed has none). */
  readonly haGroups = new Map<string, HaGroup>();
  readonly haRules = new Map<string, HaRule>();
  private readonly guestMap = new Map<number, StoredGuest>();
  private pidCounter = 0x000a1b2c;
  /** Wired by the simulator after construction (tasks need the model and vice versa). */
  taskManager!: TaskManager;

  constructor(seed: SimClusterSeed) {
    if (seed.nodes.length === 0) throw new Error('a simulated cluster needs at least one node');
    this.clusterName = seed.name;
    this.nodes = [...seed.nodes];
    this.storages = (seed.storages ?? ['local', 'local-lvm']).map(storageInfo);
    this.pools = [...new Set([...(seed.pools ?? []), ...seed.guests.flatMap((g) => (g.pool ? [g.pool] : []))])].sort();
    const now = Date.now();
    for (const g of seed.guests) {
      if (this.guestMap.has(g.vmid)) throw new Error(`duplicate vmid ${g.vmid} in seed`);
      if (!this.nodes.includes(g.node)) throw new Error(`guest ${g.vmid} is on unknown node ${g.node}`);
      const state: StoredGuest = {
        vmid: g.vmid,
        type: g.type,
        node: g.node,
        status: g.status,
        paused: false,
        config: seedConfig(g, now),
        snapshots: [],
        haManaged: Boolean(g.haManaged),
        ...(g.haManaged ? { haState: g.status === 'running' ? 'started' as const : 'stopped' as const } : {}),
        ...(g.pool ? { pool: g.pool } : {}),
      };
      for (const [i, name] of (g.snapshots ?? []).entries()) {
        state.snapshots.push({
          name,
          description: '',
          snaptime: Math.floor(now / 1000) - 3600 * ((g.snapshots?.length ?? 0) - i),
          ...(state.parent ? { parent: state.parent } : {}),
          vmstate: false,
          config: { ...state.config },
        });
        state.parent = name;
      }
      if (g.status === 'running') this.markRunning(state);
      this.guestMap.set(g.vmid, state);
    }
  }

  // ---- read access for tests --------------------------------------------------------------------

  guests(): GuestView[] {
    return [...this.guestMap.values()].sort((a, b) => a.vmid - b.vmid).map((g) => this.view(g));
  }

  guest(vmid: number): GuestView | undefined {
    const g = this.guestMap.get(vmid);
    return g ? this.view(g) : undefined;
  }

  tasks(): TaskView[] {
    return this.taskManager.list();
  }

  task(upid: string): TaskView | undefined {
    return this.taskManager.get(upid);
  }

  snapshots(vmid: number): string[] {
    return this.guestMap.get(vmid)?.snapshots.map((s) => s.name) ?? [];
  }

  backupVolumes(): BackupVolume[] {
    return this.backups.map((b) => ({ ...b }));
  }

  private view(g: StoredGuest): GuestView {
    return {
      vmid: g.vmid,
      type: g.type,
      node: g.node,
      name: guestName(g),
      status: g.status,
      ...(g.type === 'qemu' ? { qmpstatus: qmpStatus(g) } : {}),
      ...(g.lock ? { lock: g.lock } : {}),
      haManaged: g.haManaged,
      ...(g.haState ? { haState: g.haState } : {}),
      ...(g.haManaged ? { haCrmState: haCrmState(g) } : {}),
      config: { ...g.config },
      snapshots: g.snapshots.map((s) => s.name),
      digest: this.digest(g),
    };
  }

  // ---- internal state access --------------------------------------------------------------------

  allGuests(): StoredGuest[] {
    return [...this.guestMap.values()].sort((a, b) => a.vmid - b.vmid);
  }

  findGuest(vmid: number): StoredGuest | undefined {
    return this.guestMap.get(vmid);
  }

  /** Loads a guest the way `load_config` does: only from this node's directory. */
  requireGuest(node: string, type: GuestType, vmid: number): StoredGuest {
    const g = this.guestMap.get(vmid);
    if (!g || g.node !== node || g.type !== type) {
      die(`Configuration file 'nodes/${node}/${type === 'qemu' ? 'qemu-server' : 'lxc'}/${vmid}.conf' does not exist`);
    }
    return g;
  }

  addGuest(g: StoredGuest): void {
    this.guestMap.set(g.vmid, g);
  }

  /**
   * Moves a guest to another node behind every client's back, as PVE 9's load balancer or HA does
   * (control API `POST /_sim/guests/{vmid}/move`): no task, no mutation-log entry, the config file
   * unchanged (so its digest too). A locked guest is refused, as a real migration of it would be.
   */
  moveGuest(vmid: number, node: string): StoredGuest {
    const g = this.guestMap.get(vmid);
    if (!g) throw new Error(`no guest ${vmid}`);
    if (!this.nodes.includes(node)) throw new Error(`no such cluster node '${node}'`);
    if (g.lock) throw new Error(`${g.type === 'qemu' ? 'VM' : 'CT'} is locked (${g.lock})`);
    g.node = node;
    return g;
  }

  /**
   * Puts an HA guest's service into a state the CRM reports on its own (control API
   * `POST /_sim/guests/{vmid}/ha-state`), or clears it (`null`). No task, no mutation: no client caused it.
   */
  setHaServiceState(vmid: number, state: 'error' | 'fence' | 'freeze' | null): StoredGuest {
    const g = this.guestMap.get(vmid);
    if (!g) throw new Error(`no guest ${vmid}`);
    if (!g.haManaged) throw new Error(`resource '${haSid(g)}' is not HA managed`);
    if (state === null) delete g.haCrmOverride;
    else g.haCrmOverride = state;
    return g;
  }

  removeGuest(vmid: number): void {
    this.guestMap.delete(vmid);
  }

  nextFreeVmid(): number {
    let id = 100;
    while (this.guestMap.has(id)) id++;
    return id;
  }

  markRunning(g: StoredGuest): void {
    g.status = 'running';
    g.paused = false;
    g.startedAt = Date.now();
    g.pid = ++this.pidCounter;
  }

  markStopped(g: StoredGuest): void {
    g.status = 'stopped';
    g.paused = false;
    delete g.startedAt;
    delete g.pid;
  }

  nextPid(): number {
    return ++this.pidCounter;
  }

  storage(name: string): StorageInfo | undefined {
    return this.storages.find((s) => s.storage === name);
  }

  /** The config file as PVE writes it: description as `#` comments, keys sorted, then snapshot sections. */
  serialize(g: StoredGuest): string {
    const section = (conf: Record<string, string>, extra: Record<string, string | undefined>): string => {
      const lines: string[] = [];
      const { description, ...rest } = conf;
      if (description) for (const l of description.split('\n')) lines.push(`#${encodeURIComponent(l)}`);
      const all: Record<string, string> = { ...rest };
      for (const [k, v] of Object.entries(extra)) if (v !== undefined) all[k] = v;
      for (const k of Object.keys(all).sort()) lines.push(`${k}: ${all[k]}`);
      return `${lines.join('\n')}\n`;
    };
    let out = section(g.config, { lock: g.lock, parent: g.parent });
    if (g.pending && (Object.keys(g.pending.set).length > 0 || g.pending.delete.length > 0)) {
      out += `\n[PENDING]\n${section(g.pending.set, { delete: g.pending.delete.length ? g.pending.delete.join(',') : undefined })}`;
    }
    for (const s of g.snapshots) {
      out += `\n[${s.name}]\n${section(s.config, {
        parent: s.parent,
        snapstate: s.snapstate,
        snaptime: String(s.snaptime),
        vmstate: s.vmstate ? '1' : undefined,
      })}`;
    }
    return out;
  }

  digest(g: StoredGuest): string {
    return createHash('sha1').update(this.serialize(g)).digest('hex');
  }
}

/** The config as GET …/config shows it by default: pending values applied, pending deletes gone. */
export function configWithPending(g: Pick<StoredGuest, 'config' | 'pending'>): Record<string, string> {
  const conf = { ...g.config };
  if (!g.pending) return conf;
  for (const k of g.pending.delete) delete conf[k];
  return Object.assign(conf, g.pending.set);
}

/** vmconfig_apply_pending at start/reboot: pending values replace the config, pending deletes go. */
export function applyPending(g: StoredGuest): string[] {
  if (!g.pending) return [];
  const keys = [...g.pending.delete, ...Object.keys(g.pending.set)];
  for (const k of g.pending.delete) delete g.config[k];
  Object.assign(g.config, g.pending.set);
  delete g.pending;
  return keys.sort();
}

export function guestName(g: StoredGuest): string {
  return (g.type === 'qemu' ? g.config.name : g.config.hostname) ?? `${g.type === 'qemu' ? 'VM' : 'CT'} ${g.vmid}`;
}

export function qmpStatus(g: StoredGuest): 'running' | 'paused' | 'stopped' {
  if (g.status !== 'running') return 'stopped';
  return g.paused ? 'paused' : 'running';
}

/** `memory` is `[current=]<MiB>` for QEMU, a plain integer for LXC. */
export function memoryMiB(g: StoredGuest): number {
  const raw = g.config.memory ?? '512';
  const m = /(?:^|current=)(\d+)/.exec(raw);
  return Number(m?.[1] ?? 512);
}

export function diskKeys(g: StoredGuest): string[] {
  return Object.keys(g.config).filter((k) => isDiskKey(k) && !k.startsWith('unused'));
}

/** Size of the boot/root disk, reported as maxdisk. */
export function rootDiskSize(g: StoredGuest): number {
  const key = g.type === 'lxc' ? 'rootfs' : diskKeys(g).find((k) => parseDisk(g.config[k] ?? '').media !== 'cdrom');
  return key ? parseDisk(g.config[key] ?? '').size : 0;
}

export function guestLabel(g: { type: GuestType }): 'VM' | 'CT' {
  return g.type === 'qemu' ? 'VM' : 'CT';
}
