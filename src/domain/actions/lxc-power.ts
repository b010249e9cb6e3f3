import { z } from 'zod';
import { alreadyDone, blocked, defineAction, flag, inverseBy, proceed } from './define.js';
import { at, guestRoute, lockedMessage, missing, notRunning, timeoutParam, waitSeconds } from './guest-kind.js';
import { rebootAction, shutdownAction, startAction, stopAction } from './power.js';

// LXC start and stop take no timeout (apidata); a running CT answers start with a synchronous
// 500 `CT 300 already running`, a stopped one answers stop with `CT 300 not running`.
export const ctStart = startAction('lxc', { params: z.strictObject({}), toProxmox: () => ({}) });

export const ctStop = stopAction('lxc', { params: z.strictObject({}), toProxmox: () => ({}) });

export const ctShutdown = shutdownAction('lxc', {
  params: z.strictObject({
    timeout: waitSeconds('Seconds to wait for the container (Proxmox default: 60)'),
    forceStop: z.boolean().default(false).describe('Stop the container if the clean shutdown times out'),
  }),
  toProxmox: (p) => ({ ...timeoutParam(p.timeout), forceStop: flag(p.forceStop) }),
});

export const ctReboot = rebootAction('lxc', {
  params: z.strictObject({ timeout: waitSeconds('Seconds to wait for the shutdown part') }),
  toProxmox: (p) => timeoutParam(p.timeout),
});

// Container suspend is a CRIU checkpoint (pve-container runs `lxc-checkpoint -s`): the processes
// are dumped to /var/lib/vz/dump and the container stops. Resume (`lxc-checkpoint -r`) restores
// them; Proxmox refuses it for a running container (`CT 300 already running`). A stopped container
// does not say whether a checkpoint waits for it, so a stopped one is not "already suspended".
export const ctSuspend = defineAction({
  name: 'ct.suspend',
  kind: 'lxc',
  summary: 'Checkpoint a running LXC container to disk and stop it',
  description:
    'Proxmox checkpoints the container with CRIU (lxc-checkpoint) into /var/lib/vz/dump and stops it: it then reads "stopped". ct.resume restores the processes from that checkpoint. Proxmox marks container suspend as experimental; containers CRIU cannot dump make the task fail and keep running.',
  params: z.strictObject({}),
  proxmox: { method: 'POST', path: guestRoute('lxc', '/status/suspend') },
  response: 'task',
  taskTypes: ['vzsuspend'],
  baseRisk: { nonprod: 'medium', prod: 'high' },
  destructive: false,
  reversible: true,
  needs: {},
  assess(state) {
    if (!state.exists) return missing(state);
    if (state.status !== 'running') return notRunning(state);
    if (state.lock) return blocked(lockedMessage(state));
    return proceed();
  },
  pathParams: at,
  proxmoxParams: () => ({}),
  settled: (state) => state.status === 'stopped',
  inverse: (_p, state) => inverseBy('ct.resume', state.vmid, {}, `restores CT ${state.vmid} from its checkpoint`),
});

export const ctResume = defineAction({
  name: 'ct.resume',
  kind: 'lxc',
  summary: 'Restore an LXC container from its suspend checkpoint',
  description:
    'Restores a container stopped by ct.suspend from its checkpoint, so it runs again where it left off. A running container is a no-op. A stopped container without a checkpoint makes the Proxmox task fail (start it with ct.start instead).',
  params: z.strictObject({}),
  proxmox: { method: 'POST', path: guestRoute('lxc', '/status/resume') },
  response: 'task',
  taskTypes: ['vzresume'],
  baseRisk: { nonprod: 'low', prod: 'medium' },
  destructive: false,
  reversible: true,
  needs: {},
  assess(state) {
    if (!state.exists) return missing(state);
    if (state.status === 'running') return alreadyDone(`CT ${state.vmid} is already running`);
    // Proxmox's resume checks no lock, but restoring under a backup or snapshot lock is not safe.
    if (state.lock) return blocked(lockedMessage(state));
    return proceed();
  },
  pathParams: at,
  proxmoxParams: () => ({}),
  settled: (state) => state.status === 'running',
  inverse: (_p, state) => inverseBy('ct.suspend', state.vmid, {}, `checkpoints and stops CT ${state.vmid} again`),
});
