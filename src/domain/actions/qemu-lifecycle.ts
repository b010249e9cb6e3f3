import { z } from 'zod';
import { blocked, flag } from './define.js';
import { backupAction } from './backup.js';
import { cloneAction, cloneParams, storageOnlyWhenFull, storageOnlyWhenFullJsonSchema, storageOnlyWhenFullMessage } from './clone.js';
import { deleteAction } from './delete.js';
import { dnsName, nodeName } from './guest-kind.js';
import { migrateAction } from './migrate.js';

export const vmClone = cloneAction('qemu', {
  params: z
    .strictObject({ ...cloneParams, name: dnsName.describe('Name of the new VM (DNS name); with newid, the idempotency key') })
    .refine(storageOnlyWhenFull, storageOnlyWhenFullMessage)
    .meta(storageOnlyWhenFullJsonSchema),
  toProxmox: (p) => ({ name: p.name }),
  plannedName: (p) => p.name,
});

export const vmMigrate = migrateAction('qemu', {
  description:
    'Moves the VM to the target node. A running VM needs online (live migration); with local disks also withLocalDisks, which copies them. A VM already on the target is a no-op; the run ends when the VM is seen on the target.',
  params: z.strictObject({
    target: nodeName.describe('The node to move the VM to'),
    online: z.boolean().default(false).describe('Live-migrate a running VM'),
    withLocalDisks: z.boolean().default(false).describe('Copy local disks to the target (live migration with local storage)'),
  }),
  toProxmox: (p) => ({ online: flag(p.online), 'with-local-disks': flag(p.withLocalDisks) }),
  runningRefusal: (state, p) => (state.status === 'running' && !p.online ? blocked("can't migrate running VM without --online") : undefined),
});

export const vmDelete = deleteAction('qemu');

export const vmBackup = backupAction('qemu');
