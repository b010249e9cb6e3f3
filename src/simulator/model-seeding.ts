/**
 * Builds a simulated cluster's starting state from its seed: each guest's config file as
 * `qm create`/`pct create` would write it, its snapshots, and the storages with their plugin types.
 */
import { createHash } from 'node:crypto';
import type { StorageInfo, StorageType, StoredGuest } from './model-types.js';
import type { SimGuestSeed } from './types.js';

/** Stable pseudo-random hex derived from a string, so seeded MACs/UUIDs are reproducible. */
function hashHex(input: string, len: number): string {
  return createHash('sha1').update(input).digest('hex').slice(0, len);
}
function uuidFrom(input: string): string {
  const h = hashHex(input, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
function macFrom(input: string): string {
  const h = hashHex(input, 6).toUpperCase();
  return `BC:24:11:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

function seedConfig(seed: SimGuestSeed, now: number): Record<string, string> {
  const cores = String(seed.cores ?? (seed.type === 'qemu' ? 2 : 1));
  const memory = String(seed.memory ?? (seed.type === 'qemu' ? 2048 : 512));
  const conf: Record<string, string> = {};
  if (seed.type === 'qemu') {
    const disks = seed.disks ?? { scsi0: `local-lvm:vm-${seed.vmid}-disk-0,iothread=1,size=32G` };
    Object.assign(conf, {
      boot: `order=${Object.keys(disks)[0] ?? 'scsi0'};net0`,
      cores,
      cpu: 'x86-64-v2-AES',
      memory,
      meta: `creation-qemu=9.2.0,ctime=${Math.floor(now / 1000)}`,
      name: seed.name,
      net0: `virtio=${macFrom(`${seed.vmid}/net0`)},bridge=vmbr0,firewall=1`,
      numa: '0',
      ostype: 'l26',
      scsihw: 'virtio-scsi-single',
      smbios1: `uuid=${uuidFrom(`${seed.vmid}/smbios`)}`,
      sockets: '1',
      vmgenid: uuidFrom(`${seed.vmid}/vmgenid`),
      ...disks,
    });
  } else {
    const disks = seed.disks ?? { rootfs: `local-lvm:vm-${seed.vmid}-disk-0,size=8G` };
    Object.assign(conf, {
      arch: 'amd64',
      cores,
      hostname: seed.name,
      memory,
      net0: `name=eth0,bridge=vmbr0,firewall=1,hwaddr=${macFrom(`${seed.vmid}/net0`)},ip=dhcp,type=veth`,
      ostype: 'debian',
      swap: '512',
      unprivileged: '1',
      ...disks,
    });
  }
  if (seed.tags?.length) conf.tags = seed.tags.join(';');
  if (seed.description) conf.description = seed.description;
  if (seed.protection) conf.protection = '1';
  conf.onboot = '1';
  return conf;
}

/** A seeded storage with its plugin type and content types. */
export function storageInfo(seed: string | { storage: string; type: StorageType }): StorageInfo {
  if (typeof seed !== 'string') {
    const files = ['dir', 'nfs', 'cifs', 'btrfs'].includes(seed.type);
    return { storage: seed.storage, plugintype: seed.type, content: files ? ['backup', 'images', 'iso', 'rootdir', 'snippets', 'vztmpl'] : ['images', 'rootdir'] };
  }
  const name = seed;
  // Block storages hold disk images only; directory storages also take backups (like `local`).
  return /lvm|zfs|ceph|rbd/i.test(name)
    ? { storage: name, plugintype: 'lvmthin', content: ['images', 'rootdir'] }
    : { storage: name, plugintype: 'dir', content: ['backup', 'images', 'iso', 'rootdir', 'snippets', 'vztmpl'] };
}

/** A seeded guest as stored, stopped: the model marks it running (giving it a pid) when the seed says so. */
export function seedGuest(g: SimGuestSeed, now: number): StoredGuest {
  const state: StoredGuest = {
    vmid: g.vmid,
    type: g.type,
    node: g.node,
    status: g.status,
    paused: false,
    config: seedConfig(g, now),
    snapshots: [],
    haManaged: Boolean(g.haManaged),
    ...(g.haManaged ? { haState: g.status === 'running' ? 'started' as const : 'stopped' as const } : {}),
    ...(g.pool ? { pool: g.pool } : {}),
  };
  for (const [i, name] of (g.snapshots ?? []).entries()) {
    state.snapshots.push({
      name,
      description: '',
      snaptime: Math.floor(now / 1000) - 3600 * ((g.snapshots?.length ?? 0) - i),
      ...(state.parent ? { parent: state.parent } : {}),
      vmstate: false,
      config: { ...state.config },
    });
    state.parent = name;
  }
  return state;
}
