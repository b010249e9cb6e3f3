/** What the routes report of a stored guest that is derived rather than stored: its name, label, QEMU run status and HA service. */
import type { GuestType, HaCrmState, StoredGuest } from './model-types.js';

export function guestName(g: StoredGuest): string {
  return (g.type === 'qemu' ? g.config.name : g.config.hostname) ?? `${g.type === 'qemu' ? 'VM' : 'CT'} ${g.vmid}`;
}

export function qmpStatus(g: StoredGuest): 'running' | 'paused' | 'stopped' {
  if (g.status !== 'running') return 'stopped';
  return g.paused ? 'paused' : 'running';
}

export function guestLabel(g: { type: GuestType }): 'VM' | 'CT' {
  return g.type === 'qemu' ? 'VM' : 'CT';
}

/** The HA service id of a guest (`vm:100`, `ct:300`). */
export function haSid(g: { type: GuestType; vmid: number }): string {
  return `${g.type === 'qemu' ? 'vm' : 'ct'}:${g.vmid}`;
}

/** What manager_status says of an HA guest: an injected state, a move in progress, else the requested state. */
export function haCrmState(g: StoredGuest): HaCrmState {
  if (g.haCrmOverride) return g.haCrmOverride;
  if (g.haMovingTo) return g.type === 'qemu' ? 'migrate' : 'relocate';
  return g.haState ?? 'started';
}
