/**
 * Migrate for QEMU and LXC. The guest's node is the idempotency key: a guest already on the target
 * is done. The run ends when the guest is seen on the target (HA migrations end their task first).
 */
import type { z } from 'zod';
import type { GuestKind, GuestState } from '../guest-state.js';
import { alreadyDone, blocked, defineAction, inverseBy, proceed, type Assessment, type ParamSpec } from './define.js';
import { at, guestRoute, KINDS, lockedMessage, missing } from './guest-kind.js';

export function migrateAction<P extends z.ZodType<{ target: string }>>(
  kind: GuestKind,
  spec: ParamSpec<P> & { description: string; runningRefusal(state: GuestState, params: z.output<P>): Assessment | undefined },
) {
  const k = KINDS[kind];
  return defineAction({
    name: `${k.prefix}.migrate`,
    kind,
    summary: `Move a ${k.title} to another node`,
    description: spec.description,
    params: spec.params,
    proxmox: { method: 'POST', path: guestRoute(kind, '/migrate') },
    response: 'task',
    taskTypes: [kind === 'qemu' ? 'qmigrate' : 'vzmigrate', 'hamigrate'],
    baseRisk: { nonprod: 'medium', prod: 'high' },
    destructive: false,
    reversible: true,
    needs: {},
    destination: (p) => p.target,
    assess(state, p) {
      if (!state.exists) return missing(state);
      if (state.node === p.target) return alreadyDone(`${k.label} ${state.vmid} is already on node '${p.target}'`);
      if (state.lock) return blocked(lockedMessage(state));
      return spec.runningRefusal(state, p) ?? proceed();
    },
    pathParams: at,
    proxmoxParams: (p) => ({ target: p.target, ...spec.toProxmox(p) }),
    settled: (state, p) => state.exists && state.node === p.target,
    // Back to the node the plan found it on, the same way (online, local disks) it left.
    inverse: (p, state) => inverseBy(`${k.prefix}.migrate`, state.vmid, { ...p, target: state.node }, `moves ${k.label} ${state.vmid} back to node '${state.node}'`),
  });
}
