/**
 * Snapshot list/create/rollback/delete. As in guest-common's AbstractConfig, name collisions, missing
 * snapshots and guest locks are detected inside the worker, so they surface as task errors, while the
 * reserved names (`current`, and `pending` for QEMU or `vzdump` for LXC) are refused synchronously by
 * the API handler.
 */
import { randomUUID } from 'node:crypto';
import { type Handler, bool, recordMutation, startTask, str } from '../context.js';
import { die, TaskError } from '../errors.js';
import { configDigest, diskKeys, parseDisk, volumeSnapshots } from '../guest-config.js';
import type { GuestType, StoredGuest } from '../model-types.js';
import type { SimulatorModel } from '../model.js';
import type { RouteKey } from '../served-routes.js';
import { checkLockInTask, loadGuest } from './guest-common.js';

const prefix = (t: GuestType): string => (t === 'qemu' ? 'qm' : 'vz');

function snapshotLog(g: StoredGuest, snapname: string): string[] {
  if (g.type === 'lxc') return [`create storage snapshot '${snapname}'`];
  return diskKeys(g).flatMap((k) => {
    const { volid, media } = parseDisk(g.config[k] ?? '');
    if (media === 'cdrom') return [];
    const vol = volid.split(':')[1] ?? volid;
    return [`snapshotting 'drive-${k}' (${volid})`, `  Logical volume "snap_${vol}_${snapname}" created.`];
  });
}

function snapshotFeature(model: SimulatorModel, g: StoredGuest): boolean {
  return diskKeys(g).every((k) => {
    const { volid, media } = parseDisk(g.config[k] ?? '');
    const colon = volid.indexOf(':');
    if (media === 'cdrom' || colon <= 0) return true;
    return volumeSnapshots(model.storage(volid.slice(0, colon)), volid);
  });
}

const list = (type: GuestType): Handler => (ctx) => {
  const g = loadGuest(ctx, type);
  const out: Record<string, unknown>[] = g.snapshots.map((s) => ({
    name: s.name,
    description: s.description,
    snaptime: s.snaptime,
    ...(s.parent ? { parent: s.parent } : {}),
    ...(type === 'qemu' ? { vmstate: s.vmstate ? 1 : 0 } : {}),
    ...(s.snapstate ? { snapstate: s.snapstate } : {}),
  }));
  out.push({
    name: 'current',
    description: 'You are here!',
    digest: configDigest(g),
    running: g.status === 'running' ? 1 : 0,
    ...(g.parent ? { parent: g.parent } : {}),
  });
  return out;
};

const create = (type: GuestType): Handler => (ctx) => {
  const g = loadGuest(ctx, type);
  const snapname = str(ctx, 'snapname')!;
  // qemu-server reserves `current` and (any case) `pending`; pve-container `current` and `vzdump`
  // (the snapshot vzdump takes of a container), both before the worker is forked.
  if (snapname === 'current') die(`unable to use snapshot name 'current' (reserved name)`);
  if (type === 'qemu' && snapname.toLowerCase() === 'pending') die(`unable to use snapshot name 'pending' (reserved name)`);
  if (type === 'lxc' && snapname === 'vzdump') die(`unable to use snapshot name 'vzdump' (reserved name)`);
  const vmstate = type === 'qemu' && bool(ctx, 'vmstate') && g.status === 'running';
  return startTask(ctx, {
    node: g.node,
    type: `${prefix(type)}snapshot`,
    id: String(g.vmid),
    vmid: g.vmid,
    lock: { guest: g, name: 'snapshot' },
    begin: () => {
      checkLockInTask(g);
      if (g.snapshots.some((s) => s.name === snapname)) throw new TaskError(`snapshot name '${snapname}' already used`);
      if (g.config.template === '1') throw new TaskError(`you can't take a snapshot if it's a template`);
      // snapshot_prepare: has_feature('snapshot') over every volume (CD-ROMs and bind mounts aside).
      if (!snapshotFeature(ctx.sim.model, g)) throw new TaskError('snapshot feature is not available');
      // snapshot_prepare writes the section right away with snapstate "prepare".
      g.snapshots.push({
        name: snapname,
        description: str(ctx, 'description') ?? '',
        snaptime: Math.floor(Date.now() / 1000),
        ...(g.parent ? { parent: g.parent } : {}),
        vmstate,
        snapstate: 'prepare',
        config: { ...g.config },
        ...(g.pending ? { pending: structuredClone(g.pending) } : {}),
      });
    },
    complete: (t) => {
      const snap = g.snapshots.find((s) => s.name === snapname);
      if (!snap) throw new TaskError(`snapshot '${snapname}' does not exist`);
      for (const line of snapshotLog(g, snapname)) t.log(line);
      delete snap.snapstate;
      g.parent = snapname;
      recordMutation(ctx, g, 'snapshot', { upid: t.upid, key: snapname, detail: { vmstate } });
    },
    onAbort: () => {
      g.snapshots = g.snapshots.filter((s) => !(s.name === snapname && s.snapstate === 'prepare'));
    },
  });
};

