/**
 * Clone, migrate, resize and destroy. Synchronous early checks (existing newid, running guest without
 * --online, protection, HA without purge, an LXC shrink) answer 500/400 like the real handlers; the
 * rest happens in the worker (all of QEMU resize).
 */
import { type Handler, type RequestContext, bool, int, recordMutation, startTask, str } from '../context.js';
import { ApiError, die, paramError, TaskError } from '../errors.js';
import { diskKeys, formatSize, isDiskKey, parseDisk, withDiskSize } from '../guest-config.js';
import { guestLabel, guestName, haSid } from '../guest-facts.js';
import type { GuestType, StoredGuest } from '../model-types.js';
import type { RouteKey } from '../served-routes.js';
import { checkDigest } from './config.js';
import { checkLockInTask, checkLockSync, loadGuest, maybeLockContention } from './guest-common.js';
import { haCommandRefusal, strictNodeAffinityExcluding } from './ha.js';

const prefix = (t: GuestType): string => (t === 'qemu' ? 'qm' : 'vz');

function requireClusterNode(ctx: RequestContext, node: string): void {
  if (!ctx.sim.model.nodes.includes(node)) die(`no such cluster node '${node}'`);
}

// ---- clone ----------------------------------------------------------------------------------------

const clone = (type: GuestType): Handler => (ctx) => {
  const { model } = ctx.sim;
  const src = loadGuest(ctx, type);
  const newid = int(ctx, 'newid')!;
  const existing = model.findGuest(newid);
  if (existing) {
    if (type === 'qemu') die(`unable to create VM ${newid}: config file already exists`);
    die(`${guestLabel(existing)} ${newid} already exists on node '${existing.node}'`);
  }
  const target = str(ctx, 'target') ?? src.node;
  requireClusterNode(ctx, target);
  // Our storages are node-local, and cloning to another node needs shared storage.
  if (target !== src.node) die(`can't clone ${guestLabel(src)} to node '${target}' (${guestLabel(src)} uses local storage)`);
  const snapname = str(ctx, 'snapname');
  const snap = snapname === undefined ? undefined : src.snapshots.find((s) => s.name === snapname);
  if (snapname !== undefined && !snap) die(`snapshot '${snapname}' does not exist`);
  const storage = str(ctx, 'storage');
  if (storage !== undefined && !model.storage(storage)) die(`storage '${storage}' does not exist`);
  checkLockSync(src);
  const template = src.config.template === '1';
  const full = ctx.params.full === undefined ? !template : bool(ctx, 'full');
  if (storage !== undefined && !full) die("parameter 'storage' not allowed for linked clones");
  const sourceDisks = Object.entries(snap?.config ?? src.config).filter(([k, v]) => isDiskKey(k) && !k.startsWith('unused') && parseDisk(v).media !== 'cdrom');
  if (type === 'lxc' && full && src.status === 'running' && snapname === undefined) {
    die('Full clone of a running container is only possible from a snapshot');
  }
  // lvmthin (our only disk storage) clones thin volumes from a template's base volumes or from a snapshot.
  if (!full && !template && snapname === undefined && sourceDisks.length > 0) {
    const [key, value] = sourceDisks[0]!;
    die(type === 'qemu' ? `Linked clone feature is not supported for drive '${key}'` : `Linked clone feature for '${parseDisk(value).volid}' is not available`);
  }

  const baseConf = { ...(snap?.config ?? src.config) };
  const nameKey = type === 'qemu' ? 'name' : 'hostname';
  const name = str(ctx, nameKey) ?? (type === 'qemu' ? `Copy-of-VM-${guestName(src)}` : `Copy-of-${guestName(src)}`);
  const conf: Record<string, string> = {};
  const copied: string[] = [];
  let diskNo = 0;
  for (const [k, v] of Object.entries(baseConf)) {
    if (k.startsWith('unused')) continue;
    if (isDiskKey(k) && parseDisk(v).media !== 'cdrom') {
      const { volid } = parseDisk(v);
      const store = storage ?? volid.split(':')[0] ?? 'local-lvm';
      // A linked clone of a base volume names its parent, as lvmthin/zfs do: `base-101-disk-0/vm-150-disk-0`.
      const base = !full ? /^[^:]+:(base-\d+-disk-\d+)$/.exec(volid)?.[1] : undefined;
      const newVol = `${store}:${base ? `${base}/` : ''}vm-${newid}-disk-${diskNo++}`;
      conf[k] = [newVol, ...v.split(',').slice(1)].join(',');
      copied.push(`create ${full ? 'full' : 'linked'} clone of drive ${k} (${volid})`, `  Logical volume "${newVol.split(':')[1]}" created.`);
      continue;
    }
    conf[k] = v;
  }
  conf[nameKey] = name;
  delete conf.protection;
  // A clone of a template is an ordinary guest (clone_vm deletes `template` from the new config).
  delete conf.template;
  const description = str(ctx, 'description');
  if (description !== undefined) conf.description = description;
  const pool = str(ctx, 'pool');
  const clone: StoredGuest = {
    vmid: newid,
    type,
    node: target,
    status: 'stopped',
    paused: false,
    config: conf,
    snapshots: [],
    haManaged: false,
    ...(pool ? { pool } : {}),
  };
  // The new config file exists (locked) from the moment the worker is forked.
  model.addGuest(clone);

  return startTask(ctx, {
    node: src.node,
    type: `${prefix(type)}clone`,
    id: String(src.vmid),
    vmid: src.vmid,
    lock: { guest: clone, name: type === 'qemu' ? 'clone' : 'create' },
    startLog: copied,
    complete: (t) => {
      t.log(`clone of ${guestLabel(src)} ${src.vmid} to ${newid} finished`);
      recordMutation(ctx, src, 'clone', { upid: t.upid, key: String(newid), detail: { newid, name, target, full } });
    },
    onAbort: () => {
      if (model.findGuest(newid) === clone) model.removeGuest(newid);
    },
  });
};

