import { z } from 'zod';
import { alreadyDone, blocked, defineAction, flag, proceed } from './define.js';
import type { GuestState } from '../guest-state.js';

const guestPath = '/nodes/{node}/qemu/{vmid}';
const at = (state: GuestState) => ({ node: state.node, vmid: state.vmid });
const seconds = (max: number) => z.number().int().min(0).max(max);
const timeoutParam = (timeout: number | undefined): Record<string, number> => (timeout === undefined ? {} : { timeout });

function missing(state: GuestState) {
  return blocked(`VM ${state.vmid} does not exist`);
}

export const vmStart = defineAction({
  name: 'vm.start',
  kind: 'qemu',
  summary: 'Start a QEMU VM',
  description: 'Powers on a stopped VM. A VM that is already running is left alone and the run records a no-op.',
  params: z.strictObject({ timeout: seconds(86400).optional().describe('Seconds Proxmox waits for the start') }),
  proxmox: { method: 'POST', path: `${guestPath}/status/start` },
  taskTypes: ['qmstart', 'hastart'],
  baseRisk: { nonprod: 'low', prod: 'medium' },
  destructive: false,
  reversible: true,
  needs: {},
  assess(state) {
    if (!state.exists) return missing(state);
    if (state.status === 'running') {
      return state.qmpstatus === 'paused'
        ? blocked(`VM ${state.vmid} is paused: resume it instead`)
        : alreadyDone(`VM ${state.vmid} is already running`);
    }
    return proceed();
  },
  pathParams: at,
  proxmoxParams: (p) => timeoutParam(p.timeout),
  settled: (state) => state.status === 'running',
});

export const vmStop = defineAction({
  name: 'vm.stop',
  kind: 'qemu',
  summary: 'Stop a QEMU VM (hard power-off)',
  description: 'Stops a VM immediately, like pulling the plug. Prefer vm.shutdown for a clean stop.',
  params: z.strictObject({ timeout: seconds(86400).optional().describe('Seconds before Proxmox gives up') }),
  proxmox: { method: 'POST', path: `${guestPath}/status/stop` },
  taskTypes: ['qmstop', 'hastop'],
  baseRisk: { nonprod: 'medium', prod: 'high' },
  destructive: false,
  reversible: true,
  needs: {},
  assess(state) {
    if (!state.exists) return missing(state);
    if (state.status === 'stopped') return alreadyDone(`VM ${state.vmid} is already stopped`);
    return proceed();
  },
  pathParams: at,
  proxmoxParams: (p) => timeoutParam(p.timeout),
  settled: (state) => state.status === 'stopped',
});

export const vmShutdown = defineAction({
  name: 'vm.shutdown',
  kind: 'qemu',
  summary: 'Shut a QEMU VM down cleanly',
  description:
    'Asks the guest OS to power off (ACPI). With forceStop, Proxmox stops the VM if it has not shut down within timeout seconds.',
  params: z.strictObject({
    timeout: seconds(86400).optional().describe('Seconds to wait for the guest (Proxmox default: 60)'),
    forceStop: z.boolean().default(false).describe('Hard-stop the VM if the clean shutdown times out'),
  }),
  proxmox: { method: 'POST', path: `${guestPath}/status/shutdown` },
  taskTypes: ['qmshutdown', 'hastop'],
  baseRisk: { nonprod: 'medium', prod: 'high' },
  destructive: false,
  reversible: true,
  needs: {},
  assess(state, p) {
    if (!state.exists) return missing(state);
    if (state.status === 'stopped') return alreadyDone(`VM ${state.vmid} is already stopped`);
    if (state.qmpstatus === 'paused' && !p.forceStop) return blocked('VM is paused - cannot shutdown (set forceStop)');
    return proceed();
  },
  pathParams: at,
  proxmoxParams: (p) => ({ ...timeoutParam(p.timeout), forceStop: flag(p.forceStop) }),
  settled: (state) => state.status === 'stopped',
});

export const vmReboot = defineAction({
  name: 'vm.reboot',
  kind: 'qemu',
  summary: 'Reboot a running QEMU VM',
  description: 'Shuts the guest down cleanly and starts it again. The VM must be running.',
  params: z.strictObject({ timeout: seconds(86400).optional().describe('Seconds to wait for the shutdown part') }),
  proxmox: { method: 'POST', path: `${guestPath}/status/reboot` },
  taskTypes: ['qmreboot'],
  baseRisk: { nonprod: 'medium', prod: 'high' },
  destructive: false,
  reversible: true,
  needs: {},
  assess(state) {
    if (!state.exists) return missing(state);
    if (state.status !== 'running') return blocked(`VM ${state.vmid} not running`);
    return proceed();
  },
  pathParams: at,
  proxmoxParams: (p) => timeoutParam(p.timeout),
});
