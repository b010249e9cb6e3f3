/**
 * GET/PUT config for QEMU and LXC, plus the async QEMU `POST config`.
 *
 * Writes are checked in the order of qemu-server's update_vm_api: file lock (injectable contention),
 * digest, guest lock; then `delete` and set keys are applied to the raw config and the digest moves.
 */
import { type Handler, type RequestContext, recordMutation, startTask, str } from '../context.js';
import { die, paramError } from '../errors.js';
import { type GuestState, type GuestType, isDiskKey, parseDisk } from '../model.js';
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
    return {
      ...typedConfig(type, snap.config),
      snaptime: snap.snaptime,
      ...(snap.parent ? { parent: snap.parent } : {}),
      ...(snap.vmstate ? { vmstate: 1 } : {}),
      digest: ctx.sim.model.digest(g),
    };
  }
  return {
    ...typedConfig(type, g.config),
    ...(g.lock ? { lock: g.lock } : {}),
    ...(g.parent ? { parent: g.parent } : {}),
    digest: ctx.sim.model.digest(g),
  };
};

function digestMismatchMessage(type: GuestType): string {
  return type === 'qemu'
    ? 'checksum mismatch (file change by other user?)'
    : 'detected modified configuration - file changed by other user? Try again.';
}

/** Check optimistic concurrency: a `digest` that is not the current one is refused. */
export function checkDigest(ctx: RequestContext, g: GuestState, message: string): void {
  const digest = str(ctx, 'digest');
  if (digest !== undefined && digest !== ctx.sim.model.digest(g)) die(message);
}

function nextUnused(g: GuestState): string {
  let i = 0;
  while (g.config[`unused${i}`] !== undefined) i++;
  return `unused${i}`;
}

function nextDiskIndex(g: GuestState): number {
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

/** Applies set/delete to the raw config; returns the keys that actually changed. */
function applyConfig(ctx: RequestContext, g: GuestState): { changed: string[] } {
  const set: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.params)) {
    if (META_PARAMS.has(k) || typeof v !== 'string') continue;
    set[k] = v;
  }
  const deleted = splitList(str(ctx, 'delete') ?? '');
  for (const opt of deleted) {
    if (opt in set) paramError({ delete: `you can't use '-${opt}' and -delete ${opt}' at the same time` });
  }
  const protectedNow = g.config.protection === '1' && set.protection !== '0';
  const changed = new Set<string>();

  for (const opt of deleted) {
    if (opt === 'lock') {
      if (g.lock) { delete g.lock; changed.add(opt); }
      continue;
    }
    const old = g.config[opt];
    if (old === undefined) continue;
    if (isDiskKey(opt) && protectedNow) die(`can't remove drive '${opt}' - protection mode enabled`);
    if (g.type === 'lxc' && opt === 'rootfs') die(`unable to delete required option 'rootfs'`);
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
    if (k === 'tags') v = [...new Set(splitList(v))].join(';');
    // `storage:SIZE` allocates a new volume of SIZE GiB, as on a real node.
    const alloc = isDiskKey(k) ? /^([a-z][a-z0-9\-_.]*[a-z0-9]):(\d+(?:\.\d+)?)(,.*)?$/i.exec(v) : null;
    if (alloc) {
      if (!ctx.sim.model.storage(alloc[1]!)) die(`storage '${alloc[1]}' does not exist`);
      v = `${alloc[1]}:vm-${g.vmid}-disk-${nextDiskIndex(g)}${alloc[3] ?? ''},size=${alloc[2]}G`;
    }
    if (g.config[k] !== v) {
      g.config[k] = v;
      changed.add(k);
    }
  }
  return { changed: [...changed].sort() };
}

/** Parameters update_vm_api / update_pct_config extract before asking whether anything is left to do. */
const NOT_OPTIONS = new Set(['node', 'vmid', 'digest', 'background_delay', 'skip_cloud_init', 'import-working-storage', 'skiplock', 'force']);

/** Both servers refuse a write with nothing in it before loading the config: 500 `no options specified`. */
function requireOptions(ctx: RequestContext): void {
  if (!Object.keys(ctx.params).some((k) => !NOT_OPTIONS.has(k))) die('no options specified');
}

function writeConfig(ctx: RequestContext, g: GuestState): { changed: string[] } {
  maybeLockContention(ctx, g);
  checkDigest(ctx, g, digestMismatchMessage(g.type));
  checkLockSync(g);
  return { changed: applyConfig(ctx, g).changed };
}

const putConfig = (type: GuestType): Handler => (ctx) => {
  requireOptions(ctx);
  const g = loadGuest(ctx, type);
  const { changed } = writeConfig(ctx, g);
  if (changed.length > 0) recordMutation(ctx, g, 'config', { key: changed.join(','), detail: { changed, sync: true } });
  return null;
};

/**
 * POST config: same checks and write, then a `qmconfig` worker applies hotplug changes. With
 * `background_delay` the server waits for that worker and answers null when it finished OK.
 */
const postConfig: Handler = async (ctx) => {
  requireOptions(ctx);
  const g = loadGuest(ctx, 'qemu');
  const { changed } = writeConfig(ctx, g);
  const upid = startTask(ctx, {
    node: g.node,
    type: 'qmconfig',
    id: String(g.vmid),
    vmid: g.vmid,
    complete: (t) => {
      if (changed.length > 0) t.log(`update VM ${g.vmid}: ${changed.map((k) => `-${k}`).join(' ')}`);
    },
  });
  if (changed.length > 0) recordMutation(ctx, g, 'config', { upid, key: changed.join(','), detail: { changed, sync: false } });
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

export const configRoutes: Partial<Record<RouteKey, Handler>> = {
  'GET /nodes/{node}/qemu/{vmid}/config': getConfig('qemu'),
  'PUT /nodes/{node}/qemu/{vmid}/config': putConfig('qemu'),
  'POST /nodes/{node}/qemu/{vmid}/config': postConfig,
  'GET /nodes/{node}/lxc/{vmid}/config': getConfig('lxc'),
  'PUT /nodes/{node}/lxc/{vmid}/config': putConfig('lxc'),
};
