import { z } from 'zod';
import { alreadyDone, blocked, defineAction, flag, proceed } from './define.js';

export const vmDelete = defineAction({
  name: 'vm.delete',
  kind: 'qemu',
  summary: 'Delete a QEMU VM and its disks',
  description:
    'Destroys a stopped VM. Irreversible. With purge, also removes it from backup jobs, replication and HA. A VM that no longer exists is recorded as a no-op.',
  params: z.strictObject({
    purge: z.boolean().default(false).describe('Also remove the VM from backup, replication and HA configuration'),
    destroyUnreferencedDisks: z.boolean().default(false).describe('Also destroy disks not referenced in the config'),
  }),
  proxmox: { method: 'DELETE', path: '/nodes/{node}/qemu/{vmid}' },
  taskTypes: ['qmdestroy'],
  baseRisk: { nonprod: 'high', prod: 'critical' },
  destructive: true,
  reversible: false,
  needs: { config: true },
  assess(state, p) {
    if (!state.exists) return alreadyDone(`VM ${state.vmid} does not exist`);
    if (state.protection) return blocked(`can't remove VM ${state.vmid} - protection mode enabled`);
    if (state.status === 'running') return blocked(`VM ${state.vmid} is running - destroy failed`);
    if (state.haManaged && !p.purge)
      return blocked(`unable to remove VM ${state.vmid} - used in HA resources and purge parameter not set.`);
    return proceed();
  },
  pathParams: (state) => ({ node: state.node, vmid: state.vmid }),
  proxmoxParams: (p) => ({
    purge: flag(p.purge),
    'destroy-unreferenced-disks': flag(p.destroyUnreferencedDisks),
  }),
  settled: (state) => !state.exists,
});
