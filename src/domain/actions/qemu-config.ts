import { z } from 'zod';
import { booleanKey, configUpdateAction, descriptionKey, integerKey, qemuMemoryKey, tagsKey, textKey } from './config-update.js';
import { diskResizeAction } from './disk-resize.js';
import { dnsName } from './guest-kind.js';

// Bounds as apidata.js gives them for PUT /nodes/{node}/qemu/{vmid}/config.
export const vmConfigUpdate = configUpdateAction('qemu', {
  cores: integerKey(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).describe('CPU cores per socket'), 1),
  sockets: integerKey(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).describe('CPU sockets'), 1),
  memory: qemuMemoryKey,
  balloon: integerKey(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).describe('Minimum memory in MiB for the balloon device (0 disables it)')),
  name: textKey(dnsName.describe('VM name (DNS name)')),
  description: descriptionKey,
  tags: tagsKey,
  onboot: booleanKey('Start the VM when the node boots'),
});

export const vmDiskResize = diskResizeAction('qemu');
