import { z } from 'zod';
import { alreadyDone, blocked, configId, defineAction, flag, proceed } from './define.js';

export const vmSnapshotCreate = defineAction({
  name: 'vm.snapshot.create',
  kind: 'qemu',
  summary: 'Take a snapshot of a QEMU VM',
  description:
    'Creates a named snapshot. The name is the idempotency key on Proxmox: if a snapshot with that name exists, the run records a no-op.',
  params: z.strictObject({
    snapname: configId.describe('Snapshot name (pve-configid)'),
    description: z.string().max(8192).optional().describe('Free-text note stored with the snapshot'),
    vmstate: z.boolean().default(false).describe('Include the RAM state (running VMs only)'),
  }),
  proxmox: { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/snapshot' },
  taskTypes: ['qmsnapshot'],
  baseRisk: { nonprod: 'low', prod: 'medium' },
  destructive: false,
  reversible: true,
  needs: { snapshots: true },
  assess(state, p) {
    if (!state.exists) return blocked(`VM ${state.vmid} does not exist`);
    if (state.template) return blocked("you can't take a snapshot if it's a template");
    if (state.snapshots.includes(p.snapname)) return alreadyDone(`snapshot '${p.snapname}' already exists`);
    return proceed();
  },
  pathParams: (state) => ({ node: state.node, vmid: state.vmid }),
  proxmoxParams: (p) => ({
    snapname: p.snapname,
    ...(p.description === undefined ? {} : { description: p.description }),
    ...(p.vmstate ? { vmstate: flag(true) } : {}),
  }),
  settled: (state, p) => state.snapshots.includes(p.snapname),
});
