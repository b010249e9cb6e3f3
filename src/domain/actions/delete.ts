/** Delete (destroy) for QEMU and LXC: a guest that no longer exists is done. */
import { z } from 'zod';
import type { GuestKind } from '../guest-state.js';
import { alreadyDone, blocked, defineAction, flag, noInverse, proceed } from './define.js';
import { at, guestRoute, KINDS, lockedMessage } from './guest-kind.js';

export function deleteAction(kind: GuestKind) {
  const k = KINDS[kind];
  return defineAction({
    name: `${k.prefix}.delete`,
    kind,
    summary: `Delete a ${k.title} and its disks`,
    description: `Destroys a stopped ${k.noun}. Irreversible. With purge, also removes it from backup jobs, replication and HA. A ${k.noun} that no longer exists is recorded as a no-op.`,
    params: z.strictObject({
      purge: z.boolean().default(false).describe(`Also remove the ${k.noun} from backup, replication and HA configuration`),
      destroyUnreferencedDisks: z.boolean().default(false).describe('Also destroy disks not referenced in the config'),
    }),
    proxmox: { method: 'DELETE', path: guestRoute(kind, '') },
    response: 'task',
    taskTypes: [`${k.task}destroy`],
    baseRisk: { nonprod: 'high', prod: 'critical' },
    destructive: true,
    reversible: false,
    needs: { config: true },
    assess(state, p) {
      if (!state.exists) return alreadyDone(`${k.label} ${state.vmid} does not exist`);
      if (state.protection) return blocked(`can't remove ${k.label} ${state.vmid} - protection mode enabled`);
      if (state.status === 'running') {
        return blocked(kind === 'qemu' ? `VM ${state.vmid} is running - destroy failed` : `unable to destroy CT ${state.vmid} - container is running`);
      }
      if (state.haManaged && !p.purge)
        return blocked(`unable to remove ${k.label} ${state.vmid} - used in HA resources and purge parameter not set.`);
      if (state.lock) return blocked(lockedMessage(state));
      return proceed();
    },
    pathParams: at,
    proxmoxParams: (p) => ({
      purge: flag(p.purge),
      'destroy-unreferenced-disks': flag(p.destroyUnreferencedDisks),
    }),
    settled: (state) => !state.exists,
    inverse: () => noInverse(`a deleted ${k.noun} and its disks are gone; restore a backup instead`),
  });
}
