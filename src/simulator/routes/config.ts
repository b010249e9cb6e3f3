/**
 * GET/PUT config for QEMU and LXC, plus the async QEMU `POST config`.
 *
 * Writes are checked in the order of qemu-server's update_vm_api: file lock (injectable contention),
 * digest, guest lock; then `delete` and set keys are applied to the raw config and the digest moves.
 */
import { type Handler, type RequestContext, recordMutation, startTask, str } from '../context.js';
import { die, paramError } from '../errors.js';
import { configDigest, configWithPending, isDiskKey, parseDisk } from '../guest-config.js';
import type { GuestType, StoredGuest } from '../model-types.js';
import type { RouteKey } from '../served-routes.js';
import { routeSchema } from '../schema.js';
import { lookupProp, splitList } from '../validate.js';
import { checkLockSync, loadGuest, maybeLockContention } from './guest-common.js';

/** Parameters of the config routes that are not config keys. */
const META_PARAMS = new Set(['node', 'vmid', 'digest', 'delete', 'revert', 'skiplock', 'background_delay', 'force', 'import-working-storage']);

function putSchemaProps(type: GuestType) {
  return routeSchema(type === 'qemu' ? 'PUT /nodes/{node}/qemu/{vmid}/config' : 'PUT /nodes/{node}/lxc/{vmid}/config').properties;
}

/** Values come back typed as the schema declares them (integers/booleans as JSON numbers). */
export function typedConfig(type: GuestType, conf: Record<string, string>): Record<string, unknown> {
  const props = putSchemaProps(type);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(conf)) {
    const t = lookupProp(props, k)?.type;
    out[k] = (t === 'integer' || t === 'number' || t === 'boolean') && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  }
  return out;
}

const getConfig = (type: GuestType): Handler => (ctx) => {
  const g = loadGuest(ctx, type);
  const snapname = str(ctx, 'snapshot');
  if (snapname !== undefined) {
    const snap = g.snapshots.find((s) => s.name === snapname);
    if (!snap) die(`snapshot '${snapname}' does not exist`);
    // As vm_config does for a snapshot: its own pending changes applied, unless `current=1`.
    const kept = str(ctx, 'current') === '1' || !snap.pending ? { ...snap.config } : configWithPending(snap);
    return {
      ...typedConfig(type, kept),
      snaptime: snap.snaptime,
      ...(snap.parent ? { parent: snap.parent } : {}),
      ...(snap.vmstate ? { vmstate: 1 } : {}),
      digest: configDigest(g),
    };
  }
  // Without `current`, the view is the config with its pending changes applied (vm_config, the
  // CT config GET); `current=1` shows what the guest runs with.
  const conf = str(ctx, 'current') === '1' ? { ...g.config } : configWithPending(g);
  return {
    ...typedConfig(type, conf),
    ...(g.lock ? { lock: g.lock } : {}),
    ...(g.parent ? { parent: g.parent } : {}),
    digest: configDigest(g),
  };
};

function digestMismatchMessage(type: GuestType): string {
  return type === 'qemu'
    ? 'checksum mismatch (file change by other user?)'
    : 'detected modified configuration - file changed by other user? Try again.';
}

/** Check optimistic concurrency: a `digest` that is not the current one is refused. */
export function checkDigest(ctx: RequestContext, g: StoredGuest, message: string): void {
  const digest = str(ctx, 'digest');
  if (digest !== undefined && digest !== configDigest(g)) die(message);
}

/**
 * Tags as PVE stores them (guest-common `get_unique_tags`, default `tag-style`): lower-cased, sorted
 * and de-duplicated, so `Zeta,alpha,zeta` becomes `alpha;zeta`. (A datacenter.cfg `tag-style` with
 * `case-sensitive` or `ordering=config` changes this; the simulator models the default.)
 */
export function uniqueTags(text: string): string {
  const sorted = splitList(text).sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0));
  return [...new Set(sorted.map((t) => t.toLowerCase()))].join(';');
}