// ---- template -------------------------------------------------------------------------------------

/** The checks both template handlers run before (QEMU: and again inside) the worker. */
function checkTemplatable(g: StoredGuest, disk: string | undefined): void {
  checkLockSync(g);
  const label = guestLabel(g);
  if (g.snapshots.length > 0) die(`unable to create template, because ${label} contains snapshots`);
  if (g.config.template === '1' && !disk) die("you can't convert a template to a template");
  if (g.status === 'running') {
    die(g.type === 'qemu' ? "you can't convert a VM to template if VM is running" : "you can't convert a CT to template if the CT is running");
  }
}

/** vdisk_create_base on lvmthin/zfs: `vm-100-disk-0` becomes the read-only base `base-100-disk-0`. */
function toBaseVolumes(g: StoredGuest, disk: string | undefined): void {
  for (const key of diskKeys(g)) {
    if (disk !== undefined && key !== disk) continue;
    const value = g.config[key] ?? '';
    if (parseDisk(value).media === 'cdrom') continue;
    g.config[key] = value.replace(/^([^:,]+):vm-(\d+)-disk-/, '$1:base-$2-disk-');
  }
}

/**
 * POST …/template. QEMU forks `qmtemplate` and answers its UPID; pve-container forks `vztemplate`
 * too but answers null. Either way `template: 1` and the base volumes land when the worker ends.
 */
const template = (type: GuestType): Handler => (ctx) => {
  const g = loadGuest(ctx, type);
  const disk = type === 'qemu' ? str(ctx, 'disk') : undefined;
  checkTemplatable(g, disk);
  const upid = startTask(ctx, {
    node: g.node,
    type: `${prefix(type)}template`,
    id: String(g.vmid),
    vmid: g.vmid,
    // qemu-server checks again under the config lock in the worker; pve-container checks only once.
    ...(type === 'qemu'
      ? {
          begin: () => {
            try {
              checkTemplatable(g, disk);
            } catch (e) {
              throw new TaskError(e instanceof Error ? e.message : String(e));
            }
          },
        }
      : {}),
    complete: (t) => {
      toBaseVolumes(g, disk);
      g.config.template = '1';
      recordMutation(ctx, g, 'config', { upid: t.upid, key: 'template', detail: { template: true, ...(disk ? { disk } : {}) } });
    },
  });
  return type === 'qemu' ? upid : null;
};

