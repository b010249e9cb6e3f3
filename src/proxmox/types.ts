// Response shapes of the reads this project uses, from the `returns` schemas in apidata.js
// (pve-docs 9.1.3). They are declarations, not runtime checks: Proxmox is trusted to send what it
// documents, and fields it marks optional are optional here. Index signatures keep the rest.
import type { UpidParts } from './upid.js';

export type GuestKind = 'qemu' | 'lxc';

/** GET /version */
export interface VersionInfo {
  version: string;
  release: string;
  repoid: string;
  console?: 'applet' | 'vv' | 'html5' | 'xtermjs';
}

/** GET /access/permissions: path → privilege → propagate (1) or only on that path (0). */
export type EffectivePermissions = Record<string, Record<string, 0 | 1 | boolean>>;

/** GET /nodes */
export interface NodeListEntry {
  node: string;
  status: 'online' | 'offline' | 'unknown';
  cpu?: number;
  maxcpu?: number;
  mem?: number;
  maxmem?: number;
  uptime?: number;
  level?: string;
  ssl_fingerprint?: string;
  [key: string]: unknown;
}

export type ClusterResourceType = 'vm' | 'storage' | 'node' | 'sdn';

/** GET /cluster/resources */
export interface ClusterResource {
  /** e.g. `qemu/100`, `node/pve1`, `storage/pve1/local`. */
  id: string;
  type: 'node' | 'storage' | 'pool' | 'qemu' | 'lxc' | 'openvz' | 'sdn' | 'network' | (string & {});
  node?: string;
  vmid?: number;
  name?: string;
  status?: string;
  lock?: string;
  template?: 0 | 1;
  hastate?: string;
  pool?: string;
  tags?: string;
  cpu?: number;
  maxcpu?: number;
  mem?: number;
  maxmem?: number;
  disk?: number;
  maxdisk?: number;
  uptime?: number;
  storage?: string;
  [key: string]: unknown;
}

/** GET /nodes/{node}/{qemu|lxc}/{vmid}/status/current */
export interface GuestStatus {
  vmid: number;
  status: 'running' | 'stopped';
  /** QEMU only: a paused VM is `status: running` with `qmpstatus: paused`. */
  qmpstatus?: string;
  lock?: string;
  name?: string;
  tags?: string;
  template?: 0 | 1 | boolean;
  uptime?: number;
  pid?: number;
  cpus?: number;
  maxmem?: number;
  maxdisk?: number;
  ha?: { managed: 0 | 1; state?: string; group?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/**
 * GET /nodes/{node}/{qemu|lxc}/{vmid}/config: the config file as key/value pairs. `digest` is the
 * SHA-1 of the file; send it back on PUT/POST config and resize to refuse concurrent changes.
 */
/**
 * One key of GET …/{vmid}/pending: `value` is what the guest runs with, `pending` the value that
 * waits for its next start or reboot, `delete` (1, or 2 for a forced removal) a removal that waits.
 */
export interface PendingConfigEntry {
  key: string;
  value?: string | number;
  pending?: string | number;
  delete?: 1 | 2;
}

export interface GuestConfig {
  digest: string;
  lock?: string;
  name?: string;
  hostname?: string;
  cores?: number;
  sockets?: number;
  memory?: number | string;
  protection?: 0 | 1;
  tags?: string;
  [key: string]: string | number | undefined;
}

/** GET /nodes/{node}/{qemu|lxc}/{vmid}/snapshot (includes a `current` pseudo-entry). */
export interface SnapshotEntry {
  name: string;
  description?: string;
  parent?: string;
  snaptime?: number;
  vmstate?: 0 | 1;
  [key: string]: unknown;
}

/** GET /nodes/{node}/tasks/{upid}/status: the UPID's fields, then where the task is. */
export interface TaskStatus extends UpidParts {
  upid: string;
  status: 'running' | 'stopped';
  /** Present once stopped: `OK`, `WARNINGS: n`, `unexpected status`, or the error text. */
  exitstatus?: string;
  [key: string]: unknown;
}

/** One line of GET /nodes/{node}/tasks/{upid}/log (`n` counts from 1). */
export interface TaskLogLine {
  n: number;
  t: string;
}

export interface TaskLogPage {
  lines: TaskLogLine[];
  /** Total number of lines in the log (the envelope's `total`), when Proxmox sent it. */
  total: number | undefined;
}

/** GET /nodes/{node}/tasks: the UPID's fields, the end time and exit status of a finished task. */
export interface TaskListEntry extends UpidParts {
  upid: string;
  endtime?: number;
  status?: string;
  [key: string]: unknown;
}

export interface TaskListFilters {
  typefilter?: string;
  vmid?: number;
  source?: 'archive' | 'active' | 'all';
  statusfilter?: string;
  errors?: boolean;
  userfilter?: string;
  since?: number;
  until?: number;
  start?: number;
  limit?: number;
}