function nextUnused(g: StoredGuest): string {
  let i = 0;
  while (g.config[`unused${i}`] !== undefined) i++;
  return `unused${i}`;
}

function nextDiskIndex(g: StoredGuest): number {
  const used = new Set(
    Object.entries(g.config)
      .filter(([k]) => isDiskKey(k))
      .map(([, v]) => /vm-\d+-disk-(\d+)/.exec(parseDisk(v).volid)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number),
  );
  let i = 0;
  while (used.has(i)) i++;
  return i;
}

/** qemu-server $fast_plug_option: written straight into the running VM's config. */
const QEMU_FAST_PLUG = new Set(['description', 'hookscript', 'lock', 'migrate_downtime', 'migrate_speed', 'name', 'onboot', 'protection', 'shares', 'startup', 'tags', 'vmstatestorage']);
/** pve-container $LXC_FASTPLUG_OPTIONS. */
const LXC_FAST_PLUG = new Set(['description', 'onboot', 'startup', 'protection', 'hostname', 'hookscript', 'cores', 'tags', 'lock']);

/** The `hotplug` option: `1` means the default `network,disk,usb`, `0` nothing. */
function hotplugFeatures(g: StoredGuest): Set<string> {
  const raw = g.config.hotplug ?? '1';
  if (raw === '0') return new Set();
  return new Set(splitList(raw === '1' ? 'network,disk,usb' : raw));
}

/**
 * Whether a running guest takes this change at once (vmconfig_hotplug_pending of qemu-server and
 * pve-container); anything else stays in [PENDING] until the next start or reboot. `cores`/`sockets`
 * of a VM are never hotplugged (only `vcpus` with cpu hotplug), `memory` only with memory hotplug;
 * a container takes cores, memory, swap and cgroup limits live.
 */
function hotApplicable(g: StoredGuest, key: string, isDelete: boolean, value?: string): boolean {
  if (g.type === 'lxc') {
    if (LXC_FAST_PLUG.has(key) || key === 'cpulimit' || key === 'cpuunits' || /^net\d+$/.test(key)) return true;
    if (isDelete) return key === 'swap' || key.startsWith('unused');
    // A new mount point or device is hotplugged; one over an existing one waits.
    if (/^(mp|dev)\d+$/.test(key)) return g.config[key] === undefined;
    return key === 'memory' || key === 'swap';
  }
  const hp = hotplugFeatures(g);
  if (QEMU_FAST_PLUG.has(key) || key === 'cpuunits' || key === 'cpulimit' || key === 'balloon') return true;
  if (/^net\d+$/.test(key)) return hp.has('network');
  if (key === 'vcpus') return hp.has('cpu');
  // Changing `hotplug` itself is live unless cpu or memory hotplug is involved before or after.
  if (key === 'hotplug') return !/cpu|memory/.test(`${g.config.hotplug ?? ''} ${isDelete ? '' : (value ?? '')}`);
  if (key === 'memory') return hp.has('memory');
  if (isDiskKey(key) && !key.startsWith('unused')) {
    if (/^(efidisk|tpmstate)\d+$/.test(key)) return false;
    return hp.has('disk') && !(isDelete && /^(ide|sata)\d+$/.test(key));
  }
  return false;
}

/**
 * Applies set/delete/revert to the raw config; returns the keys that changed and, of those, the ones
 * left pending because the guest runs and cannot take them live.
 */
