import type { GuestKind, GuestState } from '../domain/guest-state.js';
import type { ActionDefinition } from '../domain/actions/define.js';
import { ProxmoxNotFoundError, type ProxmoxClient } from '../proxmox/index.js';

interface ClusterResource {
  type: string;
  vmid?: number;
  node?: string;
  name?: string;
  status?: string;
  lock?: string;
  tags?: string;
  pool?: string;
  template?: number;
  hastate?: string;
}

/**
 * Read what the action needs to know about its target, in as few calls as it can:
 * /cluster/resources (node, kind, pool, tags), status/current (status, qmpstatus, lock, HA),
 * and, only when the action needs them, the config (digest, protection) and the snapshot list.
 */
export async function readGuest(
  client: ProxmoxClient,
  action: Pick<ActionDefinition, 'kind' | 'needs'>,
  target: { node?: string; vmid: number },
): Promise<GuestState> {
  const resources = (await client.clusterResources('vm')) as ClusterResource[];
  const found = resources.find((r) => r.vmid === target.vmid && (r.type === 'qemu' || r.type === 'lxc'));
  const kind: GuestKind = action.kind;
  const absent: GuestState = {
    exists: false,
    kind,
    node: target.node ?? found?.node ?? '',
    vmid: target.vmid,
    tags: [],
    haManaged: false,
    template: false,
    protection: false,
    snapshots: [],
  };
  if (!found || found.type !== kind || (target.node !== undefined && found.node !== target.node)) return absent;
  const node = found.node!;
  let status: Record<string, unknown>;
  try {
    status = (await client.guestStatus(node, kind, target.vmid)) as Record<string, unknown>;
  } catch (err) {
    // Deleted between the two reads.
    if (err instanceof ProxmoxNotFoundError) return absent;
    throw err;
  }
  const state: GuestState = {
    exists: true,
    kind,
    node,
    vmid: target.vmid,
    ...(found.name ? { name: found.name } : {}),
    status: status.status === 'running' ? 'running' : 'stopped',
    ...(typeof status.qmpstatus === 'string' ? { qmpstatus: status.qmpstatus } : {}),
    ...(typeof status.lock === 'string' && status.lock ? { lock: status.lock } : {}),
    tags: splitTags(found.tags ?? (status.tags as string | undefined)),
    ...(found.pool ? { pool: found.pool } : {}),
    haManaged: isHaManaged(status.ha),
    template: Boolean(found.template ?? status.template),
    protection: false,
    snapshots: [],
  };
  if (action.needs.config) {
    const config = (await client.guestConfig(node, kind, target.vmid)) as Record<string, unknown>;
    if (typeof config.digest === 'string') state.digest = config.digest;
    state.protection = Number(config.protection ?? 0) === 1;
  }
  if (action.needs.snapshots) {
    const snaps = (await client.snapshots(node, kind, target.vmid)) as { name: string }[];
    state.snapshots = snaps.map((s) => s.name).filter((n) => n !== 'current');
  }
  return state;
}

/** Proxmox tags are one string separated by ';' (older versions also ',' or spaces). */
export function splitTags(tags: string | undefined): string[] {
  return (tags ?? '').split(/[;, ]+/).filter(Boolean);
}

function isHaManaged(ha: unknown): boolean {
  return typeof ha === 'object' && ha !== null && Number((ha as { managed?: unknown }).managed ?? 0) === 1;
}
