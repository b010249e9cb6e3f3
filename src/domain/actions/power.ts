/**
 * Power actions QEMU and LXC share: start, stop, shutdown, reboot. The two differ in the route, the
 * task type, Proxmox's wording and the parameters each endpoint takes, which the kind files pass in.
 * Where Proxmox answers a repeat with a synchronous 500 (LXC start on a running CT, stop of a
 * stopped one), `assess` records the repeat as a no-op before anything is sent.
 */
import type { z } from 'zod';
import type { GuestKind, GuestState } from '../guest-state.js';
import { alreadyDone, blocked, defineAction, inverseBy, noInverse, proceed, type Assessment, type ParamSpec } from './define.js';
import { at, guestRoute, KINDS, lockedMessage, missing } from './guest-kind.js';

/** Locks make start/stop fail inside the task (`VM is locked (backup)`); refuse at plan time instead. */
function lockBlocks(state: GuestState): Assessment | undefined {
  if (!state.lock) return undefined;
  if (state.kind === 'qemu' && state.lock === 'suspended') return blocked(`VM ${state.vmid} is hibernated (lock 'suspended'): use vm.resume`);
  return blocked(lockedMessage(state));
}

export function startAction<P extends z.ZodType>(kind: GuestKind, spec: ParamSpec<P>) {
  const k = KINDS[kind];
  return defineAction({
    name: `${k.prefix}.start`,
    kind,
    summary: `Start a ${k.title}`,
    description: `Powers on a stopped ${k.noun}. A ${k.noun} that is already running is left alone and the run records a no-op.`,
    params: spec.params,
    proxmox: { method: 'POST', path: guestRoute(kind, '/status/start') },
    response: 'task',
    taskTypes: [`${k.task}start`, 'hastart'],
    baseRisk: { nonprod: 'low', prod: 'medium' },
    destructive: false,
    reversible: true,
    needs: {},
    assess(state) {
      if (!state.exists) return missing(state);
      if (state.status === 'running') {
        return state.qmpstatus === 'paused'
          ? blocked(`VM ${state.vmid} is paused: resume it instead`)
          : alreadyDone(`${k.label} ${state.vmid} is already running`);
      }
      // Proxmox fails the start task with this text (vm_start, the CT start worker).
      if (state.template) return blocked(kind === 'qemu' ? "you can't start a vm if it's a template" : "you can't start a CT if it's a template");
      return lockBlocks(state) ?? proceed();
    },
    pathParams: at,
    proxmoxParams: (p) => spec.toProxmox(p),
    settled: (state) => state.status === 'running',
    // A hard stop, as the start found it: stopped, not shut down with the guest's consent.
    inverse: (_p, state) => inverseBy(`${k.prefix}.stop`, state.vmid, {}, `stops ${k.label} ${state.vmid} again`),
  });
}

export function stopAction<P extends z.ZodType>(kind: GuestKind, spec: ParamSpec<P>) {
  const k = KINDS[kind];
  return defineAction({
    name: `${k.prefix}.stop`,
    kind,
    summary: `Stop a ${k.title} (hard power-off)`,
    description: `Stops a ${k.noun} immediately, like pulling the plug. Prefer ${k.prefix}.shutdown for a clean stop.`,
    params: spec.params,
    proxmox: { method: 'POST', path: guestRoute(kind, '/status/stop') },
    response: 'task',
    taskTypes: [`${k.task}stop`, 'hastop'],
    baseRisk: { nonprod: 'medium', prod: 'high' },
    destructive: false,
    reversible: true,
    needs: {},
    assess(state) {
      if (!state.exists) return missing(state);
      if (state.status === 'stopped') return alreadyDone(`${k.label} ${state.vmid} is already stopped`);
      return lockBlocks(state) ?? proceed();
    },
    pathParams: at,
    proxmoxParams: (p) => spec.toProxmox(p),
    settled: (state) => state.status === 'stopped',
    inverse: (_p, state) => inverseBy(`${k.prefix}.start`, state.vmid, {}, `starts ${k.label} ${state.vmid} again`),
  });
}

export function shutdownAction<P extends z.ZodType<{ forceStop: boolean }>>(kind: GuestKind, spec: ParamSpec<P>) {
  const k = KINDS[kind];
  return defineAction({
    name: `${k.prefix}.shutdown`,
    kind,
    summary: `Shut a ${k.title} down cleanly`,
    description:
      kind === 'qemu'
        ? 'Asks the guest OS to power off (ACPI). With forceStop, Proxmox stops the VM if it has not shut down within timeout seconds.'
        : 'Asks the container to shut down cleanly. With forceStop, Proxmox stops it if it has not shut down within timeout seconds.',
    params: spec.params,
    proxmox: { method: 'POST', path: guestRoute(kind, '/status/shutdown') },
    response: 'task',
    taskTypes: [`${k.task}shutdown`, 'hastop'],
    baseRisk: { nonprod: 'medium', prod: 'high' },
    destructive: false,
    reversible: true,
    needs: {},
    assess(state, p) {
      if (!state.exists) return missing(state);
      if (state.status === 'stopped') return alreadyDone(`${k.label} ${state.vmid} is already stopped`);
      if (state.qmpstatus === 'paused' && !p.forceStop) return blocked('VM is paused - cannot shutdown (set forceStop)');
      return lockBlocks(state) ?? proceed();
    },
    pathParams: at,
    proxmoxParams: (p) => spec.toProxmox(p),
    settled: (state) => state.status === 'stopped',
    inverse: (_p, state) => inverseBy(`${k.prefix}.start`, state.vmid, {}, `starts ${k.label} ${state.vmid} again`),
  });
}

/** Not idempotent by state (a rebooted guest looks like any running one): a retry relies on task adoption. */
export function rebootAction<P extends z.ZodType>(kind: GuestKind, spec: ParamSpec<P>) {
  const k = KINDS[kind];
  return defineAction({
    name: `${k.prefix}.reboot`,
    kind,
    summary: `Reboot a running ${k.title}`,
    description: `Shuts the ${k.noun} down cleanly and starts it again. The ${k.noun} must be running.`,
    params: spec.params,
    proxmox: { method: 'POST', path: guestRoute(kind, '/status/reboot') },
    response: 'task',
    taskTypes: [`${k.task}reboot`],
    baseRisk: { nonprod: 'medium', prod: 'high' },
    destructive: false,
    reversible: true,
    needs: {},
    assess(state) {
      if (!state.exists) return missing(state);
      // pve-container says "VM" here too (LXC/Status.pm).
      if (state.status !== 'running') return blocked(`VM ${state.vmid} not running`);
      return lockBlocks(state) ?? proceed();
    },
    pathParams: at,
    proxmoxParams: (p) => spec.toProxmox(p),
    inverse: () => noInverse(`a reboot leaves the ${k.noun} running as before: there is nothing to take back`),
  });
}
