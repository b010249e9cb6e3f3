import type { BackupStorage, GuestKind, GuestState, PeerGuest } from '../domain/guest-state.js';
import type { ActionDefinition } from '../domain/actions/define.js';
import { isDiskKey } from '../domain/actions/disks.js';
import { isRetryableProxmoxError, ProxmoxNotFoundError, type ProxmoxClient } from '../proxmox/index.js';
import type { CallOptions } from '../proxmox/tasks.js';

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

/** Config keys the catalog compares; everything else (cloud-init secrets, hookscripts...) stays out of plans. */
const CONFIG_KEYS = new Set(['cores', 'sockets', 'memory', 'balloon', 'swap', 'name', 'hostname', 'description', 'tags', 'onboot', 'protection', 'template']);

/**
 * Read what the action needs to know about its target, in as few calls as it can:
 * /cluster/resources (node, kind, pool, tags, and the peer guest), status/current (status,
 * qmpstatus, lock, HA), and, only when the action needs them, the config (digest, protection, the
 * compared keys), the snapshot list, and the backup storage with this guest's backups in it.
 * Without `target.node` the guest is found wherever it is (migrate looks on the target too).
 */
export async function readGuest(
  client: ProxmoxClient,
  action: Pick<ActionDefinition, 'kind' | 'needs'>,
  target: { node?: string; vmid: number },
  params: Record<string, unknown> = {},
  opts: CallOptions = {},
): Promise<GuestState> {
  const resources = (await readRetrying(() => client.clusterResources('vm', opts))) as ClusterResource[];
  const found = resources.find((r) => r.vmid === target.vmid && (r.type === 'qemu' || r.type === 'lxc'));
  const kind: GuestKind = action.kind;
  const peerId = action.needs.peer?.(params);
  const peer = peerId === undefined ? undefined : peerOf(resources, peerId);
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
    ...(peer ? { peer } : {}),
  };
  if (!found || found.type !== kind || (target.node !== undefined && found.node !== target.node)) return absent;
  const node = found.node!;
  // The node is known: the reads left are independent of each other, so they go out together (a
  // guest deleted meanwhile answers 404 to each of them).
  let reads: [Record<string, unknown>, Record<string, unknown> | undefined, { name: string }[] | undefined];
  try {
    reads = await Promise.all([
      readRetrying(() => client.guestStatus(node, kind, target.vmid, opts)) as Promise<Record<string, unknown>>,
      action.needs.config ? (readRetrying(() => client.guestConfig(node, kind, target.vmid, {}, opts)) as Promise<Record<string, unknown>>) : undefined,
      action.needs.snapshots ? (readRetrying(() => client.snapshots(node, kind, target.vmid, opts)) as Promise<{ name: string }[]>) : undefined,
    ]);
  } catch (err) {
    // Deleted between the reads.
    if (err instanceof ProxmoxNotFoundError) return absent;
    throw err;
  }
  const [status, config, snaps] = reads;
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
    ...(peer ? { peer } : {}),
  };
  if (config) {
    if (typeof config.digest === 'string') state.digest = config.digest;
    state.protection = Number(config.protection ?? 0) === 1;
    state.config = comparedKeys(kind, config);
  }
  if (snaps) state.snapshots = snaps.map((s) => s.name).filter((n) => n !== 'current');
  const storage = action.needs.backupStorage?.(params);
  if (storage !== undefined) state.backupStorage = await readBackupStorage(client, node, storage, target.vmid, opts);
  return state;
}

function peerOf(resources: ClusterResource[], vmid: number): PeerGuest {
  const r = resources.find((x) => x.vmid === vmid && (x.type === 'qemu' || x.type === 'lxc'));
  if (!r) return { vmid, exists: false };
  return {
    vmid,
    exists: true,
    kind: r.type as GuestKind,
    ...(r.node ? { node: r.node } : {}),
    ...(r.name ? { name: r.name } : {}),
    ...(r.lock ? { lock: r.lock } : {}),
  };
}

function comparedKeys(kind: GuestKind, config: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined || value === null) continue;
    if (CONFIG_KEYS.has(key) || isDiskKey(kind, key)) out[key] = String(value);
  }
  return out;
}

/** The storage as this node sees it, and this guest's backups in it (newest last). */
async function readBackupStorage(client: ProxmoxClient, node: string, storage: string, vmid: number, opts: CallOptions): Promise<BackupStorage> {
  const storages = (await readRetrying(() => client.request('GET', '/nodes/{node}/storage', { node }, undefined, opts))) as { storage: string; content?: string }[];
  const entry = storages.find((s) => s.storage === storage);
  const acceptsBackups = (entry?.content ?? '').split(',').includes('backup');
  if (!entry || !acceptsBackups) return { storage, exists: Boolean(entry), acceptsBackups, backups: [] };
  const content = (await readRetrying(() => client.request('GET', '/nodes/{node}/storage/{storage}/content', { node, storage }, { content: 'backup', vmid }, opts))) as {
    volid: string;
    ctime?: number;
    notes?: string;
  }[];
  const backups = content
    .map((b) => ({ volid: b.volid, ctime: b.ctime ?? 0, ...(b.notes ? { notes: b.notes } : {}) }))
    .sort((a, b) => a.ctime - b.ctime);
  return { storage, exists: true, acceptsBackups, backups };
}

/**
 * One read, retried on a transient Proxmox error (5xx from load, 595/596/599, a dropped connection):
 * reads are safe to repeat, and a plan must not be denied, nor an approved plan failed as stale,
 * because one GET of several met a hiccup. Permanent errors and the last transient one propagate; a
 * retry cut short by the caller's bound (aborted) propagates the failure that made it retry, which
 * says more than "aborted".
 */
export async function readRetrying<T>(fn: () => Promise<T>, attempts = READ_ATTEMPTS, backoffMs = 150): Promise<T> {
  let failed: unknown;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (failed !== undefined && isTimeout(err)) throw failed;
      failed = err;
      if (attempt >= attempts || !isRetryableProxmoxError(err)) throw err;
      await new Promise((r) => setTimeout(r, backoffMs * 2 ** (attempt - 1)));
    }
  }
}
const READ_ATTEMPTS = 3;

/** A read given up by its caller's bound (AbortSignal.timeout) or aborted, not answered by Proxmox. */
export function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

/** Proxmox tags are one string separated by ';' (older versions also ',' or spaces). */
export function splitTags(tags: string | undefined): string[] {
  return (tags ?? '').split(/[;, ]+/).filter(Boolean);
}

function isHaManaged(ha: unknown): boolean {
  return typeof ha === 'object' && ha !== null && Number((ha as { managed?: unknown }).managed ?? 0) === 1;
}