const remove = (type: GuestType): Handler => (ctx) => {
  const g = loadGuest(ctx, type);
  const snapname = str(ctx, 'snapname')!;
  const force = bool(ctx, 'force');
  return startTask(ctx, {
    node: g.node,
    type: `${prefix(type)}delsnapshot`,
    id: String(g.vmid),
    vmid: g.vmid,
    lock: { guest: g, name: 'snapshot-delete' },
    begin: () => {
      const snap = g.snapshots.find((s) => s.name === snapname);
      if (!snap) throw new TaskError(`snapshot '${snapname}' does not exist`);
      if (!force) checkLockInTask(g);
      snap.snapstate = 'delete';
    },
    complete: (t) => {
      const snap = g.snapshots.find((s) => s.name === snapname);
      if (!snap) throw new TaskError(`snapshot '${snapname}' does not exist`);
      if (type === 'qemu') {
        for (const k of diskKeys(g)) {
          const vol = parseDisk(g.config[k] ?? '').volid.split(':')[1];
          if (vol) t.log(`  Logical volume "snap_${vol}_${snapname}" successfully removed.`);
        }
      }
      // Children of the deleted snapshot (and `current`) now descend from its parent.
      const reparent = (o: { parent?: string }): void => {
        if (o.parent !== snapname) return;
        if (snap.parent) o.parent = snap.parent;
        else delete o.parent;
      };
      g.snapshots.forEach(reparent);
      reparent(g);
      g.snapshots = g.snapshots.filter((s) => s !== snap);
      recordMutation(ctx, g, 'snapshot-delete', { upid: t.upid, key: snapname });
    },
    onAbort: () => {
      const snap = g.snapshots.find((s) => s.name === snapname);
      if (snap?.snapstate === 'delete') delete snap.snapstate;
    },
  });
};

const rollback = (type: GuestType): Handler => (ctx) => {
  const g = loadGuest(ctx, type);
  const snapname = str(ctx, 'snapname')!;
  const startAfter = bool(ctx, 'start');
  return startTask(ctx, {
    node: g.node,
    type: `${prefix(type)}rollback`,
    id: String(g.vmid),
    vmid: g.vmid,
    lock: { guest: g, name: 'rollback' },
    begin: () => {
      const snap = g.snapshots.find((s) => s.name === snapname);
      if (!snap) throw new TaskError(`snapshot '${snapname}' does not exist`);
      if (snap.snapstate) throw new TaskError(`unable to rollback to incomplete snapshot (snapstate = ${snap.snapstate})`);
      checkLockInTask(g);
    },
    complete: (t) => {
      const snap = g.snapshots.find((s) => s.name === snapname);
      if (!snap) throw new TaskError(`snapshot '${snapname}' does not exist`);
      const { model } = ctx.sim;
      const wasRunning = g.status === 'running';
      // Without saved RAM the guest is stopped by the rollback; with vmstate it resumes where it was.
      if (snap.vmstate) { if (!wasRunning) model.markRunning(g); } else if (wasRunning) model.markStopped(g);
      g.config = { ...snap.config };
      // The snapshot's pending changes come back with it, and later ones go (the config is replaced).
      if (snap.pending) g.pending = structuredClone(snap.pending);
      else delete g.pending;
      if (type === 'qemu') g.config.vmgenid = randomUUID(); // qemu-server regenerates vmgenid on rollback
      g.parent = snapname;
      if (startAfter && g.status !== 'running') model.markRunning(g);
      if (type === 'qemu') {
        for (const k of diskKeys(g)) {
          const vol = parseDisk(g.config[k] ?? '').volid.split(':')[1];
          if (!vol) continue;
          t.log(`  Logical volume "${vol}" successfully removed.`);
          t.log(`  Logical volume "${vol}" created.`);
        }
      } else t.log(`rollback to snapshot '${snapname}'`);
      recordMutation(ctx, g, 'rollback', { upid: t.upid, key: snapname, detail: { wasRunning, running: g.status === 'running' } });
    },
  });
};

export const snapshotRoutes: Partial<Record<RouteKey, Handler>> = {
  'GET /nodes/{node}/qemu/{vmid}/snapshot': list('qemu'),
  'POST /nodes/{node}/qemu/{vmid}/snapshot': create('qemu'),
  'POST /nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback': rollback('qemu'),
  'DELETE /nodes/{node}/qemu/{vmid}/snapshot/{snapname}': remove('qemu'),
  'GET /nodes/{node}/lxc/{vmid}/snapshot': list('lxc'),
  'POST /nodes/{node}/lxc/{vmid}/snapshot': create('lxc'),
  'POST /nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback': rollback('lxc'),
  'DELETE /nodes/{node}/lxc/{vmid}/snapshot/{snapname}': remove('lxc'),
};
