import { z } from 'zod';
import { blocked, defineAction, flag, inverseBy, proceed } from './define.js';
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

// Proxmox does not report whether a container is frozen (status stays "running"), so these two
// cannot recognise a repeat from state. Both are harmless to repeat: freezing a frozen container or
// thawing a thawed one changes nothing.
const freezeAssess = (state: Parameters<typeof missing>[0]) => {
  if (!state.exists) return missing(state);
  if (state.status !== 'running') return notRunning(state);
  if (state.lock) return blocked(lockedMessage(state));
  return proceed();
};

export const ctSuspend = defineAction({
  name: 'ct.suspend',
  kind: 'lxc',
  summary: 'Freeze a running LXC container',
  description:
    'Freezes every process of the container (cgroup freezer); ct.resume thaws it. Proxmox still reports the container as running and does not say whether it is frozen, so a repeat is sent again (freezing a frozen container changes nothing). Proxmox marks container suspend as experimental.',
  params: z.strictObject({}),
  proxmox: { method: 'POST', path: guestRoute('lxc', '/status/suspend') },
  response: 'task',
  taskTypes: ['vzsuspend'],
  baseRisk: { nonprod: 'medium', prod: 'high' },
  destructive: false,
  reversible: true,
  needs: {},
  assess: freezeAssess,
  pathParams: at,
  proxmoxParams: () => ({}),
  inverse: (_p, state) => inverseBy('ct.resume', state.vmid, {}, `thaws CT ${state.vmid}`),
});

export const ctResume = defineAction({
  name: 'ct.resume',
  kind: 'lxc',
  summary: 'Thaw a frozen LXC container',
  description: 'Thaws a container frozen by ct.suspend. Thawing a container that is not frozen changes nothing.',
  params: z.strictObject({}),
  proxmox: { method: 'POST', path: guestRoute('lxc', '/status/resume') },
  response: 'task',
  taskTypes: ['vzresume'],
  baseRisk: { nonprod: 'low', prod: 'medium' },
  destructive: false,
  reversible: true,
  needs: {},
  assess: freezeAssess,
  pathParams: at,
  proxmoxParams: () => ({}),
  inverse: (_p, state) => inverseBy('ct.suspend', state.vmid, {}, `freezes CT ${state.vmid} again`),
});
