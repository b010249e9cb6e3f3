import { z } from 'zod';
import { blocked, flag } from './define.js';
import { backupAction } from './backup.js';
import { cloneAction, cloneParams, storageOnlyWhenFull, storageOnlyWhenFullJsonSchema, storageOnlyWhenFullMessage } from './clone.js';
import { deleteAction } from './delete.js';
import { dnsName, nodeName } from './guest-kind.js';
import { migrateAction } from './migrate.js';

export const ctClone = cloneAction('lxc', {
  params: z
    .strictObject({ ...cloneParams, hostname: dnsName.describe('Hostname of the new container; with newid, the idempotency key') })
    .refine(storageOnlyWhenFull, storageOnlyWhenFullMessage)
    .meta(storageOnlyWhenFullJsonSchema),
  toProxmox: (p) => ({ hostname: p.hostname }),
  plannedName: (p) => p.hostname,
});

// Proxmox has no live migration for containers ("lxc live migration is currently not implemented"):
// a running one moves by restart migration, which shuts it down, moves it and starts it again.
export const ctMigrate = migrateAction('lxc', {
  description:
    'Moves the container to the target node. A running container moves by restart migration (restart: shut down, move, start again; Proxmox has no live migration for containers). A container already on the target is a no-op; the run ends when it is seen on the target.',
  params: z.strictObject({
    target: nodeName.describe('The node to move the container to'),
    restart: z.boolean().default(false).describe('Restart migration of a running container'),
    timeout: z.number().int().min(0).max(86400).optional().describe('Seconds to wait for the shutdown of a restart migration (Proxmox default: 180)'),
  }),
  toProxmox: (p) => ({ restart: flag(p.restart), ...(p.timeout === undefined ? {} : { timeout: p.timeout }) }),
  runningRefusal: (state, p) =>
    state.status === 'running' && !p.restart ? blocked("can't migrate running container without --online or --restart") : undefined,
});

export const ctDelete = deleteAction('lxc');

export const ctBackup = backupAction('lxc');
