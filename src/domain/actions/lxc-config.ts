import { z } from 'zod';
import { booleanKey, configUpdateAction, descriptionKey, integerKey, tagsKey, textKey } from './config-update.js';
import { diskResizeAction } from './disk-resize.js';
import { dnsName } from './guest-kind.js';

// Bounds as apidata.js gives them for PUT /nodes/{node}/lxc/{vmid}/config; the container's name
// is its hostname, and memory is a plain integer (no property string as for QEMU).
export const ctConfigUpdate = configUpdateAction('lxc', {
  cores: integerKey(z.number().int().min(1).max(8192).describe('CPU cores the container may use')),
  memory: integerKey(z.number().int().min(16).max(Number.MAX_SAFE_INTEGER).describe('Memory in MiB'), 512),
  swap: integerKey(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).describe('Swap in MiB'), 512),
  hostname: textKey(dnsName.describe('Container hostname (DNS name)')),
  description: descriptionKey,
  tags: tagsKey,
  onboot: booleanKey('Start the container when the node boots'),
});

export const ctDiskResize = diskResizeAction('lxc');