// ---- migrate --------------------------------------------------------------------------------------

const migratePrecondition = (type: GuestType): Handler => (ctx) => {
  const g = loadGuest(ctx, type);
  const others = ctx.sim.model.nodes.filter((n) => n !== g.node && !ctx.sim.faults.nodeFault(n));
  const notAllowed: Record<string, unknown> = {};
  for (const n of ctx.sim.model.nodes) if (n !== g.node && ctx.sim.faults.nodeFault(n)) notAllowed[n] = { offline: 1 };
  if (type === 'lxc') return { running: g.status === 'running' ? 1 : 0, 'allowed-nodes': others, 'not-allowed-nodes': notAllowed };
  return {
    running: g.status === 'running' ? 1 : 0,
    allowed_nodes: others,
    not_allowed_nodes: notAllowed,
    local_disks: diskKeys(g).map((k) => {
      const d = parseDisk(g.config[k] ?? '');
      return { volid: d.volid, size: d.size, drivename: k, is_unused: 0, is_vmstate: 0, is_tpmstate: 0, cdrom: d.media === 'cdrom' ? 1 : 0 };
    }),
    local_resources: [],
    'mapped-resources': [],
    // Required by apidata 9.1; no mapped PCI/USB devices are modelled, and 9.x hosts have dbus-vmstate.
    'mapped-resource-info': {},
    'has-dbus-vmstate': 1,
    ...(g.haManaged ? { 'dependent-ha-resources': [] } : {}),
  };
};

const migrate = (type: GuestType): Handler => (ctx) => {
  const { model } = ctx.sim;
  const g = loadGuest(ctx, type);
  const target = str(ctx, 'target')!;
  if (target === g.node) paramError({ target: 'target is local node.' });
  requireClusterNode(ctx, target);
  checkLockSync(g);
  const online = bool(ctx, 'online');
  const restart = type === 'lxc' && bool(ctx, 'restart');
  const running = g.status === 'running';
  if (running && type === 'qemu' && !online) die(`can't migrate running VM without --online`);
  if (running && type === 'lxc' && !online && !restart) die(`can't migrate running container without --online or --restart`);

  if (g.haManaged) {
    return startTask(ctx, {
      node: g.node,
      type: 'hamigrate',
      id: String(g.vmid),
      vmid: g.vmid,
      startLog: [`Requesting HA migration for ${type === 'qemu' ? 'VM' : 'CT'} ${g.vmid} to node ${target}`],
      complete: (t) => {
        const sid = haSid(g);
        const command = ['ha-manager', 'migrate', sid, target];
        // `ha-manager migrate` runs in this worker: a service in error state is refused (check_service_state).
        const refused = haCommandRefusal(g, command);
        if (refused) {
          for (const line of refused.log) t.log(line);
          throw new TaskError(refused.exit);
        }
        // PVE 9: a strict node affinity rule that leaves the target out keeps the guest where it is. The
        // text follows the CLI's refusal of blocking resources (ha_manager.pm); see docs/simulator.md.
        const rule = strictNodeAffinityExcluding(ctx, g, target);
        if (rule) {
          t.log(`cannot migrate resource '${sid}' to node '${target}':`);
          t.log('');
          t.log(`- resource '${sid}' not allowed on target node '${target}' by strict node affinity rule '${rule.rule}'`);
          throw new TaskError(`command '${command.join(' ')}' failed: exit code 255`);
        }
        g.haMovingTo = target;
        ctx.sim.tasks.defer(ctx.sim.haDelayMs, () => {
          if (model.findGuest(g.vmid) !== g || g.haMovingTo !== target) return;
          delete g.haMovingTo;
          if (g.node === target) return;
          g.node = target;
          recordMutation(ctx, g, 'migrate', { upid: t.upid, key: target, detail: { target, via: 'ha' } });
        });
      },
    });
  }

  const from = g.node;
  return startTask(ctx, {
    node: g.node,
    type: `${prefix(type)}${type === 'qemu' ? 'igrate' : 'migrate'}`,
    id: String(g.vmid),
    vmid: g.vmid,
    lock: { guest: g, name: 'migrate' },
    startLog: [`starting migration of ${guestLabel(g)} ${g.vmid} to node '${target}'`],
    begin: () => {
      if (type === 'lxc' && running && online && !restart) throw new TaskError('lxc live migration is currently not implemented');
      if (type === 'qemu' && running && online && diskKeys(g).length > 0 && !bool(ctx, 'with-local-disks')) {
        throw new TaskError(`can't live migrate attached local disks without with-local-disks option`);
      }
    },
    complete: (t) => {
      if (ctx.sim.faults.nodeFault(target)) {
        t.log(`ERROR: migration aborted (duration 00:00:01): Can't connect to destination address using public key`);
        throw new TaskError('migration problems');
      }
      g.node = target;
      if (restart && running) model.markRunning(g);
      t.log(`migration finished successfully (duration 00:00:01)`);
      recordMutation(ctx, g, 'migrate', { upid: t.upid, key: target, detail: { from, target, online, restart } });
    },
  });
};

