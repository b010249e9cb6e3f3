/**
 * What proxmox-agent knows about a guest at one moment: read by the preflight at plan time,
 * read again at apply (staleness) and before every dispatch (exactly-once).
 */
export type GuestKind = 'qemu' | 'lxc';

export interface GuestState {
  exists: boolean;
  kind: GuestKind;
  node: string;
  vmid: number;
  name?: string;
  status?: 'running' | 'stopped';
  /** QEMU only: a paused VM is `status: running` with `qmpstatus: paused`. */
  qmpstatus?: string;
  lock?: string;
  tags: string[];
  pool?: string;
  haManaged: boolean;
  template: boolean;
  protection: boolean;
  /** SHA-1 of the guest config file; changes on every config write. */
  digest?: string;
  snapshots: string[];
}

/** The parts of a guest's state that, if changed between plan and apply, make the plan stale. */
export interface StateFingerprint {
  exists: boolean;
  status?: string;
  lock?: string;
  digest?: string;
}

export function fingerprint(state: GuestState): StateFingerprint {
  return { exists: state.exists, status: state.status, lock: state.lock, digest: state.digest };
}
