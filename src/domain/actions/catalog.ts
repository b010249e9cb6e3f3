import type { ActionDefinition } from './define.js';
import { ctConfigUpdate, ctDiskResize } from './lxc-config.js';
import { ctBackup, ctClone, ctDelete, ctMigrate } from './lxc-lifecycle.js';
import { ctReboot, ctResume, ctShutdown, ctStart, ctStop, ctSuspend } from './lxc-power.js';
import { ctSnapshotCreate, ctSnapshotDelete, ctSnapshotRollback } from './lxc-snapshot.js';
import { vmConfigUpdate, vmDiskResize } from './qemu-config.js';
import { vmBackup, vmClone, vmDelete, vmMigrate } from './qemu-lifecycle.js';
import { vmReboot, vmReset, vmResume, vmShutdown, vmStart, vmStop, vmSuspend } from './qemu-power.js';
import { vmSnapshotCreate, vmSnapshotDelete, vmSnapshotRollback } from './qemu-snapshot.js';

/** Every action proxmox-agent can run. docs/action-taxonomy.md documents them; a test keeps the two in step. */
export const ACTIONS: readonly ActionDefinition[] = [
  vmStart, vmStop, vmShutdown, vmReboot, vmSuspend, vmResume, vmReset,
  vmSnapshotCreate, vmSnapshotRollback, vmSnapshotDelete,
  vmClone, vmMigrate, vmConfigUpdate, vmDiskResize, vmDelete, vmBackup,
  ctStart, ctStop, ctShutdown, ctReboot, ctSuspend, ctResume,
  ctSnapshotCreate, ctSnapshotRollback, ctSnapshotDelete,
  ctClone, ctMigrate, ctConfigUpdate, ctDiskResize, ctDelete, ctBackup,
] as readonly ActionDefinition[];

const byName = new Map(ACTIONS.map((a) => [a.name, a]));

export const ACTION_NAMES = ACTIONS.map((a) => a.name);

export function findAction(name: string): ActionDefinition | undefined {
  return byName.get(name);
}