// ---- resize ---------------------------------------------------------------------------------------

/** The requested size in bytes, absolute or (`+`) added to `current`. */
function requestedSize(sizestr: string, current: number): number {
  const m = /^(\+)?(\d+(\.\d+)?)([KMGT])?$/.exec(sizestr);
  if (!m) die('internal error');
  const mult = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[4] as 'K'] ?? 1;
  const requested = Math.floor(Number(m[2]) * mult);
  return m[1] ? current + requested : requested;
}

/** A check a worker makes: its `die` ends the task with that text instead of answering 500. */
function inWorker<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ApiError && e.status === 500) throw new TaskError(e.message);
    throw e;
  }
}

/**
 * The checks resize makes on the loaded config: digest, guest lock, disk, size. LXC runs them before
 * forking (500) and again in its worker; qemu-server (since 8.0.2, "fix #2315") only in its worker, so
 * there a stale digest is a task ending `checksum mismatch (file change by other user?)`.
 */
function resizeChecks(ctx: RequestContext, g: StoredGuest): { disk: string; newsize: number } {
  checkDigest(ctx, g, g.type === 'qemu' ? 'checksum mismatch (file change by other user?)' : 'detected modified configuration - file changed by other user? Try again.');
  checkLockSync(g);
  const disk = str(ctx, 'disk')!;
  const value = g.config[disk];
  if (value === undefined) die(`disk '${disk}' does not exist`);
  const drive = parseDisk(value);
  if (drive.media === 'cdrom') die(`you can't resize a cdrom`);
  const newsize = requestedSize(str(ctx, 'size')!, drive.size);
  if (newsize < drive.size) die(g.type === 'qemu' ? 'shrinking disks is not supported' : 'unable to shrink disk size');
  if (newsize === drive.size && g.type === 'lxc') die('disk is already at specified size');
  return { disk, newsize };
}

const resize = (type: GuestType): Handler => (ctx) => {
  const vmid = int(ctx, 'vmid')!;
  // LXC: `$load_and_check->(); # early checks before forking+locking`. QEMU loads nothing before forking.
  let g = type === 'lxc' ? loadGuest(ctx, type) : undefined;
  let checked = g && resizeChecks(ctx, g);
  return startTask(ctx, {
    node: str(ctx, 'node')!,
    type: 'resize',
    id: String(vmid),
    vmid,
    // The worker takes lock_config, loads the config and checks (LXC: again; nothing can have changed).
    begin: () => inWorker(() => {
      g ??= loadGuest(ctx, type);
      maybeLockContention(ctx, g);
      checked = resizeChecks(ctx, g);
    }),
    complete: (t) => {
      const guest = g!;
      const { disk, newsize } = checked!;
      const current = guest.config[disk];
      if (current === undefined) throw new TaskError(`disk '${disk}' does not exist`);
      const before = parseDisk(current).size;
      if (newsize === before) return; // qemu: already that size, nothing to do
      if (newsize < before) throw new TaskError(type === 'qemu' ? 'shrinking disks is not supported' : 'unable to shrink disk size');
      const vol = parseDisk(current).volid.split(':')[1] ?? disk;
      t.log(`  Size of logical volume pve/${vol} changed from ${formatSize(before)} to ${formatSize(newsize)}.`);
      t.log(`  Logical volume pve/${vol} successfully resized.`);
      guest.config[disk] = withDiskSize(current, newsize);
      recordMutation(ctx, guest, 'resize', { upid: t.upid, key: disk, detail: { disk, from: before, to: newsize } });
    },
  });
};

