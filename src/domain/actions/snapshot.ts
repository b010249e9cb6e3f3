/**
 * Snapshot create / rollback / delete for QEMU and LXC. The snapshot name is the idempotency key
 * Proxmox gives us: a create whose name exists, or a delete whose name is gone, is already done.
 */
import { z } from 'zod';
import type { GuestKind, GuestState } from '../guest-state.js';
import { alreadyDone, blocked, configId, defineAction, flag, inverseBy, noInverse, proceed, type Assessment, type ParamSpec, type WireParams } from './define.js';
import { guestRoute, KINDS, lockedMessage, missing } from './guest-kind.js';

/**
 * A name the snapshot create of `kind` accepts. Both refuse `current` (configId: the live state).
 * qemu-server also reserves `pending` in any case (the pending-changes section); pve-container does
 * not, but reserves `vzdump`, exactly, for the snapshot a snapshot-mode backup takes of a container.
 */
export function snapshotNameFor(kind: GuestKind) {
  const named = kind === 'qemu'
    ? configId.refine((name) => name.toLowerCase() !== 'pending', '"pending" is reserved by Proxmox for VMs')
    : configId.refine((name) => name !== 'vzdump', '"vzdump" is reserved by Proxmox for containers (the backup snapshot)');
  return named.describe('Snapshot name (pve-configid)');
}

/** A name both kinds accept: what a name made up for either kind (a safeguard's) must be. */
export const snapshotName = snapshotNameFor('qemu').refine((name) => snapshotNameFor('lxc').safeParse(name).success, '"vzdump" is reserved by Proxmox for containers');

const snapshotAt = (state: GuestState, p: { snapname: string }) => ({ node: state.node, vmid: state.vmid, snapname: p.snapname });
const locked = (state: GuestState): Assessment | undefined => (state.lock ? blocked(lockedMessage(state)) : undefined);

/** Params every snapshot create takes; QEMU adds `vmstate`. */
export const snapshotCreateParams = (kind: GuestKind) => ({
  snapname: snapshotNameFor(kind),
  description: z.string().max(8192).optional().describe('Free-text note stored with the snapshot'),
});

export function snapshotCreateAction<P extends z.ZodType<{ snapname: string; description?: string | undefined }>>(kind: GuestKind, spec: ParamSpec<P>) {
  const k = KINDS[kind];
  return defineAction({
    name: `${k.prefix}.snapshot.create`,
    kind,
    summary: `Take a snapshot of a ${k.title}`,
    description:
      'Creates a named snapshot. The name is the idempotency key on Proxmox: if a snapshot with that name exists, the run records a no-op.',
    params: spec.params,
    proxmox: { method: 'POST', path: guestRoute(kind, '/snapshot') },
    response: 'task',
    taskTypes: [`${k.task}snapshot`],
    baseRisk: { nonprod: 'low', prod: 'medium' },
    destructive: false,
    reversible: true,
    needs: { snapshots: true },
    assess(state, p) {
      if (!state.exists) return missing(state);
      if (state.template) return blocked("you can't take a snapshot if it's a template");
      if (state.snapshots.includes(p.snapname)) return alreadyDone(`snapshot '${p.snapname}' already exists`);
      return locked(state) ?? proceed();
    },
    pathParams: (state) => ({ node: state.node, vmid: state.vmid }),
    proxmoxParams: (p) => ({
      snapname: p.snapname,
      ...(p.description === undefined ? {} : { description: p.description }),
      ...spec.toProxmox(p),
    }),
    settled: (state, p) => state.snapshots.includes(p.snapname),
    inverse: (p, state) => inverseBy(`${k.prefix}.snapshot.delete`, state.vmid, { snapname: p.snapname }, `deletes snapshot '${p.snapname}' again`),
  });
}

export function snapshotRollbackAction(kind: GuestKind) {
  const k = KINDS[kind];
  return defineAction({
    name: `${k.prefix}.snapshot.rollback`,
    kind,
    summary: `Roll a ${k.title} back to a snapshot`,
    description:
      `Restores the ${k.noun}'s disks and config to the snapshot. Everything written since the snapshot is lost, and a running ${k.noun} is stopped unless the snapshot holds its RAM; with start, Proxmox starts it afterwards. A rollback leaves no trace Proxmox could be asked about, so a retry is recognised only by its task, and refused if the config changed since the plan.`,
    params: z.strictObject({
      snapname: configId.describe('The snapshot to roll back to'),
      start: z.boolean().default(false).describe('Start the guest after the rollback'),
    }),
    proxmox: { method: 'POST', path: guestRoute(kind, '/snapshot/{snapname}/rollback') },
    response: 'task',
    taskTypes: [`${k.task}rollback`],
    baseRisk: { nonprod: 'high', prod: 'critical' },
    destructive: true,
    reversible: false,
    needs: { config: true, snapshots: true },
    digestGuard: 'checked',
    assess(state, p) {
      if (!state.exists) return missing(state);
      if (!state.snapshots.includes(p.snapname)) return blocked(`snapshot '${p.snapname}' does not exist`);
      return locked(state) ?? proceed();
    },
    pathParams: snapshotAt,
    proxmoxParams: (p): WireParams => (p.start ? { start: flag(true) } : {}),
    inverse: () => noInverse('what the rollback replaced is gone; ask policy for `safeguard: snapshot` to keep it'),
  });
}

export function snapshotDeleteAction(kind: GuestKind) {
  const k = KINDS[kind];
  return defineAction({
    name: `${k.prefix}.snapshot.delete`,
    kind,
    summary: `Delete a snapshot of a ${k.title}`,
    description:
      `Removes the snapshot and its disk state; the ${k.noun} itself is untouched. A snapshot that no longer exists is recorded as a no-op.`,
    params: z.strictObject({ snapname: configId.describe('The snapshot to delete') }),
    proxmox: { method: 'DELETE', path: guestRoute(kind, '/snapshot/{snapname}') },
    response: 'task',
    taskTypes: [`${k.task}delsnapshot`],
    baseRisk: { nonprod: 'medium', prod: 'high' },
    destructive: true,
    reversible: false,
    needs: { snapshots: true },
    assess(state, p) {
      if (!state.exists) return missing(state);
      if (!state.snapshots.includes(p.snapname)) return alreadyDone(`snapshot '${p.snapname}' does not exist`);
      return locked(state) ?? proceed();
    },
    pathParams: snapshotAt,
    proxmoxParams: () => ({}),
    settled: (state, p) => !state.snapshots.includes(p.snapname),
    inverse: (p) => noInverse(`the disk state snapshot '${p.snapname}' held is gone`),
  });
}