function applyConfig(ctx: RequestContext, g: StoredGuest): { changed: string[]; pending: string[] } {
  const set: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.params)) {
    if (META_PARAMS.has(k) || typeof v !== 'string') continue;
    set[k] = v;
  }
  const deleted = splitList(str(ctx, 'delete') ?? '');
  for (const opt of deleted) {
    if (opt in set) paramError({ delete: `you can't use '-${opt}' and -delete ${opt}' at the same time` });
  }
  const reverted = splitList(str(ctx, 'revert') ?? '');
  for (const opt of reverted) {
    if (opt in set) paramError({ revert: `you can't use '-${opt}' and '-revert ${opt}' at the same time` });
  }
  const protectedNow = g.config.protection === '1' && set.protection !== '0';
  const changed = new Set<string>();
  const pendingNow = new Set<string>();
  const live = g.status === 'running';
  const pending = (g.pending ??= { set: {}, delete: [] });
  const dropPending = (opt: string): void => {
    if (opt in pending.set) { delete pending.set[opt]; changed.add(opt); }
    if (pending.delete.includes(opt)) { pending.delete = pending.delete.filter((k) => k !== opt); changed.add(opt); }
  };

  for (const opt of reverted) dropPending(opt);

  for (const opt of deleted) {
    if (opt === 'lock') {
      if (g.lock) { delete g.lock; changed.add(opt); }
      continue;
    }
    if (opt in pending.set) { delete pending.set[opt]; changed.add(opt); }
    const old = g.config[opt];
    if (old === undefined) continue;
    if (isDiskKey(opt) && protectedNow) die(`can't remove drive '${opt}' - protection mode enabled`);
    if (g.type === 'lxc' && opt === 'rootfs') die(`unable to delete required option 'rootfs'`);
    if (live && !hotApplicable(g, opt, true)) {
      if (!pending.delete.includes(opt)) { pending.delete.push(opt); changed.add(opt); }
      pendingNow.add(opt);
      continue;
    }
    delete g.config[opt];
    // A detached disk is kept as unusedN, like the real servers do.
    if (isDiskKey(opt) && !opt.startsWith('unused') && parseDisk(old).media !== 'cdrom') g.config[nextUnused(g)] = parseDisk(old).volid;
    changed.add(opt);
  }

  for (let [k, v] of Object.entries(set)) {
    if (k === 'lock') {
      if (g.lock !== v) { g.lock = v; changed.add(k); }
      continue;
    }
    if (k === 'tags') v = uniqueTags(v);
    // `storage:SIZE` allocates a new volume of SIZE GiB, as on a real node.
    const alloc = isDiskKey(k) ? /^([a-z][a-z0-9\-_.]*[a-z0-9]):(\d+(?:\.\d+)?)(,.*)?$/i.exec(v) : null;
    if (alloc) {
      if (!ctx.sim.model.storage(alloc[1]!)) die(`storage '${alloc[1]}' does not exist`);
      v = `${alloc[1]}:vm-${g.vmid}-disk-${nextDiskIndex(g)}${alloc[3] ?? ''},size=${alloc[2]}G`;
    }
    if (pending.delete.includes(k)) { pending.delete = pending.delete.filter((d) => d !== k); changed.add(k); }
    if (live && !hotApplicable(g, k, false, v)) {
      // cleanup_pending: a pending value equal to the running one is no change at all.
      if (g.config[k] === v) {
        if (k in pending.set) { delete pending.set[k]; changed.add(k); }
        continue;
      }
      if (pending.set[k] !== v) { pending.set[k] = v; changed.add(k); }
      pendingNow.add(k);
      continue;
    }
    if (k in pending.set) { delete pending.set[k]; changed.add(k); }
    if (g.config[k] !== v) {
      g.config[k] = v;
      changed.add(k);
    }
  }
  if (Object.keys(pending.set).length === 0 && pending.delete.length === 0) delete g.pending;
  return { changed: [...changed].sort(), pending: [...pendingNow].sort() };
}

/** Parameters update_vm_api / update_pct_config extract before asking whether anything is left to do. */
const NOT_OPTIONS = new Set(['node', 'vmid', 'digest', 'background_delay', 'skip_cloud_init', 'import-working-storage', 'skiplock', 'force']);

