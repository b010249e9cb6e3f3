/**
 * A guest's config file: the disk and size property strings in it, the `[PENDING]` section, and the
 * file as PVE serializes it. Configs are kept as the raw `key: value` strings of
 * /etc/pve/.../<vmid>.conf so that the digest is what the real server computes: a SHA-1 over the
 * serialized file. Anything that rewrites the file (config writes, lock changes, snapshots)
 * therefore changes the digest.
 */
import { createHash } from 'node:crypto';
import type { StorageInfo, StoredGuest } from './model-types.js';

const GiB = 1024 ** 3;

/** PVE::JSONSchema::parse_size */
export function parseSize(value: string): number | undefined {
  const m = /^(\d+(\.\d+)?)([KMGT])?$/.exec(value);
  if (!m) return undefined;
  const mult = { K: 1024, M: 1024 ** 2, G: GiB, T: 1024 ** 4 }[m[3] as 'K' | 'M' | 'G' | 'T'] ?? 1;
  return Math.floor(Number(m[1]) * mult);
}

/** PVE::JSONSchema::format_size */
export function formatSize(size: number): string {
  let v = Math.floor(size);
  for (const unit of ['', 'K', 'M', 'G']) {
    if (v % 1024 !== 0 || v === 0) return `${v}${unit}`;
    v /= 1024;
  }
  return `${v}T`;
}

export const DISK_KEY_RE = /^(ide|sata|scsi|virtio|efidisk|tpmstate|unused|mp)\d+$|^rootfs$/;

export function isDiskKey(key: string): boolean {
  return DISK_KEY_RE.test(key);
}

/** `local-lvm:vm-100-disk-0,size=32G` → volid and size in bytes. */
export function parseDisk(value: string): { volid: string; size: number; media?: string } {
  const parts = value.split(',');
  const first = parts[0] ?? '';
  const volid = first.includes('=') ? (first.split('=')[1] ?? '') : first;
  let size = 0;
  let media: string | undefined;
  for (const p of parts.slice(1)) {
    const [k, v] = p.split('=');
    if (k === 'size' && v) size = parseSize(v) ?? 0;
    if (k === 'media' && v) media = v;
  }
  return media ? { volid, size, media } : { volid, size };
}

export function withDiskSize(value: string, size: number): string {
  const parts = value.split(',').filter((p) => !p.startsWith('size='));
  parts.push(`size=${formatSize(size)}`);
  return parts.join(',');
}

/**
 * Whether a volume can be snapshotted (the storage plugins' volume_has_feature('snapshot')):
 * lvmthin, zfspool, rbd and btrfs always; file storages only for qcow2 images; lvm (thick) never.
 */
export function volumeSnapshots(storage: StorageInfo | undefined, volid: string): boolean {
  if (!storage) return false;
  switch (storage.plugintype) {
    case 'lvmthin':
    case 'zfspool':
    case 'rbd':
    case 'btrfs':
      return true;
    case 'dir':
    case 'nfs':
    case 'cifs':
      return volid.endsWith('.qcow2');
    default:
      return false;
  }
}

/** The config as GET …/config shows it by default: pending values applied, pending deletes gone. */
export function configWithPending(g: Pick<StoredGuest, 'config' | 'pending'>): Record<string, string> {
  const conf = { ...g.config };
  if (!g.pending) return conf;
  for (const k of g.pending.delete) delete conf[k];
  return Object.assign(conf, g.pending.set);
}

/** vmconfig_apply_pending at start/reboot: pending values replace the config, pending deletes go. */
export function applyPending(g: StoredGuest): string[] {
  if (!g.pending) return [];
  const keys = [...g.pending.delete, ...Object.keys(g.pending.set)];
  for (const k of g.pending.delete) delete g.config[k];
  Object.assign(g.config, g.pending.set);
  delete g.pending;
  return keys.sort();
}

/** `memory` is `[current=]<MiB>` for QEMU, a plain integer for LXC. */
export function memoryMiB(g: StoredGuest): number {
  const raw = g.config.memory ?? '512';
  const m = /(?:^|current=)(\d+)/.exec(raw);
  return Number(m?.[1] ?? 512);
}

export function diskKeys(g: StoredGuest): string[] {
  return Object.keys(g.config).filter((k) => isDiskKey(k) && !k.startsWith('unused'));
}

/** Size of the boot/root disk, reported as maxdisk. */
export function rootDiskSize(g: StoredGuest): number {
  const key = g.type === 'lxc' ? 'rootfs' : diskKeys(g).find((k) => parseDisk(g.config[k] ?? '').media !== 'cdrom');
  return key ? parseDisk(g.config[key] ?? '').size : 0;
}

/** The config file as PVE writes it: description as `#` comments, keys sorted, then the pending and snapshot sections. */
export function serializeConfig(g: StoredGuest): string {
  const section = (conf: Record<string, string>, extra: Record<string, string | undefined>): string => {
    const lines: string[] = [];
    const { description, ...rest } = conf;
    if (description) for (const l of description.split('\n')) lines.push(`#${encodeURIComponent(l)}`);
    const all: Record<string, string> = { ...rest };
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) all[k] = v;
    for (const k of Object.keys(all).sort()) lines.push(`${k}: ${all[k]}`);
    return `${lines.join('\n')}\n`;
  };
  let out = section(g.config, { lock: g.lock, parent: g.parent });
  if (g.pending && (Object.keys(g.pending.set).length > 0 || g.pending.delete.length > 0)) {
    out += `\n[PENDING]\n${section(g.pending.set, { delete: g.pending.delete.length ? g.pending.delete.join(',') : undefined })}`;
  }
  for (const s of g.snapshots) {
    out += `\n[${s.name}]\n${section(s.config, {
      parent: s.parent,
      snapstate: s.snapstate,
      snaptime: String(s.snaptime),
      vmstate: s.vmstate ? '1' : undefined,
    })}`;
  }
  return out;
}

/** The `digest` GET …/config reports and config writes compare: the SHA-1 of the serialized file. */
export function configDigest(g: StoredGuest): string {
  return createHash('sha1').update(serializeConfig(g)).digest('hex');
}
