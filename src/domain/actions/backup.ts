/**
 * Backup (vzdump) of one guest to a storage. Proxmox names each archive by time, so a second vzdump
 * makes a second backup. The plan id, written into the archive's notes, is what lets a retried run
 * see the backup an earlier attempt made; see docs/action-taxonomy.md for what remains.
 */
import { z } from 'zod';
import type { GuestKind } from '../guest-state.js';
import { alreadyDone, blocked, defineAction, flag, noInverse, proceed } from './define.js';
import { KINDS, lockedMessage, missing, storageId } from './guest-kind.js';

/** The marker the archive's notes carry: unique per plan, stable across the run's retries. */
export const backupMarker = (planId: string) => `[proxmox-agent ${planId}]`;

const COMPRESS = { none: '0', lzo: 'lzo', gzip: 'gzip', zstd: 'zstd' } as const;

export function backupAction(kind: GuestKind) {
  const k = KINDS[kind];
  return defineAction({
    name: `${k.prefix}.backup`,
    kind,
    summary: `Back up a ${k.title} to a storage (vzdump)`,
    description: `Backs the ${k.noun} up with vzdump in snapshot mode (no downtime) to a storage that accepts backups. The archive's notes carry the plan id, which is how a retried run recognises the backup it already made. Never prunes older backups. For a consistent offline backup, shut the ${k.noun} down first: each interruption is its own reviewed action.`,
    params: z.strictObject({
      storage: storageId.describe('Target storage; its content types must include backup'),
      compress: z.enum(['none', 'lzo', 'gzip', 'zstd']).default('zstd').describe('Archive compression'),
      notes: z
        .string()
        .max(900)
        .regex(/^[^\n\r\\]*$/, 'one line, without backslashes')
        .optional()
        .describe('Notes stored with the archive (Proxmox expands {{guestname}}, {{vmid}}, {{node}}, {{cluster}}); the plan id is appended'),
      protected: z.boolean().default(false).describe('Protect the archive from pruning and deletion'),
    }),
    proxmox: { method: 'POST', path: '/nodes/{node}/vzdump' },
    response: 'task',
    taskTypes: ['vzdump'],
    baseRisk: { nonprod: 'low', prod: 'medium' },
    destructive: false,
    reversible: true,
    needs: { backupStorage: (p) => p.storage },
    assess(state, p, ctx) {
      if (!state.exists) return missing(state);
      const storage = state.backupStorage;
      if (storage && !storage.exists) return blocked(`storage '${p.storage}' does not exist`);
      if (storage && !storage.acceptsBackups) return blocked(`can't use storage '${p.storage}' for backups - wrong content type`);
      const mine = ctx?.planId === undefined ? undefined : storage?.backups.find((b) => b.notes?.includes(backupMarker(ctx.planId!)));
      if (mine) return alreadyDone(`backup ${mine.volid} was made by this plan`);
      if (state.lock) return blocked(lockedMessage(state));
      return proceed();
    },
    pathParams: (state) => ({ node: state.node }),
    proxmoxParams: (p, state, ctx) => {
      const marker = ctx.planId === undefined ? '' : backupMarker(ctx.planId);
      const notes = [p.notes ?? '{{guestname}}', marker].filter(Boolean).join(' ');
      return {
        vmid: String(state.vmid),
        storage: p.storage,
        mode: 'snapshot',
        compress: COMPRESS[p.compress],
        // vzdump prunes older archives by the storage's retention unless told not to.
        remove: flag(false),
        'notes-template': notes,
        ...(p.protected ? { protected: flag(true) } : {}),
      };
    },
    // pve-manager's vzdump exits before forking ("silent exit if specified VMs run on other nodes")
    // when the guest is not on the node asked: the guest moved after it was read. Nothing was backed
    // up; the run fails rather than follow the guest, whose move someone else made (plan again).
    startedNothing: (answer, state) =>
      answer === 'OK'
        ? `vzdump on node '${state.node}' answered "OK" without starting a task: ${k.label} ${state.vmid} is no longer on that node, and vzdump skips guests on other nodes; nothing was backed up`
        : undefined,
    inverse: () => noInverse('a backup changes no guest; removing its archive is not an action proxmox-agent runs'),
  });
}
