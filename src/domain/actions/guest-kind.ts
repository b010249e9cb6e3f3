import { z } from 'zod';
import type { GuestKind, GuestState } from '../guest-state.js';
import { blocked, type Assessment } from './define.js';

/** How QEMU and LXC differ in names alone: action prefix, Proxmox's wording, task type prefix. */
export const KINDS = {
  qemu: { prefix: 'vm', label: 'VM', title: 'QEMU VM', noun: 'VM', task: 'qm' },
  lxc: { prefix: 'ct', label: 'CT', title: 'LXC container', noun: 'container', task: 'vz' },
} as const satisfies Record<GuestKind, { prefix: string; label: string; title: string; noun: string; task: string }>;

/**
 * A guest route below /nodes/{node}/{kind}/{vmid}. The result is a literal type, so an action whose
 * route is not in PROXMOX_ROUTES (e.g. an LXC reset) does not compile.
 */
export function guestRoute<K extends GuestKind, S extends string>(kind: K, suffix: S): `/nodes/{node}/${K}/{vmid}${S}` {
  return `/nodes/{node}/${kind}/{vmid}${suffix}`;
}

export const at = (state: GuestState) => ({ node: state.node, vmid: state.vmid });

/** Proxmox reads this from the config file path; ours names the guest instead. */
export const missing = (state: GuestState): Assessment => blocked(`${KINDS[state.kind].label} ${state.vmid} does not exist`);

/** guest-common `check_lock`: no vmid in the text. */
export const lockedMessage = (state: Pick<GuestState, 'kind' | 'lock'>): string => `${KINDS[state.kind].label} is locked (${state.lock})`;

/** `VM 100 not running` / `CT 300 not running`, as qemu-server and pve-container say it. */
export const notRunning = (state: GuestState): Assessment => blocked(`${KINDS[state.kind].label} ${state.vmid} not running`);

/** Seconds Proxmox waits, for the power calls' `timeout`. */
export const waitSeconds = (what: string) => z.number().int().min(0).max(86400).optional().describe(what);

export const timeoutParam = (timeout: number | undefined): Record<string, number> => (timeout === undefined ? {} : { timeout });

/** Proxmox `pve-node`. */
export const nodeName = z
  .string()
  .regex(/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/, 'must be a Proxmox node name (letters, digits and "-")')
  .max(63);

/** Proxmox `pve-storage-id`. */
export const storageId = z
  .string()
  .regex(/^[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]$/, 'must be a Proxmox storage id (a letter, then letters, digits, "-", "_", ".")');

/** Proxmox `dns-name`: the format of a VM name and a container hostname. */
export const dnsName = z
  .string()
  .max(255)
  .regex(
    /^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/,
    'must be a DNS name: letters, digits and inner "-", labels separated by "."',
  );

/** Proxmox `pve-vmid`. */
export const guestId = z.number().int().min(100).max(999_999_999);
