/**
 * Disk resize for QEMU and LXC, grow only. The size is absolute: a disk already at that size is
 * done, which makes a retry safe; a relative `+8G` would grow the disk again on every retry.
 */
import { z } from 'zod';
import type { GuestKind } from '../guest-state.js';
import { alreadyDone, blocked, defineAction, noInverse, proceed } from './define.js';
import { at, guestRoute, KINDS, lockedMessage, missing } from './guest-kind.js';
import { formatSize, parseDisk, parseSize, RESIZABLE_DISKS } from './disks.js';

export const absoluteSize = z
  .string()
  .regex(/^\d+(\.\d+)?[KMGT]$/, 'an absolute size with a unit, e.g. 48G (relative sizes like +8G are not accepted: a retry would grow the disk twice)')
  .describe('The new total size, e.g. 48G (K, M, G, T: powers of 1024); must be larger than the current size');

const sizeOf = (value: string | undefined) => (value === undefined ? undefined : parseDisk('', value).size);

export function diskResizeAction(kind: GuestKind) {
  const k = KINDS[kind];
  const disks = RESIZABLE_DISKS[kind];
  return defineAction({
    name: `${k.prefix}.disk.resize`,
    kind,
    summary: `Grow a disk of a ${k.title}`,
    description: `Grows one disk to an absolute size. Disks cannot shrink, so this cannot be undone. A disk already at that size is a no-op. Guarded by the config digest read at plan time. ${kind === 'qemu' ? 'The guest OS must grow its partition and filesystem itself.' : 'Proxmox also grows the filesystem on the volume.'}`,
    params: z.strictObject({
      disk: z.enum(disks).describe(kind === 'qemu' ? 'The disk, e.g. scsi0' : 'rootfs or a mount point mpN'),
      size: absoluteSize,
    }),
    proxmox: { method: 'PUT', path: guestRoute(kind, '/resize') },
    response: 'task-or-sync',
    taskTypes: ['resize'],
    baseRisk: { nonprod: 'medium', prod: 'high' },
    destructive: false,
    reversible: false,
    needs: { config: true },
    digestGuard: 'sent',
    assess(state, p) {
      if (!state.exists) return missing(state);
      const value = state.config?.[p.disk];
      if (value === undefined) return blocked(`disk '${p.disk}' does not exist`);
      const disk = parseDisk(p.disk, value);
      if (disk.cdrom) return blocked("you can't resize a cdrom");
      const wanted = parseSize(p.size)!;
      if (disk.size === wanted) return alreadyDone(`disk ${p.disk} is already ${formatSize(wanted)}`);
      if (disk.size !== undefined && disk.size > wanted) {
        return blocked(kind === 'qemu' ? 'shrinking disks is not supported' : 'unable to shrink disk size');
      }
      if (state.lock) return blocked(lockedMessage(state));
      return proceed(disk.size === undefined ? undefined : `grows ${p.disk} from ${formatSize(disk.size)} to ${formatSize(wanted)}`);
    },
    pathParams: at,
    proxmoxParams: (p, _state, ctx) => ({
      disk: p.disk,
      size: p.size,
      ...(ctx.plannedDigest === undefined ? {} : { digest: ctx.plannedDigest }),
    }),
    settled: (state, p) => (sizeOf(state.config?.[p.disk]) ?? 0) >= parseSize(p.size)!,
    inverse: () => noInverse('disks cannot shrink: a grown disk stays grown'),
  });
}
