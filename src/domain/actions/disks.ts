/**
 * Guest disks as the config stores them (`local-lvm:vm-100-disk-0,iothread=1,size=32G`): which keys
 * are disks, their volume and size. Sizes follow PVE::JSONSchema parse_size (K/M/G/T, powers of 1024).
 */
import type { GuestKind } from '../guest-state.js';

const range = (family: string, count: number) => Array.from({ length: count }, (_, i) => `${family}${i}`);

/** The `disk` enum of PUT …/resize in apidata, per kind. */
export const RESIZABLE_DISKS = {
  qemu: [...range('ide', 4), ...range('scsi', 31), ...range('virtio', 16), ...range('sata', 6), 'efidisk0', 'tpmstate0'],
  lxc: ['rootfs', ...range('mp', 256)],
} as const satisfies Record<GuestKind, readonly string[]>;

const DISK_KEY = { qemu: /^(ide|sata|scsi|virtio)\d+$|^efidisk0$|^tpmstate0$/, lxc: /^rootfs$|^mp\d+$/ } as const;

export function isDiskKey(kind: GuestKind, key: string): boolean {
  return DISK_KEY[kind].test(key);
}

export interface DiskInfo {
  key: string;
  volume: string;
  /** Bytes, when the config records a size. */
  size?: number;
  cdrom: boolean;
}

export function parseDisk(key: string, value: string): DiskInfo {
  const [first = '', ...rest] = value.split(',');
  const volume = first.includes('=') ? first.slice(first.indexOf('=') + 1) : first;
  const opts = Object.fromEntries(rest.map((part) => [part.split('=')[0], part.slice(part.indexOf('=') + 1)]));
  const size = opts.size === undefined ? undefined : parseSize(opts.size);
  return { key, volume, cdrom: opts.media === 'cdrom', ...(size === undefined ? {} : { size }) };
}

/** The guest's disks (no CD-ROMs, no unused volumes), in key order. */
export function diskKeys(kind: GuestKind, config: Record<string, string>): DiskInfo[] {
  return Object.keys(config)
    .filter((key) => isDiskKey(kind, key))
    .sort()
    .map((key) => parseDisk(key, config[key]!))
    .filter((d) => !d.cdrom);
}

const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** PVE::JSONSchema::parse_size: `32G` → bytes; a bare number is bytes. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/.exec(text);
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * (m[2] ? UNITS[m[2]]! : 1));
}

/** Bytes in the largest unit that divides them, as PVE::JSONSchema::format_size prints them. */
export function formatSize(bytes: number): string {
  let v = bytes;
  for (const unit of ['', 'K', 'M', 'G']) {
    if (v % 1024 !== 0 || v === 0) return `${v}${unit}`;
    v /= 1024;
  }
  return `${v}T`;
}