// ---- destroy --------------------------------------------------------------------------------------

const destroy = (type: GuestType): Handler => (ctx) => {
  const { model } = ctx.sim;
  const g = loadGuest(ctx, type);
  const label = guestLabel(g);
  const purge = bool(ctx, 'purge');
  const force = type === 'lxc' && bool(ctx, 'force');
  if (g.config.protection === '1') die(`can't remove ${label} ${g.vmid} - protection mode enabled`);
  if (g.haManaged && !purge) die(`unable to remove ${label} ${g.vmid} - used in HA resources and purge parameter not set.`);
  checkLockSync(g);
  if (g.status === 'running') {
    if (type === 'qemu') die(`VM ${g.vmid} is running - destroy failed`);
    if (!force) die(`unable to destroy CT ${g.vmid} - container is running`);
  }
  return startTask(ctx, {
    node: g.node,
    type: `${prefix(type)}destroy`,
    id: String(g.vmid),
    vmid: g.vmid,
    ...(type === 'lxc' ? { lock: { guest: g, name: 'destroyed' } } : {}),
    begin: () => checkLockInTask(g),
    complete: (t) => {
      if (model.findGuest(g.vmid) !== g) throw new TaskError(`Configuration file 'nodes/${g.node}/${type === 'qemu' ? 'qemu-server' : 'lxc'}/${g.vmid}.conf' does not exist`);
      if (g.status === 'running') {
        if (!force) throw new TaskError(`${label} ${g.vmid} is running - destroy failed`);
        model.markStopped(g);
      }
      for (const k of Object.keys(g.config).filter(isDiskKey)) {
        const vol = parseDisk(g.config[k] ?? '').volid.split(':')[1];
        if (vol && parseDisk(g.config[k] ?? '').media !== 'cdrom') t.log(`  Logical volume "${vol}" successfully removed.`);
      }
      if (purge && g.haManaged) t.log(`purging ${type === 'qemu' ? 'VM' : 'CT'} ${g.vmid} from related configurations..`);
      model.removeGuest(g.vmid);
      recordMutation(ctx, g, 'destroy', { upid: t.upid, detail: { purge } });
    },
  });
};

export const lifecycleRoutes: Partial<Record<RouteKey, Handler>> = {
  'POST /nodes/{node}/qemu/{vmid}/clone': clone('qemu'),
  'POST /nodes/{node}/lxc/{vmid}/clone': clone('lxc'),
  'GET /nodes/{node}/qemu/{vmid}/migrate': migratePrecondition('qemu'),
  'POST /nodes/{node}/qemu/{vmid}/migrate': migrate('qemu'),
  'GET /nodes/{node}/lxc/{vmid}/migrate': migratePrecondition('lxc'),
  'POST /nodes/{node}/lxc/{vmid}/migrate': migrate('lxc'),
  'PUT /nodes/{node}/qemu/{vmid}/resize': resize('qemu'),
  'PUT /nodes/{node}/lxc/{vmid}/resize': resize('lxc'),
  'DELETE /nodes/{node}/qemu/{vmid}': destroy('qemu'),
  'DELETE /nodes/{node}/lxc/{vmid}': destroy('lxc'),
  'POST /nodes/{node}/qemu/{vmid}/template': template('qemu'),
  'POST /nodes/{node}/lxc/{vmid}/template': template('lxc'),
};
