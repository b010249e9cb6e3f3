import type { ActionDefinition } from './define.js';
import { vmReboot, vmShutdown, vmStart, vmStop } from './qemu-power.js';
import { vmSnapshotCreate } from './qemu-snapshot.js';
import { vmDelete } from './qemu-lifecycle.js';

/** Every action proxmox-agent can run. docs/action-taxonomy.md documents them; a test keeps the two in step. */
export const ACTIONS: readonly ActionDefinition[] = [vmStart, vmStop, vmShutdown, vmReboot, vmSnapshotCreate, vmDelete];

const byName = new Map(ACTIONS.map((a) => [a.name, a]));

export const ACTION_NAMES = ACTIONS.map((a) => a.name);

export function findAction(name: string): ActionDefinition | undefined {
  return byName.get(name);
}
