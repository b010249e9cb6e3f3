/**
 * Where the real Proxmox API schema (pve-docs apidata.js) is read from, by the tests and by
 * scripts/gen-proxmox-privileges.ts. It is never copied into the project (../shared/proxmox/README.md).
 * Looked up, in order: PROXMOX_APIDATA, beside the checkout (../shared/proxmox/apidata.js, relative
 * to the repo), then the workplace's shared folder, for a clone made elsewhere (a CI clone in /tmp).
 * Tests that need it fail, never skip, when it is missing: a fidelity check that silently does
 * nothing proves nothing.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));

export const APIDATA_CANDIDATES: string[] = [
  process.env.PROXMOX_APIDATA,
  resolve(repoRoot, '../shared/proxmox/apidata.js'),
  '/work/shared/proxmox/apidata.js',
].filter((p): p is string => Boolean(p));

export const APIDATA_PATH: string = APIDATA_CANDIDATES.find((p) => existsSync(p)) ?? APIDATA_CANDIDATES[0]!;

export const APIDATA_MISSING_HELP = `apidata.js not found (looked in: ${APIDATA_CANDIDATES.join(', ')}); set PROXMOX_APIDATA to its path`;
