/**
 * The in-memory state of one simulated cluster: nodes, storages, guests, backup volumes, HA groups
 * and rules, and the task manager. Its shapes are in model-types.ts, the config file in
 * guest-config.ts, the starting state in model-seeding.ts.
 */
import { configDigest } from './guest-config.js';
import { guestName, haCrmState, haSid, qmpStatus } from './guest-facts.js';
import type { BackupVolume, GuestType, GuestView, HaGroup, HaRule, StorageInfo, StoredGuest } from './model-types.js';
import { die } from './errors.js';
import { seedGuest, storageInfo } from './model-seeding.js';
import type { TaskManager, TaskView } from './tasks.js';
import type { SimClusterSeed } from './types.js';

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
      const state = seedGuest(g, now);
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
      digest: configDigest(g),
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
}
