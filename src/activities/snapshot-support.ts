import type { GuestState } from '../domain/guest-state.js';
import { snapshotSupport, type StorageType } from '../domain/safeguard.js';
import type { ProxmoxClient } from '../proxmox/index.js';
import type { CallOptions } from '../proxmox/tasks.js';
import { readRetrying } from './guest-reader.js';

/**
 * Whether the guest can be snapshotted, for a plan whose policy asks for `safeguard: snapshot`: its
 * disks (the config the preflight read) and the types of the node's storages (one GET, read only
 * for such plans, so other plans read exactly what they did). A guest read without its config has
 * no disks to judge: it is reported as not known to snapshot (fail closed).
 */
export async function readSnapshotSupport(client: ProxmoxClient, state: GuestState, opts: CallOptions = {}): Promise<GuestState['snapshotSupport']> {
  if (!state.config) return { capable: false, reason: "the guest's disks were not read" };
  const storages = (await readRetrying(() => client.request('GET', '/nodes/{node}/storage', { node: state.node }, undefined, opts))) as Partial<StorageType>[];
  const typed = storages.filter((s): s is StorageType => typeof s.storage === 'string' && typeof s.type === 'string');
  return snapshotSupport(state.kind, state.config, typed);
}
