import { z } from 'zod';
import { snapshotCreateAction, snapshotCreateParams, snapshotDeleteAction, snapshotRollbackAction } from './snapshot.js';

// Containers have no RAM state to save: the LXC endpoint takes no vmstate.
export const ctSnapshotCreate = snapshotCreateAction('lxc', { params: z.strictObject(snapshotCreateParams('lxc')), toProxmox: () => ({}) });

export const ctSnapshotRollback = snapshotRollbackAction('lxc');

export const ctSnapshotDelete = snapshotDeleteAction('lxc');
