import { z } from 'zod';
import { flag, type WireParams } from './define.js';
import { snapshotCreateAction, snapshotCreateParams, snapshotDeleteAction, snapshotRollbackAction } from './snapshot.js';

export const vmSnapshotCreate = snapshotCreateAction('qemu', {
  params: z.strictObject({
    ...snapshotCreateParams('qemu'),
    vmstate: z.boolean().default(false).describe('Include the RAM state (running VMs only)'),
  }),
  toProxmox: (p): WireParams => (p.vmstate ? { vmstate: flag(true) } : {}),
});

export const vmSnapshotRollback = snapshotRollbackAction('qemu');

export const vmSnapshotDelete = snapshotDeleteAction('qemu');
