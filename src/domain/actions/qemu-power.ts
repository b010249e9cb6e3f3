import { z } from 'zod';
import { alreadyDone, blocked, defineAction, flag, inverseBy, noInverse, proceed, type WireParams } from './define.js';
import { at, guestRoute, lockedMessage, missing, notRunning, timeoutParam, waitSeconds } from './guest-kind.js';
import { rebootAction, shutdownAction, startAction, stopAction } from './power.js';

export const vmStart = startAction('qemu', {
  params: z.strictObject({ timeout: waitSeconds('Seconds Proxmox waits for the start') }),
  toProxmox: (p) => timeoutParam(p.timeout),
});

export const vmStop = stopAction('qemu', {
  params: z.strictObject({ timeout: waitSeconds('Seconds before Proxmox gives up') }),
  toProxmox: (p) => timeoutParam(p.timeout),
});

export const vmShutdown = shutdownAction('qemu', {
  params: z.strictObject({
    timeout: waitSeconds('Seconds to wait for the guest (Proxmox default: 60)'),
    forceStop: z.boolean().default(false).describe('Hard-stop the VM if the clean shutdown times out'),
  }),
  toProxmox: (p) => ({ ...timeoutParam(p.timeout), forceStop: flag(p.forceStop) }),
});

export const vmReboot = rebootAction('qemu', {
  params: z.strictObject({ timeout: waitSeconds('Seconds to wait for the shutdown part') }),
  toProxmox: (p) => timeoutParam(p.timeout),
});

const hibernated = (state: { status?: string; lock?: string }) => state.status === 'stopped' && state.lock === 'suspended';

export const vmSuspend = defineAction({
  name: 'vm.suspend',
  kind: 'qemu',
  summary: 'Pause a running QEMU VM, or hibernate it to disk',
  description:
    'Pauses the VM in RAM (it keeps its memory and stays "running", qmpstatus paused). With todisk, Proxmox saves the RAM to storage and stops the VM (lock "suspended"); vm.resume brings it back either way. A VM already paused (or hibernated, with todisk) is a no-op.',
  params: z.strictObject({
    todisk: z.boolean().default(false).describe('Hibernate: save the RAM to disk and stop the VM'),
  }),
  proxmox: { method: 'POST', path: guestRoute('qemu', '/status/suspend') },
  response: 'task',
  taskTypes: ['qmpause', 'qmsuspend'],
  baseRisk: { nonprod: 'medium', prod: 'high' },
  destructive: false,
  reversible: true,
  needs: {},
  assess(state, p) {
    if (!state.exists) return missing(state);
    if (p.todisk && hibernated(state)) return alreadyDone(`VM ${state.vmid} is already hibernated`);
    if (state.status !== 'running') return notRunning(state);
    if (!p.todisk && state.qmpstatus === 'paused') return alreadyDone(`VM ${state.vmid} is already paused`);
    if (state.lock) return blocked(lockedMessage(state));
    return proceed();
  },
  pathParams: at,
  proxmoxParams: (p): WireParams => (p.todisk ? { todisk: flag(true) } : {}),
  settled: (state, p) => (p.todisk ? hibernated(state) : state.qmpstatus === 'paused'),
  inverse: (_p, state) => inverseBy('vm.resume', state.vmid, {}, `resumes VM ${state.vmid}`),
});

export const vmResume = defineAction({
  name: 'vm.resume',
  kind: 'qemu',
  summary: 'Resume a paused or hibernated QEMU VM',
  description:
    'Resumes a VM paused by vm.suspend, or starts a hibernated one from its saved RAM. A VM that is running and not paused is a no-op.',
  params: z.strictObject({}),
  proxmox: { method: 'POST', path: guestRoute('qemu', '/status/resume') },
  response: 'task',
  taskTypes: ['qmresume'],
  baseRisk: { nonprod: 'low', prod: 'medium' },
  destructive: false,
  reversible: true,
  needs: {},
  assess(state) {
    if (!state.exists) return missing(state);
    if (hibernated(state)) return proceed();
    if (state.status !== 'running') return notRunning(state);
    if (state.qmpstatus !== 'paused') return alreadyDone(`VM ${state.vmid} is running and not paused`);
    if (state.lock) return blocked(lockedMessage(state));
    return proceed();
  },
  pathParams: at,
  proxmoxParams: () => ({}),
  settled: (state) => state.status === 'running' && state.qmpstatus !== 'paused',
  // Whether it was paused in RAM or hibernated is not in the plan's state; pausing is the lesser guess.
  inverse: (_p, state) =>
    hibernated(state)
      ? inverseBy('vm.suspend', state.vmid, { todisk: true }, `hibernates VM ${state.vmid} again`)
      : inverseBy('vm.suspend', state.vmid, {}, `pauses VM ${state.vmid} again`),
});

/** Not idempotent by state: a retry relies on task adoption, and a second reset is what a retry risks. */
export const vmReset = defineAction({
  name: 'vm.reset',
  kind: 'qemu',
  summary: 'Reset a running QEMU VM (hard reboot)',
  description:
    'Resets the VM like the reset button: no clean shutdown, unwritten data in the guest is lost. Prefer vm.reboot. The VM must be running.',
  params: z.strictObject({}),
  proxmox: { method: 'POST', path: guestRoute('qemu', '/status/reset') },
  response: 'task',
  taskTypes: ['qmreset'],
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
  inverse: () => noInverse('a reset cannot be taken back: what the guest had not written is lost'),
});