/** Both servers refuse a write with nothing in it before loading the config: 500 `no options specified`. */
function requireOptions(ctx: RequestContext): void {
  if (!Object.keys(ctx.params).some((k) => !NOT_OPTIONS.has(k))) die('no options specified');
}

function writeConfig(ctx: RequestContext, g: StoredGuest): { changed: string[]; pending: string[] } {
  maybeLockContention(ctx, g);
  checkDigest(ctx, g, digestMismatchMessage(g.type));
  checkLockSync(g);
  return applyConfig(ctx, g);
}

const putConfig = (type: GuestType): Handler => (ctx) => {
  requireOptions(ctx);
  const g = loadGuest(ctx, type);
  const { changed, pending } = writeConfig(ctx, g);
  if (changed.length > 0) recordMutation(ctx, g, 'config', { key: changed.join(','), detail: { changed, sync: true, ...(pending.length ? { pending } : {}) } });
  return null;
};

/**
 * POST config: same checks and write, then a `qmconfig` worker applies hotplug changes. With
 * `background_delay` the server waits for that worker and answers null when it finished OK.
 */
const postConfig: Handler = async (ctx) => {
  requireOptions(ctx);
  const g = loadGuest(ctx, 'qemu');
  const { changed, pending } = writeConfig(ctx, g);
  const upid = startTask(ctx, {
    node: g.node,
    type: 'qmconfig',
    id: String(g.vmid),
    vmid: g.vmid,
    complete: (t) => {
      if (changed.length > 0) t.log(`update VM ${g.vmid}: ${changed.map((k) => `-${k}`).join(' ')}`);
    },
  });
  if (changed.length > 0) recordMutation(ctx, g, 'config', { upid, key: changed.join(','), detail: { changed, sync: false, ...(pending.length ? { pending } : {}) } });
  const delay = str(ctx, 'background_delay');
  if (delay === undefined) return upid;
  const deadline = Date.now() + Number(delay) * 1000;
  while (Date.now() < deadline) {
    const t = ctx.sim.tasks.get(upid);
    if (t?.status === 'stopped') {
      if (t.exitstatus === 'OK' || t.exitstatus?.startsWith('WARNINGS')) return null;
      die(`failed to update VM ${g.vmid}: ${t.exitstatus}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return upid;
};

/**
 * GET …/pending (GuestHelpers::config_with_pending_array): one entry per key with `value` (the
 * running config, digest included), `pending` (the value waiting for a restart) and `delete: 1` for a
 * removal that waits. Values stay the raw config strings.
 */
const getPending = (type: GuestType): Handler => (ctx) => {
  const g = loadGuest(ctx, type);
  const conf: Record<string, string> = { ...g.config, digest: configDigest(g) };
  if (g.lock) conf.lock = g.lock;
  const pend = g.pending ?? { set: {}, delete: [] };
  const keys = [...new Set([...Object.keys(conf), ...Object.keys(pend.set), ...pend.delete])].sort();
  return keys.map((key) => ({
    key,
    ...(conf[key] !== undefined ? { value: conf[key] } : {}),
    ...(pend.set[key] !== undefined ? { pending: pend.set[key] } : {}),
    ...(pend.delete.includes(key) ? { delete: 1 } : {}),
  }));
};

export const configRoutes: Partial<Record<RouteKey, Handler>> = {
  'GET /nodes/{node}/qemu/{vmid}/pending': getPending('qemu'),
  'GET /nodes/{node}/lxc/{vmid}/pending': getPending('lxc'),
  'GET /nodes/{node}/qemu/{vmid}/config': getConfig('qemu'),
  'PUT /nodes/{node}/qemu/{vmid}/config': putConfig('qemu'),
  'POST /nodes/{node}/qemu/{vmid}/config': postConfig,
  'GET /nodes/{node}/lxc/{vmid}/config': getConfig('lxc'),
  'PUT /nodes/{node}/lxc/{vmid}/config': putConfig('lxc'),
};
