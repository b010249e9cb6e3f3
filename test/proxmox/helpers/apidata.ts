// Loads the published Proxmox API schema (pve-docs api-viewer/apidata.js) from beside the project
// checkout, as /work/shared/proxmox/README.md asks: it is read at test time, never copied in.

import { readFileSync } from 'node:fs';
import { APIDATA_PATH } from '../../../scripts/apidata-path.js';

export { APIDATA_PATH };

export interface ApiNode {
  path: string;
  info?: Record<string, { parameters?: { properties?: Record<string, Record<string, unknown>> }; allowtoken?: number }>;
  children?: ApiNode[];
}

let cache: Map<string, ApiNode> | undefined;

/** All schema nodes by path, e.g. `/nodes/{node}/qemu/{vmid}/config`. */
export function loadApiPaths(): Map<string, ApiNode> {
  if (cache) return cache;
  const src = readFileSync(APIDATA_PATH, 'utf8');
  const literal = src.replace(/^[\s\S]*?const apiSchema\s*=\s*/, '').replace(/;\s*$/, '');
  // The file is a JS literal (not strict JSON), published by the Proxmox project.
  const tree = new Function(`return (${literal});`)() as ApiNode[];
  const map = new Map<string, ApiNode>();
  const walk = (nodes: ApiNode[]): void => {
    for (const n of nodes) {
      map.set(n.path, n);
      if (n.children) walk(n.children);
    }
  };
  walk(tree);
  cache = map;
  return map;
}
