/** Cluster- and node-level read routes: version, nodes, resources, nextid, guest lists, storage. */
import { type Handler, type RequestContext, int, str } from '../context.js';
import { die, paramError } from '../errors.js';
import type { RouteKey } from '../served-routes.js';
import { diskKeys, parseDisk, rootDiskSize } from '../guest-config.js';
import { guestSummary } from './guest-common.js';

const NODE_MAXMEM = 64 * 1024 ** 3;
const NODE_MAXDISK = 100 * 1024 ** 3;

function nodeStatus(ctx: RequestContext, node: string): 'online' | 'offline' {
  return ctx.sim.faults.nodeFault(node) ? 'offline' : 'online';
}

function fingerprint(node: string): string {
  let h = 0;
  for (const c of node) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return Array.from({ length: 32 }, (_, i) => ((h >>> (i % 24)) ^ (i * 37)) & 0xff)
    .map((b) => b.toString(16).toUpperCase().padStart(2, '0'))
    .join(':');
}

function nodeEntry(ctx: RequestContext, node: string): Record<string, unknown> {
  const online = nodeStatus(ctx, node) === 'online';
  const base: Record<string, unknown> = { id: `node/${node}`, type: 'node', node, status: nodeStatus(ctx, node) };
  if (!online) return base;
  return {
    ...base,
    cpu: 0.031,
    maxcpu: 16,
    mem: 12 * 1024 ** 3,
    maxmem: NODE_MAXMEM,
    disk: 9 * 1024 ** 3,
    maxdisk: NODE_MAXDISK,
    uptime: Math.floor((Date.now() - ctx.sim.model.bootTime) / 1000) + 86400,
    level: '',
  };
}

// What `pveversion`'s API twin answers on a current 8.x and 9.x node (SimulatorOptions.pve).
const VERSIONS = {
  8: { version: '8.4.1', release: '8.4', repoid: '2a5fa54a8503f96d', console: 'xtermjs' },
  9: { version: '9.1.2', release: '9.1', repoid: '5b7ed8c5', console: 'xtermjs' },
} as const;

const version: Handler = (ctx) => ({ ...VERSIONS[ctx.sim.pve] });

const nodes: Handler = (ctx) =>
  ctx.sim.model.nodes.map((node) => {
    const e = nodeEntry(ctx, node);
    return e.status === 'online' ? { ...e, ssl_fingerprint: fingerprint(node) } : e;
  });

function addToPool(pe: Record<string, unknown>, s: Record<string, unknown>): void {
  const num = (v: unknown) => (typeof v === 'number' ? v : 0);
  pe.uptime = Math.max(num(pe.uptime), num(s.uptime));
  pe.mem = num(pe.mem) + num(s.mem);
  pe.maxmem = num(pe.maxmem) + num(s.maxmem);
  const maxcpu = num(pe.maxcpu) + num(s.cpus);
  pe.cpu = maxcpu ? (num(pe.cpu) * num(pe.maxcpu) + num(s.cpu) * num(s.cpus)) / maxcpu : 0;
  pe.maxcpu = maxcpu;
}

const resources: Handler = (ctx) => {
  const type = str(ctx, 'type');
  const { model } = ctx.sim;
  const out: Record<string, unknown>[] = [];
  if (!type || type === 'node') for (const n of model.nodes) out.push(nodeEntry(ctx, n));
  // Pools come only in the unfiltered list (`type` has no `pool` value), and gather the usage of
  // their running members like Cluster.pm does: highest uptime, summed mem/maxmem/maxcpu, weighted cpu.
  const pools = new Map<string, Record<string, unknown>>();
  if (!type) {
    for (const pool of model.pools) {
      const entry: Record<string, unknown> = { id: `/pool/${pool}`, pool, type: 'pool' };
      pools.set(pool, entry);
      out.push(entry);
    }
  }
  if (!type || type === 'vm') {
    for (const g of model.allGuests()) {
      const offline = nodeStatus(ctx, g.node) === 'offline';
      const s = guestSummary(g);
      const entry: Record<string, unknown> = {
        id: `${g.type}/${g.vmid}`,
        type: g.type,
        node: g.node,
        vmid: g.vmid,
        name: s.name,
        // Guests on a node the cluster cannot reach are reported with status "unknown".
        status: offline ? 'unknown' : g.status,
        template: g.config.template === '1' ? 1 : 0,
        maxcpu: s.cpus,
        maxmem: s.maxmem,
        maxdisk: s.maxdisk,
        cpu: s.cpu,
        mem: s.mem,
        disk: 0,
        uptime: s.uptime,
        netin: s.netin,
        netout: s.netout,
        diskread: s.diskread,
        diskwrite: s.diskwrite,
      };
      if (g.lock) entry.lock = g.lock;
      if (g.config.tags) entry.tags = g.config.tags;
      if (g.pool) {
        entry.pool = g.pool;
        const pe = pools.get(g.pool);
        // Cluster.pm tests uptime, i.e. running; a guest started this second has uptime 0 here.
        if (pe && g.status === 'running') addToPool(pe, s);
      }
      if (g.haManaged && g.haState) entry.hastate = g.haState;
      out.push(entry);
    }
  }
  if (!type || type === 'storage') {
    for (const n of model.nodes) {
      if (nodeStatus(ctx, n) === 'offline') continue;
      for (const s of model.storages) {
        out.push({
          id: `storage/${n}/${s.storage}`,
          type: 'storage',
          node: n,
          storage: s.storage,
          status: 'available',
          plugintype: s.plugintype,
          content: s.content.join(','),
          shared: 0,
          disk: 20 * 1024 ** 3,
          maxdisk: 500 * 1024 ** 3,
        });
      }
    }
  }
  return out;
};

const nextid: Handler = (ctx) => {
  const requested = str(ctx, 'vmid');
  if (requested !== undefined) {
    if (ctx.sim.model.findGuest(Number(requested))) paramError({ vmid: `VM ${requested} already exists` });
    // The real handler echoes the parameter back as given (a string), but computes a number otherwise.
    return requested;
  }
  return ctx.sim.model.nextFreeVmid();
};

function guestList(type: 'qemu' | 'lxc'): Handler {
  return (ctx) => {
    const node = str(ctx, 'node')!;
    const full = type === 'qemu' && str(ctx, 'full') === '1';
    return ctx.sim.model
      .allGuests()
      .filter((g) => g.node === node && g.type === type)
      .map((g) => guestSummary(g, full));
  };
}

/** The node's storages with their content types: what a client checks before choosing a backup target. */
const storageList: Handler = (ctx) => {
  const content = str(ctx, 'content');
  const only = str(ctx, 'storage');
  if (only !== undefined && !ctx.sim.model.storage(only)) paramError({ storage: 'No such storage.' });
  return ctx.sim.model.storages
    .filter((s) => (only === undefined || s.storage === only) && (content === undefined || content.split(',').some((c) => s.content.includes(c))))
    .map((s) => ({
      storage: s.storage,
      type: s.plugintype,
      content: s.content.join(','),
      active: 1,
      enabled: 1,
      shared: 0,
      total: 500 * 1024 ** 3,
      used: 20 * 1024 ** 3,
      avail: 480 * 1024 ** 3,
    }));
};

const storageContent: Handler = (ctx) => {
  const { model } = ctx.sim;
  const node = str(ctx, 'node')!;
  const storage = str(ctx, 'storage')!;
  if (!model.storage(storage)) die(`storage '${storage}' does not exist`);
  const content = str(ctx, 'content');
  const vmid = int(ctx, 'vmid');
  const out: Record<string, unknown>[] = [];
  for (const g of model.allGuests()) {
    if (g.node !== node) continue;
    for (const key of diskKeys(g)) {
      const d = parseDisk(g.config[key] ?? '');
      if (!d.volid.startsWith(`${storage}:`) || d.media === 'cdrom') continue;
      out.push({
        volid: d.volid,
        content: g.type === 'lxc' ? 'rootdir' : 'images',
        format: 'raw',
        size: d.size || rootDiskSize(g),
        used: Math.floor((d.size || 0) * 0.3),
        vmid: g.vmid,
        ctime: Math.floor(model.bootTime / 1000),
      });
    }
  }
  for (const b of model.backups) {
    if (b.node !== node || b.storage !== storage) continue;
    out.push({
      volid: b.volid,
      content: 'backup',
      format: b.format,
      size: b.size,
      vmid: b.vmid,
      ctime: b.ctime,
      subtype: b.guestType,
      ...(b.notes ? { notes: b.notes } : {}),
      ...(b.protected ? { protected: 1 } : {}),
    });
  }
  return out.filter((e) => (!content || e.content === content) && (vmid === undefined || e.vmid === vmid));
};

export const clusterRoutes: Partial<Record<RouteKey, Handler>> = {
  'GET /version': version,
  'GET /nodes': nodes,
  'GET /cluster/resources': resources,
  'GET /cluster/nextid': nextid,
  'GET /nodes/{node}/qemu': guestList('qemu'),
  'GET /nodes/{node}/lxc': guestList('lxc'),
  'GET /nodes/{node}/storage': storageList,
  'GET /nodes/{node}/storage/{storage}/content': storageContent,
};
